//! Checks the integration-test harness itself against the real registry, token issuer,
//! skopeo and umoci, so that a failure in a scanner test is not a harness failure.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use common::{
    Compression, HttpOptions, HttpResponse, ImageBuilder, IndexBuilder, Layer, LayoutImage,
    Platform, Registry, RegistryAuth, RegistryOptions, TarEntry, TokenOptions, TokenUser, http_get,
    http_post_form, read_findings, report_file_name, run_scan, scanner, scanner_home, skopeo,
    write_docker_archive, write_oci_archive,
};
use serde_json::Value;

/// Writes a small two-layer image to `dir` under `tag`.
fn small_image(dir: &Path, tag: &str) -> LayoutImage {
    ImageBuilder::new()
        .layer(Layer::new(vec![
            TarEntry::dir("etc", 0o755),
            TarEntry::file("etc/os-release", 0o644, "ID=harness\n"),
        ]))
        .layer(Layer::new(vec![TarEntry::file(
            "app/run.sh",
            0o755,
            "#!/bin/sh\necho hi\n",
        )]))
        .user("1000")
        .cmd(&["/app/run.sh"])
        .write_layout(dir, tag)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("invalid JSON ({error}): {text}"))
}

/// Runs `skopeo ARGS IMAGE` and parses its standard output as JSON.
fn skopeo_json(args: &[&str], image: &str) -> Value {
    let output = skopeo()
        .args(args)
        .arg(image)
        .output()
        .expect("failed to run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} {image} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    json(&String::from_utf8_lossy(&output.stdout))
}

#[test]
fn plain_registry_push_and_inspect() {
    let layout = tempfile::tempdir().unwrap();
    let image = small_image(layout.path(), "v1");
    let registry = Registry::plain();

    let pushed = registry.push_layout(
        layout.path(),
        "v1",
        "smoke/plain:v1",
        &["--preserve-digests"],
    );
    let inspected = json(&registry.inspect("smoke/plain:v1", &[]));

    assert_eq!(pushed.digest, image.manifest.digest);
    assert_eq!(
        inspected["Digest"],
        Value::from(image.manifest.digest.as_str())
    );
}

#[test]
fn basic_registry_push_with_credentials() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let registry = Registry::basic("alice", "wonderland");

    let pushed = registry.push_layout(layout.path(), "v1", "smoke/basic:v1", &[]);
    let inspected = json(&registry.inspect("smoke/basic:v1", &[]));

    assert_eq!(inspected["Digest"], Value::from(pushed.digest.as_str()));
}

#[test]
fn basic_registry_rejects_wrong_password() {
    let registry = Registry::basic("alice", "wonderland");

    let response = http_get(
        &format!("{}/v2/", registry.base_url()),
        &HttpOptions::with_basic_auth("alice", "looking-glass"),
    )
    .unwrap();

    assert_eq!(response.status, 401);
}

#[test]
fn token_registry_push_with_credentials() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let registry = Registry::token(TokenOptions {
        users: vec![TokenUser::pull_only("reader", "reader-secret")],
        ..TokenOptions::default()
    });
    let pushed = registry.push_layout(layout.path(), "v1", "smoke/token:v1", &[]);

    let inspected = skopeo_json(
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "reader:reader-secret",
        ],
        &format!("docker://{}", pushed.reference),
    );
    assert_eq!(inspected["Digest"], Value::from(pushed.digest.as_str()));
}

#[test]
fn token_registry_challenge_names_issuer() {
    let registry = Registry::token(TokenOptions::default());
    let issuer = registry.token_issuer().unwrap();

    let response = http_get(
        &format!("{}/v2/", registry.base_url()),
        &HttpOptions::default(),
    )
    .unwrap();

    assert_eq!(response.status, 401);
    let challenge = response.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains(&format!("realm=\"{}\"", issuer.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains("service=\"harness-registry\""),
        "{challenge}"
    );
}

/// Starts a token registry whose issuer accepts `alice`, and requests a token from the issuer
/// with a wrong password for her.
fn request_token_with_wrong_password() -> (Registry, HttpResponse) {
    let registry = Registry::token(TokenOptions {
        users: vec![TokenUser::new("alice", "right-password")],
        ..TokenOptions::default()
    });
    let issuer = registry.token_issuer().unwrap();
    let url = format!(
        "{}?service=harness-registry&scope=repository:smoke/app:pull",
        issuer.realm()
    );
    let response = http_get(
        &url,
        &HttpOptions::with_basic_auth("alice", "wrong-password"),
    )
    .unwrap();
    (registry, response)
}

#[test]
fn token_issuer_rejects_wrong_password() {
    let (_registry, response) = request_token_with_wrong_password();

    assert_eq!(response.status, 401, "{}", response.body);
}

#[test]
fn token_issuer_log_records_request_without_secrets() {
    let (registry, _response) = request_token_with_wrong_password();
    let issuer = registry.token_issuer().unwrap();

    let requests = issuer.client_requests();
    let raw_log = fs::read_to_string(issuer.request_log()).unwrap();

    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].username.as_deref(), Some("alice"));
    assert!(requests[0].password_present);
    assert_eq!(requests[0].scope, ["repository:smoke/app:pull"]);
    assert_eq!(requests[0].status, 401);
    assert!(!raw_log.contains("wrong-password"), "{raw_log}");
}

