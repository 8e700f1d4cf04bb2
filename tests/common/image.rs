//! An in-process builder of OCI image layouts with hand-made layers.
//!
//! Output is deterministic: the same builder calls give the same bytes and digests, because
//! every timestamp is fixed, owners default to 0:0 and gzip headers carry no time or name.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The annotation that names a manifest inside an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Timestamp used for every `created` field unless a builder sets another.
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// How a layer's tar stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    /// Several gzip members concatenated, as eStargz layers are. The tar stream is cut into
    /// this many parts at 512-byte block boundaries (fewer when it has fewer blocks).
    GzipMembers(usize),
    Zstd,
    /// Several zstd frames concatenated, as zstd:chunked layers are, cut like `GzipMembers`.
    ZstdFrames(usize),
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_TYPE_LAYER_TAR,
            Compression::Gzip | Compression::GzipMembers(_) => MEDIA_TYPE_LAYER_GZIP,
            Compression::Zstd | Compression::ZstdFrames(_) => MEDIA_TYPE_LAYER_ZSTD,
        }
    }

    fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => gzip(tar),
            Compression::GzipMembers(count) => split_blocks(tar, count)
                .map(gzip)
                .collect::<Vec<_>>()
                .concat(),
            Compression::Zstd => zstd_frame(tar),
            Compression::ZstdFrames(count) => split_blocks(tar, count)
                .map(zstd_frame)
                .collect::<Vec<_>>()
                .concat(),
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // GzEncoder writes mtime 0 and no file name, so the output depends on `data` alone.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(data)
        .expect("gzip into memory cannot fail");
    encoder.finish().expect("gzip into memory cannot fail")
}

fn zstd_frame(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd into memory cannot fail")
}

/// Splits `data` into at most `count` parts, each a whole number of 512-byte blocks except
/// possibly the last.
fn split_blocks(data: &[u8], count: usize) -> impl Iterator<Item = &[u8]> {
    let blocks = data.len().div_ceil(512).max(1);
    let blocks_per_part = blocks.div_ceil(count.max(1));
    data.chunks(blocks_per_part * 512)
}

/// A change applied to an entry's tar header before its checksum is computed.
pub type HeaderTweak = Box<dyn Fn(&mut tar::Header)>;

enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    CharDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// A header written byte for byte, checksum included.
    Raw(Box<tar::Header>),
}

/// One member of a layer's tar stream. Paths are relative, without a leading `/`.
pub struct TarEntry {
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    body: Vec<u8>,
    link_target: String,
    tweak: Option<HeaderTweak>,
}

