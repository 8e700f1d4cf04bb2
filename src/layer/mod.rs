//! Reading one layer blob: decompression and a walk over its tar headers.
//!
//! The walk keeps the header of every entry and the bodies of the few small files the checks
//! read. It applies no whiteouts: [`crate::filesystem`] merges layers into the final view.

mod decompress;
mod walk;

pub use decompress::{Compression, decoder_for};
pub use walk::{WalkLimits, walk_layer};

/// The type of a tar entry, as the container runtime would create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// A hard link; `LayerEntry::link_target` names the earlier entry it links to.
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// One entry of a layer tar, after PAX and GNU extensions are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Absolute, normalised path: starts with `/`, no `.` or `..` parts, no trailing `/`.
    /// Whiteout markers keep their `.wh.` file name.
    pub path: String,
    pub kind: EntryKind,
    /// Permission and special bits (`0o7777` mask) from the header.
    pub mode: u32,
    /// Symlink target as written in the tar (may be relative), or the normalised absolute path
    /// of a hard link's target.
    pub link_target: Option<String>,
    pub size: u64,
}

/// All entries of one layer plus the bodies of the small files the checks read.
#[derive(Debug, Clone, Default)]
pub struct LayerIndex {
    /// The layer's digest as given in the manifest, for example `sha256:ab12…`.
    pub digest: String,
    /// Entries in archive order; a later entry with the same path replaces an earlier one.
    pub entries: Vec<LayerEntry>,
    /// Bodies of captured files, by normalised path (the last entry of that path wins).
    pub captured: std::collections::BTreeMap<String, Vec<u8>>,
}

/// File names whose bodies the walk keeps (when at most [`WalkLimits::max_captured_file`]
/// bytes): account databases and OS release files, wherever they are, so that symlinks to
/// them can be followed.
pub const CAPTURED_FILE_NAMES: &[&str] = &["passwd", "group", "os-release"];
