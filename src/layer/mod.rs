//! Reading one layer blob: decompression and a walk over its tar headers.
//!
//! The walk keeps the header of every entry and the bodies of the few small files the checks
//! read. It applies no whiteouts: [`crate::filesystem`] merges layers into the final view.
//!
//! # Paths
//!
//! Entry names are bytes in a tar. They are stored as `String`s in an escaped form that keeps
//! distinct byte names distinct: valid UTF-8 stays as it is, a backslash becomes `\\`, and each
//! byte of an invalid UTF-8 sequence becomes `\xNN` (two lowercase hex digits). `/` and `.` are
//! never escaped, so lexical path operations work on the escaped form unchanged.

mod decompress;
mod inflate;
mod tar_reader;
mod walk;

#[cfg(test)]
mod tests;

pub use decompress::{Compression, decoder_for, sniff_compression};
pub use walk::{LayerError, MAX_EXTENSION_BYTES, WalkLimits, walk_checked_layer, walk_layer};

use hashbrown::HashTable;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// The type of a tar entry, as the container runtime would create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file. Also used for contiguous files (`7`), old GNU sparse files (`S`) and
    /// unknown type flags, so that nothing a tool could extract as a file goes unseen.
    File,
    Directory,
    Symlink,
    /// A hard link; `LayerEntry::link_target` names the earlier entry it links to.
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// One entry of a layer tar, after PAX and GNU extensions are applied, as a view into its
/// [`LayerIndex`].
///
/// The path is kept as its parent directory and file name, because the index stores each
/// directory once. [`LayerEntry::path`] joins them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerEntry<'a> {
    /// The parent directory of the normalised path: absolute, no `.` or `..` parts, no
    /// trailing `/` except for the root itself. Non-UTF-8 bytes are escaped as described in
    /// the module documentation.
    pub dir: &'a str,
    /// The last component of the path. Whiteout markers keep their `.wh.` name. Empty only for
    /// an entry of the root directory itself.
    pub name: &'a str,
    pub kind: EntryKind,
    /// Permission and special bits (`0o7777` mask) from the header.
    pub mode: u32,
    /// Symlink target as written in the tar (may be relative), or the normalised absolute path
    /// of a hard link's target.
    pub link_target: Option<&'a str>,
    /// Size of the file contents in bytes (the expanded size for sparse files).
    pub size: u64,
}

/// A whiteout marker of the OCI layer changeset format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh..wh..opq` in `dir`: hides every child of `dir` that lower layers added.
    Opaque { dir: &'a str },
    /// `.wh.NAME` in `dir`: deletes `dir/NAME` (and its subtree) from lower layers.
    Remove { dir: &'a str, name: &'a str },
}

/// File name prefix of whiteout markers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// File name of the opaque directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

impl<'a> LayerEntry<'a> {
    /// Returns an entry at `path`, a normalised absolute path (see [`normalize_path`]).
    pub fn new(
        path: &'a str,
        kind: EntryKind,
        mode: u32,
        link_target: Option<&'a str>,
        size: u64,
    ) -> Self {
        let (dir, name) = split_parent(path);
        Self {
            dir,
            name,
            kind,
            mode,
            link_target,
            size,
        }
    }

    /// Returns the normalised absolute path of the entry.
    pub fn path(&self) -> String {
        join_child(self.dir, self.name)
    }

    /// Returns the whiteout this entry stands for, or `None` for an ordinary entry. Any entry
    /// type counts: runtimes look only at the file name.
    pub fn whiteout(&self) -> Option<Whiteout<'a>> {
        let dir = self.dir;
        if self.name == OPAQUE_MARKER {
            return Some(Whiteout::Opaque { dir });
        }
        self.name
            .strip_prefix(WHITEOUT_PREFIX)
            .map(|name| Whiteout::Remove { dir, name })
    }
}