impl fmt::Debug for TarEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TarEntry")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("link_target", &self.link_target)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl TarEntry {
    fn new(path: &str, kind: EntryKind, mode: u32) -> Self {
        Self {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            body: Vec::new(),
            link_target: String::new(),
            tweak: None,
        }
    }

    /// Creates a regular file. `mode` contains the permission bits, setuid, setgid and sticky
    /// included.
    pub fn file(path: &str, mode: u32, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(path, EntryKind::File, mode)
        }
    }

    /// Creates a directory, adding a trailing `/` to the path when it is missing.
    pub fn dir(path: &str, mode: u32) -> Self {
        let path = if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        Self::new(&path, EntryKind::Dir, mode)
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Self {
            link_target: target.to_owned(),
            ..Self::new(path, EntryKind::Symlink, 0o777)
        }
    }

    /// Creates a hard link to `target`, the path of an earlier entry in this layer or a lower one.
    pub fn hard_link(path: &str, target: &str) -> Self {
        Self {
            link_target: target.to_owned(),
            ..Self::new(path, EntryKind::HardLink, 0o644)
        }
    }

    pub fn char_device(path: &str, mode: u32, major: u32, minor: u32) -> Self {
        Self::new(path, EntryKind::CharDevice { major, minor }, mode)
    }

    pub fn fifo(path: &str, mode: u32) -> Self {
        Self::new(path, EntryKind::Fifo, mode)
    }

    /// Creates a whiteout that deletes `path` from the lower layers, which is an empty file
    /// `DIR/.wh.NAME`.
    pub fn whiteout(path: &str) -> Self {
        let path = path.trim_end_matches('/');
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name),
            None => (String::new(), path),
        };
        Self::file(&format!("{parent}.wh.{name}"), 0o644, Vec::new())
    }

    /// Creates an opaque whiteout that hides everything the lower layers put in `dir`, which is
    /// an empty file `DIR/.wh..wh..opq`.
    pub fn opaque_whiteout(dir: &str) -> Self {
        let dir = dir.trim_end_matches('/');
        Self::file(&format!("{dir}/.wh..wh..opq"), 0o644, Vec::new())
    }

    /// Creates an entry that is written exactly as given. The builder changes nothing in
    /// `header`, path and checksum included, and pads `body` to a 512-byte boundary.
    pub fn raw(header: tar::Header, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::new("", EntryKind::Raw(Box::new(header)), 0)
        }
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Modification time in seconds since the Unix epoch; 0 by default.
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    /// Changes the header after the builder filled it and before it sets the path and the
    /// checksum, for example to set a size that does not match the body.
    pub fn tweak_header(mut self, tweak: impl Fn(&mut tar::Header) + 'static) -> Self {
        self.tweak = Some(Box::new(tweak));
        self
    }

    fn append_to(&self, builder: &mut tar::Builder<Vec<u8>>) -> std::io::Result<()> {
        if let EntryKind::Raw(header) = &self.kind {
            return builder.append(header, self.body.as_slice());
        }

        let mut header = tar::Header::new_gnu();
        header.set_mode(self.mode);
        header.set_uid(self.uid);
        header.set_gid(self.gid);
        header.set_mtime(self.mtime);
        header.set_size(0);
        match &self.kind {
            EntryKind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(self.body.len() as u64);
            }
            EntryKind::Dir => header.set_entry_type(tar::EntryType::Directory),
            EntryKind::Symlink => header.set_entry_type(tar::EntryType::Symlink),
            EntryKind::HardLink => header.set_entry_type(tar::EntryType::Link),
            EntryKind::CharDevice { major, minor } => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_device_major(*major)?;
                header.set_device_minor(*minor)?;
            }
            EntryKind::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            EntryKind::Raw(_) => unreachable!("raw entries return early"),
        }
        if let Some(tweak) = &self.tweak {
            tweak(&mut header);
        }

        // Both calls write GNU long-name records for paths and targets over 100 bytes and
        // set the checksum.
        match self.kind {
            EntryKind::Symlink | EntryKind::HardLink => {
                builder.append_link(&mut header, &self.path, &self.link_target)
            }
            _ => builder.append_data(&mut header, &self.path, self.body.as_slice()),
        }
    }
}

/// One filesystem layer.
#[derive(Debug)]
pub struct Layer {
    entries: Vec<TarEntry>,
    compression: Compression,
    created_by: String,
    end_of_archive: bool,
    media_type: Option<String>,
    /// A blob and diff_id made by the caller, used instead of `entries` and `compression`.
    prebuilt: Option<(Vec<u8>, String)>,
}

impl Layer {
    /// Creates a gzip-compressed layer with `entries` in the given order.
    pub fn new(entries: Vec<TarEntry>) -> Self {
        Self {
            entries,
            compression: Compression::Gzip,
            created_by: String::new(),
            end_of_archive: true,
            media_type: None,
            prebuilt: None,
        }
    }

    /// Creates a layer whose blob the caller made: `blob` is stored as it is, and `diff_id` is the
    /// digest of its uncompressed stream. The media type is gzip unless set otherwise.
    pub fn prebuilt(blob: Vec<u8>, diff_id: &str) -> Self {
        Self {
            prebuilt: Some((blob, diff_id.to_owned())),
            ..Self::new(Vec::new())
        }
    }

