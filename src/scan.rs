//! One scan: resolve the image, read every layer concurrently, merge them, run the checks.

use crate::checks::{self, CheckResult, ScanContext};
use crate::error::{ScanError, Stage};
use crate::filesystem::FinalFs;
use crate::layer::{LayerIndex, WalkLimits, walk_checked_layer, walk_layer};
use crate::reference::ImageRef;
use crate::source::{self, ResolvedImage, Source, SourceOptions};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Settings of one scan.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub source: SourceOptions,
    pub walk: WalkLimits,
    /// How many layers are read at once.
    pub concurrency: usize,
}

/// Progress events, for a binary that shows progress; the library itself prints nothing.
#[derive(Debug, Clone)]
pub enum Progress {
    Resolved {
        layers: usize,
    },
    LayerDone {
        index: usize,
        digest: String,
        entries: usize,
    },
}

/// Callback for [`Progress`] events.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// The outcome of a scan that ran to the end.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// The reference exactly as given; it keys the JSON report.
    pub reference: String,
    /// Registry host or local path.
    pub location: String,
    /// The image without tag or digest: `HOST/PATH` for a registry image, the path of a local
    /// layout or archive. Reports use it to name the image across versions.
    pub repository: String,
    pub manifest_digest: Option<String>,
    /// `os/architecture` from the image config.
    pub platform: String,
    /// Layer digests in manifest order.
    pub layer_digests: Vec<String>,
    /// `created_by` of the history entries that created a layer, in layer order, where known.
    pub layer_history: Vec<Option<String>>,
    pub results: Vec<CheckResult>,
}

/// Scans the image that `reference` names.
pub async fn scan(
    reference: &str,
    settings: &ScanSettings,
    progress: Option<ProgressFn>,
) -> Result<ScanReport, ScanError> {
    let image_ref =
        ImageRef::parse(reference).map_err(|e| ScanError::pull(Stage::Reference, e.to_string()))?;
    let source = Source::open(&image_ref, &settings.source).await?;
    let resolved = source.resolve(&settings.source.platform).await?;
    check_layers_match_config(&resolved)?;
    source::check_layer_media_types(&resolved.manifest)?;
    if let Some(progress) = &progress {
        progress(Progress::Resolved {
            layers: resolved.manifest.layers.len(),
        });
    }
    let location = source.location();
    let layers = read_layers(Arc::new(source), &resolved, settings, progress).await?;
    let fs = FinalFs::build(&layers);
    if fs.overflowed() {
        return Err(ScanError::pull(
            Stage::Manifest,
            "the layers hold more files or longer names than the scanner can merge (about four \
             billion of either); the image cannot be checked",
        ));
    }
    let context = ScanContext {
        tag: resolved.tag.as_deref(),
        pinned_digest: resolved.pinned_digest.as_deref(),
        manifest: &resolved.manifest,
        config: &resolved.config,
        layers: &layers,
        fs: &fs,
    };
    let results = checks::run_all(&context);
    Ok(ScanReport {
        reference: reference.to_string(),
        location,
        repository: repository(&image_ref),
        manifest_digest: resolved.manifest_digest.clone(),
        platform: format!("{}/{}", resolved.config.os, resolved.config.architecture),
        layer_digests: resolved
            .manifest
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect(),
        layer_history: layer_history(&resolved),
        results,
    })
}

/// Rejects an image whose config does not list one diff_id per layer, as the runtime does.
fn check_layers_match_config(resolved: &ResolvedImage) -> Result<(), ScanError> {
    let layers = resolved.manifest.layers.len();
    let diff_ids = resolved.config.rootfs.diff_ids.len();
    if layers != diff_ids {
        return Err(ScanError::metadata(
            Stage::Config,
            format!("the manifest has {layers} layers but the config lists {diff_ids} diff_ids"),
        ));
    }
    Ok(())
}

fn repository(image_ref: &ImageRef) -> String {
    match image_ref {
        ImageRef::Registry(registry) => format!("{}/{}", registry.registry, registry.repository),
        ImageRef::OciLayout { path, .. }
        | ImageRef::OciArchive { path, .. }
        | ImageRef::DockerArchive { path, .. } => path.display().to_string(),
    }
}

fn layer_history(resolved: &ResolvedImage) -> Vec<Option<String>> {
    let mut created: Vec<Option<String>> = resolved
        .config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone())
        .collect();
    created.resize(resolved.manifest.layers.len(), None);
    created
}

async fn read_layers(
    source: Arc<Source>,
    resolved: &ResolvedImage,
    settings: &ScanSettings,
    progress: Option<ProgressFn>,
) -> Result<Vec<LayerIndex>, ScanError> {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, descriptor) in resolved.manifest.layers.iter().cloned().enumerate() {
        let source = Arc::clone(&source);
        let permits = Arc::clone(&permits);
        let limits = settings.walk.clone();
        let diff_id = resolved.config.rootfs.diff_ids.get(index).cloned();
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let stage = Stage::Layer {
                index,
                digest: descriptor.digest.clone(),
            };
            let blob = source.open_layer(index, &descriptor).await?;
            let (digest, diff_id) = (&descriptor.digest, diff_id.as_deref());
            let walked = if source.checks_layer_digests() {
                walk_checked_layer(blob, digest, diff_id, &limits).await
            } else {
                walk_layer(blob, digest, diff_id, &limits).await
            };
            let layer = walked.map_err(|e| ScanError::pull(stage, e.to_string()))?;
            if let Some(progress) = progress {
                let entries = layer.entries().len();
                progress(Progress::LayerDone {
                    index,
                    digest: descriptor.digest,
                    entries,
                });
            }
            Ok::<_, ScanError>((index, layer))
        });
    }
    let mut layers: Vec<Option<LayerIndex>> = vec![None; resolved.manifest.layers.len()];
    // Returning early drops the JoinSet, which aborts the layers still being read.
    while let Some(joined) = tasks.join_next().await {
        let (index, layer) = joined.map_err(|e| {
            ScanError::pull(
                Stage::Manifest,
                format!("a layer reader stopped unexpectedly: {e}"),
            )
        })??;
        layers[index] = Some(layer);
    }
    Ok(layers.into_iter().flatten().collect())
}
