//! The SARIF, JUnit and Markdown reports, read the way their consumers read them.
//!
//! SARIF goes through Microsoft's SARIF Multitool with GitHub's ingestion rules and through
//! check-jsonschema against the SARIF 2.1.0 schema; JUnit through junitparser; Markdown
//! through markdown-it-py with tables enabled. `.ci/run` installs all of them, so a missing
//! validator fails the test instead of skipping it. Set `ICS_SARIF_MULTITOOL` to use a
//! Multitool binary other than the one `.ci/run` installs.

mod common;

use common::process::run_with_timeout;
use common::{ImageBuilder, Layer, Registry, ScanRun, TarEntry, run_scan, scanner};
use image_compliance_scanner::image::Platform;
use image_compliance_scanner::layer::WalkLimits;
use image_compliance_scanner::report::markdown::{self, COMMENT_MAX_CHARS, STEP_SUMMARY_MAX_BYTES};
use image_compliance_scanner::report::{ExitCodes, Verdict};
use image_compliance_scanner::scan::{self, ScanReport, ScanSettings};
use image_compliance_scanner::source::SourceOptions;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use tempfile::TempDir;

const TAG: &str = "1.0";

/// How long one validator may run.
const VALIDATOR_TIMEOUT: Duration = Duration::from_secs(180);

/// The Dockerfile that [`failing_image`] pretends to come from. Lines: FROM 2, LABEL 4,
/// RUN 5-7, EXPOSE 8, USER 9, CMD 10.
const DOCKERFILE: &str = "\
# syntax=docker/dockerfile:1
FROM debian:12

LABEL org.opencontainers.image.vendor=\"Example Ltd\"
RUN apt-get update \\
 && apt-get install -y tool \\
 && chmod u+s /usr/bin/tool
EXPOSE 8080 22
USER root
CMD [\"/usr/bin/tool\"]
";

/// The `created_by` that BuildKit records for the RUN of [`DOCKERFILE`].
const RUN_CREATED_BY: &str = "RUN /bin/sh -c apt-get update  && apt-get install -y tool  && \
                              chmod u+s /usr/bin/tool # buildkit";

/// Base files: accounts, an os-release, a setuid passwd and a busybox `su` link.
fn base_layer() -> Layer {
    Layer::new(vec![
        TarEntry::dir("etc", 0o755),
        TarEntry::file("etc/passwd", 0o644, "root:x:0:0::/root:/bin/sh\n"),
        TarEntry::file("etc/group", 0o644, "root:x:0:\n"),
        TarEntry::file(
            "etc/os-release",
            0o644,
            "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
        ),
        TarEntry::dir("bin", 0o755),
        TarEntry::file("bin/busybox", 0o755, "#!/bin/true\n"),
        TarEntry::symlink("bin/su", "busybox"),
        TarEntry::dir("usr", 0o755),
        TarEntry::dir("usr/bin", 0o755),
        TarEntry::file("usr/bin/passwd", 0o4755, "#!/bin/true\n"),
    ])
    .created_by("/bin/sh -c #(nop) ADD file:0a1b2c in / ")
}

/// Builds an image that fails ICS002 to ICS005, ICS007 and ICS010, as if from [`DOCKERFILE`].
fn failing_image() -> ImageBuilder {
    ImageBuilder::new()
        .layer(base_layer())
        .layer(
            Layer::new(vec![
                TarEntry::dir("usr", 0o755),
                TarEntry::dir("usr/bin", 0o755),
                TarEntry::file("usr/bin/tool", 0o4755, "#!/bin/true\n"),
            ])
            .created_by(RUN_CREATED_BY),
        )
        .label("org.opencontainers.image.vendor", "Example Ltd")
        .user("root")
        .expose("8080/tcp")
        .expose("22/tcp")
        .cmd(&["/usr/bin/tool"])
}

/// Builds an image whose setuid files have `names`, to test escaping.
fn image_with_paths(names: &[&str]) -> ImageBuilder {
    let mut entries = vec![TarEntry::dir("x", 0o755)];
    entries.extend(names.iter().map(|name| TarEntry::file(name, 0o4755, "")));
    ImageBuilder::new()
        .layer(base_layer())
        .layer(Layer::new(entries).created_by("COPY x /x # buildkit"))
        .user("root")
}

/// A finished scan of an OCI layout with its reports directory.
struct Scan {
    run: ScanRun,
    reference: String,
    reports: PathBuf,
    _dir: TempDir,
}

impl Scan {
    /// Returns the path of the report with `extension`.
    fn report_path(&self, extension: &str) -> PathBuf {
        let json_name = common::report_file_name(&self.reference);
        let stem = json_name
            .strip_suffix(".json")
            .expect("report_file_name ends with .json");
        self.reports.join(format!("{stem}.{extension}"))
    }

    fn read_report(&self, extension: &str) -> String {
        let path = self.report_path(extension);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("failed to read {} ({e})\n{}", path.display(), self.run))
    }

    fn sarif(&self) -> Value {
        let text = self.read_report("sarif");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the SARIF is not JSON: {e}"))
    }
}

