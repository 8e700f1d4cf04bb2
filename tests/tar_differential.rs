//! Differential test of the layer walk against Go's `archive/tar`, which containerd, moby and
//! podman read layers with.
//!
//! Each case of `differential/corpus.rs` is read by `walk_layer` and by
//! `differential/tar_entries.go` (built once per run with the Debian `golang-go` toolchain;
//! standard library only, no modules). The two must agree:
//!
//! - Go rejects the layer: the walk must reject it too, or a scan would pass a layer that
//!   the runtime refuses.
//! - Go reads entries: the walk must list the same entries (path, type, mode, size, link
//!   target), or reject the layer when the case is in [`STRICTER_THAN_GO`] with the reason.
//!
//! The `gzip_` cases vary the gzip framing instead (members, header fields, trailers, data
//! after the last member), so they compare the scanner's ISA-L decoder with Go's
//! `compress/gzip`.
//!
//! NOTE: the reference is the Go release installed here (Go 1.19 on Debian bookworm), while
//! runtimes are built with newer releases. The reader code of `archive/tar` changed little
//! since; the known change is a bound on PAX sparse 1.0 maps (CVE-2025-58183).

#[path = "differential/corpus.rs"]
mod corpus;

use corpus::{Case, GoExpect};
use image_compliance_scanner::layer::{EntryKind, WalkLimits, escape_name, walk_layer};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Cases that Go reads and the walk rejects on purpose, with the reason. Each rejection fails
/// closed (the scan exits with an error) and concerns archives that no common tar writer
/// produces.
const STRICTER_THAN_GO: &[(&str, &str)] = &[
    (
        "truncated_mid_padding",
        "Go ends the archive quietly inside the padding after the last entry; the walk \
         treats the cut as truncation",
    ),
    (
        "directory_with_data",
        "Go reads no data for a directory with a size, but the Rust tar crate skips `size` \
         bytes, so the two list different entries after it",
    ),
    (
        "hard_link_with_data",
        "as for directories: Go reads no data for a hard link, the Rust tar crate skips \
         `size` bytes",
    ),
    (
        "pax_path_then_gnu_long_name",
        "Go takes the GNU long name over the PAX path; no writer emits both for one entry, \
         so the walk does not rely on Go's choice",
    ),
    (
        "gzip_extra_field_60000_bytes",
        "the ISA-L decoder (through isal-rs) stops on a gzip header that yields no output \
         over two reads of its 16 KiB input buffer; gzip writers put at most a few dozen bytes \
         in the extra field",
    ),
    (
        "two_pax_headers",
        "Go keeps only the last of two PAX headers for one entry; no writer emits two, so \
         the walk does not rely on Go's choice",
    ),
];

/// An entry as both sides report it, in the walk's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: EntryKind,
    mode: u32,
    size: i64,
    link: Option<String>,
}

/// What one side made of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Entries(Vec<Entry>),
    Rejected(String),
}

impl Outcome {
    fn summary(&self) -> String {
        match self {
            Outcome::Entries(entries) => format!("{} entries", entries.len()),
            Outcome::Rejected(message) => {
                let short: String = message.chars().take(70).collect();
                format!("rejected: {short}")
            }
        }
    }
}

