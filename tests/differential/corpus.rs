//! Corpus of crafted layer tars for the differential test against Go's `archive/tar`.
//!
//! Headers are written byte by byte, because most cases are archives that the `tar` crate
//! refuses to write: bad checksums, base-256 fields, NUL bytes in names, conflicting
//! extension headers, broken sparse maps. Every case is deterministic (mtime 0, no
//! randomness), so a failure reproduces from the case name alone.

use std::io::Write as _;
use std::ops::Range;

/// Byte ranges of the tar header fields that the corpus writes.
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
    pub const PREFIX: Range<usize> = 345..500;
    pub const GNU_ATIME: Range<usize> = 345..357;
    pub const GNU_SPARSE: usize = 386;
    pub const GNU_IS_EXTENDED: usize = 482;
    pub const GNU_REAL_SIZE: Range<usize> = 483..495;
    /// Access and change times of the star format, 12 bytes each.
    pub const STAR_TIMES: Range<usize> = 476..500;
    pub const STAR_TRAILER: Range<usize> = 508..512;
}

const BLOCK: usize = 512;

/// What Go's `archive/tar` is expected to do with a case. The test checks it, so a case that
/// no longer tests what its name says (a corpus bug, or a Go release that changed) fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoExpect {
    Reads,
    Rejects,
}

/// One crafted layer blob.
pub struct Case {
    pub name: &'static str,
    pub blob: Vec<u8>,
    pub expect: GoExpect,
}

/// One 512-byte tar header under construction. The checksum is computed when the header is
/// appended, unless [`Header::checksum`] fixed it.
#[derive(Clone)]
pub struct Header {
    block: [u8; BLOCK],
    checksum: Option<Vec<u8>>,
}

impl Header {
    /// A POSIX ustar header (`ustar\0` magic, `00` version) with mode 0644, uid, gid and
    /// mtime 0.
    pub fn ustar(name: &[u8], typeflag: u8, size: u64) -> Self {
        Self::v7(name, typeflag, size)
            .field(field::MAGIC, b"ustar\0")
            .field(field::VERSION, b"00")
    }

    /// An old GNU header (`ustar ` magic, ` \0` version).
    pub fn gnu(name: &[u8], typeflag: u8, size: u64) -> Self {
        Self::v7(name, typeflag, size)
            .field(field::MAGIC, b"ustar ")
            .field(field::VERSION, b" \0")
    }

    /// A V7 header without magic.
    pub fn v7(name: &[u8], typeflag: u8, size: u64) -> Self {
        let mut header = Self {
            block: [0; BLOCK],
            checksum: None,
        };
        header.block[field::TYPEFLAG] = typeflag;
        header
            .field(field::NAME, name)
            .octal(field::MODE, 0o644)
            .octal(field::UID, 0)
            .octal(field::GID, 0)
            .octal(field::SIZE, size)
            .octal(field::MTIME, 0)
    }

    /// Writes `bytes` at the start of `range` and zeroes the rest of the field.
    pub fn field(mut self, range: Range<usize>, bytes: &[u8]) -> Self {
        assert!(bytes.len() <= range.len(), "value too long for the field");
        let target = &mut self.block[range];
        target.fill(0);
        target[..bytes.len()].copy_from_slice(bytes);
        self
    }

    /// Writes `value` as zero-padded octal digits and a NUL, as tar writers do.
    pub fn octal(self, range: Range<usize>, value: u64) -> Self {
        let width = range.len() - 1;
        let text = format!("{value:0width$o}\0");
        self.field(range, text.as_bytes())
    }

    /// Writes `value` in base-256: the high bit of the first byte set, big-endian bytes.
    pub fn base256(mut self, range: Range<usize>, value: u64) -> Self {
        let target = &mut self.block[range];
        target.fill(0);
        let bytes = value.to_be_bytes();
        let start = target.len() - bytes.len();
        target[start..].copy_from_slice(&bytes);
        target[0] |= 0x80;
        self
    }

    pub fn mode(self, mode: u64) -> Self {
        self.octal(field::MODE, mode)
    }

    pub fn link(self, target: &[u8]) -> Self {
        self.field(field::LINKNAME, target)
    }

    pub fn prefix(self, prefix: &[u8]) -> Self {
        self.field(field::PREFIX, prefix)
    }

    /// Fixes the checksum field instead of computing it.
    pub fn checksum(mut self, field_bytes: &[u8]) -> Self {
        self.checksum = Some(field_bytes.to_vec());
        self
    }

