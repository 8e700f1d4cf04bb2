//! Streaming walk over the tar headers of one layer blob.
//!
//! The pipeline is: blob -> SHA-256 of the compressed bytes -> decompression (detected from the
//! magic bytes) -> SHA-256 of the uncompressed bytes -> tar headers. Entry bodies are skipped
//! without buffering, except captured files. After the tar ends, both streams are read to EOF so
//! that the two digests cover every byte, as containerd does before it trusts a layer.
//!
//! The headers are read by [`super::tar_reader`], which follows Go's `archive/tar` (which
//! containerd, moby and podman use), so the walk lists the entries that the runtime extracts.
//! Where tar readers disagree on an archive, the walk rejects the layer instead of guessing
//! which view the runtime gets.
//!
//! NOTE: the walk also rejects some layers that Go reads and runtimes would run. They are
//! header-only entries (directories, links, devices, fifos) that declare data, the ambiguous
//! extension headers listed in [`super::tar_reader`], archives that end inside the padding
//! after the last entry, sparse captured files, and paths over [`WalkLimits::max_path_len`].
//! `tests/tar_differential.rs` lists these cases against Go.

use super::decompress::{Compression, decoder_for, sniff_compression};
use super::tar_reader::{MAX_SPECIAL_FILE_SIZE, TarEntry, TarReadError, TarReader};
use super::{
    CAPTURED_FILE_NAMES, EntryKind, LayerEntry, LayerIndex, escape_name, normalize_path,
    split_parent,
};
use crate::digest::{DigestError, HashingReader, Sha256Digest};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Maximum size of one tar extension body: PAX records, a GNU long name or long link, or a PAX
/// sparse map. Go's `archive/tar` rejects larger PAX and GNU long-name bodies
/// (`maxSpecialFileSize`, 1 MiB), so container runtimes reject such layers too.
pub const MAX_EXTENSION_BYTES: u64 = MAX_SPECIAL_FILE_SIZE;

/// Bounds on what one layer walk keeps in memory.
#[derive(Debug, Clone)]
pub struct WalkLimits {
    /// Maximum size of a captured file body, in bytes. A larger captured file is an error.
    pub max_captured_file: u64,
    /// Maximum number of entries in one layer.
    pub max_entries: usize,
    /// Maximum length of a normalised entry path or link target, in bytes of the escaped form
    /// (an invalid UTF-8 byte counts as 4). Linux rejects paths of 4096 bytes or more
    /// (`PATH_MAX`).
    pub max_path_len: usize,
    /// Maximum total size of the captured bodies of one layer, in bytes.
    pub max_captured_total: u64,
    /// Maximum memory of one layer index, in bytes: paths, link targets and an estimated 64
    /// bytes per entry for the rest of the record. Whatever this limit, the paths and link
    /// targets of one layer cannot pass 4 GiB ([`super::MAX_INDEX_TEXT`]).
    pub max_index_bytes: u64,
    /// Maximum size of one layer once decompressed, in bytes. Memory stays flat whatever the
    /// size, but a small blob can inflate to terabytes (a decompression bomb), and this bounds
    /// the time spent on it.
    pub max_unpacked_size: u64,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self {
            max_captured_file: 1 << 20,
            max_entries: 2_000_000,
            max_path_len: 4096,
            max_captured_total: 64 << 20,
            max_index_bytes: 512 << 20,
            max_unpacked_size: DEFAULT_MAX_UNPACKED_SIZE,
        }
    }
}

/// Default of [`WalkLimits::max_unpacked_size`]: 64 GiB, above any layer that a registry
/// would reasonably serve.
pub const DEFAULT_MAX_UNPACKED_SIZE: u64 = 64 << 30;

