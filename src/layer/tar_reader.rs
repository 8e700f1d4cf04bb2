//! Streaming tar reader that reads headers the way Go's `archive/tar` does.
//!
//! containerd, moby and podman read layers with Go's `archive/tar`, so the scanner has to list
//! the entries that its `Reader.Next` returns. This reader follows it (as of Go 1.19 to 1.24)
//! in header formats, numeric field syntax, PAX and GNU extensions, sparse maps,
//! end-of-archive rules and error cases. It departs from Go only by rejecting archives that
//! Go reads, never the other way round:
//!
//! - extension headers that no tar writer emits for one entry and that Go resolves by a rule
//!   of its own ([`TarReadError::Ambiguous`]): two PAX headers or two GNU long names or long
//!   links, a PAX `path` together with a GNU long name, and a PAX `linkpath` together with a
//!   GNU long link;
//! - an archive that ends inside the padding after the last entry's data, which Go reads as a
//!   normal end.

use std::collections::BTreeMap;
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Size of a tar block.
pub(super) const BLOCK_SIZE: usize = 512;

/// Maximum size of one PAX header body or GNU long name or link body, as Go's
/// `maxSpecialFileSize`. Go rejects larger ones with `ErrFieldTooLong`.
pub(super) const MAX_SPECIAL_FILE_SIZE: u64 = 1 << 20;

/// Maximum size of the sparse map at the start of a PAX sparse 1.0 entry's data.
///
/// NOTE: Go 1.19 reads this map without a bound; later Go releases bound it after
/// CVE-2025-58183. The walk uses the PAX header limit, which real maps stay far below.
const MAX_SPARSE_MAP_SIZE: usize = MAX_SPECIAL_FILE_SIZE as usize;

/// Buffer size of the reader over the uncompressed stream.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Type flags, as Go's `archive/tar` names them.
const TYPE_REG_A: u8 = b'\0';
const TYPE_REG: u8 = b'0';
const TYPE_DIR: u8 = b'5';
const TYPE_GNU_SPARSE: u8 = b'S';
const TYPE_GNU_LONG_NAME: u8 = b'L';
const TYPE_GNU_LONG_LINK: u8 = b'K';
const TYPE_PAX_LOCAL: u8 = b'x';
const TYPE_PAX_GLOBAL: u8 = b'g';

/// Byte ranges of header fields. The V7 fields are shared by all formats; ustar, star and GNU
/// place different fields after the magic.
mod field {
    use std::ops::Range;

    pub const NAME: Range<usize> = 0..100;
    pub const MODE: Range<usize> = 100..108;
    pub const UID: Range<usize> = 108..116;
    pub const GID: Range<usize> = 116..124;
    pub const SIZE: Range<usize> = 124..136;
    pub const MTIME: Range<usize> = 136..148;
    pub const CHECKSUM: Range<usize> = 148..156;
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: Range<usize> = 157..257;
    pub const MAGIC: Range<usize> = 257..263;
    pub const VERSION: Range<usize> = 263..265;
    pub const DEV_MAJOR: Range<usize> = 329..337;
    pub const DEV_MINOR: Range<usize> = 337..345;
    pub const USTAR_PREFIX: Range<usize> = 345..500;
    pub const STAR_PREFIX: Range<usize> = 345..476;
    pub const STAR_ATIME: Range<usize> = 476..488;
    pub const STAR_CTIME: Range<usize> = 488..500;
    pub const STAR_TRAILER: Range<usize> = 508..512;
    pub const GNU_ATIME: Range<usize> = 345..357;
    pub const GNU_CTIME: Range<usize> = 357..369;
    /// Four sparse entries of 24 bytes (offset, length) in a GNU header.
    pub const GNU_SPARSE: Range<usize> = 386..482;
    pub const GNU_IS_EXTENDED: usize = 482;
    pub const GNU_REAL_SIZE: Range<usize> = 483..495;
    /// 21 sparse entries in an old GNU sparse extension block.
    pub const EXT_SPARSE: Range<usize> = 0..504;
    pub const EXT_IS_EXTENDED: usize = 504;
}

/// Header format, detected from the magic bytes as Go's `block.getFormat` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V7,
    /// `ustar\0` magic: POSIX ustar or PAX, with a 155-byte name prefix.
    Ustar,
    /// `ustar\0` magic with the `tar\0` trailer: a 131-byte prefix and access and change
    /// times.
    Star,
    /// `ustar ` magic with the ` \0` version: old GNU format, without a prefix.
    Gnu,
}