    /// Returns the header block with its checksum: the unsigned byte sum with the checksum
    /// field counted as spaces, unless [`Header::checksum`] fixed it.
    pub fn bytes(&self) -> [u8; BLOCK] {
        let mut block = self.block;
        block[field::CHECKSUM].fill(b' ');
        let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
        let text = match &self.checksum {
            Some(fixed) => fixed.clone(),
            None => format!("{sum:06o}\0 ").into_bytes(),
        };
        block[field::CHECKSUM].copy_from_slice(&text);
        block
    }
}

/// Builder of an uncompressed tar stream.
#[derive(Default)]
pub struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header, `body` and padding to the next block boundary.
    pub fn entry(mut self, header: Header, body: &[u8]) -> Self {
        self.bytes.extend_from_slice(&header.bytes());
        self.bytes.extend_from_slice(body);
        self.pad();
        self
    }

    /// Appends bytes as they are, without padding.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn pad(&mut self) {
        let padding = (BLOCK - self.bytes.len() % BLOCK) % BLOCK;
        self.bytes.resize(self.bytes.len() + padding, 0);
    }

    pub fn file(self, name: &str, body: &[u8]) -> Self {
        let header = Header::ustar(name.as_bytes(), b'0', body.len() as u64);
        self.entry(header, body)
    }

    pub fn dir(self, name: &str) -> Self {
        self.entry(Header::ustar(name.as_bytes(), b'5', 0).mode(0o755), b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        let header = Header::ustar(name.as_bytes(), b'2', 0).link(target.as_bytes());
        self.entry(header.mode(0o777), b"")
    }

    pub fn hard_link(self, name: &str, target: &str) -> Self {
        self.entry(
            Header::ustar(name.as_bytes(), b'1', 0).link(target.as_bytes()),
            b"",
        )
    }

    /// Appends a local PAX header with `records`.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        self.pax_body(b'x', &pax_records(records))
    }

    /// Appends a PAX header (`x` or `g`) with `body` as its data.
    pub fn pax_body(self, typeflag: u8, body: &[u8]) -> Self {
        let header = Header::ustar(b"PaxHeaders.0/entry", typeflag, body.len() as u64);
        self.entry(header, body)
    }

    /// Appends a GNU long name (`L`) or long link (`K`) header holding `value` and a NUL.
    pub fn gnu_long(self, typeflag: u8, value: &[u8]) -> Self {
        let mut body = value.to_vec();
        body.push(0);
        let header = Header::gnu(b"././@LongLink", typeflag, body.len() as u64);
        self.entry(header, &body)
    }

    /// Returns the archive with its two end-of-archive blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.pad();
        self.bytes.extend_from_slice(&[0; 2 * BLOCK]);
        self.bytes
    }

    /// Returns the archive without end-of-archive blocks.
    pub fn finish_without_end(self) -> Vec<u8> {
        self.bytes
    }
}

/// Encodes PAX records, each `LENGTH KEY=VALUE\n` where LENGTH counts the whole record.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3;
        let mut length = rest + rest.to_string().len();
        if length.to_string().len() != rest.to_string().len() {
            length += 1;
        }
        body.extend_from_slice(format!("{length} {key}=").as_bytes());
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    body
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip write");
    encoder.finish().expect("gzip finish")
}

/// Writes an old GNU sparse header (`S`) whose map lists `fragments` (offset, length) and
/// whose data is `physical` bytes long.
fn old_gnu_sparse(name: &[u8], fragments: &[(u64, u64)], real_size: u64, physical: u64) -> Header {
    assert!(fragments.len() <= 4, "the header holds four sparse entries");
    let mut header = Header::gnu(name, b'S', physical).octal(field::GNU_REAL_SIZE, real_size);
    for (index, (offset, length)) in fragments.iter().enumerate() {
        let start = field::GNU_SPARSE + index * 24;
        header = header
            .octal(start..start + 12, *offset)
            .octal(start + 12..start + 24, *length);
    }
    header
}

/// Writes one old GNU sparse extension block with `fragments` and the is-extended flag.
fn sparse_extension(fragments: &[(u64, u64)], extended: bool) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    for (index, (offset, length)) in fragments.iter().enumerate() {
        let start = index * 24;
        let offset_text = format!("{offset:011o}\0");
        let length_text = format!("{length:011o}\0");
        block[start..start + 12].copy_from_slice(offset_text.as_bytes());
        block[start + 12..start + 24].copy_from_slice(length_text.as_bytes());
    }
    block[504] = u8::from(extended);
    block
}

/// Returns a PAX sparse 1.0 map block listing `fragments`.
fn sparse_map_1_0(fragments: &[(u64, u64)]) -> Vec<u8> {
    let mut text = format!("{}\n", fragments.len());
    for (offset, length) in fragments {
        text.push_str(&format!("{offset}\n{length}\n"));
    }
    let mut block = text.into_bytes();
    let padded = block.len().div_ceil(BLOCK) * BLOCK;
    block.resize(padded, 0);
    block
}

