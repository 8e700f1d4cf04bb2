//! Compression detection and streaming decoders for layer blobs.
// Owned by the layer helper; stub until then.

use tokio::io::AsyncRead;

/// Compression of a layer blob, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Wraps `reader` in a decoder for `compression` that reads every gzip member or zstd frame.
pub fn decoder_for<'a>(
    compression: Compression,
    reader: impl AsyncRead + Unpin + Send + 'a,
) -> Box<dyn AsyncRead + Unpin + Send + 'a> {
    let _ = compression;
    Box::new(reader)
}