/// One entry as Go's `Reader.Next` returns it, after PAX and GNU extensions are applied.
#[derive(Debug)]
pub(super) struct TarEntry {
    /// Type flag; the old `\0` type is already turned into `0` or `5`, as Go does.
    pub typeflag: u8,
    /// Name bytes as Go reads them: header name (with prefix), PAX `path`, GNU long name or
    /// `GNU.sparse.name`.
    pub name: Vec<u8>,
    /// Link name bytes: header link name, PAX `linkpath` or GNU long link.
    pub linkname: Vec<u8>,
    /// Logical size (Go's `Header.Size`): the expanded size of a sparse file.
    pub size: i64,
    /// The mode field as a signed number, as Go parses it.
    pub mode: i64,
    /// Whether the entry is a sparse file (old GNU or PAX format).
    pub sparse: bool,
}

/// A failure to read the tar archive.
#[derive(Debug)]
pub(super) enum TarReadError {
    /// The stream below the reader failed; its error is passed on unchanged.
    Stream(io::Error),
    /// The archive is invalid where Go's `archive/tar` returns an error.
    Invalid { offset: u64, message: String },
    /// The stream ends inside a header or an entry's data.
    Truncated { offset: u64 },
    /// After one zero block, the stream holds neither a second zero block nor its end.
    End { offset: u64, reason: &'static str },
    /// A PAX header body, GNU long name or long link, or PAX sparse map is over
    /// [`MAX_SPECIAL_FILE_SIZE`].
    ExtensionTooLarge { offset: u64 },
    /// A PAX `path` or `linkpath` record contains a NUL byte, which Go rejects. `field`
    /// names the record for messages.
    NulInPaxRecord { field: &'static str, value: Vec<u8> },
    /// The archive has extension headers that no tar writer emits for one entry, so the walk
    /// rejects it instead of relying on Go's rule for them.
    Ambiguous { offset: u64, reason: &'static str },
}

type Result<T> = std::result::Result<T, TarReadError>;

fn invalid(offset: u64, message: impl Into<String>) -> TarReadError {
    TarReadError::Invalid {
        offset,
        message: message.into(),
    }
}

/// Extension headers seen since the last entry.
#[derive(Default)]
struct PendingExtensions {
    pax: Option<PaxRecords>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// Reader of tar entries over an uncompressed stream.
pub(super) struct TarReader<R> {
    inner: BufReader<R>,
    /// Bytes consumed from the stream.
    position: u64,
    /// Unread data bytes of the current entry.
    remaining: u64,
    /// Padding bytes after the current entry's data.
    padding: u64,
    /// Set once the end of the archive was read; later calls return no entry.
    finished: bool,
}

impl<R: AsyncRead + Unpin> TarReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(READ_BUFFER_SIZE, inner),
            position: 0,
            remaining: 0,
            padding: 0,
            finished: false,
        }
    }

    /// Returns the number of bytes consumed from the stream.
    pub(super) fn position(&self) -> u64 {
        self.position
    }

    /// Reads the next entry, skipping the rest of the current one. Returns `None` at the end
    /// of the archive. Global PAX headers are returned as entries of type `g`, as Go does.
    pub(super) async fn next_entry(&mut self) -> Result<Option<TarEntry>> {
        if self.finished {
            return Ok(None);
        }
        let mut pending = PendingExtensions::default();
        loop {
            self.skip_entry_rest().await?;
            let Some(block) = self.read_header_block().await? else {
                // Go ends the archive here even after extension headers without their entry.
                self.finished = true;
                return Ok(None);
            };
            let offset = self.position - BLOCK_SIZE as u64;
            let mut header = parse_header(&block, offset)?;
            self.start_data(header.typeflag, header.size, offset)?;

            match header.typeflag {
                TYPE_PAX_LOCAL | TYPE_PAX_GLOBAL => {
                    let body = self.read_special_file(offset).await?;
                    let records = parse_pax(&body, offset)?;
                    if header.typeflag == TYPE_PAX_GLOBAL {
                        // Go applies no record of a global header to later entries, and it
                        // drops the extension headers read before it.
                        return Ok(Some(header.into_entry(false)));
                    }
                    if pending.pax.is_some() {
                        return Err(TarReadError::Ambiguous {
                            offset,
                            reason: "two PAX headers describe one entry",
                        });
                    }
                    pending.pax = Some(records);
                }
                TYPE_GNU_LONG_NAME | TYPE_GNU_LONG_LINK => {
                    let body = self.read_special_file(offset).await?;
                    let value = cut_at_nul(&body).to_vec();
                    let slot = if header.typeflag == TYPE_GNU_LONG_NAME {
                        &mut pending.long_name
                    } else {
                        &mut pending.long_link
                    };
                    if slot.is_some() {
                        return Err(TarReadError::Ambiguous {
                            offset,
                            reason: "two GNU long name or long link headers describe one entry",
                        });
                    }
                    *slot = Some(value);
                }
                _ => {
                    header.apply_extensions(&pending, offset)?;
                    self.start_data(header.typeflag, header.size, offset)?;
                    let sparse = self
                        .read_sparse_map(&mut header, &block, pending.pax.as_ref(), offset)
                        .await?;
                    return Ok(Some(header.into_entry(sparse)));
                }
            }
        }
    }

    /// Reads `len` bytes of the current entry's data.
    pub(super) async fn read_data(&mut self, len: u64) -> Result<Vec<u8>> {
        let len = len.min(self.remaining);
        let mut data = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
        let read = self.read_full(&mut data).await?;
        self.remaining -= read as u64;
        if read < data.len() {
            return Err(TarReadError::Truncated {
                offset: self.position,
            });
        }
        Ok(data)
    }

    /// Reads the rest of the stream after the archive end, so that every byte is hashed.
    pub(super) async fn drain(&mut self) -> Result<()> {
        let copied = tokio::io::copy(&mut self.inner, &mut tokio::io::sink())
            .await
            .map_err(TarReadError::Stream)?;
        self.position = self.position.saturating_add(copied);
        Ok(())
    }

    /// Sets up the data section of a header as Go's `handleRegularFile` does: header-only
    /// types have no data, whatever their size field contains, and a negative size is invalid.
    fn start_data(&mut self, typeflag: u8, size: i64, offset: u64) -> Result<()> {
        let data = if is_header_only(typeflag) { 0 } else { size };
        let Ok(data) = u64::try_from(data) else {
            return Err(invalid(offset, format!("negative entry size {size}")));
        };
        self.remaining = data;
        self.padding = block_padding(data);
        Ok(())
    }

    /// Skips the unread data of the current entry and its padding.
    async fn skip_entry_rest(&mut self) -> Result<()> {
        let want = self.remaining.saturating_add(self.padding);
        let skipped = self.skip(want).await?;
        self.remaining = 0;
        self.padding = 0;
        if skipped < want {
            // Go reads an archive that ends inside the padding as complete, but the walk
            // rejects it like any other truncated archive.
            return Err(TarReadError::Truncated {
                offset: self.position,
            });
        }
        Ok(())
    }

    /// Reads the next header block, or `None` at the end of the archive: at the end of the
    /// stream, or after one or two zero blocks.
    async fn read_header_block(&mut self) -> Result<Option<[u8; BLOCK_SIZE]>> {
        let mut block = [0u8; BLOCK_SIZE];
        match self.read_full(&mut block).await? {
            0 => return Ok(None),
            BLOCK_SIZE => {}
            _ => {
                return Err(TarReadError::Truncated {
                    offset: self.position,
                });
            }
        }
        if block.iter().any(|b| *b != 0) {
            return Ok(Some(block));
        }
        let offset = self.position;
        match self.read_full(&mut block).await? {
            0 => Ok(None),
            BLOCK_SIZE if block.iter().all(|b| *b == 0) => Ok(None),
            BLOCK_SIZE => Err(TarReadError::End {
                offset,
                reason: "a zero block is followed by a non-zero block, which is not a valid \
                         end-of-archive marker",
            }),
            _ => Err(TarReadError::End {
                offset,
                reason: "the stream ends inside the second end-of-archive block",
            }),
        }
    }

    /// Reads the whole data of a PAX header or GNU long name or link, as Go's
    /// `readSpecialFile` does.
    async fn read_special_file(&mut self, offset: u64) -> Result<Vec<u8>> {
        if self.remaining > MAX_SPECIAL_FILE_SIZE {
            return Err(TarReadError::ExtensionTooLarge { offset });
        }
        self.read_data(self.remaining).await
    }

    /// Reads the sparse map of an old GNU sparse entry (`S`) or a PAX sparse entry, checks it
    /// as Go's `handleSparseFile` does, and returns whether the entry is sparse.
    ///
    /// Go checks the map against the data only when the entry's body is read, which
    /// container runtimes do for every regular file. The walk checks it here: the data has to
    /// be exactly the bytes of the map's fragments, or Go fails with "sparse file references
    /// non-existent data" or "sparse file contains unreferenced data".
    async fn read_sparse_map(
        &mut self,
        header: &mut ParsedHeader,
        block: &[u8; BLOCK_SIZE],
        pax: Option<&PaxRecords>,
        offset: u64,
    ) -> Result<bool> {
        let fragments = if header.typeflag == TYPE_GNU_SPARSE {
            self.read_old_gnu_sparse_map(header, block, offset).await?
        } else {
            match pax_sparse_version(pax) {
                None => return Ok(false),
                Some(version) => {
                    self.read_pax_sparse_map(header, pax, version, offset)
                        .await?
                }
            }
        };
        if is_header_only(header.typeflag) || !valid_sparse_fragments(&fragments, header.size) {
            return Err(invalid(offset, "invalid sparse map"));
        }
        let mapped: u64 = fragments
            .iter()
            .map(|fragment| fragment.length.unsigned_abs())
            .sum();
        if mapped != self.remaining {
            return Err(invalid(
                offset,
                format!(
                    "the sparse map covers {mapped} bytes of data but the entry holds {}",
                    self.remaining
                ),
            ));
        }
        Ok(true)
    }

    /// Reads the old GNU sparse map from the header and its extension blocks, which come
    /// before the entry's data, as Go's `readOldGNUSparseMap` does.
    async fn read_old_gnu_sparse_map(
        &mut self,
        header: &mut ParsedHeader,
        block: &[u8; BLOCK_SIZE],
        offset: u64,
    ) -> Result<Vec<SparseFragment>> {
        if detect_format(block, offset)? != Format::Gnu {
            return Err(invalid(
                offset,
                "sparse entry type in a header that is not GNU",
            ));
        }
        let numeric = |range| parse_numeric(slice(block, range)).ok_or_else(|| bad_number(offset));
        header.size = numeric(field::GNU_REAL_SIZE)?;
        let mut fragments = Vec::new();
        let mut entries = slice(block, field::GNU_SPARSE).to_vec();
        let mut extended = block[field::GNU_IS_EXTENDED] > 0;
        loop {
            for entry in entries.chunks_exact(24) {
                // GNU and BSD tar also stop at the first entry whose offset starts with NUL.
                if entry.first() == Some(&0) {
                    break;
                }
                let fragment_offset = parse_numeric(slice(entry, 0..12));
                let fragment_length = parse_numeric(slice(entry, 12..24));
                let (Some(offset_value), Some(length)) = (fragment_offset, fragment_length) else {
                    return Err(bad_number(offset));
                };
                fragments.push(SparseFragment {
                    offset: offset_value,
                    length,
                });
            }
            if !extended {
                return Ok(fragments);
            }
            let mut extension = [0u8; BLOCK_SIZE];
            if self.read_full(&mut extension).await? < BLOCK_SIZE {
                return Err(TarReadError::Truncated {
                    offset: self.position,
                });
            }
            entries = slice(&extension, field::EXT_SPARSE).to_vec();
            extended = extension[field::EXT_IS_EXTENDED] > 0;
        }
    }

    /// Applies the PAX sparse records to `header` and reads the map: from the records for
    /// versions 0.0 and 0.1, from the start of the data for 1.0 (Go's
    /// `readGNUSparsePAXHeaders`).
    async fn read_pax_sparse_map(
        &mut self,
        header: &mut ParsedHeader,
        pax: Option<&PaxRecords>,
        version: PaxSparseVersion,
        offset: u64,
    ) -> Result<Vec<SparseFragment>> {
        let record = |key: &str| pax.and_then(|records| records.get(key)).unwrap_or(&[][..]);
        let name = record("GNU.sparse.name");
        if !name.is_empty() {
            header.name = name.to_vec();
        }
        let size = match record("GNU.sparse.size") {
            b"" => record("GNU.sparse.realsize"),
            size => size,
        };
        if !size.is_empty() {
            header.size = parse_decimal(size).ok_or_else(|| bad_number(offset))?;
        }
        match version {
            PaxSparseVersion::V1 => self.read_sparse_map_1_0(offset).await,
            PaxSparseVersion::V0 => {
                let count = parse_decimal(record("GNU.sparse.numblocks"))
                    .filter(|count| *count >= 0 && count.checked_mul(2).is_some())
                    .ok_or_else(|| invalid(offset, "invalid GNU.sparse.numblocks record"))?;
                let map = record("GNU.sparse.map");
                let numbers: Vec<&[u8]> = if map.is_empty() {
                    Vec::new()
                } else {
                    map.split(|b| *b == b',').collect()
                };
                parse_fragment_list(&numbers, count, offset)
            }
        }
    }

    /// Reads the PAX sparse 1.0 map: decimal numbers, one per line, in whole blocks at the
    /// start of the entry's data. The first number is the count of (offset, length) pairs.
    async fn read_sparse_map_1_0(&mut self, offset: u64) -> Result<Vec<SparseFragment>> {
        let mut text = Vec::new();
        let mut count: Option<i64> = None;
        loop {
            let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
            let needed = match count {
                None => 1,
                Some(count) => count.unsigned_abs().saturating_mul(2).saturating_add(1),
            };
            if lines >= needed {
                if count.is_none() {
                    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
                    let parsed = parse_decimal(first)
                        .filter(|count| *count >= 0 && count.checked_mul(2).is_some())
                        .ok_or_else(|| invalid(offset, "invalid PAX sparse map entry count"))?;
                    count = Some(parsed);
                    continue;
                }
                break;
            }
            if text.len() >= MAX_SPARSE_MAP_SIZE {
                return Err(TarReadError::ExtensionTooLarge { offset });
            }
            if self.remaining < BLOCK_SIZE as u64 {
                return Err(TarReadError::Truncated {
                    offset: self.position,
                });
            }
            text.extend(self.read_data(BLOCK_SIZE as u64).await?);
        }
        let count = count.unwrap_or(0);
        let numbers: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .skip(1)
            .take(count.unsigned_abs().saturating_mul(2) as usize)
            .collect();
        parse_fragment_list(&numbers, count, offset)
    }

    /// Reads until `buf` is full or the stream ends; returns the bytes read.
    async fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let available = self.inner.fill_buf().await.map_err(TarReadError::Stream)?;
            if available.is_empty() {
                break;
            }
            let count = available.len().min(buf.len() - filled);
            if let (Some(target), Some(source)) =
                (buf.get_mut(filled..filled + count), available.get(..count))
            {
                target.copy_from_slice(source);
            }
            self.inner.consume(count);
            filled += count;
            self.position += count as u64;
        }
        Ok(filled)
    }

    /// Skips up to `len` bytes; returns the bytes skipped, fewer at the end of the stream.
    async fn skip(&mut self, len: u64) -> Result<u64> {
        let mut skipped = 0;
        while skipped < len {
            let available = self.inner.fill_buf().await.map_err(TarReadError::Stream)?;
            if available.is_empty() {
                break;
            }
            let count = usize::try_from(len - skipped)
                .unwrap_or(usize::MAX)
                .min(available.len());
            self.inner.consume(count);
            skipped += count as u64;
            self.position += count as u64;
        }
        Ok(skipped)
    }
}

