//! Image manifests, indexes and configs: the parts the scanner reads, parsed with size caps.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Largest manifest or index accepted, in bytes. Registries cap manifests at 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config accepted, in bytes. Real configs are a few KiB; long histories reach
/// a few hundred KiB.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Media types sent in the `Accept` header of manifest requests.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A content descriptor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) if !variant.is_empty() => write!(f, "/{variant}"),
            _ => Ok(()),
        }
    }
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !valid {
            return Err(format!(
                "{text:?} is not of the form os/arch[/variant], e.g. linux/amd64"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Tells whether an index entry for `self` serves a request for `wanted`. A request
    /// without a variant takes any variant; a request with one needs that variant, where an
    /// arm64 entry without a variant counts as `v8`.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os || self.architecture != wanted.architecture {
            return false;
        }
        let normalise = |variant: &Option<String>| -> Option<String> {
            match variant.as_deref() {
                None | Some("") if self.architecture == "arm64" => Some("v8".to_string()),
                None | Some("") => None,
                Some(v) => Some(v.to_string()),
            }
        };
        match &wanted.variant {
            None => true,
            Some(_) => normalise(&self.variant) == normalise(&wanted.variant),
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest document: a single image or an index of images.
#[derive(Debug, Clone)]
pub enum ManifestDocument {
    Image(Manifest),
    Index(Index),
}

/// Parses a manifest or index from `bytes`. `content_type` is the media type the registry or
/// descriptor gave, if any; the document's own `mediaType` field wins when present.
pub fn parse_manifest_document(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<ManifestDocument, String> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "the manifest is {} bytes, over the limit of {MAX_MANIFEST_BYTES}",
            bytes.len()
        ));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<i64>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        layers: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    if probe.schema_version == Some(1) {
        return Err(
            "Docker schema 1 manifests are not supported; push the image again with a \
                    current client to get a schema 2 or OCI manifest"
                .to_string(),
        );
    }
    if probe.schema_version != Some(2) {
        return Err(format!(
            "unsupported schemaVersion {:?}, expected 2",
            probe.schema_version
        ));
    }
    let media_type = probe.media_type.as_deref().or(content_type).unwrap_or("");
    let is_index = match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        // OCI allows mediaType to be absent; decide by the fields present.
        "" | "application/json" => probe.manifests.is_some() && probe.layers.is_none(),
        other => return Err(format!("unsupported manifest media type {other:?}")),
    };
    if is_index {
        let index: Index = serde_json::from_slice(bytes)
            .map_err(|e| format!("the image index is not valid: {e}"))?;
        return Ok(ManifestDocument::Index(index));
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the image manifest is not valid: {e}"))?;
    Ok(ManifestDocument::Image(manifest))
}

/// Chooses the index entry for `wanted`, or explains which platforms the index has.
pub fn select_platform<'a>(index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor, String> {
    let found = index.manifests.iter().find(|d| {
        matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | "")
            && d.platform.as_ref().is_some_and(|p| p.satisfies(wanted))
    });
    if let Some(found) = found {
        return Ok(found);
    }
    let available: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .filter(|p| p != "unknown/unknown")
        .collect();
    let listed = if available.is_empty() {
        "no platform entries".to_string()
    } else {
        available.join(", ")
    };
    Err(format!(
        "the image index has no {wanted} image; it has: {listed}. Choose one with --platform \
         (COMPLIANCE_PLATFORM)"
    ))
}

/// A Docker `strslice`: a list of strings that may also be written as one string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Form::deserialize(deserializer)? {
            Form::One(s) => StringList(vec![s]),
            Form::Many(v) => StringList(v),
        })
    }
}

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
    #[serde(rename = "ExposedPorts", default)]
    pub exposed_ports: Option<BTreeMap<String, serde::de::IgnoredAny>>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<StringList>,
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<StringList>,
}

/// The root filesystem description: the uncompressed digest of each layer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One history entry; entries with `empty_layer` created no layer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// An image config (OCI or Docker), with only the fields the checks read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

/// Parses an image config, rejecting documents that are not image configs.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "the config is {} bytes, over the limit of {MAX_CONFIG_BYTES}",
            bytes.len()
        ));
    }
    let config: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| format!("the config is not a valid image config: {e}"))?;
    if config.rootfs.kind != "layers" {
        return Err(format!(
            "the config's rootfs.type is {:?}, expected \"layers\"",
            config.rootfs.kind
        ));
    }
    Ok(config)
}

/// Checks that `bytes` hash to `digest` (`sha256:…`).
pub fn verify_digest(bytes: &[u8], digest: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let Some(expected) = digest.strip_prefix("sha256:") else {
        return Err(format!(
            "digest {digest:?} is not a sha256 digest, the only kind supported"
        ));
    };
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(format!(
            "digest mismatch: expected {digest}, got sha256:{actual}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: platforms
                .iter()
                .enumerate()
                .map(|(i, (os, arch, variant))| Descriptor {
                    media_type: OCI_MANIFEST.to_string(),
                    digest: format!("sha256:{i:064}"),
                    size: 1,
                    urls: vec![],
                    annotations: BTreeMap::new(),
                    platform: Some(Platform {
                        os: os.to_string(),
                        architecture: arch.to_string(),
                        variant: variant.map(str::to_string),
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn platform_by_variant() {
        let index = index(&[("linux", "arm", Some("v6")), ("linux", "arm", Some("v7"))]);
        let chosen = select_platform(&index, &Platform::parse("linux/arm/v7").unwrap()).unwrap();
        assert_eq!(chosen.digest, format!("sha256:{:064}", 1));
    }

    #[test]
    fn arm64_without_variant_is_v8() {
        let index = index(&[("linux", "arm64", None)]);
        assert!(select_platform(&index, &Platform::parse("linux/arm64/v8").unwrap()).is_ok());
    }

    #[test]
    fn missing_platform_lists_available() {
        let index = index(&[("linux", "arm64", Some("v8")), ("windows", "amd64", None)]);
        let error = select_platform(&index, &Platform::parse("linux/amd64").unwrap()).unwrap_err();
        assert!(error.contains("linux/arm64/v8, windows/amd64"), "{error}");
    }

    #[test]
    fn string_list_accepts_string() {
        let config: ContainerConfig = serde_json::from_str(r#"{"Cmd": "sh"}"#).unwrap();
        assert_eq!(config.cmd, Some(StringList(vec!["sh".to_string()])));
    }

    #[test]
    fn schema1_rejected() {
        let error = parse_manifest_document(br#"{"schemaVersion":1}"#, None).unwrap_err();
        assert!(error.contains("schema 1"), "{error}");
    }

    #[test]
    fn config_must_have_layers_rootfs() {
        let error = parse_config(br#"{"rootfs":{"type":"other","diff_ids":[]}}"#).unwrap_err();
        assert!(error.contains("rootfs.type"), "{error}");
    }

    #[test]
    fn index_without_media_type_detected() {
        let doc = parse_manifest_document(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap();
        assert!(matches!(doc, ManifestDocument::Index(_)));
    }

    #[test]
    fn digest_verification() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(verify_digest(b"", empty).is_ok());
        assert!(verify_digest(b"x", empty).unwrap_err().contains("mismatch"));
    }
}
