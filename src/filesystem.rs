//! The final filesystem of an image: layers merged in order, with whiteouts, opaque
//! directories and hard links applied as container runtimes apply them.
// Owned by the layer helper; stub until then.

use crate::layer::{EntryKind, LayerIndex};

/// An entry of the final filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalEntry {
    /// Index of the layer that provides the entry.
    pub layer: usize,
    /// For a hard link: the kind of the file it links to.
    pub kind: EntryKind,
    /// For a hard link: the mode of the file it links to.
    pub mode: u32,
    pub link_target: Option<String>,
}

/// The merged view of all layers.
#[derive(Debug, Default)]
pub struct FinalFs {}

impl FinalFs {
    /// Merges `layers` (lowest first).
    pub fn build(layers: &[LayerIndex]) -> Self {
        let _ = layers;
        FinalFs {}
    }

    /// Returns the entry at `path` without following symlinks.
    pub fn entry(&self, path: &str) -> Option<&FinalEntry> {
        let _ = path;
        None
    }

    /// Follows symlinks in every component of `path`, staying inside the image root.
    /// Returns the resolved absolute path, or `None` when a link loops or dangles.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let _ = path;
        None
    }

    /// Returns the captured body of the file at `path`, following symlinks.
    pub fn read_file(&self, path: &str) -> Option<&[u8]> {
        let _ = path;
        None
    }

    /// Tells whether the entry at `path` that layer `layer` added is still what the final
    /// filesystem has at `path` (not deleted, replaced or hidden by a later layer).
    pub fn is_present(&self, layer: usize, path: &str) -> bool {
        let _ = (layer, path);
        false
    }
}

/// Returns the kind and mode a layer entry has once extracted: for a hard link, those of the
/// file it links to (looked up in the same layer first, then in the lower layers).
pub fn effective_kind_and_mode(
    layers: &[LayerIndex],
    layer: usize,
    entry_index: usize,
) -> (EntryKind, u32) {
    let entry = &layers[layer].entries[entry_index];
    (entry.kind, entry.mode)
}
