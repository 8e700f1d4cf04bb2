//! Scans of images pulled from real registries on 127.0.0.1: plain, HTTP Basic, token auth
//! and TLS. Covers layer compressions as the registry serves them, image indexes, digest
//! references, every kind of docker config credential, credential helpers, and the exit
//! code and message of each pull failure. Tests that pass a credential also check that the
//! credential never reaches stdout, stderr or the report.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{
    Compression, HttpOptions, ImageBuilder, IndexBuilder, Layer, LayoutImage, Platform,
    PushedImage, Registry, ScanRun, TarEntry, TokenOptions, TokenUser, docker_auth_config_basic,
    docker_auth_config_identity_token, http_get, random_hex, read_findings, read_report,
    report_file_name, run_scan, scanner, scanner_home,
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Check ids and titles in the order in which every report lists them.
const CHECKS: [(&str, &str); 17] = [
    ("ICS001", "Tag :latest"),
    ("ICS002", "Critical ports in the instructions EXPOSE"),
    ("ICS003", "Default user and group"),
    ("ICS004", "Image LABEL metadata"),
    ("ICS005", "The number of layers in the image"),
    ("ICS006", "Parameters CMD, ENTRYPOINT"),
    ("ICS007", "Checking for a suid bit file"),
    ("ICS008", "Checking for a sgid bit file"),
    ("ICS009", "Checking for a sudo file"),
    ("ICS010", "Checking for a su file"),
    ("ICS011", "Checking for a sshd file"),
    ("ICS012", "Checking for a ssh client file"),
    ("ICS013", "Checking for a nc file"),
    ("ICS014", "Checking for a netcat file"),
    ("ICS015", "Checking for a socat file"),
    ("ICS016", "Compilers in the image"),
    ("ICS017", "Checking for OS type"),
];

/// The tag under which test images are written into their OCI layout before the push.
const LAYOUT_TAG: &str = "source";

/// A setuid file that only the layers built by `suid_layer` contain.
const SUID_PATH: &str = "usr/local/bin/escalate";

/// The exit code for a failed Critical check, the scanner's default.
const EXIT_CRITICAL: i32 = 12;

/// The exit code for an image that could not be pulled.
const EXIT_PULL_FAILED: i32 = 20;

/// The repository and tag that most tests push to.
const REPO_TAG: &str = "team/app:1.0";

/// Files of an image that passes every check: accounts for `app`, an os-release whose NAME
/// is `os_name`, and the entrypoint program.
fn passing_entries(os_name: &str) -> Vec<TarEntry> {
    vec![
        TarEntry::dir("etc", 0o755),
        TarEntry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        TarEntry::file("etc/group", 0o644, "root:x:0:\napp:x:1000:app\n"),
        TarEntry::file(
            "etc/os-release",
            0o644,
            format!("NAME=\"{os_name}\"\nVERSION_ID=\"1\"\n"),
        ),
        TarEntry::dir("opt", 0o755),
        TarEntry::dir("opt/app", 0o755),
        TarEntry::file("opt/app/serve", 0o755, "#!/bin/sh\nexec true\n"),
    ]
}

/// Returns an image with one `layer`, user `app:app`, every label that ICS004 needs and an
/// entrypoint.
fn image_with_layer(layer: Layer) -> ImageBuilder {
    ImageBuilder::new()
        .layer(layer)
        .user("app:app")
        .entrypoint(&["/opt/app/serve"])
        .label("org.opencontainers.image.vendor", "Example Corp")
        .label("org.opencontainers.image.authors", "platform@example.com")
        .label("org.opencontainers.image.version", "1.0.0")
        .label("component", "api")
        .label("product", "storefront")
}

/// Returns a linux/amd64 image that passes every check when scanned under a tag other than
/// `latest`.
fn passing_image() -> ImageBuilder {
    image_with_layer(Layer::new(passing_entries("Passing Test OS")))
}

/// Returns the passing files followed by 32 KiB of filler and the setuid file `SUID_PATH`,
/// so that a layer split in two parts has the setuid file only in the second part.
fn suid_layer(compression: Compression) -> Layer {
    let mut entries = passing_entries("Suid Test OS");
    entries.push(TarEntry::file(
        "opt/app/data.bin",
        0o644,
        vec![b'x'; 32 * 1024],
    ));
    entries.push(TarEntry::dir("usr", 0o755));
    entries.push(TarEntry::dir("usr/local", 0o755));
    entries.push(TarEntry::dir("usr/local/bin", 0o755));
    entries.push(TarEntry::file(SUID_PATH, 0o4755, "#!/bin/sh\nexec true\n"));
    Layer::new(entries).compression(compression)
}

/// Writes `image` into a new OCI layout under `LAYOUT_TAG`. The directory lives as long as
/// the returned `TempDir`.
fn write_layout(image: &ImageBuilder) -> (TempDir, LayoutImage) {
    let dir = tempfile::Builder::new()
        .prefix("layout-")
        .tempdir()
        .expect("failed to create a layout directory");
    let layout = image.write_layout(dir.path(), LAYOUT_TAG);
    (dir, layout)
}