#[test]
fn token_issuer_refresh_grant_token_pulls() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let registry = Registry::token(TokenOptions {
        users: vec![TokenUser::new("alice", "right-password")],
        refresh_tokens: vec![("identity-token-1".to_owned(), "alice".to_owned())],
        ..TokenOptions::default()
    });
    registry.push_layout(layout.path(), "v1", "smoke/refresh:v1", &[]);
    let issuer = registry.token_issuer().unwrap();

    let token_response = http_post_form(
        issuer.realm(),
        &HttpOptions::default(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "identity-token-1"),
            ("service", "harness-registry"),
            ("scope", "repository:smoke/refresh:pull"),
            ("client_id", "harness-smoke"),
        ],
    )
    .unwrap();
    assert_eq!(token_response.status, 200, "{}", token_response.body);
    let access_token = token_response.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let manifest = http_get(
        &format!("{}/v2/smoke/refresh/manifests/v1", registry.base_url()),
        &HttpOptions {
            headers: vec![
                ("Authorization".to_owned(), format!("Bearer {access_token}")),
                (
                    "Accept".to_owned(),
                    common::image::MEDIA_TYPE_OCI_MANIFEST.to_owned(),
                ),
            ],
            ..HttpOptions::default()
        },
    )
    .unwrap();
    assert_eq!(manifest.status, 200, "{}", manifest.body);
    let recorded = issuer.client_requests();
    assert_eq!(recorded[0].grant_type.as_deref(), Some("refresh_token"));
    assert!(recorded[0].refresh_token_present);
}

#[test]
fn tls_registry_push_and_inspect() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let registry = Registry::tls();

    let pushed = registry.push_layout(layout.path(), "v1", "smoke/tls:v1", &[]);
    let inspected = json(&registry.inspect("smoke/tls:v1", &[]));

    assert_eq!(inspected["Digest"], Value::from(pushed.digest.as_str()));
}

#[test]
fn tls_registry_rejects_unknown_ca() {
    let registry = Registry::tls();

    let result = http_get(
        &format!("{}/v2/", registry.base_url()),
        &HttpOptions::with_ca_file(None),
    );

    assert!(
        result.is_err(),
        "the system roots trusted the test CA: {result:?}"
    );
}

#[test]
fn index_with_two_platforms_pushes_with_all() {
    let layout = tempfile::tempdir().unwrap();
    let index = IndexBuilder::new()
        .image(
            ImageBuilder::new()
                .platform(Platform::linux_amd64())
                .layer(Layer::new(vec![TarEntry::file("arch", 0o644, "amd64\n")])),
        )
        .image(
            ImageBuilder::new()
                .platform(Platform::linux_arm64_v8())
                .layer(Layer::new(vec![TarEntry::file("arch", 0o644, "arm64\n")])),
        )
        .write_layout(layout.path(), "multi");
    let registry = Registry::plain();

    let pushed = registry.push_layout(
        layout.path(),
        "multi",
        "smoke/multi:v1",
        &["--all", "--preserve-digests"],
    );
    let raw_index = json(&registry.inspect("smoke/multi:v1", &["--raw"]));

    assert_eq!(pushed.digest, index.index.digest);
    let platforms: Vec<&Value> = raw_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| &entry["platform"])
        .collect();
    assert_eq!(platforms.len(), 2);
    assert_eq!(platforms[1]["variant"], "v8");
}

#[test]
fn index_arm64_manifest_resolves_with_variant() {
    let layout = tempfile::tempdir().unwrap();
    IndexBuilder::new()
        .image(ImageBuilder::new().platform(Platform::linux_amd64()))
        .image(ImageBuilder::new().platform(Platform::linux_arm64_v8()))
        .write_layout(layout.path(), "multi");
    let registry = Registry::plain();
    registry.push_layout(layout.path(), "multi", "smoke/variant:v1", &["--all"]);

    // skopeo inspect reports the index digest and no variant, so the selected image's
    // configuration is read instead.
    let config = skopeo_json(
        &[
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            "inspect",
            "--config",
            "--tls-verify=false",
            "--no-creds",
        ],
        &format!("docker://{}", registry.reference("smoke/variant:v1")),
    );
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
}