fn write_layout(image: &ImageBuilder) -> (TempDir, String) {
    let dir = TempDir::new().expect("create a temporary directory");
    let layout = dir.path().join("layout");
    image.write_layout(&layout, TAG);
    let reference = format!("oci:{}:{TAG}", layout.display());
    (dir, reference)
}

/// Scans `reference` with the reports in a new directory, and `args` and `envs` added.
fn scan_reference(reference: &str, args: &[&str], envs: &[(&str, &str)]) -> Scan {
    let dir = TempDir::new().expect("create a temporary directory");
    let reports = dir.path().join("reports");
    let mut command = scanner();
    command
        .env("COMPLIANCE_IMAGE_FULL_REF", reference)
        .env("COMPLIANCE_REPORTS_DIR", &reports)
        .args(args)
        .envs(envs.iter().copied());
    let run = run_scan(&mut command);
    Scan {
        run,
        reference: reference.to_string(),
        reports,
        _dir: dir,
    }
}

/// Scans `reference` from the working directory `dir`, with the reports under it.
fn scan_in(dir: &Path, reference: &str, args: &[&str]) -> Scan {
    let mut command = scanner();
    command
        .current_dir(dir)
        .env("COMPLIANCE_IMAGE_FULL_REF", reference)
        .env("COMPLIANCE_REPORTS_DIR", "reports")
        .args(args);
    let run = run_scan(&mut command);
    Scan {
        run,
        reference: reference.to_string(),
        reports: dir.join("reports"),
        _dir: TempDir::new().expect("create a temporary directory"),
    }
}

/// Writes `image` and scans it; the layout lives as long as the returned directory.
fn scan_image(image: &ImageBuilder, args: &[&str], envs: &[(&str, &str)]) -> (Scan, TempDir) {
    let (layout_dir, reference) = write_layout(image);
    (scan_reference(&reference, args, envs), layout_dir)
}

/// Writes [`DOCKERFILE`] into `dir` and returns its path.
fn write_dockerfile(dir: &Path) -> PathBuf {
    let path = dir.join("Dockerfile");
    std::fs::write(&path, DOCKERFILE).expect("write the Dockerfile");
    path
}