/// Header fields as Go's `readHeader` returns them, before extensions are applied.
struct ParsedHeader {
    typeflag: u8,
    name: Vec<u8>,
    linkname: Vec<u8>,
    size: i64,
    mode: i64,
}

impl ParsedHeader {
    /// Applies PAX records and GNU long names in the order of Go's `Reader.next`: PAX `path`,
    /// `linkpath` and `size` records first, then a GNU long name or link. Then the old `\0`
    /// type becomes a directory when the name ends in `/`, and a regular file otherwise.
    fn apply_extensions(&mut self, pending: &PendingExtensions, offset: u64) -> Result<()> {
        if let Some(records) = &pending.pax {
            merge_pax(self, records, offset)?;
            let has = |key: &str| records.get(key).is_some_and(|value| !value.is_empty());
            let long = |value: &Option<Vec<u8>>| value.as_ref().is_some_and(|v| !v.is_empty());
            if has("path") && long(&pending.long_name) {
                return Err(TarReadError::Ambiguous {
                    offset,
                    reason: "a PAX path record and a GNU long name describe one entry",
                });
            }
            if has("linkpath") && long(&pending.long_link) {
                return Err(TarReadError::Ambiguous {
                    offset,
                    reason: "a PAX linkpath record and a GNU long link describe one entry",
                });
            }
        }
        // Go keeps the header's name when the long name is empty.
        if let Some(name) = pending.long_name.as_ref().filter(|v| !v.is_empty()) {
            self.name.clone_from(name);
        }
        if let Some(link) = pending.long_link.as_ref().filter(|v| !v.is_empty()) {
            self.linkname.clone_from(link);
        }
        if self.typeflag == TYPE_REG_A {
            self.typeflag = if self.name.ends_with(b"/") {
                TYPE_DIR
            } else {
                TYPE_REG
            };
        }
        Ok(())
    }

