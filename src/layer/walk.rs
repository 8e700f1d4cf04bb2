//! Streaming walk over the tar headers of one layer blob.
//!
//! The pipeline is: blob -> SHA-256 of the compressed bytes -> decompression (detected from the
//! magic bytes) -> SHA-256 of the uncompressed bytes -> tar headers. Entry bodies are skipped
//! without buffering, except captured files. After the tar ends, both streams are read to EOF so
//! that the two digests cover every byte, as containerd does before it trusts a layer.
//!
//! Where `tokio_tar` and Go's `archive/tar` (which containerd, moby and podman use) would read
//! the same bytes differently, the walk rejects the layer instead of guessing which view the
//! runtime gets.
//!
//! NOTE: `tokio_tar` is also stricter than Go in places that cannot hide entries: it rejects
//! headers with a signed checksum, an empty size field or a `ustar\0` magic with a NUL
//! version, which Go accepts. Such layers fail the scan although runtimes would run them.

use super::decompress::{Compression, decoder_for, sniff_compression};
use super::{
    CAPTURED_FILE_NAMES, EntryKind, LayerEntry, LayerIndex, escape_name, normalize_path,
    split_parent,
};
use crate::digest::{DigestError, HashingReader, Sha256Digest};
use futures_util::StreamExt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Size of a tar header block.
const BLOCK_SIZE: u64 = 512;

/// Maximum bytes of tar extension data (PAX records, GNU long names and long link names, old
/// GNU sparse maps, with their headers) allowed between two entries.
///
/// `tokio_tar` reads extension bodies into memory without a bound, so the walk caps the bytes
/// the tar reader may pull in before it yields the next entry. Go's `archive/tar` rejects any
/// single PAX, GNU long-name or long-link body over 1 MiB (`maxSpecialFileSize`), and
/// `tokio_tar` allows at most one of each before an entry, so layers that runtimes accept fit
/// well within 4 MiB.
pub const MAX_EXTENSION_BYTES: u64 = 4 << 20;

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
    /// bytes per entry for the rest of the record.
    pub max_index_bytes: u64,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self {
            max_captured_file: 1 << 20,
            max_entries: 2_000_000,
            max_path_len: 4096,
            max_captured_total: 64 << 20,
            max_index_bytes: 512 << 20,
        }
    }
}