#[test]
fn zstd_push_stores_zstd_layers() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let registry = Registry::plain();

    registry.push_layout_zstd(layout.path(), "v1", "smoke/zstd:v1", &[]);
    let manifest = json(&registry.inspect("smoke/zstd:v1", &["--raw"]));

    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            common::image::MEDIA_TYPE_LAYER_ZSTD,
            "{manifest}"
        );
    }
}

#[test]
fn zstd_push_of_index_with_all() {
    let layout = tempfile::tempdir().unwrap();
    IndexBuilder::new()
        .image(ImageBuilder::new().layer(Layer::new(vec![TarEntry::file("a", 0o644, "a")])))
        .image(
            ImageBuilder::new()
                .platform(Platform::linux_arm64_v8())
                .layer(Layer::new(vec![TarEntry::file("b", 0o644, "b")])),
        )
        .write_layout(layout.path(), "multi");
    let registry = Registry::plain();

    registry.push_layout_zstd(layout.path(), "multi", "smoke/zstd-multi:v1", &["--all"]);
    let index = json(&registry.inspect("smoke/zstd-multi:v1", &["--raw"]));

    for entry in index["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        let manifest = json(&registry.inspect(&format!("smoke/zstd-multi@{digest}"), &["--raw"]));
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            common::image::MEDIA_TYPE_LAYER_ZSTD,
            "{manifest}"
        );
    }
}

#[test]
fn builder_layers_push_with_preserved_digests() {
    let layout = tempfile::tempdir().unwrap();
    let image = ImageBuilder::new()
        .layer(Layer::new(vec![TarEntry::file("a", 0o644, "a")]).compression(Compression::None))
        .layer(
            Layer::new(vec![TarEntry::file("b", 0o644, "b")])
                .compression(Compression::GzipMembers(2)),
        )
        .layer(
            Layer::new(vec![TarEntry::file("c", 0o644, "c")])
                .compression(Compression::ZstdFrames(2)),
        )
        .write_layout(layout.path(), "mixed");
    let registry = Registry::plain();

    registry.push_layout(
        layout.path(),
        "mixed",
        "smoke/mixed:v1",
        &["--preserve-digests"],
    );
    let manifest = json(&registry.inspect("smoke/mixed:v1", &["--raw"]));

    let stored: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    let built: Vec<&str> = image
        .layers
        .iter()
        .map(|layer| layer.digest.as_str())
        .collect();
    assert_eq!(stored, built);
}

#[test]
fn oci_archive_is_inspectable() {
    let layout = tempfile::tempdir().unwrap();
    let image = small_image(layout.path(), "v1");
    let archive = layout.path().join("image.oci.tar");

    write_oci_archive(layout.path(), &archive);
    let inspected = skopeo_json(
        &["inspect"],
        &format!("oci-archive:{}:v1", archive.display()),
    );

    assert_eq!(
        inspected["Digest"],
        Value::from(image.manifest.digest.as_str())
    );
}

#[test]
fn docker_archive_is_inspectable() {
    let layout = tempfile::tempdir().unwrap();
    let image = small_image(layout.path(), "v1");
    let archive = layout.path().join("image.docker.tar");

    write_docker_archive(layout.path(), "v1", &archive, "smoke/app:v1");
    let inspected = skopeo_json(
        &["inspect"],
        &format!("docker-archive:{}", archive.display()),
    );

    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        image.layers.len()
    );
}

#[test]
fn docker_archive_manifest_lists_repo_tag() {
    let layout = tempfile::tempdir().unwrap();
    small_image(layout.path(), "v1");
    let archive = layout.path().join("image.docker.tar");

    write_docker_archive(layout.path(), "v1", &archive, "smoke/app:v1");
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut manifest = None;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("manifest.json") {
            manifest = Some(serde_json::from_reader::<_, Value>(&mut entry).unwrap());
        }
    }

    let manifest = manifest.expect("the archive has no manifest.json");
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["smoke/app:v1"]));
}

#[test]
fn builder_output_is_deterministic() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();

    let first_image = small_image(first.path(), "v1");
    let second_image = small_image(second.path(), "v1");

    assert_eq!(first_image.manifest, second_image.manifest);
}