/// Pushes `image` to `repo_and_tag` on `registry`, passing `skopeo_args` to `skopeo copy`.
fn push(
    registry: &Registry,
    image: &ImageBuilder,
    repo_and_tag: &str,
    skopeo_args: &[&str],
) -> PushedImage {
    let (dir, _layout) = write_layout(image);
    registry.push_layout(dir.path(), LAYOUT_TAG, repo_and_tag, skopeo_args)
}

/// Returns the manifest that the registry stores for `repo_and_tag`, as JSON.
fn stored_manifest(registry: &Registry, repo_and_tag: &str) -> Value {
    let raw = registry.inspect(repo_and_tag, &["--raw"]);
    serde_json::from_str(&raw)
        .unwrap_or_else(|error| panic!("manifest is not JSON ({error}): {raw}"))
}

/// One scanner run against a registry, with its reports directory.
struct RegistryScan {
    run: ScanRun,
    reference: String,
    reports: PathBuf,
    _dir: TempDir,
}

impl RegistryScan {
    /// Returns the report's results, panicking with the run when there is no report.
    fn findings(&self) -> Vec<Value> {
        assert!(
            self.reports
                .join(report_file_name(&self.reference))
                .is_file(),
            "no report for {}\n{}",
            self.reference,
            self.run
        );
        read_findings(&self.reports, &self.reference)
    }

    /// Returns the result with check id `id`.
    fn result(&self, id: &str) -> Value {
        self.findings()
            .into_iter()
            .find(|result| result["Id"] == id)
            .unwrap_or_else(|| panic!("the report has no result {id}\n{}", self.run))
    }

    fn passed(&self, id: &str) -> bool {
        self.result(id)["Pass"]
            .as_bool()
            .unwrap_or_else(|| panic!("result {id} has no boolean Pass\n{}", self.run))
    }

    /// Returns the paths listed under `Files` of result `id`, over all layers.
    fn files(&self, id: &str) -> Vec<String> {
        let result = self.result(id);
        let layers = result["Files"].as_array().cloned().unwrap_or_default();
        layers
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|layer| layer.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|path| path.as_str().map(str::to_owned))
            .collect()
    }

    /// Returns the text of every file in the reports directory, empty when there is none.
    fn report_text(&self) -> String {
        let Ok(entries) = fs::read_dir(&self.reports) else {
            return String::new();
        };
        entries
            .flatten()
            .map(|entry| fs::read_to_string(entry.path()).unwrap_or_default())
            .collect()
    }

    /// Asserts that `secret` appears in neither stdout, stderr nor any report file.
    fn assert_secret_hidden(&self, secret: &str) {
        assert!(
            !self.run.stdout.contains(secret),
            "stdout contains the secret {secret:?}\n{}",
            self.run
        );
        assert!(
            !self.run.stderr.contains(secret),
            "stderr contains the secret {secret:?}\n{}",
            self.run
        );
        assert!(
            !self.report_text().contains(secret),
            "a report contains the secret {secret:?}\n{}",
            self.run
        );
    }

    /// Asserts that the scan exited with the Critical code because of `SUID_PATH`.
    fn assert_suid_found(&self) {
        assert_eq!(self.run.code, EXIT_CRITICAL, "{}", self.run);
        assert!(!self.passed("ICS007"), "ICS007 passed\n{}", self.run);
        let expected = format!("/{SUID_PATH}");
        let files = self.files("ICS007");
        assert!(
            files.contains(&expected),
            "ICS007 lists {files:?}, not {expected}\n{}",
            self.run
        );
    }

    /// Asserts that the scan exited with 20 and that stderr contains each of `parts`.
    fn assert_pull_failed(&self, parts: &[&str]) {
        assert_eq!(self.run.code, EXIT_PULL_FAILED, "{}", self.run);
        for part in parts {
            assert!(
                self.run.stderr.contains(part),
                "stderr does not contain {part:?}\n{}",
                self.run
            );
        }
    }
}

/// Runs the scanner on `reference` with `envs` added to its environment.
fn scan(reference: &str, envs: &[(&str, &str)]) -> RegistryScan {
    scan_with_home(reference, envs, |_| {})
}

/// Runs the scanner like `scan`, after `prepare_home` has written into the scanner's empty
/// `HOME` directory.
fn scan_with_home(
    reference: &str,
    envs: &[(&str, &str)],
    prepare_home: impl FnOnce(&Path),
) -> RegistryScan {
    let dir = tempfile::Builder::new()
        .prefix("registry-scan-")
        .tempdir()
        .expect("failed to create a scan directory");
    let reports = dir.path().join("reports");
    let mut command = scanner();
    prepare_home(&scanner_home(&command));
    command
        .current_dir(dir.path())
        .env("COMPLIANCE_IMAGE_FULL_REF", reference)
        .env("COMPLIANCE_REPORTS_DIR", &reports)
        .envs(envs.iter().copied());
    RegistryScan {
        run: run_scan(&mut command),
        reference: reference.to_owned(),
        reports,
        _dir: dir,
    }
}

/// Returns a password-like marker that is easy to find in output.
fn secret_marker(kind: &str) -> String {
    format!("{kind}-secret-{}", random_hex(12))
}

/// Returns the `auth` field that `docker login` writes for `username` and `password`.
fn basic_auth_field(username: &str, password: &str) -> String {
    BASE64.encode(format!("{username}:{password}"))
}

// Plain registry and the report.

