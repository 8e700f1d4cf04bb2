//! SHA-256 content digests: parsing the `sha256:<hex>` form used by OCI manifests and configs,
//! and a reader that hashes every byte passing through it.
//!
//! Layer blobs are verified while they stream, so a digest is only known once the stream has
//! been read to its end; [`HashingReader`] keeps the running hash and byte count for that.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

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

/// An [`AsyncRead`] wrapper that computes the SHA-256 and the length of everything read
/// through it. The digest covers only bytes already read, so read to EOF before comparing.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes_read: u64,
}

impl<R> HashingReader<R> {
    /// Wraps `inner` with an empty hash.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes_read: 0,
        }
    }

    /// Returns the number of bytes read through the wrapper so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Returns the digest of the bytes read so far. Reading may continue afterwards.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest(self.hasher.clone().finalize().into())
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let added = buf.filled().get(before..).unwrap_or_default();
            this.hasher.update(added);
            this.bytes_read = this.bytes_read.saturating_add(added.len() as u64);
        }
        result
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
            reader.digest().to_string(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[tokio::test]
    async fn hashing_reader_empty_input() {
        let mut reader = HashingReader::new(&b""[..]);
        let mut out = Vec::new();
        let read = reader.read_to_end(&mut out).await.ok();
        assert_eq!(read, Some(0));
        assert_eq!(reader.digest().to_string(), EMPTY_SHA256);
    }
}
