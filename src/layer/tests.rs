//! Tests of the layer walk on tars built in memory.

use super::*;
use crate::digest::Sha256Digest;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;

// Fixture builders.

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Builder of in-memory tars. Names are written into the header bytes as given, so fixtures
/// can hold `..`, `./` and non-UTF-8 names, which the `tar` crate's path setters reject.
struct TarFixture {
    builder: tar::Builder<Vec<u8>>,
}

impl TarFixture {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(mut self, name: &[u8], typeflag: u8, link: &[u8], body: &[u8]) -> Self {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        // Written directly: the `tar` crate maps `\0` to `0` when it sets the type.
        header.as_old_mut().linkflag = [typeflag];
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_cksum();
        self.builder
            .append(&header, body)
            .expect("append raw entry");
        self
    }

    /// Appends a header whose size field is `declared` but followed by `body`.
    fn raw_sized(mut self, name: &[u8], typeflag: u8, declared: u64, body: &[u8]) -> Self {
        let mut header = tar::Header::new_ustar();
        header.set_size(declared);
        header.set_mode(0o644);
        header.as_old_mut().linkflag = [typeflag];
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        self.builder
            .append(&header, body)
            .expect("append sized entry");
        self
    }

    fn file(self, name: &str, body: &[u8]) -> Self {
        self.raw(name.as_bytes(), b'0', b"", body)
    }

    fn file_mode(mut self, name: &str, mode: u32, body: &[u8]) -> Self {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, name, body)
            .expect("append file");
        self
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'2', target.as_bytes(), b"")
    }

    fn hard_link(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'1', target.as_bytes(), b"")
    }

    fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .expect("append pax");
        self
    }

    fn gnu_long(mut self, name: &str, body: &[u8]) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, name, body)
            .expect("append long name");
        self
    }

    fn gnu_long_link(mut self, name: &str, target: &str) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_mode(0o644);
        self.builder
            .append_link(&mut header, name, target)
            .expect("append long link");
        self
    }

    /// Returns the archive with its two end-of-archive blocks.
    fn finish(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }

    /// Returns the archive without end-of-archive blocks, as umoci 0.4.7 writes it.
    fn finish_without_end(self) -> Vec<u8> {
        let mut bytes = self.finish();
        bytes.truncate(bytes.len() - 1024);
        bytes
    }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + rest.to_string().len();
    if len.to_string().len() != rest.to_string().len() {
        len += 1;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip write");
    encoder.finish().expect("gzip finish")
}

fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd encode")
}