/// Returns a tar with one PAX sparse 1.0 entry of 4096 bytes: the map block for `fragments`,
/// then `stored` data bytes.
fn pax_sparse_1_0(name: &[u8], fragments: &[(u64, u64)], stored: usize) -> Tar {
    let mut data = sparse_map_1_0(fragments);
    data.extend(std::iter::repeat_n(3u8, stored));
    let header = Header::ustar(b"GNUSparseFile.0/placeholder", b'0', data.len() as u64);
    Tar::new()
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.realsize", b"4096"),
            ("GNU.sparse.name", name),
        ])
        .entry(header, &data)
}

/// Returns a small tar with one file, used as data that a confused reader would take for headers.
fn hidden_tar() -> Vec<u8> {
    Tar::new()
        .file("etc/passwd", b"hidden::0:0::/:/bin/sh\n")
        .finish()
}

/// Returns an archive with one entry and the end blocks.
fn single(header: Header, body: &[u8]) -> Vec<u8> {
    Tar::new().entry(header, body).finish()
}

fn case(name: &'static str, expect: GoExpect, blob: Vec<u8>) -> Case {
    Case { name, blob, expect }
}

/// Returns every case of the corpus.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(basic_cases());
    cases.extend(extension_cases());
    cases.extend(numeric_cases());
    cases.extend(name_cases());
    cases.extend(sparse_cases());
    cases.extend(end_cases());
    cases.extend(ambiguous_cases());

    cases.extend(gzip_cases());
    cases
}

/// Fields of a hand-made gzip member header (RFC 1952, section 2.3).
#[derive(Default, Clone)]
struct GzipHeader {
    extra: Option<Vec<u8>>,
    name: Option<&'static [u8]>,
    comment: Option<&'static [u8]>,
    /// Writes the header CRC-16; `Some(true)` writes a wrong one.
    header_crc: Option<bool>,
    /// Flag bits 5 to 7, which RFC 1952 reserves.
    reserved_flags: u8,
}

/// What to change in a gzip member's trailer.
#[derive(Clone, Copy, PartialEq)]
enum Trailer {
    Correct,
    WrongCrc,
    WrongSize,
}

/// Writes one gzip member of `data` with `header`, deflated at `level`.
fn gzip_member(data: &[u8], header: &GzipHeader, level: u32, trailer: Trailer) -> Vec<u8> {
    let mut flags = header.reserved_flags;
    let mut fields = Vec::new();
    if let Some(extra) = &header.extra {
        flags |= 0x04;
        fields.extend_from_slice(&u16::try_from(extra.len()).expect("XLEN").to_le_bytes());
        fields.extend_from_slice(extra);
    }
    if let Some(name) = header.name {
        flags |= 0x08;
        fields.extend_from_slice(name);
        fields.push(0);
    }
    if let Some(comment) = header.comment {
        flags |= 0x10;
        fields.extend_from_slice(comment);
        fields.push(0);
    }
    if header.header_crc.is_some() {
        flags |= 0x02;
    }

    let mut member = vec![0x1f, 0x8b, 0x08, flags, 0, 0, 0, 0, 0, 0xff];
    member.extend_from_slice(&fields);
    if let Some(wrong) = header.header_crc {
        let mut crc = flate2::Crc::new();
        crc.update(&member);
        let value = (crc.sum() & 0xffff) as u16 ^ u16::from(wrong);
        member.extend_from_slice(&value.to_le_bytes());
    }

    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    deflate.write_all(data).expect("deflate write");
    member.extend(deflate.finish().expect("deflate finish"));

    let mut crc = flate2::Crc::new();
    crc.update(data);
    let crc = crc.sum() ^ u32::from(trailer == Trailer::WrongCrc);
    let size = (data.len() as u32).wrapping_add(u32::from(trailer == Trailer::WrongSize));
    member.extend_from_slice(&crc.to_le_bytes());
    member.extend_from_slice(&size.to_le_bytes());
    member
}

fn plain_member(data: &[u8]) -> Vec<u8> {
    gzip_member(data, &GzipHeader::default(), 6, Trailer::Correct)
}

