//! Scans of images in OCI layouts and archives: every check passing and failing, every
//! local source kind, and the exit codes that need no registry.

mod common;

use common::{
    Compression, ImageBuilder, Layer, ScanRun, TarEntry, read_findings, run_scan, scanner,
    write_docker_archive, write_oci_archive,
};
use serde_json::Value;
use std::path::Path;
use tempfile::TempDir;

const TITLES: [&str; 17] = [
    "Tag :latest",
    "Critical ports in the instructions EXPOSE",
    "Default user and group",
    "Image LABEL metadata",
    "The number of layers in the image",
    "Parameters CMD, ENTRYPOINT",
    "Checking for a suid bit file",
    "Checking for a sgid bit file",
    "Checking for a sudo file",
    "Checking for a su file",
    "Checking for a sshd file",
    "Checking for a ssh client file",
    "Checking for a nc file",
    "Checking for a netcat file",
    "Checking for a socat file",
    "Compilers in the image",
    "Checking for OS type",
];

/// Base files of a compliant image: accounts for `app`, an os-release and a program.
fn base_entries() -> Vec<TarEntry> {
    vec![
        TarEntry::dir("etc", 0o755),
        TarEntry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        ),
        TarEntry::file("etc/group", 0o644, "root:x:0:\napp:x:1000:\n"),
        TarEntry::dir("usr", 0o755),
        TarEntry::dir("usr/lib", 0o755),
        TarEntry::file(
            "usr/lib/os-release",
            0o644,
            "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
        ),
        TarEntry::symlink("etc/os-release", "../usr/lib/os-release"),
        TarEntry::dir("app", 0o755),
        TarEntry::file("app/server", 0o755, "#!/bin/true\n"),
    ]
}

/// A one-layer image that passes every check.
fn compliant(extra: Vec<TarEntry>) -> ImageBuilder {
    let mut entries = base_entries();
    entries.extend(extra);
    labelled(ImageBuilder::new())
        .layer(Layer::new(entries).compression(Compression::Gzip))
        .user("app:app")
        .expose("8080/tcp")
        .entrypoint(&["/app/server"])
}

fn labelled(image: ImageBuilder) -> ImageBuilder {
    image
        .label("org.opencontainers.image.vendor", "Example Ltd")
        .label("org.opencontainers.image.authors", "team@example.com")
        .label("org.opencontainers.image.version", "1.0.0")
        .label("component", "backend")
        .label("product", "shop")
}

/// A finished scan: its run and the report's results.
struct Scan {
    run: ScanRun,
    results: Vec<Value>,
    _dir: TempDir,
}

impl Scan {
    fn result(&self, title: &str) -> &Value {
        self.results
            .iter()
            .find(|r| r["Title"] == title)
            .unwrap_or_else(|| panic!("no result titled {title:?} in\n{}", self.run))
    }

    fn passed(&self, title: &str) -> bool {
        self.result(title)["Pass"]
            .as_bool()
            .unwrap_or_else(|| panic!("Pass missing: {}", self.run))
    }