fn results(sarif: &Value) -> Vec<Value> {
    sarif["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("the SARIF has no results array"))
}

fn rule_ids(results: &[Value]) -> BTreeSet<String> {
    results
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn uri_and_line(result: &Value) -> (String, i64) {
    let physical = &result["locations"][0]["physicalLocation"];
    (
        physical["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        physical["region"]["startLine"].as_i64().unwrap_or(0),
    )
}

/// Runs `command` under [`VALIDATOR_TIMEOUT`] and returns its exit code and output.
fn run_validator(command: &mut Command) -> (i32, String, String) {
    let (status, output) = run_with_timeout(command, VALIDATOR_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let status = status
        .unwrap_or_else(|| panic!("{command:?} timed out\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// Runs a Python script with `args` and returns its standard output; the script fails the
/// test when a module is missing.
fn python(script: &str, args: &[&Path]) -> String {
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).args(args);
    let (code, stdout, stderr) = run_validator(&mut command);
    assert_eq!(
        code, 0,
        "python3 failed; .ci/run installs check-jsonschema, junitparser and markdown-it-py\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn multitool() -> PathBuf {
    let path = std::env::var_os("ICS_SARIF_MULTITOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home)
                .join(".cache/image-compliance-scanner/sarif-multitool/node_modules")
                .join("@microsoft/sarif-multitool-linux/Sarif.Multitool")
        });
    assert!(
        path.is_file(),
        "the SARIF Multitool is missing at {}; bash .ci/run installs it",
        path.display()
    );
    path
}

/// Validates `sarif` with the Multitool's SARIF and GitHub rules and returns every finding
/// of level error, as `RULE: message`.
fn multitool_errors(sarif: &Path) -> Vec<String> {
    let output = sarif.with_extension("validation.sarif");
    let mut command = Command::new(multitool());
    command
        .arg("validate")
        .arg(sarif)
        .arg("-o")
        .arg(&output)
        .args(["--log", "ForceOverwrite", "--rule-kind", "Sarif;Gh"]);
    let (code, stdout, stderr) = run_validator(&mut command);
    assert_eq!(
        code, 0,
        "the Multitool failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&output).unwrap_or_else(|e| {
        panic!(
            "the Multitool wrote no {} ({e})\n{stdout}",
            output.display()
        )
    });
    let log: Value = serde_json::from_str(&text).expect("the Multitool output is JSON");

    let mut errors = Vec::new();
    for run in log["runs"].as_array().into_iter().flatten() {
        let default_levels: BTreeMap<&str, &str> = run["tool"]["driver"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|rule| {
                Some((
                    rule["id"].as_str()?,
                    rule["defaultConfiguration"]["level"].as_str()?,
                ))
            })
            .collect();
        for result in run["results"].as_array().into_iter().flatten() {
            let rule = result["ruleId"].as_str().unwrap_or_default();
            let level = result["level"]
                .as_str()
                .or_else(|| default_levels.get(rule).copied())
                .unwrap_or("warning");
            if level == "error" {
                errors.push(format!("{rule}: {}", result["message"]));
            }
        }
    }
    errors
}

fn sarif_schema() -> PathBuf {
    multitool().with_file_name("sarif-2.1.0.json")
}

fn assert_schema_valid(sarif: &Path) {
    let mut command = Command::new("python3");
    command
        .args(["-m", "check_jsonschema", "--schemafile"])
        .arg(sarif_schema())
        .arg(sarif);
    let (code, stdout, stderr) = run_validator(&mut command);
    assert_eq!(
        code,
        0,
        "check-jsonschema rejected {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        sarif.display()
    );
}

// Files and formats.

#[test]
fn default_formats_written_next_to_json() {
    let (scan, _layout) = scan_image(&failing_image(), &[], &[]);

    assert_eq!(scan.run.code, 12, "{}", scan.run);
    for extension in ["json", "sarif", "xml", "md"] {
        let path = scan.report_path(extension);
        assert!(
            path.is_file(),
            "{} is missing\n{}",
            path.display(),
            scan.run
        );
        let line = format!("Report written to {}", path.display());
        assert!(
            scan.run.stderr.contains(&line),
            "no {line:?} on stderr\n{}",
            scan.run
        );
    }
}

#[test]
fn format_flag_selects_reports() {
    let (layout_dir, reference) = write_layout(&failing_image());

    let flag = scan_reference(&reference, &["--format", "sarif,junit"], &[]);
    let env = scan_reference(
        &reference,
        &[],
        &[("COMPLIANCE_REPORT_FORMATS", "markdown")],
    );
    let invalid = scan_reference(&reference, &["--format", "json,html"], &[]);

    let present = |scan: &Scan| -> Vec<&str> {
        ["json", "sarif", "xml", "md"]
            .into_iter()
            .filter(|extension| scan.report_path(extension).exists())
            .collect()
    };
    assert_eq!(present(&flag), ["sarif", "xml"], "{}", flag.run);
    assert_eq!(present(&env), ["md"], "{}", env.run);
    assert_eq!(invalid.run.code, 2, "{}", invalid.run);
    assert!(invalid.run.stderr.contains("html"), "{}", invalid.run);
    drop(layout_dir);
}

#[test]
fn missing_dockerfile_is_usage_error() {
    let (scan, _layout) = scan_image(
        &failing_image(),
        &["--dockerfile", "/nonexistent/Dockerfile"],
        &[],
    );

    assert_eq!(scan.run.code, 2, "{}", scan.run);
    assert!(
        scan.run.stderr.contains("COMPLIANCE_DOCKERFILE"),
        "{}",
        scan.run
    );
}

// SARIF.

#[test]
fn sarif_passes_github_rules_and_schema() {
    let (layout_dir, reference) = write_layout(&failing_image());
    let checkout = TempDir::new().expect("create a temporary directory");
    write_dockerfile(checkout.path());
    let elsewhere = TempDir::new().expect("create a temporary directory");
    let absolute = write_dockerfile(elsewhere.path());
    let absolute_arg = absolute.to_string_lossy().into_owned();

    let relative = scan_in(
        checkout.path(),
        &reference,
        &["--dockerfile", "./Dockerfile"],
    );
    let outside = scan_reference(&reference, &["--dockerfile", &absolute_arg], &[]);
    let without = scan_reference(&reference, &[], &[]);

    let (uri, line) = uri_and_line(&results(&relative.sarif())[0]);
    assert_eq!(
        uri, "Dockerfile",
        "a Dockerfile in the working directory is relative"
    );
    assert_eq!(line, 8);
    let (uri, _) = uri_and_line(&results(&outside.sarif())[0]);
    assert!(
        uri.starts_with("file:///"),
        "an absolute path outside it is a file URI: {uri}"
    );
    for scan in [&relative, &outside, &without] {
        let path = scan.report_path("sarif");
        let errors = multitool_errors(&path);
        assert!(
            errors.is_empty(),
            "Multitool errors in {}:\n{}",
            path.display(),
            errors.join("\n")
        );
        assert_schema_valid(&path);
    }
    drop(layout_dir);
}

#[test]
fn sarif_rules_results_and_run_properties() {
    let (scan, _layout) = scan_image(&failing_image(), &[], &[]);
    let sarif = scan.sarif();
    let run = &sarif["runs"][0];

    assert!(
        sarif["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif")),
        "{sarif}"
    );
    assert_eq!(sarif["version"], "2.1.0");
    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules array");
    assert_eq!(rules.len(), 17);
    let severities: BTreeMap<&str, &Value> = rules
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default(),
                &r["properties"]["security-severity"],
            )
        })
        .collect();
    assert_eq!(severities["ICS001"], "9.5");
    assert_eq!(severities["ICS002"], "8.0");
    assert_eq!(severities["ICS016"], "5.5");
    assert_eq!(severities["ICS004"], "2.0");
    assert!(
        severities["ICS017"].is_null(),
        "an informational rule has no security-severity"
    );
    for rule in rules {
        let tags = rule["properties"]["tags"].as_array().expect("tags");
        assert!(tags.contains(&Value::from("security")), "{rule}");
        assert!(
            rule["help"]["markdown"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{rule}"
        );
        assert!(rule["defaultConfiguration"]["level"].is_string(), "{rule}");
    }

    let results = results(&sarif);
    let expected: BTreeSet<String> = ["ICS002", "ICS003", "ICS004", "ICS005", "ICS007", "ICS010"]
        .map(String::from)
        .into();
    assert_eq!(rule_ids(&results), expected);
    let suid_paths = results.iter().filter(|r| r["ruleId"] == "ICS007").count();
    assert_eq!(suid_paths, 2, "one result per setuid path");
    let digest = run["properties"]["manifestDigest"]
        .as_str()
        .expect("digest property");
    assert!(digest.starts_with("sha256:"));
    assert_eq!(run["properties"]["imageReference"], scan.reference.as_str());
    assert!(
        run["automationDetails"]["id"]
            .as_str()
            .is_some_and(|id| id.contains('/'))
    );
    for result in &results {
        let text = result["message"]["text"].as_str().unwrap_or_default();
        assert!(
            text.contains(digest),
            "the message names the digest: {text}"
        );
        let (uri, line) = uri_and_line(result);
        assert!(!uri.is_empty(), "every result has a location: {result}");
        assert!(
            !uri.contains(':'),
            "a URI with a colon reads as a scheme: {uri}"
        );
        assert_eq!(line, 1, "without a Dockerfile results point at line 1");
        assert!(
            result["partialFingerprints"]
                .as_object()
                .is_some_and(|f| !f.is_empty())
        );
    }
}

#[test]
fn sarif_fingerprints_stable_across_runs() {
    let (layout_dir, reference) = write_layout(&failing_image());

    let fingerprints = || -> Vec<String> {
        let scan = scan_reference(&reference, &["--format", "sarif"], &[]);
        results(&scan.sarif())
            .iter()
            .map(|r| r["partialFingerprints"].to_string())
            .collect()
    };
    let first = fingerprints();
    let second = fingerprints();

    assert_eq!(first, second);
    let distinct: BTreeSet<&String> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        first.len(),
        "fingerprints are unique per result"
    );
    drop(layout_dir);
}

#[test]
fn sarif_points_at_dockerfile_lines() {
    let dir = TempDir::new().expect("create a temporary directory");
    let dockerfile = write_dockerfile(dir.path());
    let dockerfile_arg = dockerfile.to_string_lossy().into_owned();
    let (scan, _layout) = scan_image(&failing_image(), &["--dockerfile", &dockerfile_arg], &[]);
    let results = results(&scan.sarif());

    let line_of = |id: &str, path: Option<&str>| -> i64 {
        let result = results
            .iter()
            .find(|r| {
                r["ruleId"] == id
                    && path.is_none_or(|p| {
                        r["message"]["text"].as_str().is_some_and(|t| t.contains(p))
                    })
            })
            .unwrap_or_else(|| panic!("no {id} result for {path:?}"));
        let (uri, line) = uri_and_line(result);
        assert!(uri.ends_with("Dockerfile"), "{uri}");
        line
    };
    assert_eq!(line_of("ICS002", None), 8, "EXPOSE");
    assert_eq!(line_of("ICS003", None), 9, "USER");
    assert_eq!(line_of("ICS004", None), 4, "LABEL");
    assert_eq!(
        line_of("ICS007", Some("/usr/bin/tool")),
        5,
        "the RUN that added the file"
    );
    assert_eq!(
        line_of("ICS007", Some("/usr/bin/passwd")),
        2,
        "the FROM of the base image"
    );
    assert_eq!(
        line_of("ICS010", Some("/bin/su")),
        2,
        "the FROM of the base image"
    );
}

#[test]
fn sarif_registry_uri_has_no_colon() {
    let registry = Registry::plain();
    let (layout_dir, _) = write_layout(&failing_image());
    let pushed = registry.push_layout(&layout_dir.path().join("layout"), TAG, "team/app:1.0", &[]);

    let scan = scan_reference(&pushed.reference, &["--format", "sarif"], &[]);

    assert_eq!(scan.run.code, 12, "{}", scan.run);
    let results = results(&scan.sarif());
    assert!(!results.is_empty());
    for result in &results {
        let (uri, _) = uri_and_line(result);
        assert!(!uri.contains(':'), "{uri}");
        assert!(uri.ends_with("/team/app"), "{uri}");
    }
    let errors = multitool_errors(&scan.report_path("sarif"));
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

// Large images: result caps and size budgets.

const LARGE_FILE_COUNT: usize = 30_000;

/// Writes a layout with [`LARGE_FILE_COUNT`] files that have both the setuid and the setgid
/// bit, once for all tests, and returns its reference.
fn large_image_reference() -> &'static str {
    static REFERENCE: OnceLock<String> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("large-image-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create a layout directory")
            .keep();
        let mut entries = vec![
            TarEntry::dir("opt", 0o755),
            TarEntry::dir("opt/tools", 0o755),
        ];
        entries.extend(
            (0..LARGE_FILE_COUNT)
                .map(|i| TarEntry::file(&format!("opt/tools/tool-{i:05}"), 0o6755, "")),
        );
        let image = ImageBuilder::new()
            .layer(base_layer())
            .layer(Layer::new(entries).created_by("COPY tools /opt/tools # buildkit"))
            .user("root");
        let layout = dir.join("layout");
        image.write_layout(&layout, TAG);
        format!("oci:{}:{TAG}", layout.display())
    })
}