/// Gzip framing cases: members, header fields, trailers and what follows the last member. The
/// scanner and the runtime must decode the same bytes, or reject the layer.
fn gzip_cases() -> Vec<Case> {
    use GoExpect::{Reads, Rejects};
    let tar = Tar::new().file("a", b"first").file("b", b"second").finish();
    let (head, tail) = tar.split_at(BLOCK * 2);
    let mut cases = Vec::new();

    let mut blob = gzip(head);
    blob.extend(gzip(tail));
    cases.push(case("gzip_two_members", Reads, blob));
    let mut blob = plain_member(head);
    blob.extend(plain_member(b""));
    blob.extend(plain_member(tail));
    cases.push(case("gzip_empty_member_between", Reads, blob));
    // eStargz-like: one member per 512 bytes of tar, 400 members.
    let many = Tar::new()
        .file("big", &[7u8; 200 * BLOCK])
        .file("after", b"x")
        .finish();
    let blob: Vec<u8> = many.chunks(BLOCK).flat_map(plain_member).collect();
    cases.push(case("gzip_many_members", Reads, blob));
    let stored = gzip_member(&tar, &GzipHeader::default(), 0, Trailer::Correct);
    cases.push(case("gzip_stored_blocks", Reads, stored));
    let fields = GzipHeader {
        extra: Some(b"AB\x04\0data".to_vec()),
        name: Some(b"layer.tar"),
        comment: Some(b"a comment"),
        header_crc: Some(false),
        reserved_flags: 0,
    };
    let blob = gzip_member(&tar, &fields, 6, Trailer::Correct);
    cases.push(case("gzip_header_fields", Reads, blob));
    let extra = GzipHeader {
        extra: Some(vec![0x41; 1000]),
        ..GzipHeader::default()
    };
    let blob = gzip_member(&tar, &extra, 6, Trailer::Correct);
    cases.push(case("gzip_extra_field_1000_bytes", Reads, blob));
    let extra = GzipHeader {
        extra: Some(vec![0x41; 60_000]),
        ..GzipHeader::default()
    };
    let blob = gzip_member(&tar, &extra, 6, Trailer::Correct);
    cases.push(case("gzip_extra_field_60000_bytes", Reads, blob));
    let wrong_header_crc = GzipHeader {
        header_crc: Some(true),
        ..GzipHeader::default()
    };
    let blob = gzip_member(&tar, &wrong_header_crc, 6, Trailer::Correct);
    cases.push(case("gzip_wrong_header_crc", Rejects, blob));
    let reserved = GzipHeader {
        reserved_flags: 0x20,
        ..GzipHeader::default()
    };
    let blob = gzip_member(&tar, &reserved, 6, Trailer::Correct);
    cases.push(case("gzip_reserved_flag", Reads, blob));

    let blob = gzip_member(&tar, &GzipHeader::default(), 6, Trailer::WrongCrc);
    cases.push(case("gzip_wrong_crc", Rejects, blob));
    let blob = gzip_member(&tar, &GzipHeader::default(), 6, Trailer::WrongSize);
    cases.push(case("gzip_wrong_size", Rejects, blob));
    let mut blob = plain_member(head);
    blob.extend(gzip_member(
        tail,
        &GzipHeader::default(),
        6,
        Trailer::WrongCrc,
    ));
    cases.push(case("gzip_second_member_wrong_crc", Rejects, blob));
    let mut blob = plain_member(&tar);
    blob.truncate(blob.len() - 3);
    cases.push(case("gzip_truncated_trailer", Rejects, blob));
    let mut blob = plain_member(&tar);
    blob.truncate(blob.len() / 2);
    cases.push(case("gzip_truncated_deflate", Rejects, blob));

    let mut blob = gzip(&Tar::new().file("a", b"1").finish());
    blob.extend_from_slice(b"trailing garbage after the gzip member");
    cases.push(case("gzip_trailing_garbage", Rejects, blob));
    let mut blob = gzip(&Tar::new().file("a", b"1").finish());
    blob.extend_from_slice(&[0; BLOCK]);
    cases.push(case("gzip_trailing_zeros", Rejects, blob));
    let mut blob = plain_member(&tar);
    blob.extend_from_slice(&[0x1f, 0x8b]);
    cases.push(case("gzip_trailing_partial_magic", Rejects, blob));
    let mut blob = plain_member(&tar);
    blob.extend_from_slice(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);
    cases.push(case("gzip_trailing_header_only", Rejects, blob));
    let mut blob = plain_member(&tar);
    blob.extend(plain_member(&hidden_tar()));
    cases.push(case("gzip_second_member_after_tar_end", Reads, blob));
    cases
}