/// Estimated fixed cost of one stored entry, for [`WalkLimits::max_index_bytes`].
const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// Error from reading one layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The manifest's layer digest cannot be verified.
    #[error("invalid layer digest in the manifest: {0}")]
    InvalidDigest(#[source] DigestError),

    /// The config's diff_id for this layer cannot be verified.
    #[error("invalid diff_id in the image config: {0}")]
    InvalidDiffId(#[source] DigestError),

    /// The blob does not hash to the manifest's digest.
    #[error(
        "layer blob digest mismatch: the manifest expects {expected}, the {bytes} bytes read \
         hash to {actual}; the blob is corrupt or was altered, so pull it again or rebuild the \
         image"
    )]
    DigestMismatch {
        expected: String,
        actual: String,
        bytes: u64,
    },

    /// The decompressed layer does not hash to the config's diff_id.
    #[error(
        "layer diff_id mismatch: the image config expects {expected}, the {bytes} uncompressed \
         bytes hash to {actual}; container runtimes reject this layer, so rebuild the image"
    )]
    DiffIdMismatch {
        expected: String,
        actual: String,
        bytes: u64,
    },

    /// Reading the blob itself failed (network, file or registry error).
    #[error("failed to read the layer blob: {0}")]
    Read(#[source] io::Error),

    /// The blob is not a valid stream of its detected compression.
    #[error("failed to decompress the {compression:?} layer blob: {source}; the blob is corrupt")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },

    /// The uncompressed layer is not a valid tar archive (for example, truncated inside an
    /// entry header or body).
    #[error("invalid tar archive near byte {offset} of the uncompressed layer: {source}")]
    Tar {
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// The bytes after the first end-of-archive block are not what Go's `archive/tar` accepts.
    #[error("invalid tar archive end at byte {offset} of the uncompressed layer: {reason}")]
    TarEnd { offset: u64, reason: &'static str },

    /// The decompressed layer is larger than [`WalkLimits::max_unpacked_size`].
    #[error(
        "the layer decompresses to more than {limit} bytes, the limit set by \
         --max-unpacked-layer-size (COMPLIANCE_MAX_UNPACKED_LAYER_SIZE); the blob may be a \
         decompression bomb, or raise the limit if the layer is genuine"
    )]
    UnpackedTooLarge { limit: u64 },

    /// One extension body (PAX records, a GNU long name or a sparse map) exceeds
    /// [`MAX_EXTENSION_BYTES`].
    #[error(
        "the tar extension header (PAX records, GNU long name or sparse map) at byte {offset} \
         of the uncompressed layer exceeds {limit} bytes; container runtimes reject such layers"
    )]
    ExtensionTooLarge { offset: u64, limit: u64 },

    /// The layer has more entries than [`WalkLimits::max_entries`].
    #[error(
        "the layer has more than {limit} tar entries; raise WalkLimits::max_entries to scan it"
    )]
    TooManyEntries { limit: usize },

    /// The index of the layer would exceed [`WalkLimits::max_index_bytes`].
    #[error(
        "the layer's entry paths take more than {limit} bytes of memory; raise \
         WalkLimits::max_index_bytes to scan it"
    )]
    IndexTooLarge { limit: u64 },

    /// An entry path is longer than [`WalkLimits::max_path_len`].
    #[error(
        "tar entry path {path:?} is {len} bytes, over the limit of {limit} bytes \
         (WalkLimits::max_path_len)"
    )]
    PathTooLong {
        path: String,
        len: usize,
        limit: usize,
    },

    /// A link target is longer than [`WalkLimits::max_path_len`].
    #[error(
        "link target of tar entry {path:?} is {len} bytes, over the limit of {limit} bytes \
         (WalkLimits::max_path_len)"
    )]
    LinkTargetTooLong {
        path: String,
        len: usize,
        limit: usize,
    },

    /// An entry name or link target contains a NUL byte. Go's `archive/tar` rejects it in PAX
    /// `path` and `linkpath` records, and the kernel rejects it in any path it creates.
    #[error("tar entry {path:?} has a NUL byte in its {field}; container runtimes reject it")]
    NulInName { path: String, field: &'static str },

    /// A header field could not be parsed.
    #[error("tar entry {path:?} has an invalid {field} field; container runtimes reject it")]
    InvalidHeader { path: String, field: &'static str },

    /// A header-only entry type (directory, link, device, fifo) declares a data size.
    /// Go's `archive/tar` reads no data for these types, but other tar readers (the Rust `tar`
    /// crate, for one) skip `size` bytes, so the entries after it depend on the reader.
    #[error(
        "tar entry {path:?} of type {kind:?} declares {size} bytes of data, which container \
         runtimes do not read for this type; the archive is ambiguous, so rebuild the layer"
    )]
    HeaderOnlyEntryWithData {
        path: String,
        kind: EntryKind,
        size: u64,
    },

    /// A captured file (see [`super::CAPTURED_FILE_NAMES`]) is larger than
    /// [`WalkLimits::max_captured_file`].
    #[error(
        "captured file {path:?} is {size} bytes, over the limit of {limit} bytes; raise \
         WalkLimits::max_captured_file to scan it"
    )]
    CapturedFileTooLarge { path: String, size: u64, limit: u64 },

    /// The captured bodies of the layer exceed [`WalkLimits::max_captured_total`].
    #[error(
        "captured files of the layer exceed {limit} bytes in total (at {path:?}); raise \
         WalkLimits::max_captured_total to scan it"
    )]
    CapturedTotalTooLarge { path: String, limit: u64 },

    /// A captured file is stored as a sparse file (old GNU or PAX format), whose body the walk
    /// does not expand.
    #[error(
        "captured file {path:?} is stored as a sparse tar entry, which the scanner cannot read; \
         rebuild the layer without sparse files"
    )]
    SparseCapturedFile { path: String },

    /// The archive has extension headers that no tar writer emits for one entry (for
    /// example, two PAX headers), and that Go's `archive/tar` resolves by a rule of its own.
    #[error(
        "ambiguous tar archive at byte {offset} of the uncompressed layer: {reason}; no tar \
         writer produces this, so rebuild the layer"
    )]
    Ambiguous { offset: u64, reason: &'static str },
}

