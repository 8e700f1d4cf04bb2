//! Compression detection and streaming decoders for layer blobs.
//!
//! The compression is taken from the blob's first bytes, not from the media type, as containerd
//! does: a registry or a hostile manifest can label a gzip layer as plain tar, and the runtime
//! would still decompress it.

use super::inflate::ThreadedGzipDecoder;
use async_compression::tokio::bufread::ZstdDecoder;
use std::io::Cursor;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, Chain};

/// Compression of a layer blob, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Gzip magic with the deflate method byte, as containerd matches it.
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Skippable zstd frames have magic numbers 0x184D2A50 to 0x184D2A5F (RFC 8878, section 3.1.2).
const ZSTD_SKIPPABLE_MASK: u32 = 0xffff_fff0;
const ZSTD_SKIPPABLE_MAGIC: u32 = 0x184d_2a50;

/// Number of leading bytes [`Compression::detect`] needs to tell the formats apart: a skippable
/// zstd frame counts only when its 4-byte size field follows the magic.
pub const MAGIC_LEN: usize = 8;

impl Compression {
    /// Detects the compression from the first bytes of a blob as containerd does: gzip
    /// (`1f 8b 08`), zstd (`28 b5 2f fd`, or a skippable frame of at least 8 bytes), anything
    /// else (including input shorter than a magic number) is plain tar.
    pub fn detect(prefix: &[u8]) -> Self {
        if prefix.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(ZSTD_MAGIC) || starts_with_skippable_frame(prefix) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

fn starts_with_skippable_frame(prefix: &[u8]) -> bool {
    match prefix.first_chunk::<4>() {
        Some(magic) if prefix.len() >= 8 => {
            u32::from_le_bytes(*magic) & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE_MAGIC
        }
        _ => false,
    }
}

/// Reads up to [`MAGIC_LEN`] bytes of `reader` to detect its compression and returns a reader
/// that yields the whole stream again, those bytes included.
pub async fn sniff_compression<R: AsyncRead + Unpin>(
    mut reader: R,
) -> std::io::Result<(Compression, Chain<Cursor<Vec<u8>>, R>)> {
    let mut prefix = Vec::with_capacity(MAGIC_LEN);
    while prefix.len() < MAGIC_LEN {
        let mut byte = [0u8; MAGIC_LEN];
        let missing = MAGIC_LEN - prefix.len();
        let read = reader
            .read(byte.get_mut(..missing).unwrap_or_default())
            .await?;
        if read == 0 {
            break;
        }
        prefix.extend_from_slice(byte.get(..read).unwrap_or_default());
    }
    let compression = Compression::detect(&prefix);
    Ok((compression, Cursor::new(prefix).chain(reader)))
}

/// Wraps `reader` in a decoder for `compression` that reads every gzip member or zstd frame.
///
/// Decoding every member matters for safety: eStargz layers are many gzip members and
/// zstd:chunked layers many zstd frames, and a decoder that stopped after the first one would
/// leave the rest of the layer unseen while the runtime extracts it. Bytes after the last
/// member that do not start another member make the decoder return an error, as Go's gzip
/// reader does for containerd.
pub fn decoder_for<'a>(
    compression: Compression,
    reader: impl AsyncRead + Unpin + Send + 'a,
) -> Box<dyn AsyncRead + Unpin + Send + 'a> {
    match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(ThreadedGzipDecoder::new(reader)),
        Compression::Zstd => {
            let mut decoder = ZstdDecoder::new(BufReader::new(reader));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_gzip_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x08, 0x00]),
            Compression::Gzip
        );
    }

    #[test]
    fn detect_gzip_needs_deflate_method() {
        // containerd reads this as a plain tar whose first name starts with these bytes.
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x00, 0x00]),
            Compression::None
        );
    }

    #[test]
    fn detect_zstd_skippable_frame() {
        let frame = [0x5e, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
        assert_eq!(Compression::detect(&frame), Compression::Zstd);
        assert_eq!(Compression::detect(&frame[..7]), Compression::None);
    }

    #[test]
    fn detect_zstd_magic() {
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
    }

    #[test]
    fn detect_plain_and_short_input() {
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f, 0x8b]), Compression::None);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f]), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
    }

    /// A reader that returns one byte per read, to check that sniffing waits for all bytes.
    struct OneByteReader(Vec<u8>, usize);

    impl AsyncRead for OneByteReader {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(byte) = self.0.get(self.1).copied() {
                buf.put_slice(&[byte]);
                self.1 += 1;
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn sniff_reads_across_short_reads() {
        let data = vec![0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5];
        let sniffed = sniff_compression(OneByteReader(data.clone(), 0)).await;
        let Ok((compression, mut reader)) = sniffed else {
            panic!("sniffing failed: {sniffed:?}", sniffed = sniffed.err());
        };
        let mut all = Vec::new();
        let read = reader.read_to_end(&mut all).await.ok();
        assert_eq!(compression, Compression::Zstd);
        assert_eq!(read, Some(9));
        assert_eq!(all, data);
    }
}
