//! Fuzz harness: one function per target, each feeding arbitrary bytes to a parser of
//! attacker-controlled input and asserting the contracts that the parser documents.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these functions, and the main crate's
//! `tests/fuzz_regressions.rs` includes this file to replay saved inputs through the same
//! code. Any panic is a finding: a panic in the library, or a failed assertion here.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write as _;
use std::time::Duration;

use image_compliance_scanner::auth::{
    ConfigSources, ResolveOptions, Secret, load_config_with, resolve_credential_with,
};
use image_compliance_scanner::filesystem::{FileBody, FinalFs};
use image_compliance_scanner::image::{
    self, DOCKER_MANIFEST, Index, ManifestDocument, OCI_INDEX, Platform,
};
use image_compliance_scanner::layer::{
    Compression, EntryKind, LayerIndex, WalkLimits, decoder_for, normalize_path, walk_layer,
};
use image_compliance_scanner::reference::{ImageRef, RegistryRef, host_without_port};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The function of one fuzz target: it takes the raw input and panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz_targets/` and `regressions/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("reference", reference),
    ("auth_config", auth_config),
    ("manifest", manifest),
    ("image_config", image_config),
    ("layer_walk", layer_walk),
    ("gzip_stream", gzip_stream),
];

thread_local! {
    /// One single-threaded runtime per thread, because building one per input would cost
    /// more than most inputs take to parse.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("failed to build a current-thread tokio runtime");
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.block_on(future))
}

// Image references.

/// Parses the input as an image reference. A registry reference must parse back from its
/// canonical form, and a reference judged loopback (where plain HTTP is allowed) must send
/// its requests to a loopback host.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ImageRef::Registry(parsed)) = ImageRef::parse(text) else {
        return;
    };
    check_canonical_form(&parsed);
    check_registry_url(&parsed);
}

fn check_canonical_form(parsed: &RegistryRef) {
    let mut canonical = format!("{}/{}", parsed.registry, parsed.repository);
    if let Some(tag) = &parsed.tag {
        canonical.push(':');
        canonical.push_str(tag);
    }
    if let Some(digest) = &parsed.digest {
        canonical.push('@');
        canonical.push_str(digest);
    }
    let reparsed = ImageRef::parse(&canonical);
    assert_eq!(
        reparsed,
        Ok(ImageRef::Registry(parsed.clone())),
        "the canonical form {canonical:?} parses to a different reference"
    );
}

/// Builds the URL that the registry source probes first and checks that the registry text
/// is only an authority: no user info, query or fragment, and the same loopback verdict.
fn check_registry_url(parsed: &RegistryRef) {
    let text = format!("https://{}/v2/", parsed.registry);
    let url = reqwest::Url::parse(&text);
    assert!(
        url.is_ok(),
        "registry {:?} gives the invalid URL {text:?}: {:?}",
        parsed.registry,
        url.err()
    );
    let Ok(url) = url else { return };
    assert_eq!(
        url.path(),
        "/v2/",
        "registry {:?} changes the path",
        parsed.registry
    );
    assert_eq!(
        url.username(),
        "",
        "registry {:?} adds user info",
        parsed.registry
    );
    assert_eq!(
        url.password(),
        None,
        "registry {:?} adds user info",
        parsed.registry
    );
    assert_eq!(
        url.query(),
        None,
        "registry {:?} adds a query",
        parsed.registry
    );
    assert_eq!(
        url.fragment(),
        None,
        "registry {:?} adds a fragment",
        parsed.registry
    );
    if parsed.is_loopback() {
        let host = url.host_str().unwrap_or_default();
        let ip = host.trim_start_matches('[').trim_end_matches(']');
        let host_is_loopback = host == "localhost"
            || ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        assert!(
            host_is_loopback,
            "registry {:?} counts as loopback (host {:?}) but the URL goes to {:?}",
            parsed.registry,
            host_without_port(&parsed.registry),
            url.host_str()
        );
    }
}

// Docker config and credential lookup.

/// Registry and repository used when the input gives none.
const DEFAULT_TARGET: (&str, &str) = ("registry.example.com", "team/app");

