//! Streaming walk over the tar headers of one decompressed layer.
// Owned by the layer helper; stub until then.

use super::LayerIndex;
use tokio::io::AsyncRead;

/// Bounds on what one layer walk keeps in memory.
#[derive(Debug, Clone)]
pub struct WalkLimits {
    /// Largest body kept for a captured file, in bytes.
    pub max_captured_file: u64,
    /// Most entries one layer may have.
    pub max_entries: usize,
}

impl Default for WalkLimits {
    fn default() -> Self {
        Self { max_captured_file: 1 << 20, max_entries: 2_000_000 }
    }
}

/// Reads a layer blob: verifies its digest, decompresses it and walks its tar headers.
pub async fn walk_layer(
    blob: impl AsyncRead + Unpin + Send,
    digest: &str,
    diff_id: Option<&str>,
    limits: &WalkLimits,
) -> Result<LayerIndex, String> {
    let _ = (blob, diff_id, limits);
    Ok(LayerIndex { digest: digest.to_string(), ..Default::default() })
}
