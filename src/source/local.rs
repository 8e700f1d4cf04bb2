//! Local sources: an OCI layout directory, a tar of one (`oci-archive`), and the tar that
//! `docker save` writes (`docker-archive`). Archives are indexed once and their members read
//! in place, so no layer is extracted to disk.

use super::{BlobReader, ResolvedImage};
use crate::error::{ScanError, Stage};
use crate::image::{
    self, Descriptor, Manifest, ManifestDocument, Platform, parse_manifest_document,
};
use crate::reference::{ImageRef, parse_digest};
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Most members an archive may have.
const MAX_ARCHIVE_MEMBERS: usize = 100_000;
/// The annotation that names a tag in an OCI layout's index.json.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Media type given to docker-archive layers, which record none; compression is detected.
const DOCKER_ARCHIVE_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The storage of a local image: a directory or an indexed tar file.
enum Store {
    Directory(PathBuf),
    /// A tar file with the offset and size of each regular member, by normalised name.
    Tar {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OciLayout,
    DockerArchive,
}

/// An entry of a docker archive's manifest.json.
#[derive(Deserialize)]
struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl DockerArchiveEntry {
    fn tags(&self) -> &[String] {
        self.repo_tags.as_deref().unwrap_or_default()
    }
}

/// An image read from the local filesystem.
pub struct LocalSource {
    store: Store,
    format: Format,
    tag: Option<String>,
    location: String,
    /// Member names of a docker archive's layers, known once the image is resolved.
    docker_layers: OnceLock<Vec<String>>,
}

fn manifest_error(message: impl Into<String>) -> ScanError {
    ScanError::metadata(Stage::Manifest, message)
}

fn reference_error(message: impl Into<String>) -> ScanError {
    ScanError::pull(Stage::Reference, message)
}

impl LocalSource {
    /// Opens the layout directory or indexes the archive that `image` names.
    pub async fn open(image: &ImageRef) -> Result<Self, ScanError> {
        let (path, tag, format, is_archive) = match image {
            ImageRef::OciLayout { path, tag } => (path, tag, Format::OciLayout, false),
            ImageRef::OciArchive { path, tag } => (path, tag, Format::OciLayout, true),
            ImageRef::DockerArchive { path, tag } => (path, tag, Format::DockerArchive, true),
            ImageRef::Registry(_) => return Err(reference_error("not a local image reference")),
        };
        let store = if is_archive {
            if !path.is_file() {
                return Err(reference_error(format!(
                    "archive {} is not a file",
                    path.display()
                )));
            }
            let members = index_tar(path).await.map_err(|e| {
                reference_error(format!("cannot read archive {}: {e}", path.display()))
            })?;
            Store::Tar {
                path: path.clone(),
                members,
            }
        } else {
            if !path.is_dir() {
                return Err(reference_error(format!(
                    "OCI layout {} is not a directory",
                    path.display()
                )));
            }
            Store::Directory(path.clone())
        };
        Ok(LocalSource {
            store,
            format,
            tag: tag.clone(),
            location: path.display().to_string(),
            docker_layers: OnceLock::new(),
        })
    }

    /// Returns the path of the layout or archive.
    pub fn location(&self) -> String {
        self.location.clone()
    }

    /// Reads the manifest and config.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ScanError> {
        match self.format {
            Format::OciLayout => self.resolve_oci(platform).await,
            Format::DockerArchive => self.resolve_docker().await,
        }
    }