/// A directory that does not exist, used as `DOCKER_CONFIG` and as the helper search path,
/// so that no config file is read and no credential helper is found or run.
const NO_HELPERS_DIR: &str = "/nonexistent/image-compliance-scanner-fuzz";

/// Shortest secret that the leak check looks for. Shorter values turn up by chance inside
/// the fixed text of messages.
const MIN_CHECKED_SECRET_LEN: usize = 12;

/// Loads the input as `DOCKER_AUTH_CONFIG` and looks up the credential for a registry and
/// repository. The input is `REGISTRY\nREPOSITORY\nCONFIG_JSON`; without two line breaks,
/// all of it is the config.
///
/// Checks that no error, `Debug` output or credential source contains a password or token
/// of the config, and that reordering the keys of `auths` and `credHelpers` does not change
/// the credential chosen.
pub fn auth_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let (registry, repository, json) = match (lines.next(), lines.next(), lines.next()) {
        (Some(registry), Some(repository), Some(json)) => (registry, repository, json),
        _ => (DEFAULT_TARGET.0, DEFAULT_TARGET.1, text),
    };
    let secrets = config_secrets(json, &[registry, repository]);
    let outcome = resolve(json, registry, repository);
    let printed = outcome.printed();
    for secret in &secrets {
        assert!(
            !printed.contains(secret.as_str()),
            "a secret of the config appears in the output: {printed}"
        );
    }
    if let Some(reordered) = reverse_registry_keys(json) {
        let reordered_outcome = resolve(&reordered, registry, repository);
        match (&outcome, &reordered_outcome) {
            // With several invalid entries, the first in document order is reported.
            (AuthOutcome::LoadFailed(_), AuthOutcome::LoadFailed(_)) => {}
            _ => assert_eq!(
                outcome, reordered_outcome,
                "the credential depends on the order of the config's keys"
            ),
        }
    }
}

/// Result of loading a config and resolving a credential, in the form a caller could print.
#[derive(Debug, PartialEq, Eq)]
enum AuthOutcome {
    /// The error message of the load.
    LoadFailed(String),
    /// The config's `Debug` form, and the credential with its source or the error message.
    Resolved { config: String, result: String },
}

impl AuthOutcome {
    fn printed(&self) -> String {
        match self {
            AuthOutcome::LoadFailed(message) => message.clone(),
            AuthOutcome::Resolved { config, result } => format!("{config}; {result}"),
        }
    }
}

fn resolve(json: &str, registry: &str, repository: &str) -> AuthOutcome {
    let sources = ConfigSources {
        auth_config_json: Some(Secret::new(json)),
        docker_config_dir: Some(NO_HELPERS_DIR.into()),
        home_dir: None,
    };
    let config = match load_config_with(&sources) {
        Ok(config) => config,
        Err(error) => return AuthOutcome::LoadFailed(format!("{error}; {error:?}")),
    };
    let options = ResolveOptions {
        helper_search_path: Some(OsString::from(NO_HELPERS_DIR)),
        helper_timeout: Duration::from_secs(1),
    };
    let resolved = block_on(resolve_credential_with(
        &config, registry, repository, &options,
    ));
    let result = match resolved {
        Ok((credential, source)) => format!("{credential:?} from {source:?}"),
        Err(error) => format!("{error}; {error:?}"),
    };
    AuthOutcome::Resolved {
        config: format!("{config:?}"),
        result,
    }
}

/// Collects the passwords and tokens of the `auths` entries in `json`, with the `auth` field
/// both encoded and decoded. Values too short to check are left out, and so are values that
/// also occur in a key, a non-secret string or `public`, because printing those is expected.
fn config_secrets(json: &str, public: &[&str]) -> BTreeSet<String> {
    let Ok(root) = serde_json::from_str::<Value>(json) else {
        return BTreeSet::new();
    };
    let mut secrets = BTreeSet::new();
    let mut public_texts: Vec<String> = public.iter().map(|text| text.to_string()).collect();
    collect_strings(&root, &mut secrets, &mut public_texts);
    secrets.retain(|secret| {
        secret.len() >= MIN_CHECKED_SECRET_LEN
            && !public_texts
                .iter()
                .any(|text| text.contains(secret.as_str()))
    });
    secrets
}