    fn into_entry(self, sparse: bool) -> TarEntry {
        TarEntry {
            typeflag: self.typeflag,
            name: self.name,
            linkname: self.linkname,
            size: self.size,
            mode: self.mode,
            sparse,
        }
    }
}

/// Parses a non-zero header block as Go's `readHeader` does. Every numeric field that Go
/// parses must be valid, including those the walk does not use (uid, gid, times, device
/// numbers), because Go rejects the archive otherwise.
fn parse_header(block: &[u8; BLOCK_SIZE], offset: u64) -> Result<ParsedHeader> {
    let format = detect_format(block, offset)?;
    let mut valid = true;
    let mut numeric = |range| {
        let value = parse_numeric(slice(block, range));
        valid &= value.is_some();
        value.unwrap_or(0)
    };
    let size = numeric(field::SIZE);
    let mode = numeric(field::MODE);
    numeric(field::UID);
    numeric(field::GID);
    numeric(field::MTIME);

    let mut prefix: &[u8] = &[];
    if format != Format::V7 {
        numeric(field::DEV_MAJOR);
        numeric(field::DEV_MINOR);
    }
    match format {
        Format::V7 => {}
        Format::Ustar => prefix = cut_at_nul(slice(block, field::USTAR_PREFIX)),
        Format::Star => {
            prefix = cut_at_nul(slice(block, field::STAR_PREFIX));
            numeric(field::STAR_ATIME);
            numeric(field::STAR_CTIME);
        }
        Format::Gnu => {
            // Writers before Go 1.8 put a ustar prefix where GNU keeps the access and change
            // times. Go reads the prefix when those times do not parse and it is ASCII.
            let time_is_invalid = |range: std::ops::Range<usize>| {
                let bytes = slice(block, range);
                bytes.first() != Some(&0) && parse_numeric(bytes).is_none()
            };
            if time_is_invalid(field::GNU_ATIME) || time_is_invalid(field::GNU_CTIME) {
                let candidate = cut_at_nul(slice(block, field::USTAR_PREFIX));
                if candidate.is_ascii() {
                    prefix = candidate;
                }
            }
        }
    }
    if !valid {
        return Err(bad_number(offset));
    }

    let mut name = Vec::new();
    if !prefix.is_empty() {
        name.extend_from_slice(prefix);
        name.push(b'/');
    }
    name.extend_from_slice(cut_at_nul(slice(block, field::NAME)));
    Ok(ParsedHeader {
        typeflag: block[field::TYPEFLAG],
        name,
        linkname: cut_at_nul(slice(block, field::LINKNAME)).to_vec(),
        size,
        mode,
    })
}

