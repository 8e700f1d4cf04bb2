//! The byte stream of a layer blob whose first bytes already arrived.

use super::chain;
use crate::source::BlobReader;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io;
use std::time::Duration;
use tokio_util::io::StreamReader;

/// The size and digest that a blob stream must deliver, and its time-out.
pub struct ExpectedBlob {
    /// The size that the manifest gives; more bytes, or fewer before the end, are an error.
    pub size: u64,
    /// The manifest's digest. A `sha256:` digest is checked at the end of the stream, so that
    /// a mismatch names the host that sent the bytes. The layer walk rejects other kinds.
    pub digest: String,
    /// Maximum wait for the next bytes (`COMPLIANCE_TIMEOUT`).
    pub timeout: Duration,
}

/// The state of a blob stream between reads.
struct BlobStream {
    response: reqwest::Response,
    pending: Option<Bytes>,
    received: u64,
    hasher: Sha256,
    expected: ExpectedBlob,
    /// The host that sends the blob, for messages.
    source: String,
    failed: bool,
}

/// Returns a reader over `first_chunk` followed by the rest of `response`'s body.
///
/// Errors are final: by the time the reader exists, the first chunk is on its way to the tar
/// walk, which cannot rewind, so a broken connection cannot be retried.
pub fn reader(
    response: reqwest::Response,
    first_chunk: Bytes,
    expected: ExpectedBlob,
    source: String,
) -> BlobReader {
    let state = BlobStream {
        response,
        pending: (!first_chunk.is_empty()).then_some(first_chunk),
        received: 0,
        hasher: Sha256::new(),
        expected,
        source,
        failed: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        match state.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), state)),
            Ok(None) => None,
            Err(error) => {
                state.failed = true;
                Some((Err(error), state))
            }
        }
    });
    Box::new(StreamReader::new(Box::pin(stream)))
}

impl BlobStream {
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let chunk = match self.pending.take() {
            Some(chunk) => Some(chunk),
            None => self.read_response().await?,
        };
        let Some(chunk) = chunk else {
            if self.received < self.expected.size {
                let failure = format!("{} ended the connection {}", self.source, self.progress());
                return Err(broken(io::ErrorKind::UnexpectedEof, &failure));
            }
            return self.check_digest().map(|()| None);
        };
        self.received += chunk.len() as u64;
        if self.received > self.expected.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} sent more than the {} bytes that the manifest gives for the blob; the \
                     registry's blob does not match the manifest",
                    self.source, self.expected.size
                ),
            ));
        }
        self.hasher.update(&chunk);
        Ok(Some(chunk))
    }

    fn check_digest(&mut self) -> io::Result<()> {
        let Some(expected) = self.expected.digest.strip_prefix("sha256:") else {
            return Ok(());
        };
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if actual == expected {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the {} bytes from {} hash to sha256:{actual}, not to the manifest's digest \
                 {}; the blob is corrupt or was altered on the way",
                self.received, self.source, self.expected.digest
            ),
        ))
    }

    async fn read_response(&mut self) -> io::Result<Option<Bytes>> {
        let timeout = self.expected.timeout;
        match tokio::time::timeout(timeout, self.response.chunk()).await {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(error)) if !error.is_timeout() => {
                let failure = format!(
                    "reading from {} failed {}: {}",
                    self.source,
                    self.progress(),
                    chain(&error.without_url())
                );
                Err(broken(io::ErrorKind::Other, &failure))
            }
            Ok(Err(_)) | Err(_) => {
                let failure = format!(
                    "{} sent no data for {} s (COMPLIANCE_TIMEOUT) {}",
                    self.source,
                    timeout.as_secs(),
                    self.progress()
                );
                Err(broken(io::ErrorKind::TimedOut, &failure))
            }
        }
    }

    fn progress(&self) -> String {
        format!("after {} of {} bytes", self.received, self.expected.size)
    }
}

/// Builds the error for a body that broke after part of it went to the tar walk.
fn broken(kind: io::ErrorKind, failure: &str) -> io::Error {
    io::Error::new(
        kind,
        format!(
            "{failure}; the tar walk already read the first part and cannot rewind, so the \
             download is not retried; run the scan again"
        ),
    )
}