impl LayerError {
    /// Tells whether the error comes from a walk limit or a failed read rather than from damaged
    /// data, in which case reading the rest of the blob to check its digest is pointless.
    fn skips_digest_check(&self) -> bool {
        matches!(
            self,
            LayerError::TooManyEntries { .. }
                | LayerError::IndexTooLarge { .. }
                | LayerError::PathTooLong { .. }
                | LayerError::LinkTargetTooLong { .. }
                | LayerError::CapturedFileTooLarge { .. }
                | LayerError::CapturedTotalTooLarge { .. }
                | LayerError::ExtensionTooLarge { .. }
                | LayerError::UnpackedTooLarge { .. }
                | LayerError::Read(_)
        )
    }
}

/// Reads a layer blob: verifies its digest, decompresses it and walks its tar headers.
///
/// `digest` is the manifest's `sha256:<hex>` digest of the blob; `diff_id`, when given, is the
/// config's digest of the uncompressed tar. Both are checked over every byte of the stream,
/// including any data after the tar's end. A digest mismatch takes precedence over a
/// decompression or tar error, because a damaged blob explains both.
pub async fn walk_layer(
    blob: impl AsyncRead + Unpin + Send,
    digest: &str,
    diff_id: Option<&str>,
    limits: &WalkLimits,
) -> Result<LayerIndex, LayerError> {
    walk_blob(blob, digest, diff_id, limits, BlobCheck::Walk).await
}

/// Reads a layer blob as [`walk_layer`] does, for a blob whose reader checks the manifest's
/// digest itself and fails its last read on a mismatch, as registry blob streams do. The walk
/// then does not hash the blob a second time. It still rejects a digest that is not SHA-256,
/// and still checks the diff_id. For an uncompressed blob the diff_id is compared with
/// `digest`, which holds only because the reader enforces it.
pub async fn walk_checked_layer(
    blob: impl AsyncRead + Unpin + Send,
    digest: &str,
    diff_id: Option<&str>,
    limits: &WalkLimits,
) -> Result<LayerIndex, LayerError> {
    walk_blob(blob, digest, diff_id, limits, BlobCheck::Reader).await
}