#[test]
fn plain_registry_passing_image_exits_zero() {
    let registry = Registry::plain();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&pushed.reference, &[]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let failed: Vec<Value> = scan
        .findings()
        .into_iter()
        .filter(|result| result["Pass"] != true)
        .map(|result| result["Id"].clone())
        .collect();
    assert!(failed.is_empty(), "failed checks {failed:?}\n{}", scan.run);
}

#[test]
fn plain_registry_report_name_and_key() {
    let registry = Registry::plain();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&pushed.reference, &[]);

    let (_, port) = registry
        .host()
        .rsplit_once(':')
        .expect("the host has a port");
    let expected_name = format!("127.0.0.1_{port}_team_app_1.0.json");
    assert_eq!(report_file_name(&pushed.reference), expected_name);
    assert!(
        scan.reports.join(&expected_name).is_file(),
        "{expected_name} is missing\n{}",
        scan.run
    );
    let report = read_report(&scan.reports, &pushed.reference);
    let keys: Vec<&String> = report
        .as_object()
        .expect("the report is not a JSON object")
        .keys()
        .collect();
    assert_eq!(keys, [&pushed.reference], "{}", scan.run);
    assert!(
        scan.run.stderr.contains(&expected_name),
        "stderr does not name the report file\n{}",
        scan.run
    );
}

#[test]
fn plain_registry_report_lists_checks_in_order() {
    let registry = Registry::plain();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&pushed.reference, &[]);

    let findings = scan.findings();
    let listed: Vec<(&str, &str)> = findings
        .iter()
        .map(|result| {
            (
                result["Id"].as_str().unwrap_or_default(),
                result["Title"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed, CHECKS, "{}", scan.run);
    for result in &findings {
        assert_eq!(result["Severity"], "Informational", "{result}");
        for field in ["Description", "Mitigation"] {
            assert!(result[field].is_string(), "{field} is missing in {result}");
        }
    }
}

// Layer compressions as the registry serves them.

#[test]
fn gzip_layer_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::Gzip));
    let pushed = push(&registry, &image, REPO_TAG, &[]);

    scan(&pushed.reference, &[]).assert_suid_found();
}

#[test]
fn multi_member_gzip_second_member_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::GzipMembers(2)));
    let (_dir, layout) = write_layout(&image);
    let blob = first_layer_blob(&layout);
    let mut first_member = Vec::new();
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut first_member)
        .expect("the first gzip member does not decompress");
    assert_setuid_file_not_in_first_part(&first_member);

    let pushed = push_layers_unchanged(&registry, &layout);

    scan(&pushed.reference, &[]).assert_suid_found();
}

#[test]
fn zstd_layer_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::Gzip));
    let (dir, _layout) = write_layout(&image);
    let pushed = registry.push_layout_zstd(dir.path(), LAYOUT_TAG, REPO_TAG, &[]);
    assert_eq!(
        stored_layer_media_type(&registry),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    scan(&pushed.reference, &[]).assert_suid_found();
}

#[test]
fn zstd_multi_frame_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::ZstdFrames(2)));
    let (_dir, layout) = write_layout(&image);
    let blob = first_layer_blob(&layout);
    let mut first_frame = Vec::new();
    zstd::stream::read::Decoder::new(blob.as_slice())
        .expect("failed to start a zstd decoder")
        .single_frame()
        .read_to_end(&mut first_frame)
        .expect("the first zstd frame does not decompress");
    assert_setuid_file_not_in_first_part(&first_frame);

    let pushed = push_layers_unchanged(&registry, &layout);

    scan(&pushed.reference, &[]).assert_suid_found();
}

/// Returns the blob of the first layer of `layout`.
fn first_layer_blob(layout: &LayoutImage) -> Vec<u8> {
    let hex = layout.layers[0].digest.trim_start_matches("sha256:");
    let path = layout.dir.join("blobs/sha256").join(hex);
    fs::read(&path).unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}

/// Asserts that `first_part`, the decompressed first gzip member or zstd frame of a layer from
/// `suid_layer`, is not the whole tar and does not contain `SUID_PATH`.
fn assert_setuid_file_not_in_first_part(first_part: &[u8]) {
    let tar_len = suid_layer(Compression::None).tar_bytes().len();
    assert!(
        first_part.len() < tar_len,
        "the first part has all {tar_len} bytes of the tar, so the layer has one part"
    );
    let path = SUID_PATH.as_bytes();
    assert!(
        !first_part.windows(path.len()).any(|window| window == path),
        "the first part already contains {SUID_PATH}"
    );
}

/// Returns the media type of the first layer in the manifest stored for `REPO_TAG`.
fn stored_layer_media_type(registry: &Registry) -> Value {
    stored_manifest(registry, REPO_TAG)["layers"][0]["mediaType"].clone()
}

/// Pushes `layout` to `REPO_TAG` with `--preserve-digests` and asserts that the registry
/// stores the first layer blob as it was built.
fn push_layers_unchanged(registry: &Registry, layout: &LayoutImage) -> PushedImage {
    let pushed = registry.push_layout(&layout.dir, LAYOUT_TAG, REPO_TAG, &["--preserve-digests"]);
    let manifest = stored_manifest(registry, REPO_TAG);
    assert_eq!(
        manifest["layers"][0]["digest"], layout.layers[0].digest,
        "skopeo recompressed the layer"
    );
    pushed
}