    /// Returns the `rootfs.diff_ids` entry of this layer.
    fn diff_id(&self) -> String {
        match &self.prebuilt {
            Some((_, diff_id)) => diff_id.clone(),
            None => sha256_digest(&self.tar_bytes()),
        }
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the `created_by` of this layer's history entry.
    pub fn created_by(mut self, created_by: &str) -> Self {
        self.created_by = created_by.to_owned();
        self
    }

    /// Leaves out the two zero blocks that end a tar archive, as umoci 0.4.7 does.
    pub fn without_end_of_archive(mut self) -> Self {
        self.end_of_archive = false;
        self
    }

    /// Replaces the descriptor's media type, which otherwise follows the compression.
    pub fn media_type(mut self, media_type: &str) -> Self {
        self.media_type = Some(media_type.to_owned());
        self
    }

    /// Builds the uncompressed tar stream.
    pub fn tar_bytes(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in &self.entries {
            entry
                .append_to(&mut builder)
                .unwrap_or_else(|error| panic!("failed to add {entry:?} to a layer: {error}"));
        }
        let mut tar = builder.into_inner().expect("tar into memory cannot fail");
        if !self.end_of_archive {
            // tar::Builder ends the archive with exactly two 512-byte zero blocks.
            tar.truncate(tar.len() - 1024);
        }
        tar
    }

    fn build(&self) -> BuiltLayer {
        let (blob, diff_id) = match &self.prebuilt {
            Some((blob, diff_id)) => (blob.clone(), diff_id.clone()),
            None => {
                let tar = self.tar_bytes();
                (self.compression.compress(&tar), sha256_digest(&tar))
            }
        };
        BuiltLayer {
            diff_id,
            descriptor: Descriptor {
                media_type: self
                    .media_type
                    .clone()
                    .unwrap_or_else(|| self.compression.media_type().to_owned()),
                digest: sha256_digest(&blob),
                size: blob.len() as u64,
            },
            blob,
        }
    }
}

struct BuiltLayer {
    diff_id: String,
    descriptor: Descriptor,
    blob: Vec<u8>,
}

/// A content descriptor: media type, digest and size of a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    pub fn to_json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

/// An image's target platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64", None)
    }

    pub fn linux_arm64_v8() -> Self {
        Self::new("linux", "arm64", Some("v8"))
    }

    fn to_json(&self) -> Value {
        let mut platform = json!({ "os": self.os, "architecture": self.architecture });
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

enum HistoryItem {
    Layer(usize),
    Empty(String),
}

/// A change applied to the image configuration JSON after the builder filled it.
pub type ConfigPatch = Box<dyn Fn(&mut Value)>;

/// Builds one image: layers, configuration and manifest.
pub struct ImageBuilder {
    platform: Platform,
    created: String,
    layers: Vec<Layer>,
    history: Vec<HistoryItem>,
    user: Option<String>,
    exposed_ports: Vec<String>,
    labels: BTreeMap<String, String>,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    working_dir: Option<String>,
    manifest_annotations: BTreeMap<String, String>,
    config_patches: Vec<ConfigPatch>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    /// Creates a builder for a linux/amd64 image with no layers.
    pub fn new() -> Self {
        Self {
            platform: Platform::linux_amd64(),
            created: FIXED_CREATED.to_owned(),
            layers: Vec::new(),
            history: Vec::new(),
            user: None,
            exposed_ports: Vec::new(),
            labels: BTreeMap::new(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            working_dir: None,
            manifest_annotations: BTreeMap::new(),
            config_patches: Vec::new(),
        }
    }

    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// Sets the `created` timestamp (RFC 3339) of the configuration and the history.
    pub fn created(mut self, created: &str) -> Self {
        self.created = created.to_owned();
        self
    }

    /// Appends a layer, with a history entry after the ones added so far.
    pub fn layer(mut self, layer: Layer) -> Self {
        self.history.push(HistoryItem::Layer(self.layers.len()));
        self.layers.push(layer);
        self
    }

    /// Appends a history entry with `empty_layer: true`, as an `ENV` or `LABEL` step makes.
    pub fn empty_layer_history(mut self, created_by: &str) -> Self {
        self.history.push(HistoryItem::Empty(created_by.to_owned()));
        self
    }

    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Adds an `ExposedPorts` key such as `80/tcp`.
    pub fn expose(mut self, port: &str) -> Self {
        self.exposed_ports.push(port.to_owned());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Appends `KEY=VALUE` to `Env`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push(format!("{key}={value}"));
        self
    }

    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = Some(cmd.iter().map(|arg| (*arg).to_owned()).collect());
        self
    }

    pub fn entrypoint(mut self, entrypoint: &[&str]) -> Self {
        self.entrypoint = Some(entrypoint.iter().map(|arg| (*arg).to_owned()).collect());
        self
    }

    pub fn working_dir(mut self, working_dir: &str) -> Self {
        self.working_dir = Some(working_dir.to_owned());
        self
    }

    /// Adds an annotation to the image manifest.
    pub fn manifest_annotation(mut self, key: &str, value: &str) -> Self {
        self.manifest_annotations
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Changes the configuration JSON after the builder filled it, for configurations that the
    /// other methods cannot express, such as a wrong `diff_ids` list or a missing field.
    pub fn patch_config(mut self, patch: impl Fn(&mut Value) + 'static) -> Self {
        self.config_patches.push(Box::new(patch));
        self
    }

    /// Returns the configuration JSON that `write_layout` stores.
    pub fn config_json(&self) -> Value {
        let diff_ids: Vec<String> = self.layers.iter().map(Layer::diff_id).collect();
        self.config_json_with(&diff_ids)
    }

    fn config_json_with(&self, diff_ids: &[String]) -> Value {
        let mut container_config = serde_json::Map::new();
        if let Some(user) = &self.user {
            container_config.insert("User".into(), json!(user));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|port| (port.clone(), json!({})))
                .collect();
            container_config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.env.is_empty() {
            container_config.insert("Env".into(), json!(self.env));
        }
        if let Some(entrypoint) = &self.entrypoint {
            container_config.insert("Entrypoint".into(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            container_config.insert("Cmd".into(), json!(cmd));
        }
        if let Some(working_dir) = &self.working_dir {
            container_config.insert("WorkingDir".into(), json!(working_dir));
        }
        if !self.labels.is_empty() {
            container_config.insert("Labels".into(), json!(self.labels));
        }

        let history: Vec<Value> = self
            .history
            .iter()
            .map(|item| match item {
                HistoryItem::Layer(index) => {
                    let layer = &self.layers[*index];
                    let created_by = if layer.created_by.is_empty() {
                        format!("harness layer {index}")
                    } else {
                        layer.created_by.clone()
                    };
                    json!({ "created": self.created, "created_by": created_by })
                }
                HistoryItem::Empty(created_by) => {
                    json!({ "created": self.created, "created_by": created_by, "empty_layer": true })
                }
            })
            .collect();

        let mut config = json!({
            "created": self.created,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": Value::Object(container_config),
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        if let Some(variant) = &self.platform.variant {
            config["variant"] = json!(variant);
        }
        for patch in &self.config_patches {
            patch(&mut config);
        }
        config
    }

    /// Writes the image's blobs into the layout at `dir` and returns the manifest descriptor,
    /// without naming it in `index.json`.
    fn write_blobs(&self, dir: &Path) -> LayoutImage {
        init_layout(dir);
        let layers: Vec<BuiltLayer> = self.layers.iter().map(Layer::build).collect();
        let diff_ids: Vec<String> = layers.iter().map(|layer| layer.diff_id.clone()).collect();
        for layer in &layers {
            write_blob(dir, &layer.blob);
        }

        let config_bytes = serde_json::to_vec(&self.config_json_with(&diff_ids)).unwrap();
        let config = Descriptor {
            media_type: MEDIA_TYPE_OCI_CONFIG.to_owned(),
            digest: write_blob(dir, &config_bytes),
            size: config_bytes.len() as u64,
        };

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "config": config.to_json(),
            "layers": layers.iter().map(|layer| layer.descriptor.to_json()).collect::<Vec<_>>(),
        });
        if !self.manifest_annotations.is_empty() {
            manifest["annotations"] = json!(self.manifest_annotations);
        }
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let manifest = Descriptor {
            media_type: MEDIA_TYPE_OCI_MANIFEST.to_owned(),
            digest: write_blob(dir, &manifest_bytes),
            size: manifest_bytes.len() as u64,
        };

        LayoutImage {
            dir: dir.to_path_buf(),
            tag: String::new(),
            platform: self.platform.clone(),
            manifest,
            config,
            layers: layers.into_iter().map(|layer| layer.descriptor).collect(),
            diff_ids,
        }
    }

    /// Writes the image into the OCI layout at `dir`, creating the layout when missing, and
    /// names its manifest `tag` in `index.json`, replacing an earlier entry with that name.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> LayoutImage {
        let mut image = self.write_blobs(dir);
        add_to_layout_index(dir, &image.manifest, tag);
        image.tag = tag.to_owned();
        image
    }
}

/// An image written into an OCI layout.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    pub dir: PathBuf,
    /// The `org.opencontainers.image.ref.name` of the manifest, empty for a manifest that is
    /// only reachable through an image index.
    pub tag: String,
    pub platform: Platform,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// `sha256:` digests of the uncompressed layers, as in `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
}

impl LayoutImage {
    /// `oci:DIR:TAG`, the skopeo source name of this image.
    pub fn skopeo_name(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// Builds an image index with one manifest per platform.
#[derive(Default)]
pub struct IndexBuilder {
    images: Vec<ImageBuilder>,
    annotations: BTreeMap<String, String>,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an image; its `platform` becomes the descriptor's platform.
    pub fn image(mut self, image: ImageBuilder) -> Self {
        self.images.push(image);
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Writes every image and the index into the OCI layout at `dir` and names the index
    /// `tag` in `index.json`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> LayoutIndex {
        let images: Vec<LayoutImage> = self
            .images
            .iter()
            .map(|image| image.write_blobs(dir))
            .collect();
        let manifests: Vec<Value> = images
            .iter()
            .map(|image| {
                let mut descriptor = image.manifest.to_json();
                descriptor["platform"] = image.platform.to_json();
                descriptor
            })
            .collect();
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_OCI_INDEX,
            "manifests": manifests,
        });
        if !self.annotations.is_empty() {
            index["annotations"] = json!(self.annotations);
        }
        let index_bytes = serde_json::to_vec(&index).unwrap();
        let descriptor = Descriptor {
            media_type: MEDIA_TYPE_OCI_INDEX.to_owned(),
            digest: write_blob(dir, &index_bytes),
            size: index_bytes.len() as u64,
        };
        add_to_layout_index(dir, &descriptor, tag);

        LayoutIndex {
            dir: dir.to_path_buf(),
            tag: tag.to_owned(),
            index: descriptor,
            images,
        }
    }
}

/// An image index written into an OCI layout.
#[derive(Clone, Debug)]
pub struct LayoutIndex {
    pub dir: PathBuf,
    pub tag: String,
    pub index: Descriptor,
    /// The platform images, in the order of the index's `manifests`.
    pub images: Vec<LayoutImage>,
}

/// Returns `sha256:HEX` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Creates `oci-layout`, an empty `index.json` and `blobs/sha256` when they are missing.
fn init_layout(dir: &Path) {
    fs::create_dir_all(dir.join("blobs/sha256"))
        .unwrap_or_else(|error| panic!("failed to create a layout in {}: {error}", dir.display()));
    let layout_file = dir.join("oci-layout");
    if !layout_file.exists() {
        fs::write(&layout_file, r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("failed to write oci-layout");
    }
    let index_file = dir.join("index.json");
    if !index_file.exists() {
        let index =
            json!({ "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [] });
        fs::write(&index_file, serde_json::to_vec(&index).unwrap())
            .expect("failed to write index.json");
    }
}

/// Stores `data` under `blobs/sha256/` and returns its digest.
pub fn write_blob(dir: &Path, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let path = dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
    fs::write(&path, data)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", path.display()));
    digest
}

/// Adds `descriptor` to the layout's `index.json` under the name `tag`.
pub fn add_to_layout_index(dir: &Path, descriptor: &Descriptor, tag: &str) {
    init_layout(dir);
    let index_file = dir.join("index.json");
    let mut index: Value =
        serde_json::from_slice(&fs::read(&index_file).expect("failed to read index.json"))
            .expect("index.json is not JSON");
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("index.json has no manifests list");
    manifests.retain(|entry| entry["annotations"][REF_NAME_ANNOTATION] != json!(tag));

    let mut entry = descriptor.to_json();
    entry["annotations"] = json!({ REF_NAME_ANNOTATION: tag });
    manifests.push(entry);
    fs::write(&index_file, serde_json::to_vec(&index).unwrap())
        .expect("failed to write index.json");
}