#[test]
fn sarif_results_capped_for_github() {
    let scan = scan_reference(large_image_reference(), &["--format", "sarif"], &[]);

    assert_eq!(scan.run.code, 12, "{}", scan.run);
    let text = scan.read_report("sarif");
    let sarif: Value = serde_json::from_str(&text).expect("SARIF is JSON");
    let run = &sarif["runs"][0];
    let results = results(&sarif);
    assert!(results.len() <= 25_000, "{} results", results.len());
    assert!(
        results.len() >= 24_000,
        "the cap is used, not undercut: {}",
        results.len()
    );
    let omitted = &run["properties"]["omittedResults"];
    let omitted_total: u64 = ["ICS007", "ICS008"]
        .iter()
        .map(|id| omitted[id].as_u64().unwrap_or(0))
        .sum();
    let listed = results
        .iter()
        .filter(|r| r["ruleId"] == "ICS007" || r["ruleId"] == "ICS008")
        .count() as u64;
    assert_eq!(
        listed + omitted_total,
        2 * LARGE_FILE_COUNT as u64 + 1,
        "passwd is also setuid"
    );
    assert!(
        run["properties"]["omittedResultsReason"].is_string(),
        "{}",
        run["properties"]
    );
    let noted = results
        .iter()
        .filter(|r| {
            r["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("were left out"))
        })
        .count();
    assert_eq!(
        noted, 2,
        "the first result of each cut check says what was cut"
    );

    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    let compressed = encoder.finish().expect("gzip in memory").len();
    assert!(compressed <= 10_000_000, "{compressed} bytes gzipped");
}

/// Scans `reference` through the library, for the budgeted Markdown functions.
fn library_scan(reference: &str) -> ScanReport {
    let settings = ScanSettings {
        source: SourceOptions {
            platform: Platform::parse("linux/amd64").expect("valid platform"),
            ca_file: None,
            insecure_registries: Vec::new(),
            auth_config: None,
            timeout: Duration::from_secs(60),
            retries: 4,
        },
        walk: WalkLimits::default(),
        concurrency: 2,
    };
    let runtime = tokio::runtime::Runtime::new().expect("start a runtime");
    runtime
        .block_on(scan::scan(reference, &settings, None))
        .expect("the scan succeeds")
}

#[test]
fn markdown_comment_budget_respected() {
    let report = library_scan(large_image_reference());
    let verdict = Verdict::of(&report, &ExitCodes::default());

    for budget in [COMMENT_MAX_CHARS, 20_000, 3_000] {
        let text = markdown::render_for_comment(&report, &verdict, budget);
        let chars = text.chars().count();
        assert!(
            chars <= budget,
            "{chars} characters for a budget of {budget}"
        );
        assert!(
            chars >= budget / 2,
            "{chars} characters wastes a budget of {budget}"
        );
    }
    let comment = markdown::render_for_comment(&report, &verdict, COMMENT_MAX_CHARS);
    assert!(comment.contains("not shown here"), "the cut is noted");
    assert!(comment.contains("<details>"));
    assert!(comment.contains("| ❌&nbsp;Fail | **Critical** | ICS007 |"));
}

#[test]
fn step_summary_appended_within_limit() {
    let dir = TempDir::new().expect("create a temporary directory");
    let summary = dir.path().join("summary.md");
    let earlier = "# Earlier step output\n".repeat(1000);
    std::fs::write(&summary, &earlier).expect("write the summary");
    let summary_env = summary.to_string_lossy().into_owned();

    let scan = scan_reference(
        large_image_reference(),
        &["--format", "markdown"],
        &[("GITHUB_STEP_SUMMARY", &summary_env)],
    );

    assert_eq!(scan.run.code, 12, "{}", scan.run);
    let text = std::fs::read_to_string(&summary).expect("read the summary");
    assert!(text.starts_with(&earlier), "earlier content is kept");
    assert!(text.len() <= STEP_SUMMARY_MAX_BYTES, "{} bytes", text.len());
    assert!(text.contains("Image compliance: failed"));
    let full = scan.read_report("md");
    assert!(
        full.len() > STEP_SUMMARY_MAX_BYTES,
        "the .md file is not cut"
    );
}

// JUnit.

const JUNIT_SCRIPT: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
suites = list(xml)
cases = [case for suite in suites for case in suite]
failed = [case for case in cases if any(isinstance(r, Failure) for r in case.result)]
print(json.dumps({
    "suites": [suite.name for suite in suites],
    "tests": len(cases),
    "failures": len(failed),
    "suite_failures": sum(suite.failures for suite in suites),
    "keys": [[case.classname, case.name] for case in cases],
    "failed_names": [case.name for case in failed],
    "failure_text": {case.name: case.result[0].text for case in failed},
}))
"#;

#[test]
fn junit_read_by_junitparser() {
    let (scan, _layout) = scan_image(&failing_image(), &[], &[]);
    let output = python(JUNIT_SCRIPT, &[&scan.report_path("xml")]);
    let parsed: Value = serde_json::from_str(&output).expect("the script prints JSON");

    assert_eq!(parsed["suites"], serde_json::json!([scan.reference]));
    assert_eq!(parsed["tests"], 17);
    assert_eq!(parsed["failures"], 6);
    assert_eq!(parsed["suite_failures"], 6);
    let keys = parsed["keys"].as_array().expect("keys");
    let distinct: BTreeSet<String> = keys.iter().map(Value::to_string).collect();
    assert_eq!(distinct.len(), 17, "class name plus name is unique");
    let failed: Vec<&str> = parsed["failed_names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        failed.contains(&"ICS007 Checking for a suid bit file"),
        "{failed:?}"
    );
    let suid_text = parsed["failure_text"]["ICS007 Checking for a suid bit file"]
        .as_str()
        .unwrap_or_default();
    assert!(suid_text.contains("/usr/bin/tool"), "{suid_text}");
    assert!(suid_text.contains("/usr/bin/passwd"), "{suid_text}");
}

// Markdown.

/// Renders Markdown as GitHub does, in the parts that matter here: CommonMark with GFM
/// tables and raw HTML. Prints a JSON summary of the HTML.
const MARKDOWN_SCRIPT: &str = r#"
import json, sys
from html.parser import HTMLParser
from markdown_it import MarkdownIt

md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
html = md.render(open(sys.argv[1], encoding="utf-8").read())

class Summary(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = {}
        self.rows = []
        self.row = None
        self.cell = None
        self.code = []
        self.in_code = False
    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""
        elif tag == "code":
            self.in_code = True
            self.code.append("")
    def handle_endtag(self, tag):
        if tag == "tr":
            self.rows.append(self.row)
        elif tag in ("td", "th"):
            self.row.append(self.cell)
            self.cell = None
        elif tag == "code":
            self.in_code = False
    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.in_code:
            self.code[-1] += data

summary = Summary()
summary.feed(html)
print(json.dumps({"tags": summary.tags, "rows": summary.rows, "code": summary.code, "html": html}))
"#;

fn render_markdown(path: &Path) -> Value {
    let output = python(MARKDOWN_SCRIPT, &[path]);
    serde_json::from_str(&output).expect("the script prints JSON")
}

#[test]
fn markdown_renders_table_and_details() {
    let (scan, _layout) = scan_image(&failing_image(), &[], &[]);
    let markdown = scan.read_report("md");
    let rendered = render_markdown(&scan.report_path("md"));

    assert!(
        markdown.contains(&scan.reference),
        "the image is named at the top"
    );
    assert!(markdown.contains("**Exit code:** 12"), "{markdown}");
    assert_eq!(rendered["tags"]["table"], 1);
    let rows = rendered["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 18, "a header and one row per check");
    for row in rows {
        assert_eq!(row.as_array().map(Vec::len), Some(5), "{row}");
    }
    assert_eq!(rows[7][0], "❌\u{a0}Fail");
    assert_eq!(rows[7][2], "ICS007");
    assert_eq!(
        rendered["tags"]["details"], 2,
        "ICS007 and ICS010 list files"
    );
    assert_eq!(rendered["tags"]["summary"], 2);
    let code = rendered["code"].to_string();
    assert!(code.contains("/usr/bin/tool"), "{code}");
}

#[test]
fn markdown_escapes_hostile_paths() {
    let names = [
        "x/<script>alert(1)</script>|",
        "x/```\n## heading `tick`",
        "x/a|b *c* [d](javascript:alert(1)) <img src=x onerror=alert(1)>",
    ];
    let (scan, _layout) = scan_image(&image_with_paths(&names), &[], &[]);
    let rendered = render_markdown(&scan.report_path("md"));
    let html = rendered["html"].as_str().expect("html");

    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<a "), "{html}");
    assert!(!html.contains("<em>c</em>"), "{html}");
    assert!(!html.contains("<h2>heading"), "{html}");
    let rows = rendered["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 18, "{html}");
    for row in rows {
        assert_eq!(
            row.as_array().map(Vec::len),
            Some(5),
            "a path split a row: {row}"
        );
    }
    let suid_cell = rows[7][4].as_str().unwrap_or_default();
    assert!(
        suid_cell.contains("/x/<script>alert(1)</script>|"),
        "{suid_cell}"
    );
    let code = rendered["code"].as_array().expect("code blocks");
    let listed: String = code.iter().filter_map(Value::as_str).collect();
    for shown in [
        "/x/<script>alert(1)</script>|",
        "/x/```\\n## heading `tick`",
        "/x/a|b *c* [d](javascript:alert(1)) <img src=x onerror=alert(1)>",
    ] {
        assert!(
            listed.contains(shown),
            "{shown:?} not in the file list:\n{listed}"
        );
    }
}