/// Source of [`LayerIndex::walk_id`]; 0 is left for indexes built by hand.
static NEXT_WALK_ID: AtomicU64 = AtomicU64::new(1);

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

    /// Extension headers before one entry exceed [`MAX_EXTENSION_BYTES`].
    #[error(
        "tar extension headers (PAX or GNU long names) before the entry at byte {offset} of the \
         uncompressed layer exceed {limit} bytes; container runtimes reject such layers"
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

    /// An entry name or link target contains a NUL byte, which Go's `archive/tar` rejects.
    #[error("tar entry {path:?} has a NUL byte in its {field}; container runtimes reject it")]
    NulInName { path: String, field: &'static str },

    /// A header field could not be parsed.
    #[error("tar entry {path:?} has an invalid {field} field; container runtimes reject it")]
    InvalidHeader { path: String, field: &'static str },

    /// A header-only entry type (directory, link, device, fifo) declares a data size.
    /// Go's `archive/tar` reads no data for these types but `tokio_tar` would skip `size`
    /// bytes, so the two would see different entries after it.
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

    /// A captured file is stored in a PAX sparse format, whose body the walk cannot expand.
    #[error(
        "captured file {path:?} is stored as a PAX sparse file, which the scanner cannot read; \
         rebuild the layer without sparse files"
    )]
    SparseCapturedFile { path: String },
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
    let expected = Sha256Digest::parse(digest).map_err(LayerError::InvalidDigest)?;
    let expected_diff_id = diff_id
        .map(Sha256Digest::parse)
        .transpose()
        .map_err(LayerError::InvalidDiffId)?;

    let mut compressed = HashingReader::new(TagErrors::new(blob, StreamStage::Blob));
    let walked = read_uncompressed(&mut compressed, digest, limits).await;
    if let Err(error) = &walked
        && error.skips_digest_check()
    {
        return walked.map(|(index, _, _)| index);
    }

    let drained = tokio::io::copy(&mut compressed, &mut tokio::io::sink()).await;
    let actual = compressed.digest();
    if drained.is_ok() && actual != expected {
        return Err(LayerError::DigestMismatch {
            expected: digest.to_string(),
            actual: actual.to_string(),
            bytes: compressed.bytes_read(),
        });
    }
    let (index, uncompressed_digest, uncompressed_bytes) = walked?;
    drained.map_err(LayerError::Read)?;

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
/// index with the digest and length of the uncompressed stream.
async fn read_uncompressed<R: AsyncRead + Unpin + Send>(
    compressed: &mut R,
    digest: &str,
    limits: &WalkLimits,
) -> Result<(LayerIndex, Sha256Digest, u64), LayerError> {
    let (compression, prefixed) = sniff_compression(&mut *compressed)
        .await
        .map_err(LayerError::Read)?;
    let decoder = decoder_for(compression, prefixed);
    let mut uncompressed = HashingReader::new(TagErrors::new(decoder, StreamStage::Decompress));
    let budget = Arc::new(ReadBudget::default());
    let mut budgeted = BudgetedReader {
        inner: &mut uncompressed,
        budget: Arc::clone(&budget),
    };
    let errors = ErrorContext {
        compression,
        budget: &budget,
    };

    let walk_id = NEXT_WALK_ID.fetch_add(1, Ordering::Relaxed);
    let mut index = LayerIndex {
        digest: digest.to_string(),
        walk_id,
        ..Default::default()
    };
    walk_tar(&mut budgeted, limits, &mut index, &errors).await?;
    budget.lift();
    check_archive_end(&mut budgeted, &errors).await?;
    tokio::io::copy(&mut budgeted, &mut tokio::io::sink())
        .await
        .map_err(|e| errors.classify(e))?;
    Ok((index, uncompressed.digest(), uncompressed.bytes_read()))
}

/// Walks every tar entry, recording headers and captured bodies into `index`.
async fn walk_tar<R: AsyncRead + Unpin + Send>(
    reader: &mut BudgetedReader<R>,
    limits: &WalkLimits,
    index: &mut LayerIndex,
    errors: &ErrorContext<'_>,
) -> Result<(), LayerError> {
    errors
        .budget
        .allow_until(MAX_EXTENSION_BYTES.saturating_add(BLOCK_SIZE));
    let mut archive = tokio_tar::Archive::new(reader);
    let mut entries = archive.entries().map_err(|e| errors.classify(e))?;
    let mut totals = Totals::default();
    while let Some(next) = entries.next().await {
        let mut entry = next.map_err(|e| errors.classify(e))?;
        totals.count_entry(limits)?;
        errors.budget.allow_until(next_header_limit(&entry));
        let Some((layer_entry, sparse)) = read_entry(&mut entry, limits, errors).await? else {
            continue;
        };
        let capture = Capture {
            limits,
            errors,
            pax_sparse: sparse.is_sparse,
        };
        capture
            .keep_body(&mut entry, &layer_entry, index, &mut totals)
            .await?;
        totals.add_index_bytes(&layer_entry, limits)?;
        index.entries.push(layer_entry);
    }
    Ok(())
}

/// Returns the stream position up to which the tar reader may read before it yields the entry
/// after `entry`: the end of this entry's data plus [`MAX_EXTENSION_BYTES`].
fn next_header_limit<R: AsyncRead + Unpin>(entry: &tokio_tar::Entry<R>) -> u64 {
    let raw_size = entry.header().raw_entry_size().unwrap_or(0);
    let data = entry.effective_size().max(raw_size);
    let padded = data.saturating_add(BLOCK_SIZE - 1) / BLOCK_SIZE * BLOCK_SIZE;
    entry
        .raw_file_position()
        .saturating_add(padded)
        .saturating_add(MAX_EXTENSION_BYTES)
        .saturating_add(BLOCK_SIZE)
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
        entry: &LayerEntry,
        limits: &WalkLimits,
    ) -> Result<(), LayerError> {
        let target = entry.link_target.as_ref().map_or(0, String::len);
        let cost = (entry.path.len() + target) as u64 + ENTRY_OVERHEAD_BYTES;
        self.index_bytes = self.index_bytes.saturating_add(cost);
        if self.index_bytes > limits.max_index_bytes {
            return Err(LayerError::IndexTooLarge {
                limit: limits.max_index_bytes,
            });
        }
        Ok(())
    }
}