/// Sorts every string in `value` into secrets (the values of fields whose name, in any case,
/// is `password`, `auth`, `identitytoken` or `registrytoken`) and public texts (keys and all
/// other strings).
fn collect_strings(value: &Value, secrets: &mut BTreeSet<String>, public: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                public.push(key.clone());
                match value {
                    Value::String(text) if is_secret_field(key) => {
                        secrets.insert(text.clone());
                        if let Some(password) = decoded_auth_password(key, text) {
                            secrets.insert(password);
                        }
                    }
                    _ => collect_strings(value, secrets, public),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_strings(item, secrets, public);
            }
        }
        Value::String(text) => public.push(text.clone()),
        _ => {}
    }
}

fn is_secret_field(name: &str) -> bool {
    ["password", "auth", "identitytoken", "registrytoken"]
        .iter()
        .any(|field| name.eq_ignore_ascii_case(field))
}

/// Returns the password part of a base64 `auth` value, if it decodes.
fn decoded_auth_password(key: &str, encoded: &str) -> Option<String> {
    use base64::Engine as _;
    if !key.eq_ignore_ascii_case("auth") {
        return None;
    }
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(compact)
        .ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    decoded
        .split_once(':')
        .map(|(_, password)| password.to_string())
}

/// Returns `json` with the entries of every `auths` and `credHelpers` object (top-level
/// names in any case) in reverse order, or `None` when `json` is not a JSON object.
fn reverse_registry_keys(json: &str) -> Option<String> {
    let Ok(Value::Object(mut root)) = serde_json::from_str::<Value>(json) else {
        return None;
    };
    for (name, value) in root.iter_mut() {
        let is_registry_map =
            name.eq_ignore_ascii_case("auths") || name.eq_ignore_ascii_case("credHelpers");
        if let (true, Value::Object(entries)) = (is_registry_map, value) {
            let reversed: serde_json::Map<String, Value> =
                std::mem::take(entries).into_iter().rev().collect();
            *entries = reversed;
        }
    }
    serde_json::to_string(&Value::Object(root)).ok()
}

// Manifests, indexes and image configs.

/// Platforms requested from every index the input parses to.
const REQUESTED_PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "windows/amd64",
];

/// Parses the input as a manifest document, with no content type and with the two that the
/// document's own `mediaType` overrides, and selects platforms from each index it gives.
pub fn manifest(data: &[u8]) {
    for content_type in [None, Some(OCI_INDEX), Some(DOCKER_MANIFEST)] {
        if let Ok(ManifestDocument::Index(index)) =
            image::parse_manifest_document(data, content_type)
        {
            check_platform_selection(&index);
        }
    }
}

/// Checks that each requested platform selects a matching entry, and that each image entry
/// whose platform prints as a valid `--platform` value is found by that value.
fn check_platform_selection(index: &Index) {
    for text in REQUESTED_PLATFORMS {
        let requested = Platform::parse(text).expect("the requested platforms are valid");
        if let Ok(chosen) = image::select_platform(index, &requested) {
            let platform = chosen.platform.as_ref();
            assert!(
                platform.is_some_and(|p| p.satisfies(&requested)),
                "{text} selected an entry with platform {platform:?}"
            );
        }
    }
    for entry in &index.manifests {
        let is_image = matches!(
            entry.media_type.as_str(),
            image::OCI_MANIFEST | image::DOCKER_MANIFEST | ""
        );
        let Some(platform) = entry.platform.as_ref().filter(|_| is_image) else {
            continue;
        };
        // A `/` inside a field prints as another split, so the printed form names a
        // different platform.
        let fields = [&platform.os, &platform.architecture];
        let has_slash = fields.iter().any(|field| field.contains('/'))
            || platform.variant.as_ref().is_some_and(|v| v.contains('/'));
        if has_slash {
            continue;
        }
        let printed = platform.to_string();
        let Ok(requested) = Platform::parse(&printed) else {
            continue;
        };
        assert!(
            image::select_platform(index, &requested).is_ok(),
            "the index has an image for {printed:?}, but selecting {requested:?} fails"
        );
    }
}