#[test]
fn uncompressed_layer_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::None));
    let (_dir, layout) = write_layout(&image);
    let pushed = push_layers_unchanged(&registry, &layout);
    assert_eq!(
        stored_layer_media_type(&registry),
        "application/vnd.oci.image.layer.v1.tar"
    );

    scan(&pushed.reference, &[]).assert_suid_found();
}

#[test]
fn docker_schema2_image_setuid_found() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::Gzip));
    let pushed = push(&registry, &image, REPO_TAG, &["--format", "v2s2"]);
    let manifest = stored_manifest(&registry, REPO_TAG);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );

    scan(&pushed.reference, &[]).assert_suid_found();
}

// Image indexes.

/// Returns a linux/amd64 and a linux/arm64/v8 image that differ in their os-release NAME.
fn two_platform_index() -> IndexBuilder {
    let amd64 = image_with_layer(Layer::new(passing_entries("Amd64 Test OS")))
        .platform(Platform::linux_amd64());
    let arm64 = image_with_layer(Layer::new(passing_entries("Arm64 Test OS")))
        .platform(Platform::linux_arm64_v8());
    IndexBuilder::new().image(amd64).image(arm64)
}

/// Pushes `two_platform_index` with every platform to `REPO_TAG`, passing `skopeo_args` to
/// `skopeo copy` after `--all`.
fn push_index(registry: &Registry, skopeo_args: &[&str]) -> PushedImage {
    let dir = tempfile::Builder::new()
        .prefix("layout-")
        .tempdir()
        .expect("failed to create a layout directory");
    two_platform_index().write_layout(dir.path(), LAYOUT_TAG);
    let mut args = vec!["--all"];
    args.extend_from_slice(skopeo_args);
    registry.push_layout(dir.path(), LAYOUT_TAG, REPO_TAG, &args)
}

/// Asserts that the scan exited with 0 and that ICS017 reports the os-release NAME `os_name`.
fn assert_scanned_os(scan: &RegistryScan, os_name: &str) {
    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let result = scan.result("ICS017");
    let description = result["Description"].as_str().unwrap_or_default();
    assert!(
        description.contains(os_name),
        "ICS017 reports {description:?}, not {os_name:?}\n{}",
        scan.run
    );
}

#[test]
fn index_default_platform_is_amd64() {
    let registry = Registry::plain();
    let pushed = push_index(&registry, &["--preserve-digests"]);

    let scan = scan(&pushed.reference, &[]);

    assert_scanned_os(&scan, "Amd64 Test OS");
}

#[test]
fn index_platform_setting_chooses_arm64() {
    let registry = Registry::plain();
    let pushed = push_index(&registry, &["--preserve-digests"]);

    let scan = scan(
        &pushed.reference,
        &[("COMPLIANCE_PLATFORM", "linux/arm64/v8")],
    );

    assert_scanned_os(&scan, "Arm64 Test OS");
}

#[test]
fn docker_manifest_list_chooses_arm64() {
    let registry = Registry::plain();
    let pushed = push_index(&registry, &["--format", "v2s2"]);
    let index = stored_manifest(&registry, REPO_TAG);
    assert_eq!(
        index["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    let scan = scan(
        &pushed.reference,
        &[("COMPLIANCE_PLATFORM", "linux/arm64/v8")],
    );

    assert_scanned_os(&scan, "Arm64 Test OS");
}

#[test]
fn index_missing_platform_lists_platforms() {
    let registry = Registry::plain();
    let pushed = push_index(&registry, &["--preserve-digests"]);

    let scan = scan(&pushed.reference, &[("COMPLIANCE_PLATFORM", "linux/s390x")]);

    scan.assert_pull_failed(&[
        registry.host(),
        "linux/s390x",
        "linux/amd64",
        "linux/arm64/v8",
    ]);
}

// References by digest and by implicit tag.

#[test]
fn digest_reference_passes_latest_check() {
    let registry = Registry::plain();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let reference = format!("{}/team/app@{}", registry.host(), pushed.digest);

    let scan = scan(&reference, &[]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert!(scan.passed("ICS001"), "ICS001 failed\n{}", scan.run);
}

#[test]
fn latest_tag_pinned_by_digest_passes() {
    let registry = Registry::plain();
    let pushed = push(&registry, &passing_image(), "team/app:latest", &[]);
    let reference = format!("{}@{}", pushed.reference, pushed.digest);

    let scan = scan(&reference, &[]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert!(scan.passed("ICS001"), "ICS001 failed\n{}", scan.run);
}

#[test]
fn implicit_latest_fails_latest_check() {
    let registry = Registry::plain();
    push(&registry, &passing_image(), "team/app:latest", &[]);
    let reference = format!("{}/team/app", registry.host());

    let scan = scan(&reference, &[]);

    assert_eq!(scan.run.code, EXIT_CRITICAL, "{}", scan.run);
    assert!(!scan.passed("ICS001"), "ICS001 passed\n{}", scan.run);
}

// HTTP Basic registries.

const BASIC_USER: &str = "builder";

#[test]
fn basic_auth_field_pulls() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let config = docker_auth_config_basic(registry.host(), BASIC_USER, &password);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
    scan.assert_secret_hidden(&basic_auth_field(BASIC_USER, &password));
}

#[test]
fn basic_username_password_fields_pull() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let config = json!({
        "auths": { registry.host(): { "username": BASIC_USER, "password": password } }
    })
    .to_string();

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
}

/// Returns a docker config with an `auths` entry of `BASIC_USER` and a password for each key.
fn basic_auths_config(entries: &[(String, &str)]) -> String {
    let auths: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(key, password)| {
            let entry = json!({ "auth": basic_auth_field(BASIC_USER, password) });
            (key.clone(), entry)
        })
        .collect();
    json!({ "auths": auths }).to_string()
}

