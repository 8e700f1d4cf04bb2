//! Shared walk for the file checks: every entry of every layer, hard links resolved, with
//! whether each finding is still in the final filesystem.

use super::{Outcome, ScanContext};
use crate::layer::{EntryKind, LayerEntry, LayerIndex, WHITEOUT_PREFIX};
use std::collections::{BTreeMap, BTreeSet};

/// A file that a check found in a layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileFinding {
    /// The layer's position in the manifest.
    pub layer: usize,
    pub path: String,
    /// Whether the final filesystem still has this layer's entry at `path`.
    pub present: bool,
}

/// Directories whose files are named after a program without being it: SysV init scripts
/// (`/etc/init.d/sudo`), apt's transport methods (`/usr/lib/apt/methods/ssh`), documentation.
const NOT_PROGRAM_DIRS: &[&str] = &["/etc/init.d/", "/usr/lib/apt/methods/", "/usr/share/doc/"];

/// Tells whether a layer entry of extracted `kind` and `mode` runs as a program: a regular
/// file with an execute bit, or a symlink to one (busybox applets are symlinks to one
/// binary). A symlink that the final filesystem no longer has, or whose target cannot be
/// resolved there, counts, so a link hidden by a later layer is never missed.
pub fn is_program(
    context: &ScanContext,
    layer: usize,
    entry: &LayerEntry<'_>,
    kind: EntryKind,
    mode: u32,
) -> bool {
    let path = entry.path();
    if NOT_PROGRAM_DIRS.iter().any(|dir| path.starts_with(dir)) {
        return false;
    }
    match kind {
        EntryKind::File => mode & 0o111 != 0,
        EntryKind::Symlink => symlink_reaches_program(context, layer, &path),
        _ => false,
    }
}

/// Follows a symlink in the final filesystem: true when it ends at an executable file, false
/// when it ends at a directory, a non-executable file or nothing.
fn symlink_reaches_program(context: &ScanContext, layer: usize, path: &str) -> bool {
    if !context.fs.is_present(layer, path) {
        return true;
    }
    let Some(target) = context.fs.resolve(path) else {
        return false;
    };
    context
        .fs
        .entry(&target)
        .is_some_and(|entry| entry.kind == EntryKind::File && entry.mode & 0o111 != 0)
}

/// Collects the entries of every layer for which `matches(layer, entry, kind, mode)` holds,
/// where `kind` and `mode` are those of the extracted file (for a hard link, its target's).
pub fn find_entries(
    context: &ScanContext,
    matches: impl Fn(usize, &LayerEntry<'_>, EntryKind, u32) -> bool,
) -> Vec<FileFinding> {
    let mut found = BTreeSet::new();
    for (layer_index, layer) in context.layers.iter().enumerate() {
        for (entry_index, entry) in layer.entries().iter().enumerate() {
            if entry.name.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            let (kind, mode) = context
                .fs
                .hard_link_kind_and_mode(layer_index, entry_index)
                .unwrap_or((entry.kind, entry.mode));
            if matches(layer_index, &entry, kind, mode) {
                // NOTE: when one layer has two entries at a path, `present` speaks of the path,
                // not of which of the two entries the runtime keeps.
                let path = entry.path();
                found.insert(FileFinding {
                    layer: layer_index,
                    present: context.fs.is_present(layer_index, &path),
                    path,
                });
            }
        }
    }
    found.into_iter().collect()
}

/// Builds the outcome of a file check: it fails when anything was found. `what` names the
/// findings in the plural, e.g. "files with the setuid bit".
pub fn outcome(findings: Vec<FileFinding>, what: &str) -> Outcome {
    if findings.is_empty() {
        return Outcome {
            pass: true,
            description: format!("No {what} found."),
            files: Some(vec![]),
        };
    }
    let paths: BTreeSet<&str> = findings.iter().map(|f| f.path.as_str()).collect();
    let layers: BTreeSet<usize> = findings.iter().map(|f| f.layer).collect();
    let removed = findings.iter().filter(|f| !f.present).count();
    let mut description = format!(
        "{} found ({} in {} layer{}): {}.",
        capitalise(what),
        paths.len(),
        layers.len(),
        if layers.len() == 1 { "" } else { "s" },
        summarise(&paths),
    );
    if removed > 0 {
        description.push_str(&format!(
            " Not in the final filesystem, because a later layer deleted or replaced them, \
             but still shipped in the layer blobs: {removed}."
        ));
    }
    Outcome {
        pass: false,
        description,
        files: Some(findings),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn summarise(paths: &BTreeSet<&str>) -> String {
    const SHOWN: usize = 10;
    let shown: Vec<&str> = paths.iter().take(SHOWN).copied().collect();
    let mut joined = shown.join(", ");
    let more = paths.len().saturating_sub(SHOWN);
    if more > 0 {
        joined.push_str(&format!(" and {more} more"));
    }
    joined
}

/// Groups findings as the JSON report lists them: per layer in manifest order, keyed by the
/// layer digest's hex, with sorted paths.
pub fn group_by_layer(
    findings: &[FileFinding],
    layers: &[LayerIndex],
) -> Vec<BTreeMap<String, Vec<String>>> {
    let mut by_layer: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
    for finding in findings {
        by_layer
            .entry(finding.layer)
            .or_default()
            .insert(&finding.path);
    }
    by_layer
        .into_iter()
        .map(|(layer, paths)| {
            let digest = layers.get(layer).map_or("", |l| l.digest.as_str());
            let hex = digest
                .split_once(':')
                .map_or(digest, |(_, hex)| hex)
                .to_string();
            BTreeMap::from([(hex, paths.into_iter().map(str::to_string).collect())])
        })
        .collect()
}

/// Returns the sorted paths of findings still present in the final filesystem.
pub fn present_paths(findings: &[FileFinding]) -> Vec<String> {
    let present: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.present)
        .map(|f| f.path.as_str())
        .collect();
    present.into_iter().map(str::to_string).collect()
}