    async fn resolve_oci(&self, platform: &Platform) -> Result<ResolvedImage, ScanError> {
        let index_bytes = self
            .store
            .read_small("index.json", image::MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| manifest_error(format!("cannot read index.json: {e}")))?;
        let top = match parse_manifest_document(&index_bytes, Some(image::OCI_INDEX))
            .map_err(|e| manifest_error(format!("index.json: {e}")))?
        {
            ManifestDocument::Index(index) => index,
            ManifestDocument::Image(_) => {
                return Err(manifest_error(
                    "index.json is a manifest, not an image index",
                ));
            }
        };
        let (entry, tag) = self.select_layout_entry(&top.manifests, platform)?;
        let bytes = self
            .read_blob(entry, Stage::Manifest, image::MAX_MANIFEST_BYTES)
            .await?;
        let (manifest, digest) = match parse_manifest_document(&bytes, Some(&entry.media_type))
            .map_err(manifest_error)?
        {
            ManifestDocument::Image(manifest) => (manifest, entry.digest.clone()),
            // A multi-platform image: the entry points at an index, one level deep.
            ManifestDocument::Index(index) => {
                let chosen = image::select_platform(&index, platform)
                    .map_err(|e| ScanError::pull(Stage::Manifest, e))?;
                let bytes = self
                    .read_blob(chosen, Stage::Manifest, image::MAX_MANIFEST_BYTES)
                    .await?;
                match parse_manifest_document(&bytes, Some(&chosen.media_type))
                    .map_err(manifest_error)?
                {
                    ManifestDocument::Image(manifest) => (manifest, chosen.digest.clone()),
                    ManifestDocument::Index(_) => {
                        return Err(manifest_error("an index inside an index is not supported"));
                    }
                }
            }
        };
        let config_bytes = self
            .read_blob(&manifest.config, Stage::Config, image::MAX_CONFIG_BYTES)
            .await?;
        let config = image::parse_config(&config_bytes)
            .map_err(|e| ScanError::metadata(Stage::Config, e))?;
        Ok(ResolvedImage {
            manifest_digest: Some(digest),
            manifest,
            config,
            tag,
            pinned_digest: None,
        })
    }