/// Builds a zstd skippable frame, the kind zstd:chunked uses for its metadata.
fn zstd_skippable(payload: &[u8]) -> Vec<u8> {
    let mut frame = 0x184D_2A50u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

async fn walk(blob: &[u8]) -> Result<LayerIndex, LayerError> {
    walk_with(blob, &WalkLimits::default()).await
}

async fn walk_with(blob: &[u8], limits: &WalkLimits) -> Result<LayerIndex, LayerError> {
    walk_layer(blob, &sha256(blob), None, limits).await
}

fn paths(index: &LayerIndex) -> Vec<String> {
    index.entries().iter().map(|e| e.path()).collect()
}

fn two_files() -> Vec<u8> {
    TarFixture::new()
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .file("bin/sh", b"ELF")
        .finish()
}

// Compression and digests.

#[tokio::test]
async fn walk_plain_tar() {
    let index = walk(&two_files()).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn walk_gzip_tar() {
    let index = walk(&gzip(&two_files())).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn walk_zstd_tar() {
    let index = walk(&zstd_frame(&two_files())).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn walk_records_digest() {
    let blob = gzip(&two_files());
    let index = walk(&blob).await.expect("walk");
    assert_eq!(index.digest, sha256(&blob));
}

#[tokio::test]
async fn walk_empty_blob() {
    let index = walk(b"").await.expect("walk");
    assert!(index.entries().is_empty());
}

#[tokio::test]
async fn gzip_second_member_is_read() {
    let tar = two_files();
    let (first, second) = tar.split_at(512 + 512 + 100);
    let mut blob = gzip(first);
    blob.extend(gzip(second));
    let index = walk(&blob).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn zstd_second_frame_is_read() {
    let tar = two_files();
    let (first, second) = tar.split_at(1024);
    let mut blob = zstd_frame(first);
    blob.extend(zstd_frame(second));
    let index = walk(&blob).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn zstd_skippable_frame_is_accepted() {
    let mut blob = zstd_frame(&two_files());
    blob.extend(zstd_skippable(b"{\"toc\":[]}"));
    let index = walk(&blob).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn zstd_leading_skippable_frame_is_read() {
    let mut blob = zstd_skippable(b"metadata");
    blob.extend(zstd_frame(&two_files()));
    let index = walk(&blob).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn gzip_trailing_garbage_is_rejected() {
    let mut blob = gzip(&two_files());
    blob.extend_from_slice(b"not a gzip member");
    let error = walk(&blob)
        .await
        .expect_err("garbage after the gzip stream");
    assert!(
        matches!(
            error,
            LayerError::Decompress {
                compression: Compression::Gzip,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn gzip_truncated_is_rejected() {
    let blob = gzip(&two_files());
    let cut = &blob[..blob.len() - 10];
    let error = walk(cut).await.expect_err("truncated gzip");
    assert!(matches!(error, LayerError::Decompress { .. }), "{error}");
}

#[tokio::test]
async fn digest_mismatch_names_both_digests() {
    let blob = gzip(&two_files());
    let wrong = format!("sha256:{}", "0".repeat(64));
    let error = walk_layer(&blob[..], &wrong, None, &WalkLimits::default())
        .await
        .expect_err("wrong digest");
    assert!(
        matches!(error, LayerError::DigestMismatch { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&wrong), "{message}");
    assert!(message.contains(&sha256(&blob)), "{message}");
}

#[tokio::test]
async fn digest_mismatch_wins_over_tar_error() {
    // A damaged blob also breaks the tar, and the digest error explains both.
    let mut tar = two_files();
    tar.truncate(700);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let error = walk_layer(&tar[..], &wrong, None, &WalkLimits::default())
        .await
        .expect_err("wrong");
    assert!(
        matches!(error, LayerError::DigestMismatch { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn checked_walk_leaves_digest_to_reader() {
    // The registry's blob stream checks the digest, so the walk must not check it again.
    let blob = gzip(&two_files());
    let other = format!("sha256:{}", "0".repeat(64));
    let result = walk_checked_layer(&blob[..], &other, None, &WalkLimits::default()).await;
    let index = result.expect("walk of a blob whose reader checks the digest");
    assert_eq!(paths(&index), ["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn diff_id_mismatch_is_rejected() {
    let tar = two_files();
    let blob = gzip(&tar);
    let wrong = sha256(b"other");
    let error = walk_layer(
        &blob[..],
        &sha256(&blob),
        Some(&wrong),
        &WalkLimits::default(),
    )
    .await
    .expect_err("wrong diff_id");
    assert!(
        matches!(error, LayerError::DiffIdMismatch { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&wrong), "{message}");
    assert!(message.contains(&sha256(&tar)), "{message}");
    // A walk that leaves the blob's digest to its reader still checks the diff_id.
    let limits = WalkLimits::default();
    let checked = walk_checked_layer(&blob[..], &sha256(&blob), Some(&wrong), &limits).await;
    assert!(
        matches!(checked, Err(LayerError::DiffIdMismatch { .. })),
        "{checked:?}"
    );
}

#[tokio::test]
async fn diff_id_match_is_accepted() {
    let tar = two_files();
    let blob = zstd_frame(&tar);
    let result = walk_layer(
        &blob[..],
        &sha256(&blob),
        Some(&sha256(&tar)),
        &WalkLimits::default(),
    )
    .await;
    assert!(result.is_ok(), "{:?}", result.err());
}

#[tokio::test]
async fn sha512_digest_is_rejected() {
    let digest = format!("sha512:{}", "ab".repeat(64));
    let error = walk_layer(&b""[..], &digest, None, &WalkLimits::default())
        .await
        .expect_err("sha512");
    assert!(matches!(error, LayerError::InvalidDigest(_)), "{error}");
    assert!(error.to_string().contains("sha512"), "{error}");
}

#[tokio::test]
async fn invalid_diff_id_is_rejected() {
    let error = walk_layer(
        &b""[..],
        &sha256(b""),
        Some("sha256:xyz"),
        &WalkLimits::default(),
    )
    .await
    .expect_err("malformed diff_id");
    assert!(matches!(error, LayerError::InvalidDiffId(_)), "{error}");
}

/// A blob whose read fails after `ok` bytes, like a dropped registry connection.
struct FailingReader {
    data: Vec<u8>,
    ok: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.ok == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("connection reset")));
        }
        let n = self.ok.min(buf.remaining()).min(self.data.len());
        let chunk: Vec<u8> = self.data.drain(..n).collect();
        buf.put_slice(&chunk);
        self.ok -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn blob_read_error_is_reported() {
    let blob = gzip(&two_files());
    let reader = FailingReader {
        data: blob.clone(),
        ok: 20,
    };
    let error = walk_layer(reader, &sha256(&blob), None, &WalkLimits::default())
        .await
        .expect_err("read error");
    assert!(matches!(error, LayerError::Read(_)), "{error}");
    assert!(error.to_string().contains("connection reset"), "{error}");
}

// Archive end and truncation.

#[tokio::test]
async fn tar_without_end_blocks_is_complete() {
    let tar = TarFixture::new()
        .file("a", b"1")
        .file("b", b"2")
        .finish_without_end();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/a", "/b"]);
}

#[tokio::test]
async fn tar_with_one_end_block_is_complete() {
    let mut tar = two_files();
    tar.truncate(tar.len() - 512);
    let index = walk(&tar).await.expect("walk");
    assert_eq!(index.entries().len(), 2);
}

/// Walks `tar` cut to `len` bytes and checks that the walk fails with a tar format error.
async fn assert_truncation_rejected(mut tar: Vec<u8>, len: usize) {
    tar.truncate(len);
    let result = walk(&tar).await;
    assert!(
        matches!(result, Err(LayerError::Tar { .. })),
        "{:?}",
        result.err()
    );
}

#[tokio::test]
async fn truncated_header_is_rejected() {
    let fixture = TarFixture::new().file("a", b"1").file("b", b"2");
    assert_truncation_rejected(fixture.finish_without_end(), 1024 + 300).await;
}

#[tokio::test]
async fn truncated_body_is_rejected() {
    let fixture = TarFixture::new().file("big", &[7u8; 3000]);
    assert_truncation_rejected(fixture.finish_without_end(), 512 + 1000).await;
}

#[tokio::test]
async fn truncated_captured_body_is_rejected() {
    let fixture = TarFixture::new().file("etc/passwd", &[b'x'; 3000]);
    assert_truncation_rejected(fixture.finish_without_end(), 512 + 1000).await;
}

#[tokio::test]
async fn truncated_padding_is_rejected() {
    // Go reads an archive cut inside the last entry's padding as complete; the walk rejects
    // it as truncated.
    let fixture = TarFixture::new().file("a", &[1u8; 100]);
    assert_truncation_rejected(fixture.finish_without_end(), 512 + 100).await;
}

#[tokio::test]
async fn trailing_data_after_end_is_ignored() {
    let mut tar = two_files();
    tar.extend_from_slice(b"trailing garbage that is not a tar header");
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/hosts", "/bin/sh"]);
}

#[tokio::test]
async fn trailing_data_after_end_is_hashed() {
    let clean = two_files();
    let mut tar = clean.clone();
    tar.extend_from_slice(&[0x55; 4096]);
    let limits = WalkLimits::default();
    let with_all = walk_layer(&tar[..], &sha256(&tar), Some(&sha256(&tar)), &limits).await;
    let without = walk_layer(&tar[..], &sha256(&tar), Some(&sha256(&clean)), &limits).await;
    assert!(with_all.is_ok(), "{:?}", with_all.err());
    assert!(
        matches!(without, Err(LayerError::DiffIdMismatch { .. })),
        "{:?}",
        without.err()
    );
}

#[tokio::test]
async fn trailing_data_after_gzip_tar_end_is_hashed() {
    let mut tar = two_files();
    tar.extend_from_slice(&[0x55; 4096]);
    let blob = gzip(&tar);
    let result = walk_layer(
        &blob[..],
        &sha256(&blob),
        Some(&sha256(&tar)),
        &WalkLimits::default(),
    )
    .await;
    assert!(result.is_ok(), "{:?}", result.err());
}

#[tokio::test]
async fn data_after_single_zero_block_is_rejected() {
    let mut tar = TarFixture::new().file("a", b"1").finish_without_end();
    tar.extend_from_slice(&[0u8; 512]);
    tar.extend(TarFixture::new().file("hidden", b"2").finish());
    let error = walk(&tar).await.expect_err("entry after one zero block");
    assert!(matches!(error, LayerError::TarEnd { .. }), "{error}");
}

#[tokio::test]
async fn partial_second_end_block_is_rejected() {
    let mut tar = TarFixture::new().file("a", b"1").finish_without_end();
    tar.extend_from_slice(&[0u8; 700]);
    let error = walk(&tar).await.expect_err("partial end block");
    assert!(matches!(error, LayerError::TarEnd { .. }), "{error}");
}

// Extensions.

#[tokio::test]
async fn pax_size_overrides_ustar_size() {
    // The ustar size says 0, the PAX size 1024; the 1024 bytes hold a fake header that a
    // reader ignoring PAX size would take for an entry.
    let hidden = TarFixture::new()
        .file("etc/passwd", b"root::0:0::/:/bin/sh\n")
        .finish();
    let body = &hidden[..1024];
    let tar = TarFixture::new()
        .pax(&[("size", b"1024")])
        .raw_sized(b"outer", b'0', 0, body)
        .file("after", b"x")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/outer", "/after"]);
    assert_eq!(index.entries().first().map(|e| e.size), Some(1024));
    assert!(!index.captured.contains_key("/etc/passwd"));
}

#[tokio::test]
async fn pax_path_is_used() {
    let long = format!("opt/{}/config", "d".repeat(150));
    let tar = TarFixture::new()
        .pax(&[("path", long.as_bytes())])
        .file("short", b"x")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec![format!("/{long}").as_str()]);
}

#[tokio::test]
async fn pax_linkpath_is_used() {
    let target = format!("/usr/{}/target", "t".repeat(120));
    let tar = TarFixture::new()
        .pax(&[("linkpath", target.as_bytes())])
        .symlink("link", "x")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let link = index.entries().first().and_then(|e| e.link_target);
    assert_eq!(link, Some(target.as_str()));
}

#[tokio::test]
async fn pax_path_with_nul_is_rejected() {
    let tar = TarFixture::new()
        .pax(&[("path", b"etc/passwd\0.txt")])
        .file("x", b"1")
        .finish();
    let error = walk(&tar).await.expect_err("NUL in path");
    assert!(matches!(error, LayerError::NulInName { .. }), "{error}");
}

#[tokio::test]
async fn gnu_long_name_is_used() {
    let long = format!("usr/share/{}/file.txt", "n".repeat(200));
    let tar = TarFixture::new().gnu_long(&long, b"x").finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec![format!("/{long}").as_str()]);
}

#[tokio::test]
async fn gnu_long_link_is_used() {
    let target = format!("usr/lib/{}/libc.so", "l".repeat(200));
    let tar = TarFixture::new()
        .gnu_long_link("lib/libc.so", &target)
        .finish();
    let index = walk(&tar).await.expect("walk");
    let entry = index.entries().first();
    assert_eq!(entry.map(|e| e.kind), Some(EntryKind::HardLink));
    assert_eq!(
        entry.and_then(|e| e.link_target),
        Some(format!("/{target}").as_str())
    );
}

#[tokio::test]
async fn global_pax_header_is_skipped() {
    let body = pax_record("path", b"etc/evil");
    let tar = TarFixture::new()
        .raw(b"pax_global_header", b'g', b"", &body)
        .file("a", b"1")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/a"]);
}

/// Returns the data of a PAX sparse 1.0 entry without data fragments: a map block that lists
/// zero fragments, which Go's archive/tar needs before the data.
fn sparse_1_0_empty_map() -> Vec<u8> {
    let mut block = b"0\n".to_vec();
    block.resize(512, 0);
    block
}

#[tokio::test]
async fn pax_sparse_name_is_used() {
    let tar = TarFixture::new()
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"etc/shadow"),
            ("GNU.sparse.realsize", b"4096"),
        ])
        .file("GNUSparseFile.0/shadow", &sparse_1_0_empty_map())
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/shadow"]);
    assert_eq!(index.entries().first().map(|e| e.size), Some(4096));
}

#[tokio::test]
async fn pax_sparse_captured_file_is_rejected() {
    let tar = TarFixture::new()
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"etc/passwd"),
            ("GNU.sparse.realsize", b"100"),
        ])
        .file("GNUSparseFile.0/passwd", &sparse_1_0_empty_map())
        .finish();
    let error = walk(&tar).await.expect_err("sparse passwd");
    assert!(
        matches!(error, LayerError::SparseCapturedFile { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn oversized_extension_is_rejected() {
    let long_name = vec![b'a'; (MAX_EXTENSION_BYTES + 1024) as usize];
    let tar = TarFixture::new()
        .raw(b"././@LongLink", b'L', b"", &long_name)
        .file("x", b"1")
        .finish();
    let error = walk(&tar).await.expect_err("huge long name");
    assert!(
        matches!(error, LayerError::ExtensionTooLarge { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn long_raw_name_cleaning_short_is_accepted() {
    let mut name = "./".repeat(300_000).into_bytes();
    name.extend_from_slice(b"etc/x");
    name.push(0);
    let tar = TarFixture::new()
        .raw(b"././@LongLink", b'L', b"", &name)
        .file("ignored", b"1")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/etc/x"]);
}

// Paths.

#[tokio::test]
async fn paths_are_normalised() {
    let tar = TarFixture::new()
        .raw(b"./etc/hosts", b'0', b"", b"")
        .raw(b"/abs/file", b'0', b"", b"")
        .raw(b"../../escape", b'0', b"", b"")
        .raw(b"a/./b/../c/", b'5', b"", b"")
        .raw(b"usr//lib///x", b'0', b"", b"")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(
        paths(&index),
        vec!["/etc/hosts", "/abs/file", "/escape", "/a/c", "/usr/lib/x"]
    );
}

#[tokio::test]
async fn root_entry_is_kept() {
    let tar = TarFixture::new()
        .raw(b"./", b'5', b"", b"")
        .file("a", b"")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/", "/a"]);
    assert_eq!(
        index.entries().first().map(|e| e.kind),
        Some(EntryKind::Directory)
    );
}

#[tokio::test]
async fn non_utf8_name_is_escaped() {
    let tar = TarFixture::new()
        .raw(b"caf\xe9", b'0', b"", b"")
        .raw(b"a\\xe9", b'0', b"", b"")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/caf\\xe9", "/a\\\\xe9"]);
}

#[tokio::test]
async fn hard_link_target_is_normalised() {
    let tar = TarFixture::new()
        .file("bin/su", b"x")
        .hard_link("usr/bin/su", "./bin/../bin/su")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let link = index.entries().get(1).and_then(|e| e.link_target);
    assert_eq!(link, Some("/bin/su"));
}

#[tokio::test]
async fn symlink_target_is_kept_as_written() {
    let tar = TarFixture::new()
        .symlink("etc/os-release", "../usr/lib/os-release")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let link = index.entries().first().and_then(|e| e.link_target);
    assert_eq!(link, Some("../usr/lib/os-release"));
}

#[tokio::test]
async fn whiteout_entries_are_listed() {
    let tar = TarFixture::new()
        .file("etc/.wh.shadow", b"")
        .file("var/.wh..wh..opq", b"")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let whiteouts: Vec<Option<Whiteout<'_>>> =
        index.entries().iter().map(|e| e.whiteout()).collect();
    assert_eq!(
        whiteouts,
        vec![
            Some(Whiteout::Remove {
                dir: "/etc",
                name: "shadow"
            }),
            Some(Whiteout::Opaque { dir: "/var" }),
        ]
    );
}

// Entry types.

#[tokio::test]
async fn entry_types_are_mapped() {
    let tar = TarFixture::new()
        .raw(b"old", b'\0', b"", b"x")
        .raw(b"olddir/", b'\0', b"", b"")
        .raw(b"contiguous", b'7', b"", b"x")
        .raw(b"unknown", b'Z', b"", b"x")
        .raw(b"tty", b'3', b"", b"")
        .raw(b"sda", b'4', b"", b"")
        .raw(b"pipe", b'6', b"", b"")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let kinds: Vec<EntryKind> = index.entries().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EntryKind::File,
            EntryKind::Directory,
            EntryKind::File,
            EntryKind::File,
            EntryKind::CharDevice,
            EntryKind::BlockDevice,
            EntryKind::Fifo,
        ]
    );
}

#[tokio::test]
async fn old_gnu_sparse_is_a_file() {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..6].copy_from_slice(b"sparse");
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_size(0);
    header.set_mode(0o644);
    if let Some(gnu) = header.as_gnu_mut() {
        gnu.realsize.copy_from_slice(b"00000000000\0");
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b""[..]).expect("append");
    let tar = builder.into_inner().expect("finish");
    let index = walk(&tar).await.expect("walk");
    assert_eq!(
        index.entries().first().map(|e| e.kind),
        Some(EntryKind::File)
    );
}

#[tokio::test]
async fn mode_keeps_special_bits() {
    let tar = TarFixture::new()
        .file_mode("bin/su", 0o104755, b"x")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(index.entries().first().map(|e| e.mode), Some(0o4755));
}

#[tokio::test]
async fn empty_mode_field_reads_as_zero() {
    // Go's archive/tar reads an all-NUL numeric field as 0.
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..4].copy_from_slice(b"file");
    header.set_size(0);
    header.as_old_mut().mode = [0; 8];
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b""[..]).expect("append");
    let tar = builder.into_inner().expect("finish");
    let index = walk(&tar).await.expect("walk");
    assert_eq!(index.entries().first().map(|e| e.mode), Some(0));
}

#[tokio::test]
async fn symlink_with_data_is_rejected() {
    // Go reads no data for a symlink, the Rust tar crate would skip 512 bytes: the views
    // differ.
    let hidden = TarFixture::new().file("etc/passwd", b"x").finish();
    let tar = TarFixture::new()
        .raw_sized(b"link", b'2', 512, &hidden[..512])
        .finish();
    let error = walk(&tar).await.expect_err("symlink with data");
    assert!(
        matches!(
            error,
            LayerError::HeaderOnlyEntryWithData {
                kind: EntryKind::Symlink,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn directory_with_pax_size_is_rejected() {
    let tar = TarFixture::new()
        .pax(&[("size", b"512")])
        .raw_sized(b"d/", b'5', 0, &[0u8; 512])
        .finish();
    let error = walk(&tar).await.expect_err("directory with data");
    assert!(
        matches!(error, LayerError::HeaderOnlyEntryWithData { .. }),
        "{error}"
    );
}

// Captured files.

#[tokio::test]
async fn captured_files_are_kept() {
    let tar = TarFixture::new()
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .file("usr/lib/os-release", b"ID=alpine\n")
        .file("etc/hosts", b"127.0.0.1\n")
        .finish();
    let index = walk(&tar).await.expect("walk");
    let passwd = index.captured.get("/etc/passwd").map(Vec::as_slice);
    assert_eq!(passwd, Some(&b"root:x:0:0::/root:/bin/sh\n"[..]));
    assert!(index.captured.contains_key("/etc/group"));
    assert!(index.captured.contains_key("/usr/lib/os-release"));
    assert!(!index.captured.contains_key("/etc/hosts"));
}

#[tokio::test]
async fn captured_body_dropped_when_replaced() {
    let tar = TarFixture::new()
        .file("etc/passwd", b"old")
        .symlink("etc/passwd", "/tmp/passwd")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert!(!index.captured.contains_key("/etc/passwd"));
}

#[tokio::test]
async fn captured_body_last_entry_wins() {
    let tar = TarFixture::new()
        .file("etc/passwd", b"old")
        .file("etc/passwd", b"new")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(
        index.captured.get("/etc/passwd").map(Vec::as_slice),
        Some(&b"new"[..])
    );
}

#[tokio::test]
async fn captured_file_over_limit_is_rejected() {
    let limits = WalkLimits {
        max_captured_file: 10,
        ..WalkLimits::default()
    };
    let tar = TarFixture::new().file("etc/passwd", &[b'x'; 11]).finish();
    let error = walk_with(&tar, &limits).await.expect_err("too large");
    assert!(
        matches!(
            error,
            LayerError::CapturedFileTooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn captured_total_over_limit_is_rejected() {
    let limits = WalkLimits {
        max_captured_total: 15,
        ..WalkLimits::default()
    };
    let tar = TarFixture::new()
        .file("a/passwd", &[b'x'; 10])
        .file("b/passwd", &[b'x'; 10])
        .finish();
    let error = walk_with(&tar, &limits).await.expect_err("too much");
    assert!(
        matches!(error, LayerError::CapturedTotalTooLarge { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn captured_file_inside_gzip_is_read() {
    let tar = TarFixture::new()
        .file("big", &[3u8; 100_000])
        .file("etc/os-release", b"ID=debian\n")
        .finish();
    let index = walk(&gzip(&tar)).await.expect("walk");
    assert_eq!(
        index.captured.get("/etc/os-release").map(Vec::as_slice),
        Some(&b"ID=debian\n"[..])
    );
}

// Limits.

#[tokio::test]
async fn unpacked_size_limit_stops_a_bomb() {
    let limits = WalkLimits {
        max_unpacked_size: 1 << 20,
        ..WalkLimits::default()
    };
    let tar = TarFixture::new()
        .file("zeros", &vec![0u8; 4 << 20])
        .finish();
    let error = walk_with(&gzip(&tar), &limits)
        .await
        .expect_err("over the limit");
    assert!(
        matches!(error, LayerError::UnpackedTooLarge { limit } if limit == 1 << 20),
        "{error}"
    );
}

#[tokio::test]
async fn unpacked_size_limit_counts_bytes_after_the_tar() {
    let mut tar = TarFixture::new().file("a", b"x").finish();
    let limit = tar.len() as u64;
    tar.extend_from_slice(&[0u8; 512]);
    let limits = WalkLimits {
        max_unpacked_size: limit,
        ..WalkLimits::default()
    };
    let error = walk_with(&tar, &limits).await.expect_err("over the limit");
    assert!(
        matches!(error, LayerError::UnpackedTooLarge { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn unpacked_size_at_the_limit_is_read() {
    let tar = TarFixture::new().file("a", b"x").finish();
    let limits = WalkLimits {
        max_unpacked_size: tar.len() as u64,
        ..WalkLimits::default()
    };
    walk_with(&tar, &limits)
        .await
        .expect("exactly at the limit");
}

#[tokio::test]
async fn entry_limit_is_enforced() {
    let limits = WalkLimits {
        max_entries: 1,
        ..WalkLimits::default()
    };
    let error = walk_with(&two_files(), &limits)
        .await
        .expect_err("too many");
    assert!(
        matches!(error, LayerError::TooManyEntries { limit: 1 }),
        "{error}"
    );
}

#[tokio::test]
async fn path_limit_is_enforced() {
    let limits = WalkLimits {
        max_path_len: 8,
        ..WalkLimits::default()
    };
    let error = walk_with(&two_files(), &limits)
        .await
        .expect_err("too long");
    assert!(
        matches!(
            error,
            LayerError::PathTooLong {
                len: 10,
                limit: 8,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn link_target_limit_is_enforced() {
    let limits = WalkLimits {
        max_path_len: 20,
        ..WalkLimits::default()
    };
    let tar = TarFixture::new().symlink("l", &"t".repeat(21)).finish();
    let error = walk_with(&tar, &limits).await.expect_err("target too long");
    assert!(
        matches!(error, LayerError::LinkTargetTooLong { len: 21, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn index_size_limit_is_enforced() {
    let limits = WalkLimits {
        max_index_bytes: 100,
        ..WalkLimits::default()
    };
    let error = walk_with(&two_files(), &limits)
        .await
        .expect_err("index too large");
    assert!(
        matches!(error, LayerError::IndexTooLarge { limit: 100 }),
        "{error}"
    );
}

#[test]
fn walk_future_is_send() {
    // scan.rs spawns layer walks on the multi-threaded runtime.
    fn assert_send<T: Send>(_: &T) {}
    let limits = WalkLimits::default();
    let future = walk_layer(&b""[..], "sha256:00", None, &limits);
    assert_send(&future);
}

#[tokio::test]
async fn large_body_is_skipped() {
    // Larger than the extension budget, so the budget must follow the entry's size.
    let body = vec![9u8; (MAX_EXTENSION_BYTES + (1 << 20)) as usize];
    let tar = TarFixture::new()
        .file("big", &body)
        .file("etc/passwd", b"root\n")
        .finish();
    let index = walk(&tar).await.expect("walk");
    assert_eq!(paths(&index), vec!["/big", "/etc/passwd"]);
    assert!(index.captured.contains_key("/etc/passwd"));
}

#[tokio::test]
async fn digest_type_round_trips_walk_digest() {
    let blob = two_files();
    let index = walk(&blob).await.expect("walk");
    let parsed = Sha256Digest::parse(&index.digest).map(|d| d.to_string());
    assert_eq!(parsed, Ok(sha256(&blob)));
}

// The index's storage.

#[test]
fn index_stores_each_directory_once() {
    let entry = |path| LayerEntry::new(path, EntryKind::File, 0o644, None, 0);
    let index = LayerIndex::from_entries([
        LayerEntry::new("/", EntryKind::Directory, 0o755, None, 0),
        entry("/a/one"),
        entry("/b/two"),
        entry("/a/three"),
        entry("/top"),
    ]);
    assert_eq!(paths(&index), ["/", "/a/one", "/b/two", "/a/three", "/top"]);
    // "/" has the root entry and /top, and /a is found again after /b.
    assert_eq!(index.dirs.len(), 3);
}

#[test]
fn index_keeps_entry_fields() {
    let index = LayerIndex::from_entries([
        LayerEntry::new("/big", EntryKind::File, 0o4755, None, 5 << 32 | 7),
        LayerEntry::new("/link", EntryKind::Symlink, 0o777, Some("../big"), 0),
    ]);
    let entries: Vec<LayerEntry<'_>> = index.entries().iter().collect();
    assert_eq!(
        entries,
        [
            LayerEntry::new("/big", EntryKind::File, 0o4755, None, 5 << 32 | 7),
            LayerEntry::new("/link", EntryKind::Symlink, 0o777, Some("../big"), 0),
        ]
    );
    assert_eq!((entries[1].dir, entries[1].name), ("/", "link"));
}

#[test]
fn index_keeps_long_names_and_adjacent_links() {
    let long_name = format!("/{}", "n".repeat(70_000));
    let entries = [
        LayerEntry::new("/a", EntryKind::Symlink, 0o777, Some("b"), 0),
        LayerEntry::new("/b", EntryKind::HardLink, 0o644, Some("/c"), 0),
        LayerEntry::new(&long_name, EntryKind::File, 0o600, None, 3),
        LayerEntry::new("/d", EntryKind::Symlink, 0o777, Some(""), 0),
        LayerEntry::new("/e", EntryKind::Symlink, 0o777, Some("last"), 0),
    ];
    let index = LayerIndex::from_entries(entries);
    let stored: Vec<LayerEntry<'_>> = index.entries().iter().collect();
    assert_eq!(stored, entries);
}

#[test]
fn index_keeps_every_kind_and_mode() {
    for (number, kind) in KINDS.iter().enumerate() {
        assert_eq!(usize::from(kind_number(*kind)), number, "{kind:?}");
    }
    let paths: Vec<String> = (0..KINDS.len()).map(|i| format!("/e{i}")).collect();
    let entries: Vec<LayerEntry<'_>> = KINDS
        .iter()
        .zip(&paths)
        .map(|(&kind, path)| LayerEntry::new(path, kind, 0o7777, None, 1))
        .collect();
    let index = LayerIndex::from_entries(entries.iter().copied());
    let stored: Vec<LayerEntry<'_>> = index.entries().iter().collect();
    assert_eq!(stored, entries);
}

#[tokio::test]
async fn plain_tar_diff_id_against_blob_digest() {
    let tar = two_files();
    let (digest, wrong) = (sha256(&tar), sha256(b"other"));
    let limits = WalkLimits::default();
    let matching = walk_layer(&tar[..], &digest, Some(&digest), &limits).await;
    assert!(matching.is_ok(), "{:?}", matching.err());
    let error = walk_layer(&tar[..], &digest, Some(&wrong), &limits)
        .await
        .expect_err("wrong diff_id");
    assert!(
        matches!(error, LayerError::DiffIdMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&digest), "{error}");
}

#[tokio::test]
async fn plain_tar_diff_id_with_checking_reader() {
    let tar = two_files();
    let (digest, wrong) = (sha256(&tar), sha256(b"other"));
    let limits = WalkLimits::default();
    let matching = walk_checked_layer(&tar[..], &digest, Some(&digest), &limits).await;
    assert!(matching.is_ok(), "{:?}", matching.err());
    let checked = walk_checked_layer(&tar[..], &digest, Some(&wrong), &limits).await;
    assert!(
        matches!(checked, Err(LayerError::DiffIdMismatch { .. })),
        "{checked:?}"
    );
}
