//! Gzip decoding through ISA-L, on a thread of the runtime's blocking pool.
//!
//! Inflating the gzip stream is most of a scan's CPU time (see `docs/benchmarks.md`), and
//! ISA-L inflates the benchmark's largest layer about 1.6 times as fast as zlib-rs. The isal-rs crate offers
//! ISA-L only behind a blocking [`std::io::Read`], so [`ThreadedGzipDecoder`] runs that
//! decoder on its own thread and feeds it from the async blob stream through two bounded
//! channels: compressed chunks go in, decompressed chunks come out. Decoding then overlaps
//! the download, the tar walk and the hashing, which run on other threads.
//!
//! The decoder reads every gzip member, as Go's `compress/gzip` does for containerd. It fails
//! on data after the last member that does not start another member, on a truncated member,
//! and on a wrong CRC-32 or length in a member's trailer.
//!
//! NOTE: isal-rs reports a member as corrupt when two of its decoding steps produce no output.
//! [`ChannelReader`] fills the decoder's whole 16 KiB input buffer on every read. So a step
//! only comes up empty on input that no gzip writer produces, such as a gzip extra field that
//! spans two buffers (tens of KiB) or long runs of empty deflate blocks. Go accepts those, and
//! the scan fails on them with a decompression error: a stricter result, never a pass.

use bytes::{Buf, Bytes, BytesMut};
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Bytes read from the compressed stream per chunk sent to the decoding thread.
const INPUT_CHUNK_BYTES: usize = 64 << 10;
/// Compressed chunks queued for the decoding thread.
const INPUT_QUEUE_CHUNKS: usize = 4;
/// Bytes decompressed per chunk sent back.
const OUTPUT_CHUNK_BYTES: usize = 128 << 10;
/// Decompressed chunks queued for the reader. With the input queue, one stream keeps at most
/// about 0.75 MiB of chunks in memory.
const OUTPUT_QUEUE_CHUNKS: usize = 2;

/// Message from the decoding thread to the reader.
enum Decoded {
    Data(Vec<u8>),
    Error(io::Error),
    /// The stream ended after a complete member. The thread ending without sending this (a
    /// panic in the decoder) is an error, so a failed decode never looks like a short stream.
    End,
}

/// An [`AsyncRead`] of the decompressed bytes of a gzip stream, decoded by ISA-L on a thread
/// of the Tokio runtime's blocking pool.
///
/// Compressed bytes are read from `inner` only as the decoding thread takes them, and the
/// thread decodes at most [`OUTPUT_QUEUE_CHUNKS`] chunks ahead of the reader, so memory stays
/// bounded whatever the stream inflates to. Dropping the reader closes both channels, which
/// ends the thread at its next chunk.
pub struct ThreadedGzipDecoder<R> {
    inner: R,
    /// `None` once `inner` has reached EOF (dropping the sender ends the thread's input) or
    /// the thread is gone.
    input: Option<PollSender<Bytes>>,
    input_buffer: BytesMut,
    output: mpsc::Receiver<Decoded>,
    /// Spent output buffers, handed back to the thread for reuse.
    recycle: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    offset: usize,
    finished: bool,
    /// False when there was no runtime to start the thread on.
    started: bool,
}

impl<R> ThreadedGzipDecoder<R> {
    /// Starts the decoding thread for the gzip stream `inner`. Outside a Tokio runtime, every
    /// read fails.
    pub fn new(inner: R) -> Self {
        let (input, compressed) = mpsc::channel(INPUT_QUEUE_CHUNKS);
        let (decoded, output) = mpsc::channel(OUTPUT_QUEUE_CHUNKS);
        let (recycle, recycled) = std::sync::mpsc::channel();
        let started = tokio::runtime::Handle::try_current().map(|runtime| {
            runtime.spawn_blocking(move || decode(compressed, decoded, recycled));
        });
        Self {
            inner,
            input: Some(PollSender::new(input)),
            input_buffer: BytesMut::new(),
            output,
            recycle,
            current: Vec::new(),
            offset: 0,
            finished: false,
            started: started.is_ok(),
        }
    }
}