/// Converts one tar entry into a [`LayerEntry`] with its PAX sparse records, or `None` for
/// entries that runtimes skip (global PAX headers).
async fn read_entry<R: AsyncRead + Unpin>(
    entry: &mut tokio_tar::Entry<R>,
    limits: &WalkLimits,
    errors: &ErrorContext<'_>,
) -> Result<Option<(LayerEntry, PaxSparse)>, LayerError> {
    let [typeflag] = entry.header().as_old().linkflag;
    if typeflag == b'g' {
        // Go's archive/tar returns global PAX headers as entries without applying them to
        // later ones, and containerd and moby skip them.
        return Ok(None);
    }
    let sparse = read_pax_sparse(entry, errors).await?;
    let raw_name = entry
        .path_bytes()
        .map_err(|e| errors.classify(e))?
        .into_owned();
    let kind = kind_for(typeflag, raw_name.ends_with(b"/"));
    let name = sparse.name.as_deref().unwrap_or(&raw_name);
    let path = checked_path(name, limits)?;

    let data_size = entry.effective_size();
    if kind != EntryKind::File && data_size > 0 {
        return Err(LayerError::HeaderOnlyEntryWithData {
            path,
            kind,
            size: data_size,
        });
    }
    let Some(mode) = parse_mode(&entry.header().as_old().mode) else {
        return Err(LayerError::InvalidHeader {
            path,
            field: "mode",
        });
    };
    let link_target = read_link_target(entry, kind, &path, limits, errors)?;
    let size = sparse.size.unwrap_or(data_size);
    Ok(Some((
        LayerEntry {
            path,
            kind,
            mode,
            link_target,
            size,
        },
        sparse,
    )))
}

/// Parses a header's mode field as Go's `archive/tar` does and keeps the permission and special
/// bits: base-256 when the high bit is set, else octal with leading and trailing spaces and NULs
/// ignored and the text cut at the first NUL; an empty field is 0. `tokio_tar` rejects empty
/// fields, which Go accepts.
fn parse_mode(field: &[u8; 8]) -> Option<u32> {
    let value = match field.split_first() {
        Some((first, rest)) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return None; // negative
            }
            rest.iter().try_fold(u64::from(first & 0x3f), |acc, byte| {
                acc.checked_mul(256).map(|acc| acc | u64::from(*byte))
            })?
        }
        _ => {
            let trimmed = trim_nul_and_space(field);
            let text = trimmed.split(|b| *b == 0).next().unwrap_or_default();
            if text.is_empty() {
                0
            } else {
                u64::from_str_radix(std::str::from_utf8(text).ok()?, 8).ok()?
            }
        }
    };
    Some((value & 0o7777) as u32)
}