/// Checks the header checksum and detects the format as Go's `block.getFormat` does. Go
/// accepts the checksum as an unsigned or a signed byte sum, with the checksum field counted
/// as spaces.
fn detect_format(block: &[u8; BLOCK_SIZE], offset: u64) -> Result<Format> {
    let stored = parse_octal(slice(block, field::CHECKSUM));
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (index, byte) in block.iter().enumerate() {
        let byte = if field::CHECKSUM.contains(&index) {
            b' '
        } else {
            *byte
        };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    if stored != Some(unsigned) && stored != Some(signed) {
        return Err(invalid(offset, "invalid header checksum"));
    }
    let magic = slice(block, field::MAGIC);
    let version = slice(block, field::VERSION);
    Ok(if magic == b"ustar\0" {
        if slice(block, field::STAR_TRAILER) == b"tar\0" {
            Format::Star
        } else {
            Format::Ustar
        }
    } else if magic == b"ustar " && version == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    })
}

fn bad_number(offset: u64) -> TarReadError {
    invalid(offset, "invalid numeric field")
}

/// Parses a numeric header field as Go's `parser.parseNumeric` does: base-256 (two's
/// complement) when the high bit of the first byte is set, octal otherwise. Returns `None`
/// where Go sets `ErrHeader`.
fn parse_numeric(bytes: &[u8]) -> Option<i64> {
    let Some(first) = bytes.first() else {
        return Some(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(bytes);
    }
    let invert = if first & 0x40 != 0 { 0xff } else { 0x00 };
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate() {
        let mut byte = byte ^ invert;
        if index == 0 {
            byte &= 0x7f;
        }
        if value >> 56 > 0 {
            return None;
        }
        value = value << 8 | u64::from(byte);
    }
    if value >> 63 > 0 {
        return None;
    }
    let value = value as i64;
    Some(if invert == 0xff { !value } else { value })
}

/// Parses an octal header field as Go's `parser.parseOctal` does: spaces and NULs around the
/// digits are ignored, the text ends at a NUL, and an empty field is 0. Anything else that is
/// not octal digits (a sign, a tab, a space between digits) is invalid.
fn parse_octal(bytes: &[u8]) -> Option<i64> {
    let is_padding = |b: &u8| *b == b' ' || *b == 0;
    let Some(start) = bytes.iter().position(|b| !is_padding(b)) else {
        return Some(0);
    };
    let end = bytes
        .iter()
        .rposition(|b| !is_padding(b))
        .map_or(start, |i| i + 1);
    let digits = cut_at_nul(bytes.get(start..end).unwrap_or_default());
    if digits.is_empty() || !digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    // Go converts the unsigned value to int64 with wrap-around.
    u64::from_str_radix(text, 8).ok().map(|value| value as i64)
}

/// Parses a decimal number as Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then
/// ASCII digits, within the `i64` range.
fn parse_decimal(bytes: &[u8]) -> Option<i64> {
    let digits = match bytes.first() {
        Some(b'+' | b'-') => bytes.get(1..).unwrap_or_default(),
        _ => bytes,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse::<i64>().ok()
}

/// Checks a PAX time record (`atime`, `mtime`, `ctime`) as Go's `parsePAXTime` does: decimal
/// seconds, then optionally `.` and digits.
fn valid_pax_time(value: &[u8]) -> bool {
    let mut parts = value.splitn(2, |b| *b == b'.');
    let seconds = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or_default();
    parse_decimal(seconds).is_some() && fraction.iter().all(u8::is_ascii_digit)
}

fn slice(bytes: &[u8], range: std::ops::Range<usize>) -> &[u8] {
    bytes.get(range).unwrap_or_default()
}

fn cut_at_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|b| *b == 0) {
        Some(end) => bytes.get(..end).unwrap_or_default(),
        None => bytes,
    }
}