/// All entries of one layer plus the bodies of the small files the checks read.
///
/// The index keeps an entry for every file of the layer, so it stores them compactly. Each
/// entry is a fixed record that names its directory by number, and its file name and link
/// target go into one string for the whole layer. A directory's path is stored once, however
/// many entries it holds: a layer has about one directory for ten files, and a file name is
/// about a quarter of a full path. On the toolchain image of `docs/benchmarks.md`, the
/// indexes then take about 40 bytes per entry, against 83 bytes with full paths.
#[derive(Debug, Clone, Default)]
pub struct LayerIndex {
    /// The layer's digest as given in the manifest, for example `sha256:ab12…`.
    pub digest: String,
    /// Entries in archive order; a later entry with the same path replaces an earlier one.
    records: Vec<EntryRecord>,
    /// The parent directories of the entries, each path once, by [`EntryRecord::dir`].
    dirs: Vec<TextRange>,
    /// Directory numbers, found by the hash of the directory's path while entries are added.
    dir_numbers: HashTable<u32>,
    hasher: RandomState,
    /// The directory paths.
    dir_text: String,
    /// The file names and link targets, in the order of `records`. A link target directly
    /// follows its entry's name and ends where the next entry's name starts.
    text: String,
    /// Size and name length of the records whose name length is [`LONG`], by position.
    long: HashMap<u32, LongFields>,
    /// Bodies of captured files, by normalised path (the last entry of that path wins: when
    /// the last entry is not a captured file, the path has no body here).
    pub captured: std::collections::BTreeMap<String, Vec<u8>>,
}

/// A byte range of [`LayerIndex::dir_text`].
#[derive(Debug, Clone, Copy)]
struct TextRange {
    start: u32,
    len: u32,
}

/// [`LayerEntry`] as the index stores it, in 16 bytes. The link target's length is not
/// stored, because the target ends where the next name starts.
#[derive(Debug, Clone, Copy)]
struct EntryRecord {
    /// Offset of the file name in [`LayerIndex::text`].
    name_start: u32,
    /// Position of the parent directory in [`LayerIndex::dirs`].
    dir: u32,
    /// The size, unless `name_len` is [`LONG`].
    size: u32,
    /// The name's length, or [`LONG`] when size and name length are in [`LayerIndex::long`].
    name_len: u16,
    /// The `0o7777` bits of the mode, the kind's number from [`KINDS`] above them, and
    /// [`HAS_LINK`].
    bits: u16,
}

/// [`EntryRecord::name_len`] of a record whose size is 4 GiB or more, or whose name is 64 KiB
/// or longer.
const LONG: u16 = u16::MAX;

/// Mode bits of [`EntryRecord::bits`].
const MODE_BITS: u16 = 0o7777;

/// Position of the kind's number in [`EntryRecord::bits`].
const KIND_SHIFT: u16 = 12;

/// The kinds by their number in [`EntryRecord::bits`].
const KINDS: [EntryKind; 7] = [
    EntryKind::File,
    EntryKind::Directory,
    EntryKind::Symlink,
    EntryKind::HardLink,
    EntryKind::CharDevice,
    EntryKind::BlockDevice,
    EntryKind::Fifo,
];

/// Returns the number of `kind` in [`KINDS`].
fn kind_number(kind: EntryKind) -> u16 {
    match kind {
        EntryKind::File => 0,
        EntryKind::Directory => 1,
        EntryKind::Symlink => 2,
        EntryKind::HardLink => 3,
        EntryKind::CharDevice => 4,
        EntryKind::BlockDevice => 5,
        EntryKind::Fifo => 6,
    }
}

/// Flag of [`EntryRecord::bits`]: the name is followed by a link target.
const HAS_LINK: u16 = 1 << 15;

/// The fields of a [`LONG`] record.
#[derive(Debug, Clone, Copy)]
struct LongFields {
    size: u64,
    name_len: u32,
}

/// Record count at which an index takes no more entries, because positions are 32 bits.
const NO_POSITION: usize = u32::MAX as usize;

/// Largest text of one [`LayerIndex`], because offsets are 32 bits. The walk reports a layer
/// with more as over its index limit.
pub const MAX_INDEX_TEXT: u64 = u32::MAX as u64 - 1;