    fn description(&self, title: &str) -> String {
        self.result(title)["Description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Paths listed under `Files`, over all layers.
    fn files(&self, title: &str) -> Vec<String> {
        let layers = self.result(title)["Files"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        layers
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|layer| layer.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    }

    fn failed_titles(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r["Pass"] == false)
            .map(|r| r["Title"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn scan_reference(reference: String, dir: TempDir, envs: &[(&str, &str)]) -> Scan {
    let reports = dir.path().join("reports");
    let mut command = scanner();
    command
        .env("COMPLIANCE_IMAGE_FULL_REF", &reference)
        .env("COMPLIANCE_REPORTS_DIR", &reports)
        .envs(envs.iter().copied());
    let run = run_scan(&mut command);
    let results = if reports.join(common::report_file_name(&reference)).exists() {
        read_findings(&reports, &reference)
    } else {
        Vec::new()
    };
    Scan {
        run,
        results,
        _dir: dir,
    }
}

fn scan_image(image: &ImageBuilder, tag: &str) -> Scan {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    image.write_layout(&layout, tag);
    let reference = format!("oci:{}:{tag}", layout.display());
    scan_reference(reference, dir, &[])
}

fn run_with(envs: &[(&str, &str)]) -> ScanRun {
    let dir = TempDir::new().expect("temp dir");
    let mut command = scanner();
    command.current_dir(dir.path()).envs(envs.iter().copied());
    run_scan(&mut command)
}

#[test]
fn compliant_image_passes() {
    let scan = scan_image(&compliant(vec![]), "1.0");
    assert_eq!(scan.run.code, 0, "{}", scan.run);
    assert!(
        scan.failed_titles().is_empty(),
        "failed: {:?}",
        scan.failed_titles()
    );
}

#[test]
fn report_has_titles_in_order() {
    let scan = scan_image(&compliant(vec![]), "1.0");
    let titles: Vec<&str> = scan
        .results
        .iter()
        .filter_map(|r| r["Title"].as_str())
        .collect();
    assert_eq!(titles, TITLES);
}

#[test]
fn report_fields_per_result() {
    let scan = scan_image(&compliant(vec![]), "1.0");
    for result in &scan.results {
        for key in [
            "Title",
            "Severity",
            "Pass",
            "Description",
            "Mitigation",
            "Id",
        ] {
            assert!(result.get(key).is_some(), "{key} missing in {result}");
        }
        assert_eq!(
            result["Severity"], "Informational",
            "a passed check: {result}"
        );
    }
    assert!(
        scan.result("Checking for a suid bit file")
            .get("Files")
            .is_some()
    );
    assert!(scan.result("Tag :latest").get("Files").is_none());
}

#[test]
fn report_ids_are_stable() {
    let scan = scan_image(&compliant(vec![]), "1.0");
    let ids: Vec<&str> = scan
        .results
        .iter()
        .filter_map(|r| r["Id"].as_str())
        .collect();
    let expected: Vec<String> = (1..=17).map(|n| format!("ICS{n:03}")).collect();
    assert_eq!(ids, expected);
}

#[test]
fn latest_tag_fails() {
    let scan = scan_image(&compliant(vec![]), "latest");
    assert!(!scan.passed("Tag :latest"), "{}", scan.run);
    assert_eq!(scan.result("Tag :latest")["Severity"], "Critical");
    assert_eq!(scan.run.code, 12, "{}", scan.run);
}

#[test]
fn critical_ports_fail() {
    for port in [
        "22/tcp",
        "22/udp",
        "22",
        "23/tcp",
        "2375/tcp",
        "2376/tcp",
        "20-30/tcp",
    ] {
        let scan = scan_image(&compliant(vec![]).expose(port), "1.0");
        let title = "Critical ports in the instructions EXPOSE";
        assert!(!scan.passed(title), "{port} should fail: {}", scan.run);
        assert_eq!(scan.run.code, 13, "{port}: {}", scan.run);
    }
}

#[test]
fn neighbouring_ports_pass() {
    let scan = scan_image(
        &compliant(vec![]).expose("8022/tcp").expose("2222/tcp"),
        "1.0",
    );
    assert!(
        scan.passed("Critical ports in the instructions EXPOSE"),
        "{}",
        scan.run
    );
}

#[test]
fn root_users_fail() {
    let accounts = || {
        vec![
            TarEntry::file(
                "etc/passwd",
                0o644,
                "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
            ),
            TarEntry::file("etc/group", 0o644, "root:x:0:\nwheel:x:0:\napp:x:1000:\n"),
        ]
    };
    let users = [
        "",
        "app",
        "root:app",
        "app:root",
        "0:1000",
        "1000:00",
        "+0:app",
        "toor:app",
        "app:wheel",
        ":app",
        "app:",
    ];
    for user in users {
        let scan = scan_image(&compliant(accounts()).user(user), "1.0");
        assert!(
            !scan.passed("Default user and group"),
            "USER {user:?} should fail: {}",
            scan.run
        );
    }
}

#[test]
fn numeric_user_passes() {
    let scan = scan_image(&compliant(vec![]).user("10001:10001"), "1.0");
    assert!(scan.passed("Default user and group"), "{}", scan.run);
}

#[test]
fn root_user_description_names_part() {
    let scan = scan_image(&compliant(vec![]).user("app:0"), "1.0");
    let description = scan.description("Default user and group");
    assert!(description.contains("group id 0"), "{description}");
}

#[test]
fn missing_labels_listed() {
    let image = ImageBuilder::new()
        .layer(Layer::new(base_entries()))
        .user("app:app")
        .entrypoint(&["/app/server"])
        .label("org.opencontainers.image.vendor", "Example Ltd")
        .label("version", "7");
    let scan = scan_image(&image, "1.0");
    let title = "Image LABEL metadata";
    assert!(!scan.passed(title), "{}", scan.run);
    let description = scan.description(title);
    assert!(description.contains("contact e-mail"), "{description}");
    assert!(description.contains("component"), "{description}");
    assert!(description.contains("product"), "{description}");
    assert!(!description.contains("vendor"), "{description}");
    assert_eq!(scan.run.code, 15, "{}", scan.run);
}

#[test]
fn no_labels_fail() {
    let image = ImageBuilder::new()
        .layer(Layer::new(base_entries()))
        .user("app:app")
        .entrypoint(&["/app/server"]);
    let scan = scan_image(&image, "1.0");
    assert!(!scan.passed("Image LABEL metadata"), "{}", scan.run);
}

#[test]
fn two_layers_fail() {
    let image = compliant(vec![]).layer(Layer::new(vec![TarEntry::file("app/config", 0o644, "x")]));
    let scan = scan_image(&image, "1.0");
    let title = "The number of layers in the image";
    assert!(!scan.passed(title), "{}", scan.run);
    assert!(
        scan.description(title).contains('2'),
        "{}",
        scan.description(title)
    );
    assert_eq!(scan.run.code, 15, "{}", scan.run);
}

#[test]
fn missing_command_fails() {
    let image = labelled(ImageBuilder::new())
        .layer(Layer::new(base_entries()))
        .user("app:app");
    let scan = scan_image(&image, "1.0");
    assert!(!scan.passed("Parameters CMD, ENTRYPOINT"), "{}", scan.run);
}

#[test]
fn cmd_alone_passes() {
    let image = labelled(ImageBuilder::new())
        .layer(Layer::new(base_entries()))
        .user("app:app")
        .cmd(&["/app/server", "--serve"]);
    let scan = scan_image(&image, "1.0");
    let title = "Parameters CMD, ENTRYPOINT";
    assert!(scan.passed(title), "{}", scan.run);
    assert!(
        scan.description(title).contains("--serve"),
        "{}",
        scan.description(title)
    );
}

#[test]
fn suid_file_listed_per_layer() {
    let image = compliant(vec![TarEntry::file("usr/bin/passwd", 0o4755, "x")]);
    let scan = scan_image(&image, "1.0");
    let title = "Checking for a suid bit file";
    assert!(!scan.passed(title), "{}", scan.run);
    assert_eq!(scan.files(title), ["/usr/bin/passwd"]);
    assert_eq!(
        scan.result(title)["PresentInFinalImage"],
        serde_json::json!(["/usr/bin/passwd"])
    );
    assert_eq!(scan.run.code, 12, "{}", scan.run);
}

#[test]
fn suid_hard_link_found() {
    let image = compliant(vec![
        TarEntry::file("usr/bin/newgrp", 0o4755, "x"),
        TarEntry::hard_link("usr/bin/sg", "usr/bin/newgrp").tweak_header(|h| h.set_mode(0o644)),
    ]);
    let scan = scan_image(&image, "1.0");
    let files = scan.files("Checking for a suid bit file");
    assert!(files.contains(&"/usr/bin/sg".to_string()), "{files:?}");
}

#[test]
fn deleted_suid_still_reported() {
    let image = compliant(vec![TarEntry::file("usr/bin/passwd", 0o4755, "x")])
        .layer(Layer::new(vec![TarEntry::whiteout("usr/bin/passwd")]));
    let scan = scan_image(&image, "1.0");
    let title = "Checking for a suid bit file";
    assert!(!scan.passed(title), "{}", scan.run);
    assert_eq!(scan.files(title), ["/usr/bin/passwd"]);
    assert_eq!(
        scan.result(title)["PresentInFinalImage"],
        serde_json::json!([])
    );
}

#[test]
fn sgid_directory_found() {
    let image = compliant(vec![
        TarEntry::dir("var", 0o755),
        TarEntry::dir("var/mail", 0o2775),
    ]);
    let scan = scan_image(&image, "1.0");
    let title = "Checking for a sgid bit file";
    assert!(!scan.passed(title), "{}", scan.run);
    assert_eq!(scan.files(title), ["/var/mail"]);
}

#[test]
fn forbidden_tools_found() {
    let cases = [
        ("Checking for a sudo file", "usr/bin/sudo"),
        ("Checking for a su file", "bin/su"),
        ("Checking for a sshd file", "usr/sbin/sshd"),
        ("Checking for a ssh client file", "usr/bin/ssh"),
        ("Checking for a nc file", "bin/nc.openbsd"),
        ("Checking for a nc file", "usr/bin/ncat"),
        ("Checking for a netcat file", "bin/netcat"),
        ("Checking for a socat file", "usr/bin/socat"),
    ];
    for (title, path) in cases {
        let scan = scan_image(&compliant(vec![TarEntry::file(path, 0o755, "x")]), "1.0");
        assert!(
            !scan.passed(title),
            "{path} should fail {title}: {}",
            scan.run
        );
        assert_eq!(scan.files(title), [format!("/{path}")], "{title}");
    }
}

#[test]
fn busybox_applet_link_counts() {
    let image = compliant(vec![
        TarEntry::file("bin/busybox", 0o755, "x"),
        TarEntry::symlink("bin/su", "/bin/busybox"),
        TarEntry::symlink("bin/nc", "busybox"),
    ]);
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.files("Checking for a su file"), ["/bin/su"]);
    assert_eq!(scan.files("Checking for a nc file"), ["/bin/nc"]);
}

#[test]
fn non_executables_named_like_tools_pass() {
    let image = compliant(vec![
        TarEntry::file("usr/share/bash-completion/completions/su", 0o644, "x"),
        TarEntry::file("usr/share/doc/sudo/sudo", 0o644, "x"),
        TarEntry::dir("etc/ssh", 0o755),
        TarEntry::dir("usr/lib/socat", 0o755),
    ]);
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.run.code, 0, "{}", scan.run);
}

#[test]
fn links_to_non_programs_pass() {
    let image = compliant(vec![
        TarEntry::dir("usr/share/doc/gcc-12", 0o755),
        TarEntry::symlink("usr/share/gcc", "doc/gcc-12"),
        TarEntry::symlink("usr/bin/ssh", "/nonexistent/ssh"),
        TarEntry::file("etc/init.d/sudo", 0o755, "#!/bin/sh\n"),
        TarEntry::file("usr/lib/apt/methods/rsh", 0o755, "x"),
        TarEntry::symlink("usr/lib/apt/methods/ssh", "rsh"),
    ]);
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.run.code, 0, "{}", scan.run);
}

#[test]
fn hidden_symlink_still_counts() {
    let image = compliant(vec![TarEntry::symlink("bin/su", "/bin/busybox")])
        .layer(Layer::new(vec![TarEntry::whiteout("bin/su")]));
    let scan = scan_image(&image, "1.0");
    assert_eq!(
        scan.files("Checking for a su file"),
        ["/bin/su"],
        "{}",
        scan.run
    );
}

#[test]
fn compilers_found() {
    let image = compliant(vec![
        TarEntry::file("usr/bin/x86_64-linux-gnu-gcc-12", 0o755, "x"),
        TarEntry::symlink("usr/bin/gcc", "x86_64-linux-gnu-gcc-12"),
        TarEntry::file("usr/lib/gcc/x86_64-linux-gnu/12/cc1", 0o755, "x"),
        TarEntry::file("usr/lib/go-1.19/bin/go", 0o755, "x"),
        TarEntry::file("usr/bin/clang-16", 0o755, "x"),
        TarEntry::file("usr/bin/gcc-ar-12", 0o755, "x"),
    ]);
    let scan = scan_image(&image, "1.0");
    let title = "Compilers in the image";
    assert!(!scan.passed(title), "{}", scan.run);
    let files = scan.files(title);
    for path in [
        "/usr/bin/x86_64-linux-gnu-gcc-12",
        "/usr/bin/gcc",
        "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
        "/usr/lib/go-1.19/bin/go",
        "/usr/bin/clang-16",
    ] {
        assert!(
            files.contains(&path.to_string()),
            "{path} missing from {files:?}"
        );
    }
    assert!(
        !files.contains(&"/usr/bin/gcc-ar-12".to_string()),
        "{files:?}"
    );
    assert_eq!(scan.run.code, 14, "{}", scan.run);
}

#[test]
fn os_release_through_symlink() {
    let scan = scan_image(&compliant(vec![]), "1.0");
    let title = "Checking for OS type";
    assert!(scan.passed(title), "{}", scan.run);
    assert!(
        scan.description(title).contains("Debian GNU/Linux 12"),
        "{}",
        scan.description(title)
    );
}

#[test]
fn os_release_missing_is_unknown() {
    let image = labelled(ImageBuilder::new())
        .layer(Layer::new(vec![TarEntry::file("app/server", 0o755, "x")]))
        .user("1000:1000")
        .entrypoint(&["/app/server"]);
    let scan = scan_image(&image, "1.0");
    let title = "Checking for OS type";
    assert!(scan.passed(title), "{}", scan.run);
    assert!(
        scan.description(title).starts_with("unknown"),
        "{}",
        scan.description(title)
    );
}

#[test]
fn oci_archive_source() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    compliant(vec![TarEntry::file("usr/bin/sudo", 0o4755, "x")]).write_layout(&layout, "2.0");
    let archive = dir.path().join("image.tar");
    write_oci_archive(&layout, &archive);
    let scan = scan_reference(format!("oci-archive:{}:2.0", archive.display()), dir, &[]);
    assert_eq!(scan.run.code, 12, "{}", scan.run);
    assert_eq!(scan.files("Checking for a sudo file"), ["/usr/bin/sudo"]);
}

#[test]
fn docker_archive_source() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    compliant(vec![TarEntry::file("usr/bin/ssh", 0o755, "x")]).write_layout(&layout, "3.1");
    let archive = dir.path().join("saved.tar");
    write_docker_archive(&layout, "3.1", &archive, "team/app:3.1");
    let scan = scan_reference(format!("docker-archive:{}", archive.display()), dir, &[]);
    assert_eq!(
        scan.files("Checking for a ssh client file"),
        ["/usr/bin/ssh"],
        "{}",
        scan.run
    );
    assert!(
        scan.passed("Tag :latest"),
        "the RepoTags tag 3.1 counts: {}",
        scan.run
    );
}

#[test]
fn uncompressed_and_zstd_layers() {
    for compression in [
        Compression::None,
        Compression::Zstd,
        Compression::ZstdFrames(3),
        Compression::GzipMembers(3),
    ] {
        let mut entries = base_entries();
        entries.push(TarEntry::file("usr/bin/su", 0o4755, "x"));
        let image = labelled(ImageBuilder::new())
            .layer(Layer::new(entries).compression(compression))
            .user("app:app")
            .entrypoint(&["/app/server"]);
        let scan = scan_image(&image, "1.0");
        assert_eq!(
            scan.files("Checking for a suid bit file"),
            ["/usr/bin/su"],
            "{}",
            scan.run
        );
    }
}

#[test]
fn tar_without_end_blocks_read() {
    let mut entries = base_entries();
    entries.push(TarEntry::file("usr/bin/sudo", 0o755, "x"));
    let image = labelled(ImageBuilder::new())
        .layer(Layer::new(entries).without_end_of_archive())
        .user("app:app")
        .entrypoint(&["/app/server"]);
    let scan = scan_image(&image, "1.0");
    assert_eq!(
        scan.files("Checking for a sudo file"),
        ["/usr/bin/sudo"],
        "{}",
        scan.run
    );
}

#[test]
fn missing_image_exits_22() {
    let run = run_with(&[]);
    assert_eq!(run.code, 22, "{run}");
    assert!(run.stderr.contains("COMPLIANCE_IMAGE_FULL_REF"), "{run}");
}

#[test]
fn empty_image_exits_22() {
    let run = run_with(&[("COMPLIANCE_IMAGE_FULL_REF", "")]);
    assert_eq!(run.code, 22, "{run}");
}

#[test]
fn reports_dir_blocked_exits_23() {
    let dir = TempDir::new().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a directory").expect("write");
    let reports = blocker.join("reports");
    let reference = format!("oci:{}:1.0.0", demo_image().display());
    let run = run_with(&[
        ("COMPLIANCE_IMAGE_FULL_REF", reference.as_str()),
        (
            "COMPLIANCE_REPORTS_DIR",
            reports.to_str().expect("utf-8 path"),
        ),
    ]);
    assert_eq!(run.code, 23, "{run}");
}

#[test]
fn invalid_exit_code_names_variable() {
    let run = run_with(&[
        ("COMPLIANCE_IMAGE_FULL_REF", "x:1"),
        ("LOW_EXIT_CODE", "abc"),
    ]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("LOW_EXIT_CODE"), "{run}");
}

#[test]
fn custom_exit_code_used() {
    let dir = TempDir::new().expect("temp dir");
    let reference = format!("oci:{}:1.0.0", demo_image().display());
    let scan = scan_reference(reference, dir, &[("CRITICAL_EXIT_CODE", "99")]);
    assert_eq!(scan.run.code, 99, "{}", scan.run);
}

#[test]
fn json_stdout_alone() {
    let dir = TempDir::new().expect("temp dir");
    let reference = format!("oci:{}:1.0.0", demo_image().display());
    let scan = scan_reference(
        reference.clone(),
        dir,
        &[("COMPLIANCE_JSON_STDOUT", "true")],
    );
    let parsed: Value = serde_json::from_str(&scan.run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON alone ({e}): {}", scan.run));
    assert!(parsed.get(&reference).is_some(), "{}", scan.run);
    assert!(
        scan.run.stderr.contains("RESULT"),
        "the table goes to stderr: {}",
        scan.run
    );
}

#[test]
fn table_on_stdout_by_default() {
    let dir = TempDir::new().expect("temp dir");
    let reference = format!("oci:{}:1.0.0", demo_image().display());
    let scan = scan_reference(reference, dir, &[]);
    assert!(scan.run.stdout.contains("FAILED"), "{}", scan.run);
    assert!(
        scan.run.stderr.contains("Report written to"),
        "{}",
        scan.run
    );
}

#[test]
fn config_not_image_exits_21() {
    let image = compliant(vec![]).patch_config(|config| config["rootfs"]["type"] = "other".into());
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.run.code, 21, "{}", scan.run);
    assert!(scan.run.stderr.contains("config"), "{}", scan.run);
}

#[test]
fn diff_id_count_mismatch_exits_21() {
    let image = compliant(vec![])
        .patch_config(|config| config["rootfs"]["diff_ids"] = serde_json::json!([]));
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.run.code, 21, "{}", scan.run);
}