fn basic_cases() -> Vec<Case> {
    use GoExpect::Reads;
    let all_types = Tar::new()
        .dir("etc/")
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .symlink("etc/localtime", "../usr/share/zoneinfo/UTC")
        .hard_link("etc/hosts.bak", "./etc/hosts")
        .entry(Header::ustar(b"dev/null", b'3', 0).mode(0o666), b"")
        .entry(Header::ustar(b"dev/sda", b'4', 0).mode(0o660), b"")
        .entry(Header::ustar(b"run/fifo", b'6', 0).mode(0o600), b"")
        .entry(Header::ustar(b"opt/contiguous", b'7', 3), b"abc")
        .entry(Header::ustar(b"opt/unknown", b'Z', 2), b"zz")
        .entry(Header::ustar(b"bin/su", b'0', 1).mode(0o104755), b"x")
        .finish();
    let duplicates = Tar::new()
        .file("app/config", b"one")
        .dir("app/config")
        .file("app/config", b"three")
        .symlink("app/config", "/etc/passwd")
        .finish();
    let escapes = Tar::new()
        .file("../../etc/escape", b"1")
        .file("/abs/file", b"2")
        .file("./a/../b/./c", b"3")
        .dir("./")
        .symlink("link", "../../../../etc/shadow")
        .hard_link("hard", "../../outside/target")
        .finish();
    let whiteouts = Tar::new()
        .entry(Header::ustar(b".wh..wh..opq", b'5', 0), b"")
        .symlink("usr/.wh.bin", "/tmp")
        .entry(Header::ustar(b"var/.wh.", b'0', 0), b"")
        .entry(Header::ustar(b"opt/.wh.app/", b'\0', 0), b"")
        .hard_link("srv/.wh..wh..opq", "etc/hosts")
        .finish();
    let missing_target = Tar::new()
        .hard_link("bin/tool", "does/not/exist")
        .file("after", b"x")
        .finish();
    let v7_dir = Tar::new()
        .entry(Header::v7(b"legacy/", b'\0', 0), b"")
        .entry(Header::v7(b"legacy/file", b'\0', 2), b"hi")
        .finish();
    vec![
        case("all_entry_types", Reads, all_types),
        case("duplicate_paths", Reads, duplicates),
        case("dotdot_and_absolute_paths", Reads, escapes),
        case("whiteouts_in_odd_places", Reads, whiteouts),
        case("hard_link_to_missing_target", Reads, missing_target),
        case("v7_headers_with_old_type", Reads, v7_dir),
    ]
}

fn extension_cases() -> Vec<Case> {
    use GoExpect::{Reads, Rejects};
    // The ustar size is 0 and the PAX size 1024; the 1024 bytes hold a header that a reader
    // ignoring the PAX size would take for an entry.
    let hidden = hidden_tar();
    let tarmageddon = Tar::new()
        .pax(&[("size", b"1024")])
        .entry(Header::ustar(b"outer", b'0', 0), &hidden[..1024])
        .file("after", b"x")
        .finish();
    let global = Tar::new()
        .pax_body(
            b'g',
            &pax_records(&[("path", b"etc/evil"), ("mtime", b"not-a-time")]),
        )
        .file("a", b"1")
        .finish();
    let long_name = format!("usr/share/{}/file.txt", "n".repeat(200));
    let long_link = format!("usr/lib/{}/libc.so", "l".repeat(200));
    let gnu_long = Tar::new()
        .gnu_long(b'L', long_name.as_bytes())
        .entry(Header::gnu(b"short", b'0', 1), b"x")
        .gnu_long(b'K', long_link.as_bytes())
        .gnu_long(b'L', b"lib/libc.so")
        .entry(Header::gnu(b"short-link", b'1', 0).link(b"x"), b"")
        .finish();
    let long_name_in_ustar = Tar::new()
        .entry(Header::ustar(b"././@LongLink", b'L', 12), b"from/ustar\0\0")
        .file("ignored", b"1")
        .finish();
    let pax_v7_body = pax_records(&[("path", b"from/v7/pax")]);
    let pax_in_v7 = Tar::new()
        .entry(
            Header::v7(b"PaxHeaders/x", b'x', pax_v7_body.len() as u64),
            &pax_v7_body,
        )
        .entry(Header::v7(b"plain", b'0', 1), b"x")
        .finish();
    let trailing_slash = Tar::new()
        .pax(&[("path", b"srv/data/")])
        .entry(Header::ustar(b"placeholder", b'\0', 0), b"")
        .pax(&[("path", b"srv/file/")])
        .entry(Header::ustar(b"placeholder", b'0', 0), b"")
        .finish();
    let target = format!("/usr/{}/target", "t".repeat(120));
    let linkpath = Tar::new()
        .pax(&[("linkpath", target.as_bytes())])
        .symlink("link", "short")
        .pax(&[("linkpath", b"../etc/./passwd")])
        .hard_link("hard", "short")
        .finish();
    let bad_length = Tar::new()
        .pax_body(b'x', b"99 path=short\n")
        .file("a", b"1")
        .finish();
    let huge = {
        let mut body = pax_records(&[("comment", &vec![b'c'; 1 << 20])]);
        body.truncate((1 << 20) + 1);
        Tar::new().pax_body(b'x', &body).file("a", b"1").finish()
    };
    let at_limit = {
        // A comment record of 1 MiB minus 17 bytes of framing ("1048576 comment=" and a
        // newline), minus the path record, fills the body to exactly 1 MiB.
        let path = pax_records(&[("path", b"big")]);
        let filler = (1 << 20) - path.len() - 17;
        let mut body = pax_records(&[("comment", &vec![b'c'; filler])]);
        body.extend(path);
        assert_eq!(body.len(), 1 << 20, "PAX body is not 1 MiB");
        Tar::new().pax_body(b'x', &body).file("a", b"1").finish()
    };
    let bad_mtime = Tar::new()
        .pax(&[("mtime", b"yesterday")])
        .file("a", b"1")
        .finish();
    let signed_records = Tar::new()
        .pax(&[
            ("uid", b"+5"),
            ("mtime", b"-1.5"),
            ("size", b"+2"),
            ("path", b""),
        ])
        .entry(Header::ustar(b"kept-name", b'0', 0), b"ab")
        .finish();
    let negative_size = Tar::new().pax(&[("size", b"-1")]).file("a", b"").finish();
    let nul_in_path = Tar::new()
        .pax(&[("path", b"etc/passwd\0.txt")])
        .file("a", b"1")
        .finish();
    let eof_after_extension = Tar::new().gnu_long(b'L', b"never/used").finish();
    vec![
        case("pax_size_overrides_zero_ustar_size", Reads, tarmageddon),
        case("global_pax_header", Reads, global),
        case("gnu_long_name_and_long_link", Reads, gnu_long),
        case("gnu_long_name_in_ustar_header", Reads, long_name_in_ustar),
        case("pax_header_in_v7_header", Reads, pax_in_v7),
        case("pax_path_with_trailing_slash", Reads, trailing_slash),
        case("pax_linkpath", Reads, linkpath),
        case("pax_record_with_bad_length", Rejects, bad_length),
        case("pax_header_over_1_mib", Rejects, huge),
        case("pax_header_at_1_mib", Reads, at_limit),
        case("pax_invalid_mtime", Rejects, bad_mtime),
        case("pax_signed_numbers_and_empty_path", Reads, signed_records),
        case("pax_negative_size", Rejects, negative_size),
        case("pax_path_with_nul", Rejects, nul_in_path),
        case("extension_header_then_end", Reads, eof_after_extension),
    ]
}