/// The entries of a [`LayerIndex`], in archive order.
#[derive(Debug, Clone, Copy)]
pub struct Entries<'a> {
    index: &'a LayerIndex,
}

impl<'a> Entries<'a> {
    pub fn len(&self) -> usize {
        self.index.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.records.is_empty()
    }

    pub fn get(&self, position: usize) -> Option<LayerEntry<'a>> {
        let record = self.index.records.get(position)?;
        Some(self.index.view(position, record))
    }

    pub fn first(&self) -> Option<LayerEntry<'a>> {
        self.get(0)
    }

    pub fn iter(self) -> impl DoubleEndedIterator<Item = LayerEntry<'a>> + ExactSizeIterator + 'a {
        let index = self.index;
        index
            .records
            .iter()
            .enumerate()
            .map(move |(position, record)| index.view(position, record))
    }
}

impl LayerIndex {
    /// Returns an empty index for the layer with `digest`.
    pub fn new(digest: &str) -> Self {
        Self {
            digest: digest.to_string(),
            ..Self::default()
        }
    }

    /// Returns an index of `entries`, without digest or captured bodies. Entries whose text
    /// would pass [`MAX_INDEX_TEXT`] are left out.
    pub fn from_entries<'e>(entries: impl IntoIterator<Item = LayerEntry<'e>>) -> Self {
        let mut index = Self::default();
        for entry in entries {
            index.push(entry);
        }
        index
    }

    /// Returns the entries in archive order.
    pub fn entries(&self) -> Entries<'_> {
        Entries { index: self }
    }

    /// Returns the entry of `record`, which is at `position`.
    fn view(&self, position: usize, record: &EntryRecord) -> LayerEntry<'_> {
        let long = (record.name_len == LONG)
            .then(|| self.long.get(&(position as u32)))
            .flatten();
        let (size, name_len) = match long {
            Some(long) => (long.size, long.name_len as usize),
            None => (u64::from(record.size), record.name_len as usize),
        };
        let name_start = record.name_start as usize;
        let name_end = name_start + name_len;
        let link_target = (record.bits & HAS_LINK != 0).then(|| {
            let link_end = self
                .records
                .get(position + 1)
                .map_or(self.text.len(), |next| next.name_start as usize);
            self.text.get(name_end..link_end).unwrap_or_default()
        });
        let dir = self
            .dirs
            .get(record.dir as usize)
            .map_or("/", |&range| range_text(&self.dir_text, range));
        LayerEntry {
            dir,
            name: self.text.get(name_start..name_end).unwrap_or_default(),
            kind: KINDS
                .get(usize::from((record.bits >> KIND_SHIFT) & 0b111))
                .copied()
                .unwrap_or(EntryKind::File),
            mode: u32::from(record.bits & MODE_BITS),
            link_target,
            size,
        }
    }

    /// Returns the number of bytes that `entry` adds to the index's text at most: its
    /// directory is only stored for the first entry in it.
    pub fn text_len(entry: &LayerEntry<'_>) -> u64 {
        (entry.dir.len() + entry.name.len() + entry.link_target.map_or(0, str::len)) as u64
    }

    /// Appends `entry`. Returns `false`, and leaves the index as it was, when the index's text
    /// would exceed [`MAX_INDEX_TEXT`].
    pub fn push(&mut self, entry: LayerEntry<'_>) -> bool {
        let stored = (self.text.len() + self.dir_text.len()) as u64;
        if stored + Self::text_len(&entry) > MAX_INDEX_TEXT || self.records.len() >= NO_POSITION {
            return false;
        }
        // Every offset and length below fits in 32 bits, because both texts do, there are
        // fewer directories than bytes of their paths, and fewer records than NO_POSITION.
        let dir = self.dir_number(entry.dir);
        let name_start = self.text.len() as u32;
        self.text.push_str(entry.name);
        let mut bits = (entry.mode as u16 & MODE_BITS) | kind_number(entry.kind) << KIND_SHIFT;
        if let Some(target) = entry.link_target {
            self.text.push_str(target);
            bits |= HAS_LINK;
        }
        let size = u32::try_from(entry.size).ok();
        let name_len = u16::try_from(entry.name.len())
            .ok()
            .filter(|&len| len != LONG);
        let (size, name_len) = size.zip(name_len).unwrap_or_else(|| {
            let position = self.records.len() as u32;
            let long = LongFields {
                size: entry.size,
                name_len: entry.name.len() as u32,
            };
            self.long.insert(position, long);
            (0, LONG)
        });
        self.records.push(EntryRecord {
            name_start,
            dir,
            size,
            name_len,
            bits,
        });
        true
    }

    /// Returns the number of directory `dir`, storing it first if it is new. Entries come
    /// grouped by directory in most tars, so the last directory is tried before the table.
    fn dir_number(&mut self, dir: &str) -> u32 {
        let Self {
            dirs,
            dir_numbers,
            hasher,
            dir_text,
            ..
        } = self;
        let last = dirs.len().wrapping_sub(1);
        if dirs
            .get(last)
            .is_some_and(|&range| range_text(dir_text, range) == dir)
        {
            return last as u32;
        }

        let hash = hasher.hash_one(dir);
        let path_of = |number: u32| range_text(dir_text, dirs[number as usize]);
        if let Some(&number) = dir_numbers.find(hash, |&number| path_of(number) == dir) {
            return number;
        }

        let number = dirs.len() as u32;
        dirs.push(TextRange {
            start: dir_text.len() as u32,
            len: dir.len() as u32,
        });
        dir_text.push_str(dir);
        let hash_of = |&number: &u32| hasher.hash_one(range_text(dir_text, dirs[number as usize]));
        dir_numbers.insert_unique(hash, number, hash_of);
        number
    }

    /// Releases the spare capacity of the index, which lives until the checks have run.
    pub fn shrink_to_fit(&mut self) {
        self.records.shrink_to_fit();
        self.dirs.shrink_to_fit();
        self.dir_text.shrink_to_fit();
        self.text.shrink_to_fit();
        self.long.shrink_to_fit();
    }
}