/// Tells whether Go reads no data for entries of this type (`isHeaderOnlyType`).
fn is_header_only(typeflag: u8) -> bool {
    matches!(typeflag, b'1'..=b'6')
}

fn block_padding(size: u64) -> u64 {
    (BLOCK_SIZE as u64 - size % BLOCK_SIZE as u64) % BLOCK_SIZE as u64
}

/// PAX records of one extended header; a later record with the same key replaces an earlier
/// one, as in Go's map.
#[derive(Debug, Default)]
struct PaxRecords(BTreeMap<Vec<u8>, Vec<u8>>);

impl PaxRecords {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0.get(key.as_bytes()).map(Vec::as_slice)
    }
}

/// Parses the records of a PAX header body as Go's `parsePAX` does. Any malformed record makes
/// the whole header invalid. GNU sparse 0.0 `GNU.sparse.offset` and `GNU.sparse.numbytes`
/// records are joined into one `GNU.sparse.map` record.
fn parse_pax(body: &[u8], offset: u64) -> Result<PaxRecords> {
    let mut records = PaxRecords::default();
    let mut sparse_map: Vec<&[u8]> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, value, after) =
            parse_pax_record(rest).ok_or_else(|| invalid(offset, "invalid PAX record"))?;
        rest = after;
        check_pax_nul(key, value, offset)?;
        match key {
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let expected: &[u8] = if sparse_map.len() % 2 == 0 {
                    b"GNU.sparse.offset"
                } else {
                    b"GNU.sparse.numbytes"
                };
                if key != expected || value.contains(&b',') {
                    return Err(invalid(offset, "invalid GNU sparse 0.0 PAX records"));
                }
                sparse_map.push(value);
            }
            _ => {
                records.0.insert(key.to_vec(), value.to_vec());
            }
        }
    }
    if !sparse_map.is_empty() {
        records
            .0
            .insert(b"GNU.sparse.map".to_vec(), sparse_map.join(&b","[..]));
    }
    Ok(records)
}

