//! Builds a Debian 12 image with debootstrap and buildah (tests/realistic/build.sh) and checks
//! the scanner's findings on it, read once from the OCI layout and once from a registry on
//! 127.0.0.1.
//!
//! The build needs root, debootstrap, buildah and the Debian mirror. Set
//! `ICS_SKIP_REALISTIC=1` to skip the test where they are missing; without it a failed build
//! fails the test.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::run_with_timeout;
use common::{Registry, ScanRun, read_findings, report_file_name, run_scan, scanner};
use serde_json::Value;

/// Set to `1` to skip the test.
const SKIP_VARIABLE: &str = "ICS_SKIP_REALISTIC";
const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/realistic/build.sh");
/// build.sh's stage times added up to about a minute for a cold build on a 2-core machine with
/// a fast mirror. The limit leaves room for a slow mirror.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The tag that build.sh gives the image in the OCI layout.
const LAYOUT_TAG: &str = "realistic";
/// Scanner exit code when the highest failed severity is Critical.
const CRITICAL_EXIT_CODE: i32 = 12;

/// Report titles in report order.
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

/// Files with the setuid bit in the debootstrap minbase layer of Debian 12: shadow's passwd
/// tools, login's newgrp and util-linux's su, mount and umount.
const BASE_SETUID: [&str; 8] = [
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/gpasswd",
    "/usr/bin/mount",
    "/usr/bin/newgrp",
    "/usr/bin/passwd",
    "/usr/bin/su",
    "/usr/bin/umount",
];
/// Files with the setuid bit that the Dockerfile's packages add: sudo and openssh-client.
const RUN_SETUID: [&str; 2] = ["/usr/bin/sudo", "/usr/lib/openssh/ssh-keysign"];
/// Files and directories with the setgid bit in the minbase layer: chage, expiry and PAM's
/// unix_chkpwd (group shadow), /var/local (group staff) and /var/mail (group mail).
const BASE_SETGID: [&str; 5] = [
    "/usr/bin/chage",
    "/usr/bin/expiry",
    "/usr/sbin/unix_chkpwd",
    "/var/local",
    "/var/mail",
];
/// openssh-client's ssh-agent is setgid `_ssh` in Debian 12.
const RUN_SETGID: [&str; 1] = ["/usr/bin/ssh-agent"];

/// A failing file check and paths that it must list in one layer.
struct ExpectedFiles {
    title: &'static str,
    severity: &'static str,
    /// Whether the paths are in the base layer rather than the RUN layer.
    in_base_layer: bool,
    paths: &'static [&'static str],
}

/// The tool and compiler checks that fail, with files the report must list. The report may
/// list more, such as the `/etc/alternatives` links, which do lead to the programs.
const TOOL_FINDINGS: [ExpectedFiles; 6] = [
    ExpectedFiles {
        title: "Checking for a sudo file",
        severity: "Critical",
        in_base_layer: false,
        paths: &["/usr/bin/sudo"],
    },
    ExpectedFiles {
        title: "Checking for a su file",
        severity: "Critical",
        in_base_layer: true,
        paths: &["/usr/bin/su"],
    },
    ExpectedFiles {
        title: "Checking for a ssh client file",
        severity: "Critical",
        in_base_layer: false,
        paths: &["/usr/bin/ssh", "/usr/bin/slogin"],
    },
    // netcat-openbsd installs nc.openbsd and registers it as the nc and netcat alternatives,
    // so /usr/bin/nc and /usr/bin/netcat are symlinks through /etc/alternatives.
    ExpectedFiles {
        title: "Checking for a nc file",
        severity: "Critical",
        in_base_layer: false,
        paths: &["/usr/bin/nc", "/usr/bin/nc.openbsd"],
    },
    ExpectedFiles {
        title: "Checking for a netcat file",
        severity: "Critical",
        in_base_layer: false,
        paths: &["/usr/bin/netcat"],
    },
    ExpectedFiles {
        title: "Compilers in the image",
        severity: "Medium",
        in_base_layer: false,
        paths: &[
            "/usr/bin/gcc-12",
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
        ],
    },
];

