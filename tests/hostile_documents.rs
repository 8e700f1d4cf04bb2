//! Hostile blobs and documents in OCI layouts: decompression bombs, and manifests, indexes and
//! configs that are oversized, deeply nested, mislabelled or not what they claim to be. Each
//! ends in a defined exit code and an error naming the problem, never in a pass.

mod common;

use common::image::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
use common::{
    Descriptor, ImageBuilder, Layer, ScanRun, TarEntry, add_to_layout_index, read_findings,
    run_scan, scanner, write_blob,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

/// Uncompressed bytes behind each gzip member or zstd frame of a bomb.
const CHUNK: usize = 8 << 20;

/// Peak resident memory a scan may reach, in KiB. It is a ceiling far above the scanner's
/// real use (see docs/benchmarks.md), there to catch a layer held in memory, not to measure.
const MAX_RSS_KIB: u64 = 160 << 10;

#[derive(Clone, Copy, Debug)]
enum Codec {
    Gzip,
    Zstd,
}

impl Codec {
    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(data).expect("gzip into memory");
                encoder.finish().expect("gzip into memory")
            }
            Codec::Zstd => zstd::encode_all(data, 19).expect("zstd into memory"),
        }
    }
}

/// Builds a layer blob that inflates to one file of `chunks * CHUNK` zero bytes, and returns
/// it with the diff_id of its tar stream. The blob is a gzip member or zstd frame per chunk,
/// each the same bytes, so building it takes no longer than compressing one chunk.
fn bomb(codec: Codec, chunks: usize, with_diff_id: bool) -> (Vec<u8>, String) {
    let body_size = (chunks * CHUNK) as u64;
    let mut header = tar::Header::new_ustar();
    header.set_path("var/bomb").expect("path");
    header.set_size(body_size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let zeros = vec![0u8; CHUNK];
    let end = [0u8; 1024];

    let member = codec.compress(&zeros);
    let mut blob = codec.compress(header.as_bytes());
    blob.reserve(member.len() * chunks + 64);
    for _ in 0..chunks {
        blob.extend_from_slice(&member);
    }
    blob.extend_from_slice(&codec.compress(&end));

    let mut hasher = Sha256::new();
    if with_diff_id {
        hasher.update(header.as_bytes());
        for _ in 0..chunks {
            hasher.update(&zeros);
        }
        hasher.update(end);
    }
    (blob, format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Builds an image that is compliant apart from `layer`, its second layer.
fn image_with(layer: Layer) -> ImageBuilder {
    let base = Layer::new(vec![
        TarEntry::file("etc/passwd", 0o644, "app:x:1000:1000::/app:/sbin/nologin\n"),
        TarEntry::file("etc/os-release", 0o644, "ID=debian\nVERSION_ID=\"12\"\n"),
    ]);
    ImageBuilder::new()
        .layer(base)
        .layer(layer)
        .user("app:app")
        .entrypoint(&["/app/server"])
        .label("org.opencontainers.image.title", "bomb")
}

struct Scan {
    run: ScanRun,
    /// Peak resident memory of the scanner, in KiB.
    max_rss_kib: u64,
    results: Vec<Value>,
    _dir: TempDir,
}

/// Scans `oci:<layout>:1.0` under a wrapper that reports the scanner's peak RSS.
fn scan_layout(dir: TempDir, layout: &Path, envs: &[(&str, &str)]) -> Scan {
    let reference = format!("oci:{}:1.0", layout.display());
    let reports = dir.path().join("reports");
    let rss_file = dir.path().join("max-rss");
    let inner = scanner();
    let mut command = Command::new("python3");
    command
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("COMPLIANCE_IMAGE_FULL_REF", &reference)
        .env("COMPLIANCE_REPORTS_DIR", &reports)
        .envs(envs.iter().copied())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/max_rss.py"))
        .arg(&rss_file)
        .arg(inner.get_program());
    let run = run_scan(&mut command);
    let max_rss_kib = std::fs::read_to_string(&rss_file)
        .unwrap_or_else(|e| panic!("the wrapper wrote no peak RSS ({e}): {run}"))
        .trim()
        .parse()
        .expect("peak RSS is a number");
    let results = if reports.join(common::report_file_name(&reference)).exists() {
        read_findings(&reports, &reference)
    } else {
        Vec::new()
    };
    Scan {
        run,
        max_rss_kib,
        results,
        _dir: dir,
    }
}

fn scan_image(image: &ImageBuilder, envs: &[(&str, &str)]) -> Scan {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "1.0");
    scan_layout(dir, &layout, envs)
}

/// Scans a 1 GiB bomb to the end and checks that the checks ran and memory stayed flat.
fn bomb_is_scanned(codec: Codec) {
    let (blob, diff_id) = bomb(codec, 128, true);
    let scan = scan_image(&image_with(Layer::prebuilt(blob, &diff_id)), &[]);
    assert!(
        ![20, 21].contains(&scan.run.code),
        "the bomb is within the default limit and should be read: {}",
        scan.run
    );
    assert_eq!(scan.results.len(), 17, "{}", scan.run);
    assert!(
        scan.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB while scanning a {codec:?} bomb",
        scan.max_rss_kib
    );
}

#[test]
fn gzip_bomb_scanned_in_flat_memory() {
    bomb_is_scanned(Codec::Gzip);
}

#[test]
fn zstd_bomb_scanned_in_flat_memory() {
    bomb_is_scanned(Codec::Zstd);
}

#[test]
fn bomb_over_the_limit_exits_20() {
    // 64 GiB of zeros in about 64 MB of gzip would take a minute to read, so the diff_id is
    // left wrong: the limit stops the read long before a diff_id could be checked.
    let (blob, diff_id) = bomb(Codec::Gzip, 8192, false);
    let image = image_with(Layer::prebuilt(blob, &diff_id));
    let scan = scan_image(&image, &[("COMPLIANCE_MAX_UNPACKED_LAYER_SIZE", "256M")]);
    assert_eq!(scan.run.code, 20, "{}", scan.run);
    assert!(
        scan.run
            .stderr
            .contains("COMPLIANCE_MAX_UNPACKED_LAYER_SIZE")
            && scan.run.stderr.contains("layer 1"),
        "{}",
        scan.run
    );
    assert!(scan.results.is_empty(), "no report: {}", scan.run);
    assert!(scan.max_rss_kib < MAX_RSS_KIB, "{} KiB", scan.max_rss_kib);
}

#[test]
fn invalid_size_limit_is_a_usage_error() {
    let (blob, diff_id) = bomb(Codec::Gzip, 1, true);
    let image = image_with(Layer::prebuilt(blob, &diff_id));
    let scan = scan_image(&image, &[("COMPLIANCE_MAX_UNPACKED_LAYER_SIZE", "lots")]);
    assert_eq!(scan.run.code, 2, "{}", scan.run);
    assert!(
        scan.run
            .stderr
            .contains("COMPLIANCE_MAX_UNPACKED_LAYER_SIZE")
            || scan.run.stderr.contains("--max-unpacked-layer-size"),
        "{}",
        scan.run
    );
}

// Documents. Each test writes a valid image, then points the layout's tag at a hand-made
// document that reuses the image's config and layers.

/// Writes a valid image into a new layout and returns the temporary directory, the layout
/// path and the manifest JSON.
fn valid_layout() -> (TempDir, std::path::PathBuf, Value) {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    let image = image_with(Layer::new(vec![TarEntry::file("app/server", 0o755, "x")]));
    let written = image.write_layout(&layout, "valid");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": written.config.to_json(),
        "layers": written.layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
    });
    (dir, layout, manifest)
}