/// Maps a type flag from Go to the kind the walk reports, by the walk's documented rule:
/// contiguous, old GNU sparse and unknown types are files.
fn kind_for_go_typeflag(typeflag: u8) -> EntryKind {
    match typeflag {
        b'1' => EntryKind::HardLink,
        b'2' => EntryKind::Symlink,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'5' => EntryKind::Directory,
        b'6' => EntryKind::Fifo,
        _ => EntryKind::File,
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Builds the Go lister into `dir`, with its build cache in Cargo's target directory so that
/// later runs reuse it. The environment keeps the Go tool off the network.
fn build_go_lister(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/tar_entries.go");
    let binary = dir.join("tar_entries");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache");
    let output = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .env("GOCACHE", &cache)
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap_or_else(|error| {
            panic!("failed to run `go build` ({error}); install Debian's golang-go package")
        });
    assert!(
        output.status.success(),
        "go build of {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// Runs the Go lister on every file and returns one outcome per file, in order.
fn run_go_lister(binary: &Path, files: &[PathBuf]) -> Vec<Outcome> {
    let output = Command::new(binary)
        .args(files)
        .output()
        .expect("failed to run the Go lister");
    assert!(
        output.status.success(),
        "the Go lister failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("Go lister output is not UTF-8");
    let mut outcomes = Vec::new();
    let mut entries = Vec::new();
    for line in stdout.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "layer" => entries.clear(),
            "entry" => entries.push(parse_go_entry(rest)),
            "ok" => outcomes.push(Outcome::Entries(std::mem::take(&mut entries))),
            "error" => outcomes.push(Outcome::Rejected(rest.to_string())),
            _ => panic!("unexpected Go lister line: {line:?}"),
        }
    }
    assert_eq!(outcomes.len(), files.len(), "Go lister output:\n{stdout}");
    outcomes
}

/// Parses `TYPEFLAG MODE SIZE PATH LINK` as `tar_entries.go` prints it.
fn parse_go_entry(fields: &str) -> Entry {
    let parts: Vec<&str> = fields.split(' ').collect();
    let [typeflag, mode, size, path, link] = parts.as_slice() else {
        panic!("invalid Go entry line: {fields:?}");
    };
    let decode = |text: &str| -> Option<String> {
        (text != "-").then(|| escape_name(&hex::decode(text).expect("hex field")))
    };
    Entry {
        path: decode(path).unwrap_or_default(),
        kind: kind_for_go_typeflag(typeflag.parse().expect("type flag")),
        mode: u32::from_str_radix(mode, 8).expect("mode"),
        size: size.parse().expect("size"),
        link: decode(link),
    }
}

async fn walk_outcome(blob: &[u8]) -> Outcome {
    let result = walk_layer(blob, &sha256(blob), None, &WalkLimits::default()).await;
    match result {
        Ok(index) => Outcome::Entries(
            index
                .entries()
                .iter()
                .map(|entry| Entry {
                    path: entry.path(),
                    kind: entry.kind,
                    mode: entry.mode,
                    size: i64::try_from(entry.size).expect("size fits i64"),
                    link: entry.link_target.map(str::to_string),
                })
                .collect(),
        ),
        Err(error) => Outcome::Rejected(error.to_string()),
    }
}

/// Compares both outcomes of one case; returns the problem, if any.
fn judge(case: &Case, go: &Outcome, ours: &Outcome) -> Option<String> {
    let stricter = STRICTER_THAN_GO.iter().any(|(name, _)| *name == case.name);
    let go_expect = match go {
        Outcome::Entries(_) => GoExpect::Reads,
        Outcome::Rejected(_) => GoExpect::Rejects,
    };
    if go_expect != case.expect {
        return Some(format!(
            "the corpus expects Go to {:?} this case, but Go {}",
            case.expect,
            go.summary()
        ));
    }
    match (go, ours) {
        (Outcome::Rejected(_), Outcome::Entries(_)) => {
            Some("the walk reads a layer that Go rejects".to_string())
        }
        (Outcome::Rejected(_), Outcome::Rejected(_)) => None,
        (Outcome::Entries(_), Outcome::Rejected(_)) if stricter => None,
        (Outcome::Entries(_), Outcome::Rejected(_)) => Some(
            "the walk rejects a layer that Go reads; fix the walk or list the case in \
             STRICTER_THAN_GO with the reason"
                .to_string(),
        ),
        (Outcome::Entries(go_entries), Outcome::Entries(our_entries)) => {
            if go_entries != our_entries {
                Some(format!(
                    "entries differ:\n      Go:   {go_entries:?}\n      walk: {our_entries:?}"
                ))
            } else if stricter {
                Some("listed in STRICTER_THAN_GO but the walk now reads it; remove it".into())
            } else {
                None
            }
        }
    }
}

#[tokio::test]
async fn walk_matches_go_archive_tar() {
    let started = Instant::now();
    let cases = corpus::cases();
    assert!(
        cases.len() >= 30,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut names: Vec<&str> = cases.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are not unique");
    for (name, _) in STRICTER_THAN_GO {
        assert!(
            names.contains(name),
            "STRICTER_THAN_GO names unknown case {name}"
        );
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let binary = build_go_lister(dir.path());
    let files: Vec<PathBuf> = cases
        .iter()
        .map(|case| {
            let path = dir.path().join(format!("{}.layer", case.name));
            std::fs::write(&path, &case.blob).expect("write case");
            path
        })
        .collect();
    let go_outcomes = run_go_lister(&binary, &files);

    let mut table = String::new();
    let mut problems = Vec::new();
    for (case, go) in cases.iter().zip(&go_outcomes) {
        let ours = walk_outcome(&case.blob).await;
        let problem = judge(case, go, &ours);
        let verdict = match (&problem, go, &ours) {
            (Some(_), _, _) => "MISMATCH",
            (None, Outcome::Entries(_), Outcome::Rejected(_)) => "stricter",
            (None, _, _) => "agree",
        };
        writeln!(
            table,
            "{:<40} {:<8} Go: {:<45} walk: {}",
            case.name,
            verdict,
            go.summary(),
            ours.summary()
        )
        .expect("write table");
        if let Some(problem) = problem {
            problems.push(format!("{}: {problem}", case.name));
        }
    }
    eprintln!(
        "{table}{} cases in {:.2} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "the walk disagrees with Go's archive/tar:\n{table}\n{}",
        problems.join("\n")
    );
}

#[test]
fn corpus_is_deterministic() {
    let first = corpus::cases();
    let second = corpus::cases();
    for (a, b) in first.iter().zip(&second) {
        assert!(
            a.blob == b.blob,
            "case {} differs between two builds",
            a.name
        );
    }
}