#[test]
fn basic_path_scoped_key_longest_wins() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let host = registry.host();
    let host_password = secret_marker("host-wide");
    let group_password = secret_marker("group");
    let sibling_password = secret_marker("sibling");
    let config = basic_auths_config(&[
        (host.to_owned(), &host_password),
        (format!("{host}/team"), &group_password),
        (format!("{host}/team/app"), &password),
        (format!("{host}/team/application"), &sibling_password),
    ]);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    for secret in [
        &password,
        &host_password,
        &group_password,
        &sibling_password,
    ] {
        scan.assert_secret_hidden(secret);
    }
}

#[test]
fn basic_group_key_beats_host_key() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let host = registry.host();
    let host_password = secret_marker("host-wide");
    let other_group_password = secret_marker("other-group");
    let config = basic_auths_config(&[
        (host.to_owned(), &host_password),
        (format!("{host}/team"), &password),
        (format!("{host}/other/team"), &other_group_password),
    ]);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    for secret in [&password, &host_password, &other_group_password] {
        scan.assert_secret_hidden(secret);
    }
}

#[test]
fn basic_path_key_needs_whole_components() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let config = basic_auths_config(&[(format!("{}/tea", registry.host()), &password)]);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&[registry.host(), "401"]);
    scan.assert_secret_hidden(&password);
}

#[test]
fn basic_wrong_password_fails_with_401() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let wrong_password = secret_marker("wrong");
    let config = docker_auth_config_basic(registry.host(), BASIC_USER, &wrong_password);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&[registry.host(), "401"]);
    scan.assert_secret_hidden(&wrong_password);
    scan.assert_secret_hidden(&basic_auth_field(BASIC_USER, &wrong_password));
}

#[test]
fn basic_registry_without_credentials_fails() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&pushed.reference, &[]);

    scan.assert_pull_failed(&[registry.host(), "401"]);
}

#[test]
fn home_docker_config_file_pulls() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let config = docker_auth_config_basic(registry.host(), BASIC_USER, &password);

    let scan = scan_with_home(&pushed.reference, &[], |home| {
        fs::create_dir(home.join(".docker")).expect("failed to create ~/.docker");
        fs::write(home.join(".docker/config.json"), &config)
            .expect("failed to write ~/.docker/config.json");
    });

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
}

#[test]
fn docker_config_directory_pulls() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let config_dir = tempfile::Builder::new()
        .prefix("docker-config-")
        .tempdir()
        .expect("failed to create a docker config directory");
    let config = docker_auth_config_basic(registry.host(), BASIC_USER, &password);
    fs::write(config_dir.path().join("config.json"), config).expect("failed to write config.json");
    let config_dir_text = config_dir.path().display().to_string();

    let scan = scan(&pushed.reference, &[("DOCKER_CONFIG", &config_dir_text)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
}

#[test]
fn invalid_auth_field_hides_value() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let invalid_field = format!("{password}!not-base64");
    let config = json!({ "auths": { registry.host(): { "auth": invalid_field } } }).to_string();

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&["error: auth:", registry.host()]);
    scan.assert_secret_hidden(&password);
}

#[test]
fn invalid_config_json_hides_text() {
    let password = secret_marker("basic");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    // The object is never closed, so the JSON ends right after the password.
    let config = format!(
        r#"{{"auths": {{"{}": {{"username": "{BASIC_USER}", "password": "{password}""#,
        registry.host()
    );

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&["error: auth:", "DOCKER_AUTH_CONFIG"]);
    scan.assert_secret_hidden(&password);
}

// Token-auth registries.

const TOKEN_USER: &str = "reader";

/// Starts a token registry with `options`, pushes the passing image to `REPO_TAG` and empties
/// the issuer's request log, so that the log shows only the scanner's requests.
fn token_registry(options: TokenOptions) -> (Registry, PushedImage) {
    let registry = Registry::token(options);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    registry
        .token_issuer()
        .expect("a token registry has an issuer")
        .clear_requests();
    (registry, pushed)
}

#[test]
fn token_anonymous_pull_allowed() {
    let (registry, pushed) = token_registry(TokenOptions {
        anonymous_pull: true,
        ..TokenOptions::default()
    });

    let scan = scan(&pushed.reference, &[]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let requests = registry.token_issuer().unwrap().client_requests();
    assert!(
        requests
            .iter()
            .any(|request| request.username.is_none() && request.status == 200),
        "no anonymous token request: {requests:?}"
    );
}

#[test]
fn token_basic_credentials_exchanged() {
    let password = secret_marker("token-user");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &password)],
        ..TokenOptions::default()
    });
    let config = docker_auth_config_basic(registry.host(), TOKEN_USER, &password);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let requests = registry.token_issuer().unwrap().client_requests();
    let exchange = requests
        .iter()
        .find(|request| request.username.as_deref() == Some(TOKEN_USER))
        .unwrap_or_else(|| panic!("no token request for {TOKEN_USER}: {requests:?}"));
    assert!(exchange.password_present, "{exchange:?}");
    assert_eq!(exchange.status, 200, "{exchange:?}");
    assert_eq!(exchange.scope, ["repository:team/app:pull"], "{exchange:?}");
    assert_eq!(exchange.service.as_deref(), Some("harness-registry"));
    scan.assert_secret_hidden(&password);
}