/// The image that build.sh wrote, with the digest hex of its two layers.
struct BuiltImage {
    layout: tempfile::TempDir,
    manifest_digest: String,
    base_layer: String,
    run_layer: String,
}

impl BuiltImage {
    fn reference(&self) -> String {
        format!("oci:{}:{LAYOUT_TAG}", self.layout.path().display())
    }
}

/// Runs build.sh into a new directory and reads the manifest it wrote.
fn build_image() -> BuiltImage {
    let layout = tempfile::Builder::new()
        .prefix("realistic-image-")
        .tempdir()
        .expect("failed to create the layout directory");
    let mut command = Command::new("bash");
    command.arg(BUILD_SCRIPT).arg(layout.path());
    let (status, output) = run_with_timeout(&mut command, BUILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr_tail = tail(&stderr, 8000);
    let Some(status) = status else {
        panic!(
            "{BUILD_SCRIPT} timed out after {BUILD_TIMEOUT:?}; set {SKIP_VARIABLE}=1 to skip \
             this test\n--- stderr (end) ---\n{stderr_tail}"
        );
    };
    assert!(
        status.success(),
        "{BUILD_SCRIPT} failed with {status}; set {SKIP_VARIABLE}=1 to skip this test where \
         root, debootstrap, buildah or the Debian mirror is missing\n--- stdout ---\n{stdout}\n\
         --- stderr (end) ---\n{stderr_tail}"
    );
    eprintln!("build.sh stage times:");
    for line in stderr.lines().filter(|line| line.contains(" time: ")) {
        eprintln!("  {line}");
    }

    let expected_stdout = format!("oci:{}:{LAYOUT_TAG}", layout.path().display());
    assert_eq!(
        stdout.trim(),
        expected_stdout,
        "build.sh should print only the image reference on stdout"
    );

    let index = read_json(&layout.path().join("index.json"));
    let manifest_digest = index["manifests"]
        .as_array()
        .and_then(|manifests| {
            manifests.iter().find(|descriptor| {
                descriptor["annotations"]["org.opencontainers.image.ref.name"] == LAYOUT_TAG
            })
        })
        .and_then(|descriptor| descriptor["digest"].as_str())
        .unwrap_or_else(|| panic!("index.json has no manifest tagged {LAYOUT_TAG}: {index}"))
        .to_owned();
    let manifest = read_json(&blob_path(layout.path(), &manifest_digest));
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest has no layers list: {manifest}"))
        .iter()
        .map(|layer| digest_hex(layer["digest"].as_str().unwrap_or_default()).to_owned())
        .collect();
    assert_eq!(
        layers.len(),
        2,
        "the image should have the base layer and one layer for the Dockerfile's RUN: {manifest}"
    );

    BuiltImage {
        layout,
        manifest_digest,
        base_layer: layers[0].clone(),
        run_layer: layers[1].clone(),
    }
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON ({error}): {text}", path.display()))
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    let (algorithm, hex) = digest
        .split_once(':')
        .unwrap_or_else(|| panic!("digest {digest:?} has no algorithm prefix"));
    layout.join("blobs").join(algorithm).join(hex)
}

fn digest_hex(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

/// Returns the last `max_bytes` bytes of `text` or a little more, cut at a character boundary.
fn tail(text: &str, max_bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    &text[start..]
}

/// One scan's outcome and report, with lookups that panic with the whole report.
struct Scan {
    source: &'static str,
    run: ScanRun,
    findings: Vec<Value>,
    report: String,
}

/// Runs the scanner on `reference` and reads its JSON report. `source` names the scan in
/// assertion messages.
fn scan_image(source: &'static str, reference: &str) -> Scan {
    let reports = tempfile::tempdir().expect("failed to create the reports directory");
    let started = Instant::now();
    let run = run_scan(
        scanner()
            .env("COMPLIANCE_IMAGE_FULL_REF", reference)
            .env("COMPLIANCE_REPORTS_DIR", reports.path()),
    );
    eprintln!("scan of the {source}: {:.1?}", started.elapsed());
    let report_path = reports.path().join(report_file_name(reference));
    assert!(
        report_path.is_file(),
        "{source}: the scanner wrote no report {}\n{run}",
        report_path.display()
    );
    let findings = read_findings(reports.path(), reference);
    let report = serde_json::to_string_pretty(&findings).unwrap_or_default();
    Scan {
        source,
        run,
        findings,
        report,
    }
}

impl Scan {
    fn finding(&self, title: &str) -> &Value {
        self.findings
            .iter()
            .find(|finding| finding["Title"] == title)
            .unwrap_or_else(|| panic!("{}: no finding titled {title:?}\n{self}", self.source))
    }

    fn passed(&self, title: &str) -> bool {
        self.finding(title)["Pass"]
            .as_bool()
            .unwrap_or_else(|| panic!("{}: {title:?} has no boolean Pass\n{self}", self.source))
    }

    fn severity(&self, title: &str) -> &str {
        self.finding(title)["Severity"].as_str().unwrap_or_default()
    }

    /// Returns the paths that `Files` of `title` lists for the layer with digest hex `layer`.
    fn files_in_layer(&self, title: &str, layer: &str) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        let Some(groups) = self.finding(title)["Files"].as_array() else {
            return paths;
        };
        for group in groups {
            let Some(listed) = group[layer].as_array() else {
                continue;
            };
            paths.extend(listed.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        paths
    }

    /// Returns every path that `Files` of `title` lists, in any layer.
    fn all_files(&self, title: &str) -> BTreeSet<String> {
        let Some(groups) = self.finding(title)["Files"].as_array() else {
            return BTreeSet::new();
        };
        groups
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|group| group.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    }

    fn present_in_final_image(&self, title: &str) -> BTreeSet<String> {
        let listed = self.finding(title)["PresentInFinalImage"].as_array();
        listed
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    }
}

impl std::fmt::Display for Scan {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}\n--- report ---\n{}", self.run, self.report)
    }
}

/// Asserts that `title` failed with `severity`.
fn assert_failed(scan: &Scan, title: &str, severity: &str) {
    assert!(
        !scan.passed(title),
        "{}: {title:?} should fail\n{scan}",
        scan.source
    );
    assert_eq!(
        scan.severity(title),
        severity,
        "{}: {title:?} should fail with severity {severity}\n{scan}",
        scan.source
    );
}

fn assert_passed(scan: &Scan, title: &str) {
    assert!(
        scan.passed(title),
        "{}: {title:?} should pass\n{scan}",
        scan.source
    );
}

/// Asserts that `Files` of `title` lists each of `paths` under the layer `layer`
/// (`layer_name` names it in the message).
fn assert_files_in_layer(scan: &Scan, title: &str, layer: &str, layer_name: &str, paths: &[&str]) {
    let listed = scan.files_in_layer(title, layer);
    for path in paths {
        assert!(
            listed.contains(*path),
            "{}: {title:?} should list {path} in the {layer_name} layer {layer}\n{scan}",
            scan.source
        );
    }
}

/// Asserts that the set-ID check `title` fails and lists exactly `base_paths` in the base
/// layer and `run_paths` in the RUN layer, all still present in the final filesystem.
fn assert_special_bit_files(
    scan: &Scan,
    image: &BuiltImage,
    title: &str,
    base_paths: &[&str],
    run_paths: &[&str],
) {
    assert_failed(scan, title, "Critical");
    assert_files_in_layer(scan, title, &image.base_layer, "base", base_paths);
    assert_files_in_layer(scan, title, &image.run_layer, "RUN", run_paths);

    let expected: BTreeSet<String> = base_paths
        .iter()
        .chain(run_paths)
        .map(|path| (*path).to_owned())
        .collect();
    assert_eq!(
        scan.all_files(title),
        expected,
        "{}: {title:?} should list exactly these files in Debian 12\n{scan}",
        scan.source
    );
    assert_eq!(
        scan.present_in_final_image(title),
        expected,
        "{}: {title:?} should mark every file as present in the final image\n{scan}",
        scan.source
    );
}

/// Checks every finding that the Dockerfile and the Debian 12 base lead to.
fn assert_expected_findings(scan: &Scan, image: &BuiltImage) {
    assert_eq!(
        scan.run.code, CRITICAL_EXIT_CODE,
        "{}: the scanner should exit with the Critical code\n{scan}",
        scan.source
    );
    let titles: Vec<&str> = scan
        .findings
        .iter()
        .map(|finding| finding["Title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        titles, TITLES,
        "{}: the report should list every check in order\n{scan}",
        scan.source
    );

    // Both references carry a version-like tag: `realistic` and `12`.
    assert_passed(scan, "Tag :latest");
    assert_failed(scan, "Critical ports in the instructions EXPOSE", "High");
    assert_failed(scan, "Default user and group", "Critical");
    // The Dockerfile sets vendor and version labels, but no contact, component or product.
    assert_failed(scan, "Image LABEL metadata", "Low");
    assert_failed(scan, "The number of layers in the image", "Low");
    assert_passed(scan, "Parameters CMD, ENTRYPOINT");

    assert_special_bit_files(
        scan,
        image,
        "Checking for a suid bit file",
        &BASE_SETUID,
        &RUN_SETUID,
    );
    assert_special_bit_files(
        scan,
        image,
        "Checking for a sgid bit file",
        &BASE_SETGID,
        &RUN_SETGID,
    );

    for expected in &TOOL_FINDINGS {
        assert_failed(scan, expected.title, expected.severity);
        let (layer, layer_name) = if expected.in_base_layer {
            (&image.base_layer, "base")
        } else {
            (&image.run_layer, "RUN")
        };
        assert_files_in_layer(scan, expected.title, layer, layer_name, expected.paths);
    }
    assert_passed(scan, "Checking for a sshd file");
    assert_passed(scan, "Checking for a socat file");

    // Named like programs but not programs: documentation links, apt's transport method and
    // an init script.
    for not_program in [
        "/usr/share/doc/gcc",
        "/usr/share/doc/gcc-12",
        "/usr/lib/apt/methods/ssh",
        "/etc/init.d/sudo",
    ] {
        let listed = scan.findings.iter().any(|finding| {
            finding["Files"].as_array().is_some_and(|layers| {
                layers.iter().filter_map(|l| l.as_object()).any(|l| {
                    l.values()
                        .filter_map(|p| p.as_array())
                        .flatten()
                        .any(|p| p == not_program)
                })
            })
        });
        assert!(
            !listed,
            "{}: {not_program} is not a program\n{scan}",
            scan.source
        );
    }

    let os_type = "Checking for OS type";
    assert_passed(scan, os_type);
    let description = scan.finding(os_type)["Description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("Debian GNU/Linux 12"),
        "{}: {os_type:?} should name Debian GNU/Linux 12\n{scan}",
        scan.source
    );
}

#[test]
fn realistic_debian_image_findings() {
    if std::env::var(SKIP_VARIABLE).as_deref() == Ok("1") {
        eprintln!("realistic_debian_image_findings skipped because {SKIP_VARIABLE}=1");
        return;
    }
    let image = build_image();

    let layout_scan = scan_image("OCI layout", &image.reference());
    assert_expected_findings(&layout_scan, &image);

    // --preserve-digests keeps the layer digests, so the same layer keys apply to the report.
    let registry = Registry::plain();
    let push_started = Instant::now();
    let pushed = registry.push_layout(
        image.layout.path(),
        LAYOUT_TAG,
        "realistic/debian:12",
        &["--preserve-digests"],
    );
    eprintln!(
        "skopeo push to {}: {:.1?}",
        registry.host(),
        push_started.elapsed()
    );
    assert_eq!(
        pushed.digest, image.manifest_digest,
        "the registry should store the layout's manifest unchanged"
    );
    let registry_scan = scan_image("registry", &pushed.reference);
    assert_expected_findings(&registry_scan, &image);
}