fn trim_nul_and_space(bytes: &[u8]) -> &[u8] {
    let is_pad = |b: &u8| *b == 0 || *b == b' ';
    let start = bytes.iter().position(|b| !is_pad(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Maps a tar type flag to the kind of file the runtime creates.
///
/// Go's `archive/tar` turns the old `\0` type into a directory when the name ends in `/`.
/// Contiguous (`7`), old GNU sparse (`S`) and unknown types become files: containerd and
/// moby reject those types, but other tools extract them as files, and a scanner must not
/// drop what some runtime could create.
fn kind_for(typeflag: u8, name_ends_with_slash: bool) -> EntryKind {
    match typeflag {
        b'\0' if name_ends_with_slash => EntryKind::Directory,
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

/// Reads the link target of a symlink (kept as written) or hard link (normalised to an
/// absolute path, because runtimes resolve it against the image root).
fn read_link_target<R: AsyncRead + Unpin>(
    entry: &tokio_tar::Entry<R>,
    kind: EntryKind,
    path: &str,
    limits: &WalkLimits,
    errors: &ErrorContext<'_>,
) -> Result<Option<String>, LayerError> {
    if !matches!(kind, EntryKind::Symlink | EntryKind::HardLink) {
        return Ok(None);
    }
    let raw = entry
        .link_name_bytes()
        .map_err(|e| errors.classify(e))?
        .unwrap_or_default();
    if raw.contains(&0) {
        return Err(LayerError::NulInName {
            path: path.to_string(),
            field: "link target",
        });
    }
    let escaped = escape_name(&raw);
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

/// Name and size overrides of a GNU sparse file stored in PAX format.
#[derive(Default)]
struct PaxSparse {
    /// `GNU.sparse.name`: the real name; the header name is a placeholder such as
    /// `./GNUSparseFile.0/NAME`.
    name: Option<Vec<u8>>,
    /// `GNU.sparse.size` or `GNU.sparse.realsize`: the expanded size.
    size: Option<u64>,
    /// Whether the entry uses a PAX sparse format that Go's `archive/tar` expands.
    is_sparse: bool,
}

/// Reads the PAX sparse records of an entry as Go's `archive/tar` interprets them. Versions
/// 0.0, 0.1 and 1.0 are sparse files whose real name is `GNU.sparse.name`, and other versions
/// are ordinary files. `tokio_tar` does not apply these records itself.
async fn read_pax_sparse<R: AsyncRead + Unpin>(
    entry: &mut tokio_tar::Entry<R>,
    errors: &ErrorContext<'_>,
) -> Result<PaxSparse, LayerError> {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if let Some(extensions) = entry
        .pax_extensions()
        .await
        .map_err(|e| errors.classify(e))?
    {
        for extension in extensions {
            let extension = extension.map_err(|e| errors.classify(e))?;
            if extension.key_bytes().starts_with(b"GNU.sparse.") {
                records.push((
                    extension.key_bytes().to_vec(),
                    extension.value_bytes().to_vec(),
                ));
            }
        }
    }
    let value = |key: &[u8]| {
        records
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    };
    let (major, minor) = (value(b"GNU.sparse.major"), value(b"GNU.sparse.minor"));
    let is_sparse = match (major, minor) {
        (b"0", b"0" | b"1") | (b"1", b"0") => true,
        (b"", b"") => !value(b"GNU.sparse.map").is_empty(),
        _ => false,
    };
    if !is_sparse {
        return Ok(PaxSparse::default());
    }
    let name = Some(value(b"GNU.sparse.name"))
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec);
    let size_text = match value(b"GNU.sparse.size") {
        b"" => value(b"GNU.sparse.realsize"),
        size => size,
    };
    let size = std::str::from_utf8(size_text)
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    Ok(PaxSparse {
        name,
        size,
        is_sparse,
    })
}

/// Settings for keeping the body of one entry.
struct Capture<'a> {
    limits: &'a WalkLimits,
    errors: &'a ErrorContext<'a>,
    /// Whether the entry is a PAX sparse file, whose raw body is not its contents.
    pax_sparse: bool,
}

impl Capture<'_> {
    /// Keeps the body of a captured file, or drops an earlier body at the same path when
    /// this entry replaces it with something that is not captured.
    async fn keep_body<R: AsyncRead + Unpin>(
        &self,
        entry: &mut tokio_tar::Entry<R>,
        layer_entry: &LayerEntry,
        index: &mut LayerIndex,
        totals: &mut Totals,
    ) -> Result<(), LayerError> {
        let path = &layer_entry.path;
        if let Some(old) = index.captured.remove(path) {
            totals.captured_bytes = totals.captured_bytes.saturating_sub(old.len() as u64);
        }
        let (_, file_name) = split_parent(path);
        if layer_entry.kind != EntryKind::File || !CAPTURED_FILE_NAMES.contains(&file_name) {
            return Ok(());
        }
        let size = self.check_size(path, entry.effective_size(), totals)?;
        let body = self.read_body(entry, size).await?;
        index.captured.insert(path.clone(), body);
        Ok(())
    }

    /// Checks a captured body against the limits and adds it to the layer's total.
    fn check_size(&self, path: &str, size: u64, totals: &mut Totals) -> Result<u64, LayerError> {
        let limits = self.limits;
        if self.pax_sparse {
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

    async fn read_body<R: AsyncRead + Unpin>(
        &self,
        entry: &mut tokio_tar::Entry<R>,
        size: u64,
    ) -> Result<Vec<u8>, LayerError> {
        let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        AsyncReadExt::take(&mut *entry, size)
            .read_to_end(&mut body)
            .await
            .map_err(|e| self.errors.classify(e))?;
        if body.len() as u64 != size {
            let source = io::Error::new(io::ErrorKind::UnexpectedEof, "entry body is truncated");
            return Err(LayerError::Tar {
                offset: self.errors.budget.position(),
                source,
            });
        }
        Ok(body)
    }
}

/// Checks the bytes after the block at which the tar reader stopped, as Go's `archive/tar`
/// does. The archive may end at EOF (no end blocks, as some writers produce), after one zero
/// block, or after two. A zero block followed by a non-zero or partial block is an error.
/// Anything after two zero blocks is ignored here (but still hashed by the caller).
async fn check_archive_end<R: AsyncRead + Unpin>(
    reader: &mut BudgetedReader<R>,
    errors: &ErrorContext<'_>,
) -> Result<(), LayerError> {
    let offset = errors.budget.position();
    let mut block = [0u8; BLOCK_SIZE as usize];
    let mut filled = 0;
    while let Some(rest) = block.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        let read = reader.read(rest).await.map_err(|e| errors.classify(e))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    match filled {
        0 => Ok(()),
        n if n < block.len() => Err(LayerError::TarEnd {
            offset,
            reason: "the stream ends inside the second end-of-archive block",
        }),
        _ if block.iter().all(|b| *b == 0) => Ok(()),
        _ => Err(LayerError::TarEnd {
            offset,
            reason: "a zero block is followed by a non-zero block, which is not a valid \
                     end-of-archive marker",
        }),
    }
}

// Stream plumbing: error tagging and the read budget below the tar reader.

/// Stream that an I/O error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamStage {
    Blob,
    Decompress,
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

fn stream_stage(error: &io::Error) -> Option<StreamStage> {
    error
        .get_ref()?
        .downcast_ref::<StreamError>()
        .map(|e| e.stage)
}

/// Position and limit of the uncompressed stream, shared between the walk and the reader
/// that the tar reader owns.
#[derive(Debug, Default)]
struct ReadBudget {
    position: AtomicU64,
    limit: AtomicU64,
    exceeded: AtomicBool,
}

impl ReadBudget {
    fn allow_until(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    fn lift(&self) {
        self.allow_until(u64::MAX);
    }

    fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }
}

/// Fails reads that start at or past the budget's limit. A read that starts before the limit
/// may end after it by at most one buffer, which still bounds memory.
struct BudgetedReader<R> {
    inner: R,
    budget: Arc<ReadBudget>,
}

impl<R: AsyncRead + Unpin> AsyncRead for BudgetedReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let position = this.budget.position();
        if position >= this.budget.limit.load(Ordering::Relaxed) {
            this.budget.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(
                "tar extension data exceeds the limit",
            )));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let added = buf.filled().len().saturating_sub(before) as u64;
        this.budget
            .position
            .store(position.saturating_add(added), Ordering::Relaxed);
        result
    }
}

/// What [`ErrorContext::classify`] needs to turn an I/O error into a [`LayerError`].
struct ErrorContext<'a> {
    compression: Compression,
    budget: &'a ReadBudget,
}

impl ErrorContext<'_> {
    fn classify(&self, error: io::Error) -> LayerError {
        if self.budget.exceeded.load(Ordering::Relaxed) {
            return LayerError::ExtensionTooLarge {
                offset: self.budget.position(),
                limit: MAX_EXTENSION_BYTES,
            };
        }
        match stream_stage(&error) {
            Some(StreamStage::Blob) => LayerError::Read(error),
            Some(StreamStage::Decompress) => LayerError::Decompress {
                compression: self.compression,
                source: error,
            },
            None => LayerError::Tar {
                offset: self.budget.position(),
                source: error,
            },
        }
    }
}