#[test]
fn token_identity_token_uses_refresh_grant() {
    let password = secret_marker("token-user");
    let identity_token = secret_marker("identity");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &password)],
        refresh_tokens: vec![(identity_token.clone(), TOKEN_USER.to_owned())],
        ..TokenOptions::default()
    });
    let config = docker_auth_config_identity_token(registry.host(), TOKEN_USER, &identity_token);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let requests = registry.token_issuer().unwrap().client_requests();
    let grant = requests
        .iter()
        .find(|request| request.method == "POST")
        .unwrap_or_else(|| panic!("no POST to the token service: {requests:?}"));
    assert_eq!(
        grant.grant_type.as_deref(),
        Some("refresh_token"),
        "{grant:?}"
    );
    assert!(grant.refresh_token_present, "{grant:?}");
    assert_eq!(
        grant.service.as_deref(),
        Some("harness-registry"),
        "{grant:?}"
    );
    assert_eq!(grant.scope, ["repository:team/app:pull"], "{grant:?}");
    assert_eq!(grant.username.as_deref(), Some(TOKEN_USER), "{grant:?}");
    assert_eq!(grant.status, 200, "{grant:?}");
    scan.assert_secret_hidden(&identity_token);
}

#[test]
fn token_registrytoken_sent_as_bearer() {
    let password = secret_marker("token-user");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &password)],
        ..TokenOptions::default()
    });
    let issuer = registry.token_issuer().unwrap();
    let token_url = format!(
        "{}?service=harness-registry&scope=repository:team/app:pull",
        issuer.realm()
    );
    let response = http_get(
        &token_url,
        &HttpOptions::with_basic_auth(TOKEN_USER, &password),
    )
    .expect("the token request failed");
    assert_eq!(response.status, 200, "{}", response.body);
    let token = response.json()["token"]
        .as_str()
        .expect("the token response has no token")
        .to_owned();
    issuer.clear_requests();
    let config = json!({ "auths": { registry.host(): { "registrytoken": token } } }).to_string();

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let requests = issuer.client_requests();
    assert!(
        requests.is_empty(),
        "the scanner asked for a token although it had one: {requests:?}"
    );
    scan.assert_secret_hidden(&token);
}

#[test]
fn token_wrong_password_fails_with_status() {
    let password = secret_marker("token-user");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &password)],
        ..TokenOptions::default()
    });
    let wrong_password = secret_marker("wrong");
    let config = docker_auth_config_basic(registry.host(), TOKEN_USER, &wrong_password);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    assert_eq!(scan.run.code, EXIT_PULL_FAILED, "{}", scan.run);
    let realm = registry.token_issuer().unwrap().realm().to_owned();
    let realm_host = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    assert!(
        scan.run.stderr.contains(realm_host) || scan.run.stderr.contains(registry.host()),
        "stderr names neither the token service nor the registry\n{}",
        scan.run
    );
    assert!(
        scan.run.stderr.contains("401"),
        "stderr does not give the status 401\n{}",
        scan.run
    );
    scan.assert_secret_hidden(&wrong_password);
    scan.assert_secret_hidden(&basic_auth_field(TOKEN_USER, &wrong_password));
}

#[test]
fn token_user_without_pull_grant_fails() {
    let password = secret_marker("token-user");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser {
            username: TOKEN_USER.to_owned(),
            password: password.clone(),
            actions: Vec::new(),
        }],
        ..TokenOptions::default()
    });
    let config = docker_auth_config_basic(registry.host(), TOKEN_USER, &password);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&[registry.host()]);
    scan.assert_secret_hidden(&password);
}

#[test]
fn token_anonymous_pull_denied_fails() {
    let (registry, pushed) = token_registry(TokenOptions::default());

    let scan = scan(&pushed.reference, &[]);

    scan.assert_pull_failed(&[registry.host(), "401"]);
}

#[test]
fn token_unknown_identity_token_fails() {
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &secret_marker("unused"))],
        ..TokenOptions::default()
    });
    let identity_token = secret_marker("identity");
    let config = docker_auth_config_identity_token(registry.host(), TOKEN_USER, &identity_token);

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    let realm = registry.token_issuer().unwrap().realm().to_owned();
    let realm_host = realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    scan.assert_pull_failed(&["error: auth:", realm_host, "401"]);
    scan.assert_secret_hidden(&identity_token);
}

#[test]
fn token_invalid_registrytoken_fails() {
    let (registry, pushed) = token_registry(TokenOptions {
        anonymous_pull: true,
        ..TokenOptions::default()
    });
    let token = secret_marker("registrytoken");
    let config = json!({ "auths": { registry.host(): { "registrytoken": token } } }).to_string();

    let scan = scan(&pushed.reference, &[("DOCKER_AUTH_CONFIG", &config)]);

    scan.assert_pull_failed(&[registry.host(), "401"]);
    scan.assert_secret_hidden(&token);
}