/// Parses the input as an image config and the digests of its `rootfs.diff_ids`.
pub fn image_config(data: &[u8]) {
    let Ok(config) = image::parse_config(data) else {
        return;
    };
    assert_eq!(
        config.rootfs.kind, "layers",
        "parse_config accepted another rootfs.type"
    );
    for diff_id in &config.rootfs.diff_ids {
        let _ = image_compliance_scanner::digest::Sha256Digest::parse(diff_id);
    }
}

// Layer tars and the merged filesystem.

/// Separator between the layers of one `layer_walk` input, lowest layer first.
pub const LAYER_SEPARATOR: &[u8] = b"--next-layer--";

/// Maximum number of layers taken from one input; the rest of the input is ignored.
const MAX_LAYERS: usize = 4;

/// Maximum number of entries per layer whose paths are looked up in the merged filesystem.
const MAX_LOOKED_UP_ENTRIES: usize = 64;

/// Paths that the checks read, looked up in every merged filesystem.
const CHECKED_PATHS: &[&str] = &[
    "/",
    "/etc/passwd",
    "/etc/group",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/bin/sh",
    "/usr/bin/gcc",
    "etc/../etc/./passwd",
    "../../etc/passwd",
];

/// Walks each layer of the input (split at [`LAYER_SEPARATOR`]) as a blob with its correct
/// sha256 digest and no diff_id, both as it is and gzip-compressed, then merges the layers
/// that walked and looks paths up in the result.
///
/// A plain blob that starts with a gzip or zstd magic number is decompressed by the walk, so
/// the input reaches the decoders too. For other blobs, the gzip walk must give the same
/// entries and bodies as the plain walk.
pub fn layer_walk(data: &[u8]) {
    let mut layers = Vec::new();
    for blob in split_layers(data).take(MAX_LAYERS) {
        let plain = walk(blob);
        if Compression::detect(blob) == Compression::None {
            let gzipped = walk(&gzip(blob));
            compare_walks(&plain, &gzipped);
        }
        if let Ok(index) = plain {
            check_layer_index(&index);
            layers.push(index);
        }
    }
    check_final_fs(&layers);
}