/// The component that checks the digest of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobCheck {
    /// The walk hashes the blob.
    Walk,
    /// The blob's reader fails on a mismatch, so the walk only counts its bytes.
    Reader,
}

async fn walk_blob(
    blob: impl AsyncRead + Unpin + Send,
    digest: &str,
    diff_id: Option<&str>,
    limits: &WalkLimits,
    check: BlobCheck,
) -> Result<LayerIndex, LayerError> {
    let expected = Sha256Digest::parse(digest).map_err(LayerError::InvalidDigest)?;
    let expected_diff_id = diff_id
        .map(Sha256Digest::parse)
        .transpose()
        .map_err(LayerError::InvalidDiffId)?;

    let blob = TagErrors::new(blob, StreamStage::Blob);
    let mut compressed = match check {
        // The blob's hash stays on the reading thread. For gzip, the common case, inflating
        // runs on a thread of its own, so the reading thread has time to spare.
        BlobCheck::Walk => HashingReader::inline(blob),
        BlobCheck::Reader => HashingReader::counting(blob),
    };
    let walked = read_uncompressed(&mut compressed, digest, limits).await;
    if let Err(error) = &walked
        && error.skips_digest_check()
    {
        return walked.map(|(index, _, _)| index);
    }

    let drained = tokio::io::copy(&mut compressed, &mut tokio::io::sink()).await;
    let blob_digest = match check {
        BlobCheck::Walk => {
            let actual = compressed.digest().await.map_err(LayerError::Read)?;
            if drained.is_ok() && actual != expected {
                return Err(LayerError::DigestMismatch {
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                    bytes: compressed.bytes_read(),
                });
            }
            actual
        }
        // The reader fails its last read on a mismatch, so a blob read to the end has the
        // manifest's digest.
        BlobCheck::Reader => expected,
    };
    let (index, uncompressed_digest, uncompressed_bytes) = walked?;
    drained.map_err(LayerError::Read)?;
    let uncompressed_digest = uncompressed_digest.unwrap_or(blob_digest);

    if let Some(expected_diff_id) = expected_diff_id
        && uncompressed_digest != expected_diff_id
    {
        return Err(LayerError::DiffIdMismatch {
            expected: expected_diff_id.to_string(),
            actual: uncompressed_digest.to_string(),
            bytes: uncompressed_bytes,
        });
    }
    Ok(index)
}

/// Decompresses the blob, walks the tar and reads the uncompressed stream to EOF. Returns the
/// index with the digest and length of the uncompressed stream. The digest is `None` for an
/// uncompressed blob, whose tar is the blob itself and has the blob's digest.
async fn read_uncompressed<R: AsyncRead + Unpin + Send>(
    compressed: &mut R,
    digest: &str,
    limits: &WalkLimits,
) -> Result<(LayerIndex, Option<Sha256Digest>, u64), LayerError> {
    let (compression, prefixed) = sniff_compression(&mut *compressed)
        .await
        .map_err(LayerError::Read)?;
    let decoder = decoder_for(compression, prefixed);
    let decoder = TagErrors::new(decoder, StreamStage::Decompress);
    let decoder = SizeCap::new(decoder, limits.max_unpacked_size);
    // Gzip is inflated on a thread of its own, so the tar's hash fits on the reading thread.
    // Zstd is decoded on the reading thread, so the tar's hash moves to a thread of its own. A
    // plain tar is the blob, whose digest the caller has.
    let mut uncompressed = match compression {
        Compression::Gzip => HashingReader::inline(decoder),
        Compression::Zstd => HashingReader::new(decoder),
        Compression::None => HashingReader::counting(decoder),
    };
    let mut reader = TarReader::new(&mut uncompressed);
    let errors = ErrorContext {
        compression,
        limit: limits.max_unpacked_size,
    };

    let mut index = LayerIndex::new(digest);
    walk_tar(&mut reader, limits, &mut index, &errors).await?;
    index.shrink_to_fit();
    let drained = reader.drain().await;
    drained.map_err(|e| errors.convert(e, reader.position()))?;
    drop(reader);
    let uncompressed_digest = match compression {
        Compression::None => None,
        Compression::Gzip | Compression::Zstd => {
            Some(uncompressed.digest().await.map_err(LayerError::Read)?)
        }
    };
    Ok((index, uncompressed_digest, uncompressed.bytes_read()))
}