/// Stores `document` and tags it `1.0` with `media_type` in the descriptor.
fn tag_document(layout: &Path, document: &[u8], media_type: &str) -> String {
    let digest = write_blob(layout, document);
    let descriptor = Descriptor {
        media_type: media_type.to_string(),
        digest: digest.clone(),
        size: document.len() as u64,
    };
    add_to_layout_index(layout, &descriptor, "1.0");
    digest
}

/// Stores a config and returns a manifest of the valid image that uses it instead.
fn with_config(layout: &Path, manifest: &Value, config: &[u8]) -> Vec<u8> {
    let digest = write_blob(layout, config);
    let mut manifest = manifest.clone();
    manifest["config"]["digest"] = json!(digest);
    manifest["config"]["size"] = json!(config.len());
    serde_json::to_vec(&manifest).expect("manifest")
}

/// `depth` nested JSON arrays.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn assert_exit(scan: &Scan, code: i32, needle: &str) {
    assert_eq!(scan.run.code, code, "{}", scan.run);
    assert!(
        scan.run.stderr.contains(needle),
        "stderr lacks {needle:?}: {}",
        scan.run
    );
    assert!(scan.results.is_empty(), "no report: {}", scan.run);
}

#[test]
fn valid_layout_scans() {
    let (dir, layout, manifest) = valid_layout();
    tag_document(
        &layout,
        &serde_json::to_vec(&manifest).unwrap(),
        MEDIA_TYPE_OCI_MANIFEST,
    );
    let scan = scan_layout(dir, &layout, &[]);
    assert_eq!(scan.results.len(), 17, "{}", scan.run);
}