fn split_layers(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match find(current, LAYER_SEPARATOR) {
            Some(at) => {
                rest = Some(&current[at + LAYER_SEPARATOR.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn walk(blob: &[u8]) -> Result<LayerIndex, String> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(blob)));
    let walked = block_on(walk_layer(blob, &digest, None, &WalkLimits::default()));
    walked.map_err(|error| error.to_string())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(data)
        .expect("writing to a Vec does not fail");
    encoder.finish().expect("writing to a Vec does not fail")
}

/// Checks that the plain and the gzip walk of the same tar agree.
fn compare_walks(plain: &Result<LayerIndex, String>, gzipped: &Result<LayerIndex, String>) {
    match (plain, gzipped) {
        (Ok(plain), Ok(gzipped)) => {
            assert!(
                plain.entries().iter().eq(gzipped.entries().iter()),
                "gzip changes the entries"
            );
            assert_eq!(plain.captured, gzipped.captured, "gzip changes the bodies");
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "the plain walk gives {:?} but the gzip walk gives {:?}",
            plain.as_ref().map(|index| index.entries().len()),
            gzipped.as_ref().map(|index| index.entries().len()),
        ),
    }
}

/// Checks the documented form of every entry: normalised absolute paths, a link target on
/// links only, and captured bodies as long as the last entry at their path.
fn check_layer_index(index: &LayerIndex) {
    for entry in index.entries().iter() {
        let path = entry.path();
        assert_eq!(normalize_path(&path), path, "entry path is not normalised");
        let is_link = matches!(entry.kind, EntryKind::Symlink | EntryKind::HardLink);
        assert_eq!(
            entry.link_target.is_some(),
            is_link,
            "{:?} entry {path:?} has link target {:?}",
            entry.kind,
            entry.link_target
        );
        if let (EntryKind::HardLink, Some(target)) = (entry.kind, entry.link_target) {
            assert_eq!(
                normalize_path(target),
                target,
                "hard link target is not normalised"
            );
        }
    }
    for (path, body) in &index.captured {
        let last = index
            .entries()
            .iter()
            .rev()
            .find(|entry| entry.path() == *path);
        let last = last.unwrap_or_else(|| panic!("captured body of {path:?} has no entry"));
        assert_eq!(
            last.kind,
            EntryKind::File,
            "captured body of {path:?} is no file"
        );
        assert_eq!(
            body.len() as u64,
            last.size,
            "captured body of {path:?} differs from the entry's size"
        );
    }
}

/// Merges `layers` and looks up the checked paths, each entry's path and link target, and
/// whether each entry is still present.
fn check_final_fs(layers: &[LayerIndex]) {
    let fs = FinalFs::build(layers);
    let mut paths: Vec<String> = CHECKED_PATHS.iter().map(|path| path.to_string()).collect();
    for index in layers {
        for entry in index.entries().iter().take(MAX_LOOKED_UP_ENTRIES) {
            paths.push(entry.path());
            paths.extend(entry.link_target.map(str::to_string));
        }
    }
    for path in &paths {
        check_lookup(&fs, path);
    }
    for (layer, index) in layers.iter().enumerate() {
        for (position, entry) in index.entries().iter().enumerate() {
            let path = entry.path();
            let present = fs.is_present(layer, &path);
            assert!(
                !(present && entry.whiteout().is_some()),
                "whiteout marker {path:?} of layer {layer} is present"
            );
            let hard_link = fs.hard_link_kind_and_mode(layer, position);
            assert_eq!(
                hard_link.is_some(),
                entry.kind == EntryKind::HardLink && entry.whiteout().is_none(),
                "hard link result {hard_link:?} for {:?} entry {path:?}",
                entry.kind
            );
        }
    }
    let _ = fs.entries().count();
}

/// Looks `path` up in every way the checks do and checks that the results agree.
fn check_lookup(fs: &FinalFs, path: &str) {
    if let Some(resolved) = fs.resolve(path) {
        assert_eq!(
            normalize_path(&resolved),
            resolved,
            "{path:?} resolves to a path that is not normalised"
        );
        let entry = fs.entry(&resolved);
        assert!(
            entry
                .as_ref()
                .is_some_and(|entry| entry.kind != EntryKind::Symlink),
            "{path:?} resolves to {resolved:?}, which has entry {entry:?}"
        );
    }
    let body = fs.file_body(path);
    let read = fs.read_file(path);
    match body {
        FileBody::Captured(captured) => assert_eq!(read, Some(captured), "read_file({path:?})"),
        FileBody::NotCaptured | FileBody::NoFile => assert_eq!(read, None, "read_file({path:?})"),
    }
    if body != FileBody::NoFile {
        assert!(
            fs.resolve(path).is_some(),
            "{path:?} has a file body but does not resolve"
        );
    }
}

/// Decompressed bytes compared per input by [`gzip_stream`]. A higher cap would let a small
/// input spend seconds inflating a bomb.
const MAX_GZIP_OUTPUT: u64 = 8 << 20;

/// Puts the gzip magic number (which the walk detects gzip by) before the input and decodes
/// the result twice: with the scanner's decoder (ISA-L on its own thread) and with flate2's
/// `MultiGzDecoder` on zlib-rs. When both decode the stream, their bytes must be equal,
/// because the scanner must see the same files as any other correct decoder.
///
/// The two may disagree on whether a stream is valid, because they check different parts of
/// the gzip header (ISA-L also rejects headers that yield no output for too long).
pub fn gzip_stream(data: &[u8]) {
    use std::io::Read as _;
    use tokio::io::AsyncReadExt as _;

    let mut blob = vec![0x1f, 0x8b, 0x08];
    blob.extend_from_slice(data);
    let ours = block_on(async {
        let decoder = decoder_for(Compression::Gzip, &blob[..]);
        let mut out = Vec::new();
        decoder
            .take(MAX_GZIP_OUTPUT)
            .read_to_end(&mut out)
            .await
            .map(|_| out)
    });
    let mut reference = Vec::new();
    let reference = flate2::read::MultiGzDecoder::new(&blob[..])
        .take(MAX_GZIP_OUTPUT)
        .read_to_end(&mut reference)
        .map(|_| reference);
    if let (Ok(ours), Ok(reference)) = (&ours, &reference) {
        assert_eq!(ours.len(), reference.len(), "decoded lengths differ");
        assert!(ours == reference, "decoded bytes differ");
    }
}