/// Walks every tar entry, recording headers and captured bodies into `index`.
async fn walk_tar<R: AsyncRead + Unpin>(
    reader: &mut TarReader<R>,
    limits: &WalkLimits,
    index: &mut LayerIndex,
    errors: &ErrorContext,
) -> Result<(), LayerError> {
    let mut totals = Totals::default();
    loop {
        let next = reader.next_entry().await;
        let Some(entry) = next.map_err(|e| errors.convert(e, reader.position()))? else {
            return Ok(());
        };
        totals.count_entry(limits)?;
        let Some(read) = read_entry(&entry, limits)? else {
            continue;
        };
        let capture = Capture {
            limits,
            errors,
            sparse: entry.sparse,
        };
        capture.keep_body(reader, &read, index, &mut totals).await?;
        let layer_entry = read.view();
        totals.add_index_bytes(&layer_entry, limits)?;
        if !index.push(layer_entry) {
            return Err(LayerError::IndexTooLarge {
                limit: limits.max_index_bytes,
            });
        }
    }
}

/// Running counts checked against [`WalkLimits`].
#[derive(Default)]
struct Totals {
    entries: usize,
    index_bytes: u64,
    captured_bytes: u64,
}

impl Totals {
    fn count_entry(&mut self, limits: &WalkLimits) -> Result<(), LayerError> {
        self.entries += 1;
        if self.entries > limits.max_entries {
            return Err(LayerError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        Ok(())
    }

    fn add_index_bytes(
        &mut self,
        entry: &LayerEntry<'_>,
        limits: &WalkLimits,
    ) -> Result<(), LayerError> {
        let cost = LayerIndex::text_len(entry) + ENTRY_OVERHEAD_BYTES;
        self.index_bytes = self.index_bytes.saturating_add(cost);
        if self.index_bytes > limits.max_index_bytes {
            return Err(LayerError::IndexTooLarge {
                limit: limits.max_index_bytes,
            });
        }
        Ok(())
    }
}

/// A [`LayerEntry`] read from the tar, before the index stores it.
struct ReadEntry {
    path: String,
    kind: EntryKind,
    mode: u32,
    link_target: Option<String>,
    size: u64,
}

impl ReadEntry {
    fn view(&self) -> LayerEntry<'_> {
        LayerEntry::new(
            &self.path,
            self.kind,
            self.mode,
            self.link_target.as_deref(),
            self.size,
        )
    }
}

/// Converts one tar entry into a [`ReadEntry`], or `None` for entries that runtimes skip
/// (global PAX headers).
fn read_entry(entry: &TarEntry, limits: &WalkLimits) -> Result<Option<ReadEntry>, LayerError> {
    if entry.typeflag == b'g' {
        // Go's archive/tar returns global PAX headers as entries without applying them to
        // later ones, and containerd and moby skip them.
        return Ok(None);
    }
    let kind = kind_for(entry.typeflag);
    let path = checked_path(&entry.name, limits)?;
    if kind != EntryKind::File && entry.size != 0 {
        let Ok(size) = u64::try_from(entry.size) else {
            return Err(LayerError::InvalidHeader {
                path,
                field: "size",
            });
        };
        return Err(LayerError::HeaderOnlyEntryWithData { path, kind, size });
    }
    // Go keeps the mode as a signed number; the low bits are the same in two's complement.
    let mode = (entry.mode as u64 & 0o7777) as u32;
    let link_target = read_link_target(&entry.linkname, kind, &path, limits)?;
    // The reader rejects negative sizes of files, and other kinds have size 0 here.
    let size = u64::try_from(entry.size).unwrap_or(0);
    Ok(Some(ReadEntry {
        path,
        kind,
        mode,
        link_target,
        size,
    }))
}

/// Maps a tar type flag to the kind of file the runtime creates. The reader has already
/// turned the old `\0` type into `0` or `5`, as Go's `archive/tar` does.
///
/// Contiguous (`7`), old GNU sparse (`S`) and unknown types become files: containerd and
/// moby reject those types, but other tools extract them as files, and a scanner must not
/// drop what some runtime could create.
fn kind_for(typeflag: u8) -> EntryKind {
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

/// Escapes and normalises an entry name, rejecting NUL bytes and over-long paths.
///
/// Header fields and GNU long names end at their first NUL, and Go rejects a NUL in a PAX
/// `path` record, so a NUL can only come from a `GNU.sparse.name` record. Go accepts it, but
/// the kernel rejects such a path when the runtime creates the file.
fn checked_path(name: &[u8], limits: &WalkLimits) -> Result<String, LayerError> {
    let path = normalize_path(&escape_name(name));
    if name.contains(&0) {
        return Err(LayerError::NulInName {
            path,
            field: "name",
        });
    }
    if path.len() > limits.max_path_len {
        let len = path.len();
        return Err(LayerError::PathTooLong {
            path: truncate_for_message(&path),
            len,
            limit: limits.max_path_len,
        });
    }
    Ok(path)
}

/// Returns the link target of a symlink (kept as written) or hard link (normalised to an
/// absolute path, because runtimes resolve it against the image root).
fn read_link_target(
    raw: &[u8],
    kind: EntryKind,
    path: &str,
    limits: &WalkLimits,
) -> Result<Option<String>, LayerError> {
    if !matches!(kind, EntryKind::Symlink | EntryKind::HardLink) {
        return Ok(None);
    }
    let escaped = escape_name(raw);
    let target = if kind == EntryKind::HardLink {
        normalize_path(&escaped)
    } else {
        escaped
    };
    if target.len() > limits.max_path_len {
        return Err(LayerError::LinkTargetTooLong {
            path: path.to_string(),
            len: target.len(),
            limit: limits.max_path_len,
        });
    }
    Ok(Some(target))
}

/// Shortens a path for an error message; the full value could be megabytes.
fn truncate_for_message(path: &str) -> String {
    const SHOWN: usize = 200;
    match path.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", path.get(..cut).unwrap_or_default()),
        None => path.to_string(),
    }
}

/// Settings for keeping the body of one entry.
struct Capture<'a> {
    limits: &'a WalkLimits,
    errors: &'a ErrorContext,
    /// Whether the entry is a sparse file, whose stored data is not its contents.
    sparse: bool,
}