// A `TextRange` is only made for text already stored, so the range is always in bounds.
fn range_text(text: &str, range: TextRange) -> &str {
    let start = range.start as usize;
    text.get(start..start + range.len as usize)
        .unwrap_or_default()
}

/// File names whose bodies the walk keeps (when at most [`WalkLimits::max_captured_file`]
/// bytes): account databases and OS release files, wherever they are, so that symlinks to
/// them can be followed.
pub const CAPTURED_FILE_NAMES: &[&str] = &["passwd", "group", "os-release"];

/// Escapes raw name bytes into a `String` as described in the module documentation. The
/// mapping is injective, so two different byte names never compare equal.
pub fn escape_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Normalises a path lexically, as Go's `filepath.Clean` does on a name joined to the root.
/// Empty and `.` parts are dropped and `..` removes the previous part (stopping at the root).
/// The result is absolute, without a trailing `/`, and the root is `/`.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    join_absolute(&parts)
}

/// Joins path parts into an absolute path (`/` for none).
pub(crate) fn join_absolute(parts: &[&str]) -> String {
    if parts.is_empty() {
        return "/".to_string();
    }
    // Sized up front: a path grown by pushes keeps up to twice its length, and the index
    // keeps a path for every entry.
    let mut out = String::with_capacity(parts.iter().map(|part| part.len() + 1).sum());
    for part in parts {
        out.push('/');
        out.push_str(part);
    }
    out
}

/// Joins a normalised directory path and a file name. An empty name gives the directory.
pub fn join_child(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_string()
    } else if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Splits a normalised absolute path into its parent directory and file name. The root
/// splits into (`/`, ``).
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", path.get(1..).unwrap_or_default()),
        Some(index) => (
            path.get(..index).unwrap_or("/"),
            path.get(index + 1..).unwrap_or_default(),
        ),
        None => ("/", path),
    }
}
