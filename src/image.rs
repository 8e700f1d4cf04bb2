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

/// Deepest nesting of arrays and objects accepted in a manifest, index or config. Real ones
/// nest 4 levels deep; 128 is serde_json's own limit for the fields it parses.
pub const MAX_JSON_DEPTH: usize = 128;

/// Rejects JSON nested deeper than [`MAX_JSON_DEPTH`] anywhere, unknown fields included:
/// serde skips those without a depth limit, while the Go decoder that runtimes use stops at
/// 10,000 levels. A document that deep is hostile, so it fails the scan instead of passing
/// here and failing in the runtime.
fn check_nesting(bytes: &[u8], what: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!(
                        "the {what} nests arrays or objects more than {MAX_JSON_DEPTH} levels \
                         deep"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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
    check_nesting(bytes, "manifest")?;
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

/// Maximum number of platforms that the error of [`select_platform`] names. A hostile index
/// can list thousands.
const MAX_PLATFORMS_LISTED: usize = 16;

/// Chooses the index entry for `wanted`, or explains which platforms the index has.
///
/// An image manifest for the platform wins over other entries for it. When the platform has
/// only entries of another media type (a nested index, say), the first of them is returned.
/// Reading it then fails with an error about its type, not a claim that the platform is
/// missing.
pub fn select_platform<'a>(index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor, String> {
    let mut for_platform = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.satisfies(wanted)));
    let first = for_platform.clone().next();
    let manifest =
        for_platform.find(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | ""));
    if let Some(found) = manifest.or(first) {
        return Ok(found);
    }
    let mut available: Vec<String> = Vec::new();
    for platform in index.manifests.iter().filter_map(|d| d.platform.as_ref()) {
        // The strings come from the image: escape control characters and bound the length.
        let platform: String = platform
            .to_string()
            .chars()
            .flat_map(char::escape_debug)
            .take(80)
            .collect();
        if platform != "unknown/unknown" && !available.contains(&platform) {
            available.push(platform);
        }
    }
    let listed = match available.len() {
        0 => "no platform entries".to_string(),
        count if count > MAX_PLATFORMS_LISTED => format!(
            "{} and {} more",
            available
                .get(..MAX_PLATFORMS_LISTED)
                .unwrap_or_default()
                .join(", "),
            count - MAX_PLATFORMS_LISTED
        ),
        _ => available.join(", "),
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
    check_nesting(bytes, "config")?;
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
    fn image_manifest_preferred_over_nested_index() {
        let mut index = index(&[("linux", "amd64", None), ("linux", "amd64", None)]);
        index.manifests[0].media_type = OCI_INDEX.to_string();
        let chosen = select_platform(&index, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(chosen.media_type, OCI_MANIFEST);
        index.manifests.truncate(1);
        let chosen = select_platform(&index, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(
            chosen.media_type, OCI_INDEX,
            "returned, to be reported as nested"
        );
    }

    #[test]
    fn deep_nesting_rejected_in_unknown_fields() {
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let manifest = format!(r#"{{"schemaVersion":2,"manifests":[],"x":{deep}}}"#);
        let error = parse_manifest_document(manifest.as_bytes(), None).unwrap_err();
        assert!(error.contains("128 levels"), "{error}");
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":[]}},"x":{deep}}}"#);
        assert!(parse_config(config.as_bytes()).is_err());
    }

    #[test]
    fn brackets_in_strings_do_not_nest() {
        let text = format!(
            r#"{{"a":"{}\"{}","b":[]}}"#,
            "[".repeat(200),
            "{".repeat(200)
        );
        assert!(check_nesting(text.as_bytes(), "manifest").is_ok());
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