impl Capture<'_> {
    /// Keeps the body of a captured file, or drops an earlier body at the same path when
    /// this entry replaces it with something that is not captured.
    async fn keep_body<R: AsyncRead + Unpin>(
        &self,
        reader: &mut TarReader<R>,
        read: &ReadEntry,
        index: &mut LayerIndex,
        totals: &mut Totals,
    ) -> Result<(), LayerError> {
        let path = read.path.as_str();
        if let Some(old) = index.captured.remove(path) {
            totals.captured_bytes = totals.captured_bytes.saturating_sub(old.len() as u64);
        }
        let (_, file_name) = split_parent(path);
        if read.kind != EntryKind::File || !CAPTURED_FILE_NAMES.contains(&file_name) {
            return Ok(());
        }
        let size = self.check_size(path, read.size, totals)?;
        let body = reader.read_data(size).await;
        let body = body.map_err(|e| self.errors.convert(e, reader.position()))?;
        index.captured.insert(path.to_string(), body);
        Ok(())
    }

    /// Checks a captured body against the limits and adds it to the layer's total.
    fn check_size(&self, path: &str, size: u64, totals: &mut Totals) -> Result<u64, LayerError> {
        let limits = self.limits;
        if self.sparse {
            return Err(LayerError::SparseCapturedFile {
                path: path.to_string(),
            });
        }
        if size > limits.max_captured_file {
            let limit = limits.max_captured_file;
            return Err(LayerError::CapturedFileTooLarge {
                path: path.to_string(),
                size,
                limit,
            });
        }
        totals.captured_bytes = totals.captured_bytes.saturating_add(size);
        if totals.captured_bytes > limits.max_captured_total {
            let limit = limits.max_captured_total;
            return Err(LayerError::CapturedTotalTooLarge {
                path: path.to_string(),
                limit,
            });
        }
        Ok(size)
    }
}

