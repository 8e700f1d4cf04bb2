//! Image sources: a registry, an OCI layout directory, an OCI archive or a docker archive.
//! Each resolves a reference to one image manifest and config and opens layer blobs as
//! streams; digest checks of layers happen in the layer walk.

mod fetch;
mod local;
mod registry;

use crate::error::{ScanError, Stage};
use crate::image::{Descriptor, ImageConfig, Manifest, Platform};
use crate::reference::ImageRef;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncRead;

pub use local::LocalSource;
pub use registry::RegistrySource;

/// A layer blob as a byte stream.
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// Settings that decide how sources connect.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The platform to choose from an image index.
    pub platform: Platform,
    /// Extra CA certificates (PEM) trusted for registry TLS.
    pub ca_file: Option<PathBuf>,
    /// Registries (host or host:port) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// The docker config text given in `DOCKER_AUTH_CONFIG`, if any.
    pub auth_config: Option<String>,
    /// Timeout for connecting and for each read from the registry.
    pub timeout: Duration,
    /// Retries of a registry request that failed with HTTP 408, 429 or 5xx, a connection error
    /// or a time-out.
    pub retries: u32,
}

/// One image resolved to its manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Digest of the image manifest, when the source has one.
    pub manifest_digest: Option<String>,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// The tag the `:latest` check judges; for local sources the given tag or the one the
    /// layout or archive records.
    pub tag: Option<String>,
    /// Digest the reference pins, if any.
    pub pinned_digest: Option<String>,
}

/// An opened image source.
pub enum Source {
    Registry(Box<RegistrySource>),
    Local(LocalSource),
}

impl Source {
    /// Opens the source that `image` names: for registries this resolves credentials and
    /// authenticates.
    pub async fn open(image: &ImageRef, options: &SourceOptions) -> Result<Self, ScanError> {
        match image {
            ImageRef::Registry(reference) => Ok(Source::Registry(Box::new(
                RegistrySource::open(reference, options).await?,
            ))),
            other => Ok(Source::Local(LocalSource::open(other).await?)),
        }
    }

    /// Reads the manifest (choosing `platform` from an index) and the config.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ScanError> {
        match self {
            Source::Registry(source) => source.resolve(platform).await,
            Source::Local(source) => source.resolve(platform).await,
        }
    }

    /// Opens the blob of the layer at `index` for streaming.
    pub async fn open_layer(
        &self,
        index: usize,
        descriptor: &Descriptor,
    ) -> Result<BlobReader, ScanError> {
        let stage = Stage::Layer {
            index,
            digest: descriptor.digest.clone(),
        };
        match self {
            Source::Registry(source) => source.open_blob(descriptor, stage).await,
            Source::Local(source) => source.open_layer(index, descriptor, stage).await,
        }
    }

    /// Tells whether the readers of [`Source::open_layer`] check each blob's digest themselves,
    /// failing their last read on a mismatch. Registry streams do, so that the error names the
    /// host that sent the bytes. Local files are checked by the layer walk.
    pub fn checks_layer_digests(&self) -> bool {
        matches!(self, Source::Registry(_))
    }

    /// Returns the registry host or local path the image comes from, for messages.
    pub fn location(&self) -> String {
        match self {
            Source::Registry(source) => source.host().to_string(),
            Source::Local(source) => source.location(),
        }
    }
}

/// Layer media types the walk can read; compression is detected from the bytes.
pub const READABLE_LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// Checks that every layer has a media type the walk can read. Encrypted, foreign and
/// non-distributable layers are rejected: skipping them would let their files pass unseen.
pub fn check_layer_media_types(manifest: &Manifest) -> Result<(), ScanError> {
    for (index, layer) in manifest.layers.iter().enumerate() {
        if READABLE_LAYER_TYPES.contains(&layer.media_type.as_str()) {
            continue;
        }
        let media_type = layer.media_type.as_str();
        let why = if media_type.contains("encrypted") {
            "encrypted layers cannot be inspected"
        } else if media_type.contains("foreign") || media_type.contains("nondistributable") {
            "foreign (non-distributable) layers are not stored in the registry and are not read"
        } else {
            "it is not a known layer media type"
        };
        return Err(ScanError::metadata(
            Stage::Layer {
                index,
                digest: layer.digest.clone(),
            },
            format!(
                "layer media type {media_type:?} is not supported: {why}; the image cannot be \
                 checked"
            ),
        ));
    }
    Ok(())
}