/// Splits one `LENGTH KEY=VALUE\n` record off `text` as Go's `parsePAXRecord` does, except
/// for the NUL rule, which [`check_pax_nul`] applies. Returns the key, the value and the rest
/// of the text.
fn parse_pax_record(text: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let space = text.iter().position(|b| *b == b' ')?;
    let length = parse_decimal(text.get(..space)?)?;
    let length = usize::try_from(length).ok().filter(|n| *n >= 5)?;
    if length > text.len() || length <= space + 1 {
        return None;
    }
    let record = text.get(space + 1..length - 1)?;
    if text.get(length - 1) != Some(&b'\n') {
        return None;
    }
    let equals = record.iter().position(|b| *b == b'=')?;
    let key = record.get(..equals)?;
    let value = record.get(equals + 1..)?;
    (!key.is_empty()).then_some((key, value, text.get(length..)?))
}

/// Checks the NUL rule of Go's `validPAXRecord`: the values of `path`, `linkpath`, `uname` and
/// `gname` must not contain NUL, and other keys must not.
fn check_pax_nul(key: &[u8], value: &[u8], offset: u64) -> Result<()> {
    let field = match key {
        b"path" => "PAX path record",
        b"linkpath" => "PAX linkpath record",
        b"uname" | b"gname" if value.contains(&0) => {
            return Err(invalid(offset, "NUL byte in a PAX uname or gname record"));
        }
        b"uname" | b"gname" => return Ok(()),
        _ if key.contains(&0) => return Err(invalid(offset, "NUL byte in a PAX record key")),
        _ => return Ok(()),
    };
    if value.contains(&0) {
        return Err(TarReadError::NulInPaxRecord {
            field,
            value: value.to_vec(),
        });
    }
    Ok(())
}

/// Applies PAX records to a header as Go's `mergePAX` does. Empty values keep the header's
/// value. Records that Go parses must be valid even when the walk does not use them.
fn merge_pax(header: &mut ParsedHeader, records: &PaxRecords, offset: u64) -> Result<()> {
    for (key, value) in &records.0 {
        if value.is_empty() {
            continue;
        }
        let valid = match key.as_slice() {
            b"path" => {
                header.name.clone_from(value);
                true
            }
            b"linkpath" => {
                header.linkname.clone_from(value);
                true
            }
            b"uid" | b"gid" => parse_decimal(value).is_some(),
            b"atime" | b"mtime" | b"ctime" => valid_pax_time(value),
            b"size" => match parse_decimal(value) {
                Some(size) => {
                    header.size = size;
                    true
                }
                None => false,
            },
            _ => true,
        };
        if !valid {
            return Err(invalid(
                offset,
                format!(
                    "invalid PAX {} record",
                    String::from_utf8_lossy(key.as_slice())
                ),
            ));
        }
    }
    Ok(())
}

/// A data fragment of a sparse file: `length` bytes at `offset` of the expanded file.
#[derive(Debug, Clone, Copy)]
struct SparseFragment {
    offset: i64,
    length: i64,
}

#[derive(Debug, Clone, Copy)]
enum PaxSparseVersion {
    /// Versions 0.0 and 0.1: the map is in PAX records.
    V0,
    /// Version 1.0: the map is at the start of the data.
    V1,
}