// Stream plumbing: error tagging below the tar reader.

/// Stream that an I/O error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamStage {
    Blob,
    Decompress,
    /// The decompressed stream passed [`WalkLimits::max_unpacked_size`].
    SizeCap,
}

/// An I/O error tagged with its stream, so that errors surfacing through the tar reader can
/// be distinguished from tar format errors.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
struct StreamError {
    stage: StreamStage,
    source: io::Error,
}

/// Tags every error of `inner` with `stage`, keeping errors already tagged further down.
struct TagErrors<R> {
    inner: R,
    stage: StreamStage,
}

impl<R> TagErrors<R> {
    fn new(inner: R, stage: StreamStage) -> Self {
        Self { inner, stage }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TagErrors<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Err(error)) if stream_stage(&error).is_none() => {
                let kind = error.kind();
                Poll::Ready(Err(io::Error::new(
                    kind,
                    StreamError {
                        stage: this.stage,
                        source: error,
                    },
                )))
            }
            other => other,
        }
    }
}

/// Fails the read that would take the stream past `limit` bytes.
struct SizeCap<R> {
    inner: R,
    remaining: u64,
}

impl<R> SizeCap<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SizeCap<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > this.remaining {
            let error = StreamError {
                stage: StreamStage::SizeCap,
                source: io::Error::other("decompressed size limit reached"),
            };
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::FileTooLarge, error)));
        }
        this.remaining -= read;
        polled
    }
}

fn stream_stage(error: &io::Error) -> Option<StreamStage> {
    error
        .get_ref()?
        .downcast_ref::<StreamError>()
        .map(|e| e.stage)
}

/// What [`ErrorContext::convert`] needs to turn a tar reader error into a [`LayerError`].
struct ErrorContext {
    compression: Compression,
    /// [`WalkLimits::max_unpacked_size`], for the error that reports it.
    limit: u64,
}

impl ErrorContext {
    /// Converts `error`; `position` is the reader's offset in the uncompressed stream, for
    /// stream errors.
    fn convert(&self, error: TarReadError, position: u64) -> LayerError {
        match error {
            TarReadError::Stream(error) => match stream_stage(&error) {
                Some(StreamStage::Blob) => LayerError::Read(error),
                Some(StreamStage::Decompress) => LayerError::Decompress {
                    compression: self.compression,
                    source: error,
                },
                Some(StreamStage::SizeCap) => LayerError::UnpackedTooLarge { limit: self.limit },
                None => LayerError::Tar {
                    offset: position,
                    source: error,
                },
            },
            TarReadError::Invalid { offset, message } => LayerError::Tar {
                offset,
                source: io::Error::new(io::ErrorKind::InvalidData, message),
            },
            TarReadError::Truncated { offset } => LayerError::Tar {
                offset,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends inside a tar header or entry data",
                ),
            },
            TarReadError::End { offset, reason } => LayerError::TarEnd { offset, reason },
            TarReadError::ExtensionTooLarge { offset } => LayerError::ExtensionTooLarge {
                offset,
                limit: MAX_EXTENSION_BYTES,
            },
            TarReadError::NulInPaxRecord { field, value } => LayerError::NulInName {
                path: truncate_for_message(&escape_name(&value)),
                field,
            },
            TarReadError::Ambiguous { offset, reason } => LayerError::Ambiguous { offset, reason },
        }
    }
}