#[test]
fn builder_diff_ids_match_decompressed_layers() {
    let layout = tempfile::tempdir().unwrap();
    let compressions = [
        Compression::None,
        Compression::Gzip,
        Compression::GzipMembers(3),
        Compression::Zstd,
        Compression::ZstdFrames(3),
    ];
    let mut builder = ImageBuilder::new();
    for (index, compression) in compressions.iter().enumerate() {
        let entries = (0..8)
            .map(|file| TarEntry::file(&format!("layer{index}/file{file}"), 0o644, vec![b'x'; 700]))
            .collect();
        builder = builder.layer(Layer::new(entries).compression(*compression));
    }
    let image = builder.write_layout(layout.path(), "v1");

    for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
        let blob = layout
            .path()
            .join("blobs/sha256")
            .join(&layer.digest["sha256:".len()..]);
        // The system gzip and zstd tools decompress every member or frame.
        let script = match layer.media_type.as_str() {
            common::image::MEDIA_TYPE_LAYER_GZIP => "gzip -dc \"$1\" | sha256sum",
            common::image::MEDIA_TYPE_LAYER_ZSTD => "zstd -dcq \"$1\" | sha256sum",
            _ => "sha256sum < \"$1\"",
        };
        let output = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&blob)
            .output()
            .unwrap();
        let hex = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            format!("sha256:{}", &hex[..64]),
            *diff_id,
            "{}",
            layer.media_type
        );
    }
}

#[test]
fn umoci_unpack_applies_whiteouts_and_links() {
    let layout = tempfile::tempdir().unwrap();
    ImageBuilder::new()
        .layer(Layer::new(vec![
            TarEntry::dir("etc", 0o755),
            TarEntry::file("etc/keep", 0o644, "keep\n"),
            TarEntry::file("etc/remove", 0o644, "remove\n"),
            TarEntry::dir("cache", 0o755),
            TarEntry::file("cache/old", 0o644, "old\n"),
        ]))
        .layer(
            Layer::new(vec![
                TarEntry::whiteout("etc/remove"),
                TarEntry::opaque_whiteout("cache"),
                TarEntry::file("cache/new", 0o644, "new\n"),
                TarEntry::symlink("etc/link", "keep"),
                TarEntry::hard_link("etc/hard", "etc/keep"),
                TarEntry::file("bin/tool", 0o4755, "suid\n"),
            ])
            .compression(Compression::None),
        )
        .write_layout(layout.path(), "v1");
    let bundle = layout.path().join("bundle");

    let output = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", layout.path().display()))
        .arg(&bundle)
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("etc/keep").exists());
    assert!(!rootfs.join("etc/remove").exists());
    assert!(!rootfs.join("cache/old").exists());
    assert!(rootfs.join("cache/new").exists());
    assert_eq!(
        fs::read_link(rootfs.join("etc/link")).unwrap(),
        Path::new("keep")
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/hard")).unwrap(),
        "keep\n"
    );
}

#[test]
fn registry_retries_on_taken_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let free_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = RegistryOptions {
        auth: RegistryAuth::None,
        tls: false,
    };

    let registry = Registry::start_on_ports(options, [taken_port, free_port]);

    assert_eq!(registry.host(), format!("127.0.0.1:{free_port}"));
}

#[test]
fn registry_stops_on_drop() {
    let registry = Registry::plain();
    let host = registry.host().to_owned();

    drop(registry);

    assert!(
        TcpStream::connect(&host).is_err(),
        "{host} still accepts connections"
    );
}

#[test]
fn run_scan_captures_code_and_output() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo out; echo err >&2; exit 13"]);

    let run = run_scan(&mut command);

    assert_eq!(run.code, 13);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");
}

#[test]
fn scanner_command_has_clean_environment() {
    let command = scanner();

    let names: Vec<String> = command
        .get_envs()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();

    assert_eq!(names, ["HOME", "NO_COLOR", "PATH"]);
    assert!(scanner_home(&command).is_dir());
}

#[test]
fn report_file_name_replaces_unsafe_characters() {
    let name = report_file_name("127.0.0.1:5000/team/app@sha256:ab");

    assert_eq!(name, "127.0.0.1_5000_team_app_sha256_ab.json");
}

#[test]
fn read_findings_returns_list_under_reference() {
    let reports = tempfile::tempdir().unwrap();
    let reference = "127.0.0.1:5000/app:v1";
    fs::write(
        reports.path().join(report_file_name(reference)),
        r#"{"127.0.0.1:5000/app:v1":[{"Id":"X-1","Pass":true}]}"#,
    )
    .unwrap();

    let findings = read_findings(reports.path(), reference);

    assert_eq!(findings.len(), 1);
}