    /// Picks the index.json entry for the requested tag, or the only entry, or the entry for
    /// the platform when the entries are per-platform manifests of one image.
    fn select_layout_entry<'a>(
        &self,
        entries: &'a [Descriptor],
        platform: &Platform,
    ) -> Result<(&'a Descriptor, Option<String>), ScanError> {
        let ref_name = |d: &Descriptor| {
            d.annotations
                .get(REF_NAME)
                .map(|n| ref_name_tag(n).to_string())
        };
        let names: BTreeSet<String> = entries.iter().filter_map(ref_name).collect();
        let listed = names.iter().cloned().collect::<Vec<_>>().join(", ");
        let candidates: Vec<&Descriptor> = match &self.tag {
            Some(tag) => entries
                .iter()
                .filter(|d| ref_name(d).as_ref() == Some(tag))
                .collect(),
            None if names.len() > 1 => {
                return Err(reference_error(format!(
                    "{} has several images; name one with :TAG, one of: {listed}",
                    self.location
                )));
            }
            None => entries.iter().collect(),
        };
        let chosen = match candidates.as_slice() {
            [] if self.tag.is_some() => {
                let listed = if listed.is_empty() {
                    "no tags".to_string()
                } else {
                    listed
                };
                return Err(reference_error(format!(
                    "{} has no image tagged {:?}; it has: {listed}",
                    self.location,
                    self.tag.as_deref().unwrap_or_default()
                )));
            }
            [] => {
                return Err(manifest_error(format!(
                    "{} lists no images in index.json",
                    self.location
                )));
            }
            [one] => *one,
            many => pick_platform(many, platform)?,
        };
        Ok((chosen, self.tag.clone().or_else(|| ref_name(chosen))))
    }

    async fn resolve_docker(&self) -> Result<ResolvedImage, ScanError> {
        let bytes = self
            .store
            .read_small("manifest.json", image::MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| manifest_error(format!("cannot read manifest.json: {e}")))?;
        let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| manifest_error(format!("manifest.json is not valid: {e}")))?;
        let chosen = self.select_docker_entry(&entries)?;
        let tag = match &self.tag {
            Some(tag) => Some(ref_name_tag(tag).to_string()),
            None => chosen.tags().first().map(|t| ref_name_tag(t).to_string()),
        };
        let config_bytes = self
            .store
            .read_small(&chosen.config, image::MAX_CONFIG_BYTES)
            .await
            .map_err(|e| {
                ScanError::metadata(Stage::Config, format!("cannot read {}: {e}", chosen.config))
            })?;
        if let Some(expected) = digest_from_member_name(&chosen.config) {
            image::verify_digest(&config_bytes, &expected)
                .map_err(|e| ScanError::pull(Stage::Config, e))?;
        }
        let config = image::parse_config(&config_bytes)
            .map_err(|e| ScanError::metadata(Stage::Config, e))?;
        if config.rootfs.diff_ids.len() != chosen.layers.len() {
            return Err(ScanError::metadata(
                Stage::Config,
                format!(
                    "manifest.json lists {} layers but the config has {} diff_ids",
                    chosen.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let layers = chosen
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(name, diff_id)| {
                // Legacy archives name layers by id, not digest; their layers are uncompressed,
                // so the diff_id is also the blob's digest.
                let digest = digest_from_member_name(name).unwrap_or_else(|| diff_id.clone());
                let size = self.store.member_size(name).map_or(-1, |s| s as i64);
                descriptor(DOCKER_ARCHIVE_LAYER, digest, size)
            })
            .collect();
        // resolve runs once per source, so the cell is empty here.
        let _ = self.docker_layers.set(chosen.layers.clone());
        let config_digest = format!("sha256:{}", sha256_hex(&config_bytes));
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(image::DOCKER_MANIFEST.to_string()),
            config: descriptor(
                image::DOCKER_CONFIG,
                config_digest,
                config_bytes.len() as i64,
            ),
            layers,
        };
        Ok(ResolvedImage {
            manifest_digest: None,
            manifest,
            config,
            tag,
            pinned_digest: None,
        })
    }

    fn select_docker_entry<'a>(
        &self,
        entries: &'a [DockerArchiveEntry],
    ) -> Result<&'a DockerArchiveEntry, ScanError> {
        match (&self.tag, entries) {
            (_, []) => Err(manifest_error("manifest.json lists no images")),
            (None, [one]) => Ok(one),
            (None, _) => {
                let all: Vec<&str> = entries
                    .iter()
                    .flat_map(|e| e.tags())
                    .map(String::as_str)
                    .collect();
                Err(reference_error(format!(
                    "the archive has several images; name one with :NAME:TAG, one of: {}",
                    all.join(", ")
                )))
            }
            (Some(wanted), _) => entries
                .iter()
                .find(|e| {
                    e.tags()
                        .iter()
                        .any(|t| t == wanted || ref_name_tag(t) == wanted)
                })
                .ok_or_else(|| {
                    reference_error(format!("the archive has no image tagged {wanted:?}"))
                }),
        }
    }

    /// Reads a small blob by descriptor and checks its digest.
    async fn read_blob(
        &self,
        descriptor: &Descriptor,
        stage: Stage,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ScanError> {
        let name =
            blob_name(&descriptor.digest).map_err(|e| ScanError::metadata(stage.clone(), e))?;
        let bytes = self.store.read_small(&name, max_bytes).await.map_err(|e| {
            let message = format!("cannot read {name}: {e}");
            match e {
                SmallReadError::TooLarge { .. } => ScanError::metadata(stage.clone(), message),
                SmallReadError::Io(_) => ScanError::pull(stage.clone(), message),
            }
        })?;
        image::verify_digest(&bytes, &descriptor.digest).map_err(|e| ScanError::pull(stage, e))?;
        Ok(bytes)
    }

    /// Opens the layer at `index`; the layer walk checks its digest.
    pub async fn open_layer(
        &self,
        index: usize,
        descriptor: &Descriptor,
        stage: Stage,
    ) -> Result<BlobReader, ScanError> {
        let name = match self.format {
            Format::OciLayout => {
                blob_name(&descriptor.digest).map_err(|e| ScanError::metadata(stage.clone(), e))?
            }
            Format::DockerArchive => self
                .docker_layers
                .get()
                .and_then(|names| names.get(index))
                .cloned()
                .ok_or_else(|| {
                    ScanError::metadata(stage.clone(), "layer not listed in manifest.json")
                })?,
        };
        self.store.open(&name).await.map_err(|e| {
            ScanError::pull(
                stage,
                format!("cannot open {name} in {}: {e}", self.location),
            )
        })
    }
}

fn descriptor(media_type: &str, digest: String, size: i64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        urls: Vec::new(),
        annotations: Default::default(),
        platform: None,
    }
}

/// Returns the tag part of an OCI `ref.name` or a `name:tag` reference.
fn ref_name_tag(name: &str) -> &str {
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[after_slash..].rfind(':') {
        Some(i) => &name[after_slash + i + 1..],
        None if after_slash == 0 => name,
        None => "latest",
    }
}

fn pick_platform<'a>(
    entries: &[&'a Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor, ScanError> {
    let index = image::Index {
        schema_version: 2,
        media_type: None,
        manifests: entries.iter().map(|d| (*d).clone()).collect(),
    };
    let chosen = image::select_platform(&index, platform)
        .map_err(|e| ScanError::pull(Stage::Manifest, e))?;
    entries
        .iter()
        .copied()
        .find(|d| d.digest == chosen.digest)
        .ok_or_else(|| manifest_error("the chosen platform entry is missing"))
}