impl<R: AsyncRead + Unpin> ThreadedGzipDecoder<R> {
    /// Moves compressed chunks from `inner` to the decoding thread until the queue is full,
    /// `inner` has nothing ready, or it ends. Errors of `inner` are returned as they are.
    fn pump_input(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while let Some(sender) = &mut self.input {
            match sender.poll_reserve(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Err(_)) => {
                    // The thread has stopped, and its last message gives the reason.
                    self.input = None;
                    return Ok(());
                }
                Poll::Ready(Ok(())) => {}
            }
            self.input_buffer.reserve(INPUT_CHUNK_BYTES);
            let read = tokio_util::io::poll_read_buf(
                Pin::new(&mut self.inner),
                cx,
                &mut self.input_buffer,
            );
            match read {
                Poll::Pending => {
                    sender.abort_send();
                    return Ok(());
                }
                Poll::Ready(Err(error)) => {
                    sender.abort_send();
                    return Err(error);
                }
                Poll::Ready(Ok(0)) => {
                    // Dropping the sender is the end of the compressed stream for the thread.
                    self.input = None;
                    return Ok(());
                }
                Poll::Ready(Ok(_)) => {
                    let chunk = self.input_buffer.split().freeze();
                    if sender.send_item(chunk).is_err() {
                        self.input = None;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ThreadedGzipDecoder<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(rest) = this.current.get(this.offset..)
                && !rest.is_empty()
            {
                let take = rest.len().min(buf.remaining());
                buf.put_slice(rest.get(..take).unwrap_or_default());
                this.offset += take;
                return Poll::Ready(Ok(()));
            }
            if this.finished || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if !this.started {
                return Poll::Ready(Err(io::Error::other(
                    "gzip decoding needs a Tokio runtime for its thread",
                )));
            }
            this.pump_input(cx)?;
            match ready!(this.output.poll_recv(cx)) {
                Some(Decoded::Data(chunk)) => {
                    let spent = std::mem::replace(&mut this.current, chunk);
                    this.offset = 0;
                    // Fails only when the thread is gone, and then the buffer is just freed.
                    let _ = this.recycle.send(spent);
                }
                Some(Decoded::End) => this.finished = true,
                Some(Decoded::Error(error)) => return Poll::Ready(Err(error)),
                None => {
                    return Poll::Ready(Err(io::Error::other(
                        "the gzip decoding thread stopped before the end of the stream",
                    )));
                }
            }
        }
    }
}

/// Body of the decoding thread: decodes the chunks from `compressed` and sends the output to
/// `decoded` until the stream ends, decoding fails or the reader is dropped.
fn decode(
    compressed: mpsc::Receiver<Bytes>,
    decoded: mpsc::Sender<Decoded>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut decoder = isal::read::GzipDecoder::new(ChannelReader {
        chunks: compressed,
        current: Bytes::new(),
    });
    loop {
        let mut chunk = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(OUTPUT_CHUNK_BYTES));
        chunk.resize(OUTPUT_CHUNK_BYTES, 0);
        let message = match decoder.read(&mut chunk) {
            Ok(0) => Decoded::End,
            Ok(read) => {
                chunk.truncate(read);
                Decoded::Data(chunk)
            }
            Err(error) => Decoded::Error(describe(error)),
        };
        let last = !matches!(message, Decoded::Data(_));
        if decoded.blocking_send(message).is_err() || last {
            return;
        }
    }
}

/// Replaces the debug-formatted errors of isal-rs with messages that describe the fault in
/// the stream.
fn describe(error: io::Error) -> io::Error {
    use isal::DecompCode;
    use isal::error::Error as IsalError;
    let Some(isal_error) = error.get_ref().and_then(|e| e.downcast_ref::<IsalError>()) else {
        return error;
    };
    let message = match isal_error {
        IsalError::Io(_) => return error,
        IsalError::DecompressionError(DecompCode::IncorrectChecksum) => {
            "a gzip checksum does not match (the CRC-32 or length in a member's trailer, or the \
             header CRC)"
        }
        IsalError::DecompressionError(
            DecompCode::InvalidWrapper | DecompCode::UnsupportedMethod,
        ) => "invalid gzip member header (or data after the last member that is not gzip)",
        IsalError::DecompressionError(
            DecompCode::InvalidBlock | DecompCode::InvalidSymbol | DecompCode::InvalidLoopBack,
        ) => "invalid deflate data in a gzip member",
        IsalError::Other(_) => {
            "the gzip stream is truncated, or a member made no progress (for example, a gzip \
             extra field of tens of KiB)"
        }
        _ => "invalid gzip stream",
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A blocking [`Read`] over the compressed chunks sent to the decoding thread. The end of the
/// channel is the end of the stream.
struct ChannelReader {
    chunks: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    /// Fills `buf` completely unless the stream ends first, so that every decoding step of
    /// isal-rs gets a full input buffer (see the note at the top of this module).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.current.is_empty() {
                match self.chunks.blocking_recv() {
                    Some(chunk) => self.current = chunk,
                    None => break,
                }
                continue;
            }
            let Some(space) = buf.get_mut(filled..) else {
                break;
            };
            let take = space.len().min(self.current.len());
            if let (Some(target), Some(source)) = (space.get_mut(..take), self.current.get(..take))
            {
                target.copy_from_slice(source);
            }
            self.current.advance(take);
            filled += take;
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tests::gzip;
    use tokio::io::AsyncReadExt;

    /// Bytes that compress, but not to nothing: a counter mixed with a simple generator.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 7 == 0 {
                    (state % 16) as u8
                } else {
                    (i / 97) as u8
                }
            })
            .collect()
    }

    /// A reader that returns its data in reads of 1 to 61 bytes, and fails with a
    /// `ConnectionReset` error once it reaches byte `fail_at`.
    struct Dribble {
        data: Vec<u8>,
        position: usize,
        fail_at: Option<usize>,
    }

    impl AsyncRead for Dribble {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.fail_at.is_some_and(|at| self.position >= at) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "marker error",
                )));
            }
            let step = 1 + self.position % 61;
            let end = (self.position + step).min(self.data.len());
            let end = self.fail_at.map_or(end, |at| end.min(at));
            let chunk = self.data.get(self.position..end).unwrap_or_default();
            let take = chunk.len().min(buf.remaining());
            buf.put_slice(chunk.get(..take).unwrap_or_default());
            self.position += take;
            Poll::Ready(Ok(()))
        }
    }

    /// Decodes `compressed` to its end and checks the result against `data`.
    async fn assert_decodes_to(compressed: impl AsyncRead + Unpin + Send, data: &[u8]) {
        let mut decoder = ThreadedGzipDecoder::new(compressed);
        let mut out = Vec::new();
        let read = decoder.read_to_end(&mut out).await;
        assert_eq!(read.ok(), Some(data.len()));
        assert!(out == data, "the decoded bytes differ from the input");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn decodes_input_that_arrives_in_small_reads() {
        let data = sample(3 << 20);
        let dribble = Dribble {
            data: gzip(&data),
            position: 0,
            fail_at: None,
        };
        assert_decodes_to(dribble, &data).await;
    }

    #[tokio::test]
    async fn decodes_on_a_current_thread_runtime() {
        let data = sample(1 << 20);
        let compressed = gzip(&data);
        assert_decodes_to(&compressed[..], &data).await;
    }

    #[tokio::test]
    async fn empty_input_is_an_error() {
        let mut decoder = ThreadedGzipDecoder::new(&b""[..]);
        let mut out = Vec::new();
        let read = decoder.read_to_end(&mut out).await;
        assert!(
            read.is_err(),
            "an empty stream decoded to {} bytes",
            out.len()
        );
    }

    #[tokio::test]
    async fn input_error_is_returned_unchanged() {
        let data = sample(1 << 20);
        let mut decoder = ThreadedGzipDecoder::new(Dribble {
            data: gzip(&data),
            position: 0,
            fail_at: Some(10_000),
        });
        let mut out = Vec::new();
        let error = decoder
            .read_to_end(&mut out)
            .await
            .expect_err("input fails");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(error.to_string(), "marker error");
    }

    #[test]
    fn read_outside_a_runtime_fails() {
        let compressed = gzip(b"data");
        let mut decoder = ThreadedGzipDecoder::new(&compressed[..]);
        let mut space = [0u8; 16];
        let mut buf = ReadBuf::new(&mut space);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let polled = Pin::new(&mut decoder).poll_read(&mut cx, &mut buf);
        assert!(
            matches!(polled, Poll::Ready(Err(ref e)) if e.to_string().contains("Tokio runtime")),
            "{polled:?}"
        );
    }

    /// An endless stream of gzip members of zeros: a bomb that never ends.
    struct EndlessMembers(Vec<u8>, usize);

    impl AsyncRead for EndlessMembers {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let start = self.1 % self.0.len();
            let take = (self.0.len() - start).min(buf.remaining());
            let chunk = self.0.get(start..start + take).unwrap_or_default().to_vec();
            buf.put_slice(&chunk);
            self.1 += take;
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn dropping_the_reader_ends_the_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let member = gzip(&vec![0u8; 4 << 20]);
            let mut decoder = ThreadedGzipDecoder::new(EndlessMembers(member, 0));
            let mut out = vec![0u8; 1 << 20];
            for _ in 0..8 {
                decoder.read_exact(&mut out).await.expect("read");
            }
        });
        // Dropping a runtime waits for its blocking threads, so a decoding thread that kept
        // running after its reader was dropped would hang here.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(runtime);
            let _ = done.send(());
        });
        let ended = finished.recv_timeout(std::time::Duration::from_secs(60));
        assert!(ended.is_ok(), "the decoding thread outlived its reader");
    }
}