// Credential helpers.

/// A directory with an executable `docker-credential-ics-test`, to put first on `PATH`.
struct CredentialHelper {
    dir: TempDir,
}

impl CredentialHelper {
    /// Writes a helper that records its arguments and standard input, prints `stdout` and
    /// exits with `exit_code`.
    fn new(stdout: &str, exit_code: i32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("credential-helper-")
            .tempdir()
            .expect("failed to create the helper directory");
        let script = format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$*\" > '{args}'\n\
             cat > '{stdin}'\n\
             printf '%s' '{stdout}'\n\
             exit {exit_code}\n",
            args = dir.path().join("args.txt").display(),
            stdin = dir.path().join("stdin.txt").display(),
        );
        let path = dir.path().join("docker-credential-ics-test");
        fs::write(&path, script).expect("failed to write the credential helper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .expect("failed to make the credential helper executable");
        Self { dir }
    }

    /// Writes a helper that prints credentials for `registry`, as a helper that has them does.
    fn with_credentials(registry: &Registry, username: &str, secret: &str) -> Self {
        let reply = json!({
            "ServerURL": registry.host(),
            "Username": username,
            "Secret": secret,
        });
        Self::new(&reply.to_string(), 0)
    }

    /// Runs the scanner on `reference` with `auth_config` as `DOCKER_AUTH_CONFIG` and the
    /// helper's directory first on `PATH`.
    fn scan(&self, reference: &str, auth_config: &str) -> RegistryScan {
        let inherited = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        let path = format!("{}:{inherited}", self.dir.path().display());
        scan(
            reference,
            &[("DOCKER_AUTH_CONFIG", auth_config), ("PATH", &path)],
        )
    }

    fn recorded(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

#[test]
fn credential_helper_supplies_basic_credentials() {
    let password = secret_marker("helper");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let helper = CredentialHelper::with_credentials(&registry, BASIC_USER, &password);
    let config = json!({ "credHelpers": { registry.host(): "ics-test" } }).to_string();

    let scan = helper.scan(&pushed.reference, &config);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert_eq!(helper.recorded("args.txt").trim(), "get");
    assert_eq!(helper.recorded("stdin.txt").trim(), registry.host());
    scan.assert_secret_hidden(&password);
}

#[test]
fn credential_helper_not_found_pulls_anonymously() {
    let (registry, pushed) = token_registry(TokenOptions {
        anonymous_pull: true,
        ..TokenOptions::default()
    });
    let helper = CredentialHelper::new("credentials not found in native keychain", 1);
    let config = json!({ "credHelpers": { registry.host(): "ics-test" } }).to_string();

    let scan = helper.scan(&pushed.reference, &config);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert_eq!(helper.recorded("args.txt").trim(), "get");
    let requests = registry.token_issuer().unwrap().client_requests();
    assert!(!requests.is_empty(), "no token request");
    assert!(
        requests.iter().all(|request| request.username.is_none()),
        "a token request was not anonymous: {requests:?}"
    );
}

#[test]
fn credential_helper_wins_over_auths() {
    let password = secret_marker("helper");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let helper = CredentialHelper::with_credentials(&registry, BASIC_USER, &password);
    let wrong_password = secret_marker("wrong");
    let config = json!({
        "auths": { registry.host(): { "auth": basic_auth_field(BASIC_USER, &wrong_password) } },
        "credHelpers": { registry.host(): "ics-test" },
    })
    .to_string();

    let scan = helper.scan(&pushed.reference, &config);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
    scan.assert_secret_hidden(&wrong_password);
}

#[test]
fn credentials_store_supplies_credentials() {
    let password = secret_marker("store");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let helper = CredentialHelper::with_credentials(&registry, BASIC_USER, &password);
    let config = json!({ "credsStore": "ics-test" }).to_string();

    let scan = helper.scan(&pushed.reference, &config);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert_eq!(helper.recorded("stdin.txt").trim(), registry.host());
    scan.assert_secret_hidden(&password);
}

#[test]
fn credential_helper_identity_token_refreshed() {
    let identity_token = secret_marker("identity");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &secret_marker("unused"))],
        refresh_tokens: vec![(identity_token.clone(), TOKEN_USER.to_owned())],
        ..TokenOptions::default()
    });
    let helper = CredentialHelper::with_credentials(&registry, "<token>", &identity_token);
    let config = json!({ "credHelpers": { registry.host(): "ics-test" } }).to_string();

    let scan = helper.scan(&pushed.reference, &config);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    let requests = registry.token_issuer().unwrap().client_requests();
    assert!(
        requests.iter().any(
            |request| request.grant_type.as_deref() == Some("refresh_token")
                && request.status == 200
        ),
        "no successful refresh_token grant: {requests:?}"
    );
    scan.assert_secret_hidden(&identity_token);
}

