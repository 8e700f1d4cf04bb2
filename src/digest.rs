//! SHA-256 content digests: parsing the `sha256:<hex>` form used by OCI manifests and configs,
//! and a reader that hashes every byte passing through it.
//!
//! Layer blobs are verified while they stream, so a digest is only known once the stream has
//! been read to its end; [`HashingReader`] keeps the running hash and byte count for that.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::mpsc::SyncSender;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;

/// Prefix of a SHA-256 digest string.
pub const SHA256_PREFIX: &str = "sha256:";

/// A parsed SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

/// An invalid or unsupported digest string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The algorithm before `:` is not `sha256`.
    #[error(
        "unsupported digest algorithm {algorithm:?} in {digest:?}: only sha256 digests can be \
         verified; push the image with sha256 digests"
    )]
    UnsupportedAlgorithm { digest: String, algorithm: String },

    /// The string is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {digest:?}: expected \"sha256:\" followed by 64 lowercase hex digits")]
    Malformed { digest: String },
}

impl Sha256Digest {
    /// Parses `sha256:<64 lowercase hex digits>`, the only form the OCI image spec allows for
    /// SHA-256. Other algorithms (OCI also registers `sha512`) are rejected rather than left
    /// unverified.
    pub fn parse(digest: &str) -> Result<Self, DigestError> {
        let Some((algorithm, encoded)) = digest.split_once(':') else {
            return Err(DigestError::Malformed {
                digest: digest.to_string(),
            });
        };
        if algorithm != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm {
                digest: digest.to_string(),
                algorithm: algorithm.to_string(),
            });
        }
        let lowercase_hex = encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut bytes = [0u8; 32];
        if encoded.len() != 64
            || !lowercase_hex
            || hex::decode_to_slice(encoded, &mut bytes).is_err()
        {
            return Err(DigestError::Malformed {
                digest: digest.to_string(),
            });
        }
        Ok(Self(bytes))
    }

    /// Returns the raw 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHA256_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Bytes that [`HashingReader`] hashes on the reading thread before it starts a
/// hashing thread, so that small layers and tests pay nothing for the thread.
const INLINE_HASH_BYTES: u64 = 4 << 20;
/// Bytes collected before they go to the hashing thread as one chunk.
const HASH_CHUNK_BYTES: usize = 256 << 10;
/// Chunks queued for the hashing thread. One stream keeps at most this many chunks in memory,
/// plus the one being filled and the one being hashed.
///
/// NOTE: while the queue is full, the reader blocks its runtime worker thread. That is rare
/// where SHA-256 runs on SHA-NI, which outpaces inflate, but a CPU without it waits here. The
/// hashing thread never waits on the runtime, so this cannot deadlock.
const HASH_QUEUE_CHUNKS: usize = 2;

/// A reader that computes the SHA-256 and length of everything read through it.
///
/// Made with [`HashingReader::new`], it hashes on a thread of the runtime's blocking pool once
/// the stream passes [`INLINE_HASH_BYTES`]. SHA-256 then runs on another core than a
/// decompression on the reading thread, at the cost of one copy of the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    bytes_read: u64,
    /// Whether the hash moves to a thread of its own after [`INLINE_HASH_BYTES`].
    offload: bool,
}

/// Where the running hash of a [`HashingReader`] is computed.
enum Hasher {
    /// No hash: the reader only counts bytes.
    Off,
    Inline(Sha256),
    Thread {
        pending: Vec<u8>,
        chunks: SyncSender<Vec<u8>>,
        hashed: JoinHandle<Sha256>,
    },
}