#[test]
fn unknown_layer_media_type_exits_21() {
    let mut entries = base_entries();
    entries.push(TarEntry::file("usr/bin/sudo", 0o755, "x"));
    let image = labelled(ImageBuilder::new())
        .layer(
            Layer::new(entries).media_type("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
        )
        .user("app:app");
    let scan = scan_image(&image, "1.0");
    assert_eq!(scan.run.code, 21, "{}", scan.run);
    assert!(scan.run.stderr.contains("encrypted"), "{}", scan.run);
}

#[test]
fn corrupt_layer_exits_20() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    let written = compliant(vec![]).write_layout(&layout, "1.0");
    let digest = &written.layers[0].digest;
    let blob = blob_path(&layout, digest);
    let mut bytes = std::fs::read(&blob).expect("read blob");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).expect("write blob");
    let scan = scan_reference(format!("oci:{}:1.0", layout.display()), dir, &[]);
    assert_eq!(scan.run.code, 20, "{}", scan.run);
    assert!(scan.run.stderr.contains(digest.as_str()), "{}", scan.run);
    assert!(
        scan.results.is_empty(),
        "no report for a failed pull: {}",
        scan.run
    );
}

#[test]
fn unknown_tag_exits_20() {
    let dir = TempDir::new().expect("temp dir");
    let layout = dir.path().join("layout");
    compliant(vec![]).write_layout(&layout, "1.0");
    let scan = scan_reference(format!("oci:{}:2.0", layout.display()), dir, &[]);
    assert_eq!(scan.run.code, 20, "{}", scan.run);
    assert!(
        scan.run.stderr.contains("1.0"),
        "lists the tags it has: {}",
        scan.run
    );
}

#[test]
fn demo_image_fails_as_documented() {
    let dir = TempDir::new().expect("temp dir");
    let reference = format!("oci:{}:1.0.0", demo_image().display());
    let scan = scan_reference(reference, dir, &[]);
    assert_eq!(scan.run.code, 12, "{}", scan.run);
    assert_eq!(
        scan.failed_titles(),
        [
            "Critical ports in the instructions EXPOSE",
            "The number of layers in the image",
            "Checking for a suid bit file",
            "Checking for a su file",
        ]
    );
}

fn demo_image() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-image")
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    layout.join("blobs/sha256").join(hex)
}