fn numeric_cases() -> Vec<Case> {
    use GoExpect::{Reads, Rejects};
    let base256 = Tar::new()
        .entry(
            Header::ustar(b"big-fields", b'0', 0)
                .base256(field::SIZE, 5)
                .base256(field::MODE, 0o4755)
                .base256(field::UID, 1 << 40),
            b"12345",
        )
        .file("after", b"x")
        .finish();
    // The low 8 bytes encode 5, but the value has bits above bit 63. Go rejects it, and a
    // reader that keeps only the low bytes reads a size of 5.
    let overflow = single(
        Header::ustar(b"overflow", b'0', 0)
            .base256(field::SIZE, 5)
            .field(field::SIZE.start + 1..field::SIZE.start + 4, &[0, 0, 1]),
        b"12345",
    );
    let negative = Tar::new()
        .entry(
            Header::ustar(b"negative", b'0', 0).field(field::SIZE, &[0xff; 12]),
            b"",
        )
        .finish();
    let tab_size = single(
        Header::ustar(b"tab", b'0', 0).field(field::SIZE, b"\t0000000005\0"),
        b"12345",
    );
    let plus_mode = single(
        Header::ustar(b"plus", b'0', 1).field(field::MODE, b"+000644\0"),
        b"x",
    );
    let garbage_after_nul = single(
        Header::ustar(b"cut", b'0', 0).field(field::SIZE, b"5 \0garbage\0\0"),
        b"12345",
    );
    let bad_uid = single(
        Header::ustar(b"uid", b'0', 1).field(field::UID, b"abcdefg\0"),
        b"x",
    );
    let padded_fields = single(
        Header::ustar(b"padded", b'0', 0)
            .field(field::SIZE, b"  5 \0\0\0\0\0\0\0\0")
            .field(field::MODE, &[0, 0, b'7', b'5', b'5', b' ', 0, 0]),
        b"12345",
    );
    vec![
        case("base256_size_mode_uid", Reads, base256),
        case("base256_size_overflow", Rejects, overflow),
        case("base256_negative_size", Rejects, negative),
        case("tab_in_size_field", Rejects, tab_size),
        case("plus_sign_in_mode_field", Rejects, plus_mode),
        case("size_text_after_space", Rejects, garbage_after_nul),
        case("invalid_uid_field", Rejects, bad_uid),
        case("numeric_fields_with_padding", Reads, padded_fields),
    ]
}