fn blob_name(digest: &str) -> Result<String, String> {
    let digest = parse_digest(digest)?;
    let (algorithm, hex) = digest.split_once(':').unwrap_or_default();
    Ok(format!("blobs/{algorithm}/{hex}"))
}

/// Returns `sha256:<hex>` when a docker-archive member is named after its digest
/// (`blobs/sha256/<hex>` in Docker 25 and later, `<hex>.json` for older configs).
fn digest_from_member_name(name: &str) -> Option<String> {
    let file = name.rsplit('/').next()?;
    let named_by_digest = name.starts_with("blobs/sha256/") || file.ends_with(".json");
    let candidate = format!("sha256:{}", file.strip_suffix(".json").unwrap_or(file));
    (named_by_digest && parse_digest(&candidate).is_ok()).then_some(candidate)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn normalise_member(name: &str) -> String {
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Records the offset and size of every regular member of the tar at `path`.
async fn index_tar(path: &Path) -> Result<HashMap<String, (u64, u64)>, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut archive = tokio_tar::Archive::new(tokio::io::BufReader::new(file));
    let mut entries = archive.entries().map_err(|e| e.to_string())?;
    let mut members = HashMap::new();
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| format!("invalid tar: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| format!("invalid member name: {e}"))?;
        let name = normalise_member(&name.to_string_lossy());
        members.insert(name, (entry.raw_file_position(), entry.effective_size()));
        if members.len() > MAX_ARCHIVE_MEMBERS {
            return Err(format!("more than {MAX_ARCHIVE_MEMBERS} members"));
        }
    }
    Ok(members)
}

impl Store {
    async fn open(&self, name: &str) -> std::io::Result<BlobReader> {
        match self {
            Store::Directory(root) => {
                let file = tokio::fs::File::open(root.join(name)).await?;
                Ok(Box::new(file))
            }
            Store::Tar { path, members } => {
                let (offset, size) = *members.get(&normalise_member(name)).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such member in the archive",
                    )
                })?;
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(SeekFrom::Start(offset)).await?;
                Ok(Box::new(file.take(size)))
            }
        }
    }

    fn member_size(&self, name: &str) -> Option<u64> {
        match self {
            Store::Directory(root) => std::fs::metadata(root.join(name)).ok().map(|m| m.len()),
            Store::Tar { members, .. } => {
                members.get(&normalise_member(name)).map(|(_, size)| *size)
            }
        }
    }

    async fn read_small(&self, name: &str, max_bytes: u64) -> Result<Vec<u8>, SmallReadError> {
        let reader = self.open(name).await.map_err(SmallReadError::io)?;
        let mut bytes = Vec::new();
        reader
            .take(max_bytes + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(SmallReadError::io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(SmallReadError::TooLarge { max_bytes });
        }
        Ok(bytes)
    }
}

/// Error from reading a document of a local source.
#[derive(Debug, thiserror::Error)]
enum SmallReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(String),
    /// The file is over the cap for its kind of document, which makes the document invalid
    /// rather than unreadable.
    #[error("larger than the limit of {max_bytes} bytes")]
    TooLarge { max_bytes: u64 },
}

impl SmallReadError {
    fn io(error: impl std::fmt::Display) -> Self {
        SmallReadError::Io(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_name_tags() {
        assert_eq!(ref_name_tag("v1"), "v1");
        assert_eq!(ref_name_tag("example.com:5000/app:1.2"), "1.2");
        assert_eq!(ref_name_tag("example.com:5000/app"), "latest");
    }

    #[test]
    fn member_names_normalise() {
        assert_eq!(normalise_member("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(normalise_member("a/../../b"), "b");
    }

    #[test]
    fn digest_from_docker_member() {
        let hex = "a".repeat(64);
        let expected = Some(format!("sha256:{hex}"));
        assert_eq!(
            digest_from_member_name(&format!("blobs/sha256/{hex}")),
            expected
        );
        assert_eq!(digest_from_member_name(&format!("{hex}.json")), expected);
        assert_eq!(digest_from_member_name(&format!("{hex}/layer.tar")), None);
    }
}