/// Detects a PAX sparse file as Go does: versions 0.0, 0.1 and 1.0, or a `GNU.sparse.map`
/// record without a version. Other versions are ordinary files.
fn pax_sparse_version(pax: Option<&PaxRecords>) -> Option<PaxSparseVersion> {
    let record = |key: &str| pax.and_then(|records| records.get(key)).unwrap_or_default();
    match (record("GNU.sparse.major"), record("GNU.sparse.minor")) {
        (b"0", b"0" | b"1") => Some(PaxSparseVersion::V0),
        (b"1", b"0") => Some(PaxSparseVersion::V1),
        (b"", b"") if !record("GNU.sparse.map").is_empty() => Some(PaxSparseVersion::V0),
        _ => None,
    }
}

/// Parses `count` (offset, length) pairs of decimal numbers.
fn parse_fragment_list(numbers: &[&[u8]], count: i64, offset: u64) -> Result<Vec<SparseFragment>> {
    if numbers.len() as u64 != count.unsigned_abs().saturating_mul(2) {
        return Err(invalid(
            offset,
            "the sparse map has the wrong number of values",
        ));
    }
    numbers
        .chunks_exact(2)
        .map(|pair| match pair {
            [start, length] => match (parse_decimal(start), parse_decimal(length)) {
                (Some(start), Some(length)) => Ok(SparseFragment {
                    offset: start,
                    length,
                }),
                _ => Err(invalid(offset, "invalid number in the sparse map")),
            },
            _ => Err(invalid(offset, "invalid sparse map")),
        })
        .collect()
}

/// Checks a sparse map as Go's `validateSparseEntries` does: fragments in order, not
/// overlapping, non-negative and within the expanded size.
fn valid_sparse_fragments(fragments: &[SparseFragment], size: i64) -> bool {
    if size < 0 {
        return false;
    }
    let mut previous_end = 0i64;
    for fragment in fragments {
        if fragment.offset < 0 || fragment.length < 0 {
            return false;
        }
        let Some(end) = fragment.offset.checked_add(fragment.length) else {
            return false;
        };
        if end > size || previous_end > fragment.offset {
            return false;
        }
        previous_end = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_follows_go() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"  644 \0\0"), Some(0o644));
        assert_eq!(parse_octal(b"\0\0\0\0\0\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"\x000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"\t644\0\0\0\0"), None);
        assert_eq!(parse_octal(b"+644\0\0\0"), None);
        assert_eq!(parse_octal(b"644 \0xx\0"), None);
        assert_eq!(parse_octal(b"64 4\0\0\0\0"), None);
        assert_eq!(parse_octal(b"0008\0\0\0\0"), None);
    }

    #[test]
    fn base256_follows_go() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 5;
        assert_eq!(parse_numeric(&field), Some(5));
        // A value that needs more than 63 bits overflows.
        field[3] = 1;
        assert_eq!(parse_numeric(&field), None);
        let negative = [0xff; 8];
        assert_eq!(parse_numeric(&negative), Some(-1));
    }

    #[test]
    fn decimal_follows_go_parse_int() {
        assert_eq!(parse_decimal(b"+12"), Some(12));
        assert_eq!(parse_decimal(b"-12"), Some(-12));
        assert_eq!(parse_decimal(b"012"), Some(12));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1_2"), None);
        assert_eq!(parse_decimal(b" 12"), None);
        assert_eq!(parse_decimal(b"9223372036854775808"), None);
    }

    #[test]
    fn pax_record_follows_go() {
        assert_eq!(
            parse_pax_record(b"12 path=abc\nrest"),
            Some((&b"path"[..], &b"abc"[..], &b"rest"[..]))
        );
        // Go's strconv.ParseInt accepts a sign on the record length.
        assert_eq!(
            parse_pax_record(b"+13 path=abc\n"),
            Some((&b"path"[..], &b"abc"[..], &b""[..]))
        );
        assert_eq!(
            parse_pax_record(b"013 path=abc\n"),
            Some((&b"path"[..], &b"abc"[..], &b""[..]))
        );
        assert_eq!(parse_pax_record(b"11 path=abc\n"), None);
        assert_eq!(parse_pax_record(b"9 =abc\n"), None);
        assert!(check_pax_nul(b"path", b"a\0c", 0).is_err());
        assert!(check_pax_nul(b"uname", b"a\0c", 0).is_err());
        assert!(check_pax_nul(b"other", b"a\0c", 0).is_ok());
        assert!(check_pax_nul(b"oth\0er", b"ac", 0).is_err());
    }

    #[test]
    fn pax_time_follows_go() {
        assert!(valid_pax_time(b"1700000000"));
        assert!(valid_pax_time(b"1700000000.5"));
        assert!(valid_pax_time(b"-1.5"));
        assert!(!valid_pax_time(b".5"));
        assert!(!valid_pax_time(b"1.5e3"));
    }
}