#[test]
fn deeply_nested_manifest_exits_21() {
    let (dir, layout, manifest) = valid_layout();
    let text = serde_json::to_string(&manifest).unwrap();
    let text = format!(
        "{},\"annotations\":{{\"x\":{}}}}}",
        text.strip_suffix('}').unwrap(),
        nested_arrays(100_000)
    );
    tag_document(&layout, text.as_bytes(), MEDIA_TYPE_OCI_MANIFEST);
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "levels deep");
}

#[test]
fn deeply_nested_config_exits_21() {
    let (dir, layout, manifest) = valid_layout();
    let config = format!(
        "{{\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}},\"x\":{}}}",
        nested_arrays(100_000)
    );
    let manifest = with_config(&layout, &manifest, config.as_bytes());
    tag_document(&layout, &manifest, MEDIA_TYPE_OCI_MANIFEST);
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "levels deep");
}

#[test]
fn oversized_manifest_exits_21() {
    let (dir, layout, mut manifest) = valid_layout();
    manifest["annotations"] = json!({ "padding": "x".repeat(5 << 20) });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    tag_document(&layout, &bytes, MEDIA_TYPE_OCI_MANIFEST);
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "limit");
}

#[test]
fn config_with_huge_array_exits_21() {
    let (dir, layout, manifest) = valid_layout();
    let history = vec![json!({ "created_by": "RUN true" }); 400_000];
    let config = json!({ "rootfs": { "type": "layers", "diff_ids": [] }, "history": history });
    let config = serde_json::to_vec(&config).unwrap();
    assert!(config.len() > 8 << 20, "over the 8 MiB config cap");
    let manifest = with_config(&layout, &manifest, &config);
    tag_document(&layout, &manifest, MEDIA_TYPE_OCI_MANIFEST);
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "limit");
}

#[test]
fn index_with_huge_array_names_few_platforms() {
    let (dir, layout, manifest) = valid_layout();
    let manifest_digest = write_blob(&layout, &serde_json::to_vec(&manifest).unwrap());
    let entries: Vec<Value> = (0..20_000)
        .map(|n| {
            json!({
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "digest": manifest_digest,
                "size": 1,
                "platform": { "os": "linux", "architecture": format!("arch{n}") },
            })
        })
        .collect();
    let index =
        json!({ "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": entries });
    tag_document(
        &layout,
        &serde_json::to_vec(&index).unwrap(),
        MEDIA_TYPE_OCI_INDEX,
    );
    let scan = scan_layout(dir, &layout, &[]);
    assert_exit(&scan, 20, "linux/arch0");
    assert!(
        scan.run.stderr.len() < 8192,
        "the error lists a bounded number of platforms: {} bytes",
        scan.run.stderr.len()
    );
}