fn name_cases() -> Vec<Case> {
    use GoExpect::Reads;
    let nul_in_field = Tar::new()
        .entry(Header::ustar(b"etc/passwd\0.txt", b'0', 1), b"x")
        .gnu_long(b'L', b"etc/shadow\0.bak")
        .entry(Header::gnu(b"short", b'0', 1), b"y")
        .finish();
    let non_utf8 = Tar::new()
        .file("caf\u{e9}", b"1")
        .entry(Header::ustar(b"bad\xff\xfe/name\\x", b'0', 1), b"2")
        .symlink("link", "target")
        .entry(
            Header::ustar(b"raw-link", b'2', 0).link(b"\xc3\x28/target"),
            b"",
        )
        .finish();
    let prefix = single(Header::ustar(b"libc.so", b'0', 1).prefix(b"usr/lib"), b"x");
    let prefix_odd_version = single(
        Header::ustar(b"name", b'0', 1)
            .prefix(b"from/prefix")
            .field(field::VERSION, b"  "),
        b"x",
    );
    let prefix_nul_version = single(
        Header::ustar(b"name", b'0', 1)
            .prefix(b"nul/version")
            .field(field::VERSION, b"\0\0"),
        b"x",
    );
    // With the star trailer, Go reads a 131-byte prefix and star's access and change times
    // after it. A reader that takes all 155 bytes as the prefix reads the times into the name.
    let star = single(
        Header::ustar(b"name", b'0', 1)
            .prefix(&[b'p'; 131])
            .octal(field::STAR_TIMES.start..field::STAR_TIMES.start + 12, 0)
            .octal(field::STAR_TIMES.start + 12..field::STAR_TIMES.end, 0)
            .field(field::STAR_TRAILER, b"tar\0"),
        b"x",
    );
    // A GNU header whose access time does not parse: Go reads the field as a ustar prefix,
    // as pre-1.8 Go writers put it there.
    let gnu_prefix = single(
        Header::gnu(b"name", b'0', 1)
            .field(field::PREFIX, b"")
            .field(field::GNU_ATIME, b"fromprefix"),
        b"x",
    );
    vec![
        case("nul_in_name_fields", Reads, nul_in_field),
        case("non_utf8_names", Reads, non_utf8),
        case("ustar_prefix_and_name", Reads, prefix),
        case("ustar_prefix_with_odd_version", Reads, prefix_odd_version),
        case("ustar_prefix_with_nul_version", Reads, prefix_nul_version),
        case("star_trailer_short_prefix", Reads, star),
        case("gnu_header_with_prefix_fallback", Reads, gnu_prefix),
    ]
}

fn sparse_cases() -> Vec<Case> {
    use GoExpect::{Reads, Rejects};
    let old_gnu = Tar::new()
        .entry(
            old_gnu_sparse(b"sparse/old", &[(0, 512), (4096, 512)], 8192, 1024),
            &[7u8; 1024],
        )
        .file("after", b"x")
        .finish();
    let extended = {
        let header = old_gnu_sparse(
            b"sparse/extended",
            &[(0, 10), (100, 10), (200, 10), (300, 10)],
            1000,
            60,
        )
        .field(field::GNU_IS_EXTENDED..field::GNU_IS_EXTENDED + 1, &[1]);
        let mut tar = Tar::new().raw(&header.bytes());
        tar = tar.raw(&sparse_extension(&[(400, 10), (990, 10)], false));
        // 60 bytes of data and the padding to the block boundary.
        tar.raw(&[5u8; 60])
            .raw(&[0u8; BLOCK - 60])
            .file("after", b"x")
            .finish()
    };
    let overlapping = Tar::new()
        .entry(
            old_gnu_sparse(b"sparse/overlap", &[(0, 600), (512, 100)], 4096, 700),
            &[1u8; 700],
        )
        .finish();
    let pax_0_0 = Tar::new()
        .pax(&[
            ("GNU.sparse.size", b"4096"),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.offset", b"0"),
            ("GNU.sparse.numbytes", b"5"),
            ("GNU.sparse.offset", b"1000"),
            ("GNU.sparse.numbytes", b"5"),
            ("GNU.sparse.name", b"sparse/pax-0.0"),
        ])
        .entry(
            Header::ustar(b"GNUSparseFile.0/placeholder", b'0', 10),
            b"0123456789",
        )
        .finish();
    let pax_0_1 = Tar::new()
        .pax(&[
            ("GNU.sparse.major", b"0"),
            ("GNU.sparse.minor", b"1"),
            ("GNU.sparse.size", b"2048"),
            ("GNU.sparse.numblocks", b"1"),
            ("GNU.sparse.map", b"1024,3"),
            ("GNU.sparse.name", b"sparse/pax-0.1"),
        ])
        .entry(
            Header::ustar(b"GNUSparseFile.0/placeholder", b'0', 3),
            b"abc",
        )
        .finish();
    let pax_1_0 = pax_sparse_1_0(b"sparse/pax-1.0", &[(0, 512), (2048, 512)], 1024)
        .file("after", b"x")
        .finish();
    // The map covers 512 bytes, but the entry stores 1024.
    let unreferenced = pax_sparse_1_0(b"sparse/unreferenced", &[(0, 512)], 1024).finish();
    let unknown_version = Tar::new()
        .pax(&[
            ("GNU.sparse.major", b"2"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"sparse/unknown-version"),
        ])
        .entry(Header::ustar(b"GNUSparseFile.0/placeholder", b'0', 1), b"x")
        .finish();
    vec![
        case("old_gnu_sparse", Reads, old_gnu),
        case("old_gnu_sparse_extension_block", Reads, extended),
        case("old_gnu_sparse_overlapping_map", Rejects, overlapping),
        case("pax_sparse_0_0", Reads, pax_0_0),
        case("pax_sparse_0_1", Reads, pax_0_1),
        case("pax_sparse_1_0", Reads, pax_1_0),
        case("pax_sparse_unreferenced_data", Rejects, unreferenced),
        case("pax_sparse_unknown_version", Reads, unknown_version),
    ]
}