#[test]
fn credential_helper_invalid_output_hidden() {
    let password = secret_marker("helper");
    let registry = Registry::basic(BASIC_USER, &password);
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let truncated_reply = format!(r#"{{"Username": "{BASIC_USER}", "Secret": "{password}""#);
    let helper = CredentialHelper::new(&truncated_reply, 0);
    let config = json!({ "credHelpers": { registry.host(): "ics-test" } }).to_string();

    let scan = helper.scan(&pushed.reference, &config);

    scan.assert_pull_failed(&["error: auth:", "docker-credential-ics-test"]);
    scan.assert_secret_hidden(&password);
}

// Logs.

#[test]
fn trace_log_hides_credentials_and_tokens() {
    let password = secret_marker("token-user");
    let (registry, pushed) = token_registry(TokenOptions {
        users: vec![TokenUser::pull_only(TOKEN_USER, &password)],
        ..TokenOptions::default()
    });
    let config = docker_auth_config_basic(registry.host(), TOKEN_USER, &password);

    let scan = scan(
        &pushed.reference,
        &[("DOCKER_AUTH_CONFIG", &config), ("COMPLIANCE_LOG", "trace")],
    );

    assert_eq!(scan.run.code, 0, "{}", scan.run);
    scan.assert_secret_hidden(&password);
    scan.assert_secret_hidden(&basic_auth_field(TOKEN_USER, &password));
    // Every token the issuer signs is a JWT, whose base64 text starts with `eyJ`.
    scan.assert_secret_hidden("eyJ");
}

// Corrupted content.

#[test]
fn corrupted_layer_blob_fails_digest_check() {
    let registry = Registry::plain();
    let image = image_with_layer(suid_layer(Compression::None));
    let (dir, layout) = write_layout(&image);
    let pushed = registry.push_layout(dir.path(), LAYOUT_TAG, REPO_TAG, &["--preserve-digests"]);
    let digest = &layout.layers[0].digest;
    let hex = digest.trim_start_matches("sha256:");
    let stored_blob = registry
        .dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = fs::read(&stored_blob)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", stored_blob.display()));
    let filler = bytes
        .windows(64)
        .position(|window| window.iter().all(|byte| *byte == b'x'))
        .expect("the stored layer has no filler bytes");
    // Changing a byte inside a file's content keeps the tar valid, so only the digest differs.
    bytes[filler] = b'y';
    fs::write(&stored_blob, bytes).expect("failed to write the stored blob");

    let scan = scan(&pushed.reference, &[]);

    scan.assert_pull_failed(&["layer 0", hex, registry.host()]);
}

// TLS.

#[test]
fn tls_registry_with_ca_file_scans() {
    let registry = Registry::tls();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);
    let ca_file = registry.ca_file().display().to_string();

    let scan = scan(&pushed.reference, &[("COMPLIANCE_CA_FILE", &ca_file)]);

    assert_eq!(scan.run.code, 0, "{}", scan.run);
}

#[test]
fn tls_registry_without_ca_fails_on_certificate() {
    let registry = Registry::tls();
    let pushed = push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&pushed.reference, &[]);

    assert_eq!(scan.run.code, EXIT_PULL_FAILED, "{}", scan.run);
    assert!(
        scan.run.stderr.contains(registry.host()),
        "stderr does not name the registry\n{}",
        scan.run
    );
    let stderr = scan.run.stderr.to_lowercase();
    assert!(
        stderr.contains("certificate") || stderr.contains("tls"),
        "stderr does not mention TLS or the certificate\n{}",
        scan.run
    );
}

// Missing images and registries.

/// Pushes the passing image to `REPO_TAG`, scans `repo_and_tag` on the same registry and
/// asserts that the pull failed at the manifest stage with a message that names the registry.
fn assert_manifest_not_found(repo_and_tag: &str) {
    let registry = Registry::plain();
    push(&registry, &passing_image(), REPO_TAG, &[]);

    let scan = scan(&registry.reference(repo_and_tag), &[]);

    scan.assert_pull_failed(&["error: manifest:", registry.host()]);
}

#[test]
fn unknown_repository_fails_at_manifest() {
    assert_manifest_not_found("team/missing:1.0");
}

#[test]
fn unknown_tag_fails_at_manifest() {
    assert_manifest_not_found("team/app:9.9");
}

#[test]
fn unknown_digest_fails_at_manifest() {
    let missing = common::sha256_digest(b"no such manifest");
    assert_manifest_not_found(&format!("team/app@{missing}"));
}

/// A listener on 127.0.0.1 that accepts connections and never sends a byte, until dropped.
struct SilentServer {
    host: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SilentServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("failed to make the listener non-blocking");
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            // The accepted connections stay open, without a response, until the server stops.
            let mut connections = Vec::new();
            while !thread_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((connection, _)) => connections.push(connection),
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            host,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn silent_registry_times_out() {
    let server = SilentServer::start();
    let started = Instant::now();

    let scan = scan(
        &format!("{}/team/app:1.0", server.host),
        &[("COMPLIANCE_TIMEOUT", "2")],
    );

    let elapsed = started.elapsed();
    scan.assert_pull_failed(&[&server.host]);
    assert!(
        elapsed < Duration::from_secs(30),
        "the scan took {elapsed:?} with a 2 s time-out\n{}",
        scan.run
    );
}

#[test]
fn unreachable_registry_fails() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind 127.0.0.1:0");
        listener.local_addr().expect("no local address").port()
    };
    let host = format!("127.0.0.1:{port}");

    let scan = scan(&format!("{host}/team/app:1.0"), &[]);

    scan.assert_pull_failed(&[&host]);
}