#[test]
fn manifest_with_wrong_media_type_exits_21() {
    let (dir, layout, mut manifest) = valid_layout();
    manifest["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    tag_document(
        &layout,
        &serde_json::to_vec(&manifest).unwrap(),
        MEDIA_TYPE_OCI_MANIFEST,
    );
    assert_exit(
        &scan_layout(dir, &layout, &[]),
        21,
        "unsupported manifest media type",
    );
}

#[test]
fn index_inside_index_exits_21() {
    let (dir, layout, manifest) = valid_layout();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let inner = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_OCI_MANIFEST,
            "digest": write_blob(&layout, &manifest_bytes),
            "size": manifest_bytes.len(),
            "platform": { "os": "linux", "architecture": "amd64" },
        }],
    });
    let inner_bytes = serde_json::to_vec(&inner).unwrap();
    let outer = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_OCI_INDEX,
            "digest": write_blob(&layout, &inner_bytes),
            "size": inner_bytes.len(),
            "platform": { "os": "linux", "architecture": "amd64" },
        }],
    });
    tag_document(
        &layout,
        &serde_json::to_vec(&outer).unwrap(),
        MEDIA_TYPE_OCI_INDEX,
    );
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "index inside an index");
}

#[test]
fn artifact_config_exits_21() {
    let (dir, layout, manifest) = valid_layout();
    let config = br#"{"name":"chart","version":"1.0.0","apiVersion":"v2"}"#;
    let mut manifest: Value =
        serde_json::from_slice(&with_config(&layout, &manifest, config)).expect("manifest JSON");
    manifest["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
    tag_document(
        &layout,
        &serde_json::to_vec(&manifest).unwrap(),
        MEDIA_TYPE_OCI_MANIFEST,
    );
    assert_exit(&scan_layout(dir, &layout, &[]), 21, "rootfs");
}

#[test]
fn foreign_and_nondistributable_layers_exit_21() {
    for media_type in [
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ] {
        let (dir, layout, mut manifest) = valid_layout();
        manifest["layers"][1]["mediaType"] = json!(media_type);
        manifest["layers"][1]["urls"] = json!(["http://127.0.0.1:9/layer"]);
        tag_document(
            &layout,
            &serde_json::to_vec(&manifest).unwrap(),
            MEDIA_TYPE_OCI_MANIFEST,
        );
        assert_exit(&scan_layout(dir, &layout, &[]), 21, "foreign");
    }
}

// Digests.

/// Overwrites the blob `digest` of `layout` with `bytes`, keeping its name.
fn replace_blob(layout: &Path, digest: &str, bytes: &[u8]) {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::write(layout.join("blobs/sha256").join(hex), bytes).expect("write blob");
}

#[test]
fn config_digest_mismatch_names_both() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    let image = image_with(Layer::new(vec![TarEntry::file("app/server", 0o755, "x")]));
    let written = image.write_layout(&layout, "1.0");
    let mut config = image.config_json();
    config["config"]["User"] = json!("root");
    let tampered = serde_json::to_vec(&config).unwrap();
    replace_blob(&layout, &written.config.digest, &tampered);

    let scan = scan_layout(dir, &layout, &[]);
    assert_exit(&scan, 20, &written.config.digest);
    assert!(
        scan.run.stderr.contains(&common::sha256_digest(&tampered)),
        "{}",
        scan.run
    );
}

#[test]
fn layer_digest_mismatch_names_both() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    let good = Layer::new(vec![TarEntry::file("app/server", 0o755, "x")]);
    let written = image_with(good).write_layout(&layout, "1.0");
    let other = Layer::new(vec![TarEntry::file("usr/bin/sudo", 0o4755, "x")]);
    let blob = Codec::Gzip.compress(&other.tar_bytes());
    replace_blob(&layout, &written.layers[1].digest, &blob);

    let scan = scan_layout(dir, &layout, &[]);
    assert_exit(&scan, 20, &written.layers[1].digest);
    assert!(
        scan.run.stderr.contains(&common::sha256_digest(&blob)),
        "{}",
        scan.run
    );
}