impl<R> HashingReader<R> {
    /// Wraps `inner` with an empty hash, computed on a thread of its own for long streams.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::Inline(Sha256::new()),
            bytes_read: 0,
            offload: true,
        }
    }

    /// Wraps `inner` with an empty hash, always computed on the reading thread. This suits a
    /// stream whose producer already works on another thread: the hash then costs no copy and
    /// no hand-over between threads.
    pub fn inline(inner: R) -> Self {
        Self {
            offload: false,
            ..Self::new(inner)
        }
    }

    /// Wraps `inner` to count its bytes without hashing them, for a stream that another reader
    /// already verifies. [`HashingReader::digest`] then fails.
    pub fn counting(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::Off,
            bytes_read: 0,
            offload: false,
        }
    }

    /// Returns the number of bytes read through the wrapper so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn update(&mut self, bytes: &[u8]) {
        self.bytes_read = self.bytes_read.saturating_add(bytes.len() as u64);
        match &mut self.hasher {
            Hasher::Off => {}
            Hasher::Inline(sha256) => {
                sha256.update(bytes);
                if self.offload && self.bytes_read >= INLINE_HASH_BYTES {
                    self.start_thread();
                }
            }
            Hasher::Thread {
                pending, chunks, ..
            } => {
                pending.extend_from_slice(bytes);
                if pending.len() >= HASH_CHUNK_BYTES {
                    let chunk = std::mem::replace(pending, Vec::with_capacity(HASH_CHUNK_BYTES));
                    // A send fails only when the thread is gone (it panicked, or the runtime shut
                    // down before it started), which `digest` reports.
                    let _ = chunks.send(chunk);
                }
            }
        }
    }

    /// Moves the running hash to a blocking thread. Outside a Tokio runtime, hashing stays
    /// inline.
    fn start_thread(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Hasher::Inline(sha256) = &mut self.hasher else {
            return;
        };
        let mut sha256 = std::mem::take(sha256);
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE_CHUNKS);
        let hashed = runtime.spawn_blocking(move || {
            for chunk in received {
                sha256.update(&chunk);
            }
            sha256
        });
        self.hasher = Hasher::Thread {
            pending: Vec::with_capacity(HASH_CHUNK_BYTES),
            chunks,
            hashed,
        };
    }

    /// Waits for the hashing thread and returns the digest of the bytes read so far, so read to
    /// EOF first. A panic of the hashing thread resumes here.
    pub async fn digest(&mut self) -> io::Result<Sha256Digest> {
        let hasher = std::mem::replace(&mut self.hasher, Hasher::Inline(Sha256::new()));
        let sha256 = match hasher {
            Hasher::Off => {
                return Err(io::Error::other(
                    "the reader counted bytes without hashing them",
                ));
            }
            Hasher::Inline(sha256) => sha256,
            Hasher::Thread {
                pending,
                chunks,
                hashed,
            } => {
                let _ = chunks.send(pending);
                drop(chunks);
                match hashed.await {
                    Ok(sha256) => sha256,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(error) => return Err(io::Error::other(error)),
                }
            }
        };
        Ok(Sha256Digest(sha256.finalize().into()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.update(buf.filled().get(before..).unwrap_or_default());
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_round_trips() {
        let digest = Sha256Digest::parse(EMPTY_SHA256);
        assert_eq!(digest.map(|d| d.to_string()), Ok(EMPTY_SHA256.to_string()));
    }

    #[test]
    fn parse_rejects_sha512() {
        let digest = format!("sha512:{}", "ab".repeat(64));
        let error = Sha256Digest::parse(&digest);
        assert!(
            matches!(error, Err(DigestError::UnsupportedAlgorithm { ref algorithm, .. }) if algorithm == "sha512")
        );
    }

    #[test]
    fn parse_rejects_malformed_hex() {
        let cases = [
            "sha256:",
            "sha256:abc",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ];
        for case in cases {
            let result = Sha256Digest::parse(case);
            assert!(
                matches!(result, Err(DigestError::Malformed { .. })),
                "{case}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn hashing_reader_counts_and_hashes() {
        let data = b"hello world".to_vec();
        let mut reader = HashingReader::new(&data[..]);
        let mut out = Vec::new();
        let read = reader.read_to_end(&mut out).await.ok();
        assert_eq!(read, Some(11));
        assert_eq!(reader.bytes_read(), 11);
        assert_eq!(
            reader.digest().await.ok().map(|d| d.to_string()).as_deref(),
            Some("sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
    }

    #[tokio::test]
    async fn counting_reader_counts_without_digest() {
        let data = b"hello world".to_vec();
        let mut reader = HashingReader::counting(&data[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.expect("read");
        assert_eq!(reader.bytes_read(), 11);
        assert!(reader.digest().await.is_err());
    }

    #[tokio::test]
    async fn hashing_reader_empty_input() {
        let mut reader = HashingReader::new(&b""[..]);
        let mut out = Vec::new();
        let read = reader.read_to_end(&mut out).await.ok();
        assert_eq!(read, Some(0));
        assert_eq!(
            reader.digest().await.ok().map(|d| d.to_string()).as_deref(),
            Some(EMPTY_SHA256)
        );
    }

    /// Reads `data` through an [`HashingReader`] in reads of at most 100 000 bytes
    /// and returns the digest and byte count it reports.
    async fn hash_through_reader(data: &[u8]) -> (String, u64) {
        let reader = tokio::io::BufReader::with_capacity(100_000, data);
        let mut hashing = HashingReader::new(reader);
        let copied = tokio::io::copy(&mut hashing, &mut tokio::io::sink()).await;
        assert_eq!(copied.ok(), Some(data.len() as u64));
        let digest = hashing.digest().await.expect("digest");
        (digest.to_string(), hashing.bytes_read())
    }

    fn expected_digest(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    #[tokio::test]
    async fn hashing_reader_small_stream_inline() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let (digest, bytes) = hash_through_reader(&data).await;
        assert_eq!(digest, expected_digest(&data));
        assert_eq!(bytes, 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_reader_large_stream_offloaded() {
        // Past INLINE_HASH_BYTES, so most bytes are hashed on the blocking thread, and not a
        // multiple of HASH_CHUNK_BYTES, so the last chunk is a partial one.
        let len = INLINE_HASH_BYTES as usize * 3 + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (digest, bytes) = hash_through_reader(&data).await;
        assert_eq!(digest, expected_digest(&data));
        assert_eq!(bytes, len as u64);
    }

    #[tokio::test]
    async fn hashing_reader_offloads_on_current_thread() {
        let len = INLINE_HASH_BYTES as usize + HASH_CHUNK_BYTES * 5;
        let data = vec![7u8; len];
        let (digest, bytes) = hash_through_reader(&data).await;
        assert_eq!(digest, expected_digest(&data));
        assert_eq!(bytes, len as u64);
    }
}