fn end_cases() -> Vec<Case> {
    use GoExpect::{Reads, Rejects};
    let full = Tar::new().file("a", &[1u8; 700]).file("b", b"2").finish();
    let mid_header = full[..BLOCK * 3 + 100].to_vec();
    let mid_body = full[..BLOCK + 300].to_vec();
    let mid_padding = full[..BLOCK + 700].to_vec();
    let mut garbage = full.clone();
    garbage.extend_from_slice(b"trailing garbage after the end blocks");
    let no_end = Tar::new()
        .file("a", b"1")
        .file("b", b"2")
        .finish_without_end();
    let zero_then_data = {
        let mut tar = Tar::new().file("a", b"1").finish_without_end();
        tar.extend_from_slice(&[0; BLOCK]);
        tar.extend(hidden_tar());
        tar
    };
    let bad_checksum = single(Header::ustar(b"a", b'0', 1).checksum(b"0000000\0"), b"x");
    let signed_checksum = {
        let header = Header::ustar(b"\xe9t\xe9", b'0', 1);
        let mut block = header.bytes();
        block[field::CHECKSUM].fill(b' ');
        let signed: i64 = block.iter().map(|b| i64::from(*b as i8)).sum();
        let text = format!("{signed:06o}\0 ");
        Tar::new()
            .entry(header.checksum(text.as_bytes()), b"x")
            .finish()
    };
    let empty = Vec::new();
    vec![
        case("truncated_mid_header", Rejects, mid_header),
        case("truncated_mid_body", Rejects, mid_body),
        case("truncated_mid_padding", Reads, mid_padding),
        case("trailing_garbage_after_end", Reads, garbage),
        case("no_end_blocks", Reads, no_end),
        case("one_zero_block_then_data", Rejects, zero_then_data),
        case("bad_checksum", Rejects, bad_checksum),
        case("signed_checksum", Reads, signed_checksum),
        case("empty_blob", Reads, empty),
    ]
}

fn ambiguous_cases() -> Vec<Case> {
    use GoExpect::Reads;
    let hidden = hidden_tar();
    let dir_with_size = single(Header::ustar(b"dir/", b'5', 1024), &hidden[..1024]);
    let hard_link_with_size = single(
        Header::ustar(b"hard", b'1', 512).link(b"target"),
        &hidden[..512],
    );
    let pax_then_long_name = Tar::new()
        .pax(&[("path", b"from/pax")])
        .gnu_long(b'L', b"from/gnu")
        .entry(Header::gnu(b"short", b'0', 1), b"x")
        .finish();
    let two_pax = Tar::new()
        .pax(&[("path", b"first")])
        .pax(&[("path", b"second")])
        .file("short", b"x")
        .finish();
    let pax_then_global = Tar::new()
        .pax(&[("path", b"from/local")])
        .pax_body(b'g', &pax_records(&[("comment", b"global")]))
        .file("short", b"x")
        .finish();
    vec![
        case("directory_with_data", Reads, dir_with_size),
        case("hard_link_with_data", Reads, hard_link_with_size),
        case("pax_path_then_gnu_long_name", Reads, pax_then_long_name),
        case("two_pax_headers", Reads, two_pax),
        case("local_pax_then_global_pax", Reads, pax_then_global),
    ]
}
