//! Registry faults, injected by a proxy between the scanner and a real registry: error
//! statuses, rate limits, server errors, stalls, resets, truncated bodies, redirects and
//! oversized manifests. Each test checks the exit code and message, that a failed scan
//! writes no report, and that a scan that succeeds read the layer. A matrix runs every fault
//! with a marker password and trace logging and checks that the password never reaches
//! stdout, stderr or a report. A last test kills scans at random points and checks that
//! no report is ever left half written.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::{
    Compression, ImageBuilder, Layer, Registry, ScanRun, TarEntry, TokenOptions,
    docker_auth_config_basic, random_hex, read_findings, report_file_name, run_scan, scanner,
};
use serde_json::json;
use tempfile::TempDir;

/// The repository and tag of the test image.
const REPO_TAG: &str = "team/app:1.0";
/// The path pattern of the image's manifest requests.
const MANIFEST: &str = "/v2/team/app/manifests/*";
/// The tag under which the image is written into its OCI layout before the push.
const LAYOUT_TAG: &str = "source";
/// A setuid file that only the end of the layer contains, so a scan that lists it read the
/// whole layer.
const SUID_PATH: &str = "usr/local/bin/escalate";
/// The user of the Basic-auth registry.
const USER: &str = "fault-user";

const EXIT_CRITICAL: i32 = 12;
const EXIT_PULL_FAILED: i32 = 20;
const EXIT_METADATA_FAILED: i32 = 21;

/// Bytes of a stalled, reset or truncated body that the proxy sends before the fault.
const PARTIAL_BYTES: usize = 4096;
/// The size of the oversized manifest, over the scanner's 4 MiB limit.
const OVERSIZED_MANIFEST_BYTES: usize = 10 << 20;
/// The scanner's manifest limit as its messages print it.
const MANIFEST_LIMIT_TEXT: &str = "4194304";

/// Returns an image with one uncompressed layer: accounts, 48 KiB of filler and then the
/// setuid file `SUID_PATH`, so that the layer is larger than `PARTIAL_BYTES` many times over.
fn suid_image() -> ImageBuilder {
    let filler: Vec<u8> = (0..48 * 1024).map(|i| (i % 251) as u8).collect();
    let entries = vec![
        TarEntry::dir("etc", 0o755),
        TarEntry::file(
            "etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        TarEntry::file("etc/group", 0o644, "root:x:0:\napp:x:1000:app\n"),
        TarEntry::dir("opt", 0o755),
        TarEntry::dir("opt/app", 0o755),
        TarEntry::file("opt/app/serve", 0o755, "#!/bin/sh\nexec true\n"),
        TarEntry::file("opt/app/data.bin", 0o644, filler),
        TarEntry::dir("usr", 0o755),
        TarEntry::dir("usr/local", 0o755),
        TarEntry::dir("usr/local/bin", 0o755),
        TarEntry::file(SUID_PATH, 0o4755, "#!/bin/sh\nexec true\n"),
    ];
    ImageBuilder::new()
        .layer(Layer::new(entries).compression(Compression::None))
        .user("app:app")
        .entrypoint(&["/opt/app/serve"])
        .label("org.opencontainers.image.vendor", "Example Corp")
        .label("org.opencontainers.image.authors", "platform@example.com")
        .label("org.opencontainers.image.version", "1.0.0")
        .label("component", "api")
        .label("product", "storefront")
}

/// A registry with the test image, a fault proxy in front of it and the credentials that
/// scans send through the proxy.
struct Fixture {
    proxy: FaultProxy,
    registry: Registry,
    config_digest: String,
    layer_digest: String,
    /// `DOCKER_AUTH_CONFIG` for the proxy's host, if the registry needs credentials.
    auth_config: Option<String>,
    /// The password in `auth_config`, and its base64 forms.
    secrets: Vec<String>,
    _layout: TempDir,
}

impl Fixture {
    /// Starts an anonymous registry.
    fn anonymous() -> Self {
        Self::start(Registry::plain(), None)
    }

    /// Starts a Basic-auth registry whose password is a unique marker.
    fn basic() -> Self {
        let password = secret_marker("password");
        let registry = Registry::basic(USER, &password);
        Self::start(registry, Some(password))
    }

    fn start(registry: Registry, password: Option<String>) -> Self {
        let layout = tempfile::Builder::new()
            .prefix("layout-")
            .tempdir()
            .expect("failed to create a layout directory");
        let image = suid_image().write_layout(layout.path(), LAYOUT_TAG);
        // Keeping the digests lets the rules name the config and layer blobs.
        registry.push_layout(layout.path(), LAYOUT_TAG, REPO_TAG, &["--preserve-digests"]);
        let proxy = FaultProxy::start(registry.host());
        let (auth_config, secrets) = match password {
            Some(password) => (
                Some(docker_auth_config_basic(proxy.host(), USER, &password)),
                secret_forms(USER, &password),
            ),
            None => (None, Vec::new()),
        };
        Self {
            proxy,
            registry,
            config_digest: image.config.digest.clone(),
            layer_digest: image.layers[0].digest.clone(),
            auth_config,
            secrets,
            _layout: layout,
        }
    }

    fn reference(&self) -> String {
        self.proxy.reference(REPO_TAG)
    }

    fn layer_path(&self) -> String {
        format!("/v2/team/app/blobs/{}", self.layer_digest)
    }

    fn config_path(&self) -> String {
        format!("/v2/team/app/blobs/{}", self.config_digest)
    }

    /// Resets the proxy, applies `scenario`'s rules, scans through the proxy and checks the
    /// outcome that the scenario expects.
    fn run(&self, scenario: &Scenario) -> FaultScan {
        self.proxy.reset();
        for rule in &scenario.rules {
            self.proxy.add_rule(rule.clone());
        }
        let auth_config = match &scenario.auth {
            ScenarioAuth::Fixture => self.auth_config.clone(),
            ScenarioAuth::None => None,
            ScenarioAuth::Config(config) => Some(config.clone()),
        };
        let mut envs: Vec<(&str, &str)> = scenario.envs.clone();
        if let Some(config) = &auth_config {
            envs.push(("DOCKER_AUTH_CONFIG", config));
        }
        let scan = scan(&self.reference(), &envs);
        scan.assert_outcome(scenario, self.proxy.host());
        scan
    }
}

/// Returns a password-like marker that is easy to find in output.
fn secret_marker(kind: &str) -> String {
    format!("{kind}-marker-{}", random_hex(12))
}

/// Returns `password` and the base64 forms in which a Basic credential travels.
fn secret_forms(username: &str, password: &str) -> Vec<String> {
    vec![
        password.to_owned(),
        BASE64.encode(format!("{username}:{password}")),
        BASE64.encode(password),
    ]
}

/// How a scenario's scan authenticates.
#[derive(Clone)]
enum ScenarioAuth {
    /// With the fixture's credentials, if it has any.
    Fixture,
    /// Without credentials.
    None,
    /// With this `DOCKER_AUTH_CONFIG`.
    Config(String),
}

/// What a scenario's scan must end with.
#[derive(Clone)]
enum Outcome {
    /// Exit 12 with the setuid file found. `retried` requires a retry in the log.
    Scanned { retried: bool },
    /// Exit `code` with each of `parts` on stderr, and no report.
    Failed { code: i32, parts: Vec<String> },
}

/// One fault and the outcome it must give.
#[derive(Clone)]
struct Scenario {
    name: &'static str,
    rules: Vec<Rule>,
    envs: Vec<(&'static str, &'static str)>,
    auth: ScenarioAuth,
    /// Secrets besides the fixture's that must stay hidden.
    secrets: Vec<String>,
    outcome: Outcome,
}

impl Scenario {
    fn new(name: &'static str, rules: Vec<Rule>, outcome: Outcome) -> Self {
        Self {
            name,
            rules,
            envs: vec![("COMPLIANCE_TIMEOUT", "10")],
            auth: ScenarioAuth::Fixture,
            secrets: Vec::new(),
            outcome,
        }
    }

    /// Sets `COMPLIANCE_TIMEOUT` to 2 s, for faults that wait for it.
    fn short_timeout(mut self) -> Self {
        self.envs.retain(|(name, _)| *name != "COMPLIANCE_TIMEOUT");
        self.envs.push(("COMPLIANCE_TIMEOUT", "2"));
        self
    }

    fn env(mut self, name: &'static str, value: &'static str) -> Self {
        self.envs.push((name, value));
        self
    }
}

fn scanned(retried: bool) -> Outcome {
    Outcome::Scanned { retried }
}

fn failed(code: i32, parts: &[&str]) -> Outcome {
    Outcome::Failed {
        code,
        parts: parts.iter().map(|part| (*part).to_owned()).collect(),
    }
}

fn status(code: u16) -> Fault {
    Fault::Status {
        code,
        retry_after: None,
    }
}

fn status_retry_after(code: u16, retry_after: &str) -> Fault {
    Fault::Status {
        code,
        retry_after: Some(retry_after.to_owned()),
    }
}

/// One scanner run with its reports directory and duration.
struct FaultScan {
    run: ScanRun,
    reference: String,
    reports: PathBuf,
    elapsed: Duration,
    _dir: TempDir,
}

/// Runs the scanner on `reference` with `envs` added to its environment.
fn scan(reference: &str, envs: &[(&str, &str)]) -> FaultScan {
    let dir = tempfile::Builder::new()
        .prefix("fault-scan-")
        .tempdir()
        .expect("failed to create a scan directory");
    let reports = dir.path().join("reports");
    let mut command = scanner();
    command
        .current_dir(dir.path())
        .env("COMPLIANCE_IMAGE_FULL_REF", reference)
        .env("COMPLIANCE_REPORTS_DIR", &reports)
        .envs(envs.iter().copied());
    let started = Instant::now();
    let run = run_scan(&mut command);
    FaultScan {
        run,
        reference: reference.to_owned(),
        reports,
        elapsed: started.elapsed(),
        _dir: dir,
    }
}

impl FaultScan {
    fn assert_outcome(&self, scenario: &Scenario, host: &str) {
        let name = scenario.name;
        match &scenario.outcome {
            Outcome::Scanned { retried } => {
                self.assert_setuid_found(name);
                if *retried {
                    assert!(
                        self.run.stderr.contains("retrying"),
                        "{name}: no retry was logged\n{}",
                        self.run
                    );
                }
            }
            Outcome::Failed { code, parts } => {
                assert_eq!(self.run.code, *code, "{name}\n{}", self.run);
                assert!(
                    self.run.stderr.contains(host),
                    "{name}: stderr does not name the registry {host}\n{}",
                    self.run
                );
                for part in parts {
                    assert!(
                        self.run.stderr.contains(part.as_str()),
                        "{name}: stderr does not contain {part:?}\n{}",
                        self.run
                    );
                }
                self.assert_no_report(name);
            }
        }
    }

    /// Asserts exit 12 with `SUID_PATH` under ICS007, which only a complete read of the
    /// layer finds.
    fn assert_setuid_found(&self, name: &str) {
        assert_eq!(self.run.code, EXIT_CRITICAL, "{name}\n{}", self.run);
        let findings = read_findings(&self.reports, &self.reference);
        let suid = findings
            .iter()
            .find(|result| result["Id"] == "ICS007")
            .unwrap_or_else(|| panic!("{name}: the report has no ICS007\n{}", self.run));
        assert_eq!(suid["Pass"], json!(false), "{name}\n{}", self.run);
        let listed = suid["Files"].to_string();
        assert!(
            listed.contains(&format!("/{SUID_PATH}")),
            "{name}: ICS007 lists {listed}, not /{SUID_PATH}\n{}",
            self.run
        );
    }

    /// Asserts that the reports directory contains no file at all, so no check can pass for a
    /// layer that was not read.
    fn assert_no_report(&self, name: &str) {
        let files = directory_entries(&self.reports);
        assert!(
            files.is_empty(),
            "{name}: a failed scan wrote {files:?}\n{}",
            self.run
        );
        assert!(
            !self
                .reports
                .join(report_file_name(&self.reference))
                .exists(),
            "{name}: a failed scan wrote a report\n{}",
            self.run
        );
    }

    /// Asserts that `secret` appears in neither stdout, stderr nor any report file.
    fn assert_secret_hidden(&self, name: &str, secret: &str) {
        assert!(
            !self.run.stdout.contains(secret),
            "{name}: stdout contains the secret {secret:?}\n{}",
            self.run
        );
        assert!(
            !self.run.stderr.contains(secret),
            "{name}: stderr contains the secret {secret:?}\n{}",
            self.run
        );
        for file in directory_entries(&self.reports) {
            let text = fs::read_to_string(self.reports.join(&file)).unwrap_or_default();
            assert!(
                !text.contains(secret),
                "{name}: report {file} contains the secret {secret:?}"
            );
        }
    }

    fn assert_elapsed_between(&self, min: Duration, max: Duration) {
        assert!(
            self.elapsed >= min && self.elapsed <= max,
            "the scan took {:?}, expected {min:?} to {max:?}\n{}",
            self.elapsed,
            self.run
        );
    }
}

/// Returns the names of the entries of `dir`, empty when it does not exist.
fn directory_entries(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Formats `time` as an IMF-fixdate, the HTTP date form, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = time.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let days = (seconds / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let clock = seconds % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    )
}

/// Returns the proleptic Gregorian date of `days` after 1970-01-01, by Howard Hinnant's
/// `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[test]
fn http_date_formats_known_date() {
    let time = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(time), "Sun, 06 Nov 1994 08:49:37 GMT");
}

// Scenarios. Each returns the rules and outcome of one fault; the tests below run each
// once, and the secrets matrix runs them all with credentials.

fn unauthorized_manifest() -> Scenario {
    Scenario::new(
        "unauthorized_manifest",
        vec![Rule::always("GET", MANIFEST, status(401))],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "401"]),
    )
}

fn forbidden_manifest() -> Scenario {
    Scenario::new(
        "forbidden_manifest",
        vec![Rule::always("GET", MANIFEST, status(403))],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "403"]),
    )
}

fn missing_manifest() -> Scenario {
    Scenario::new(
        "missing_manifest",
        vec![Rule::always("GET", MANIFEST, status(404))],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "404"]),
    )
}

fn missing_layer(fixture: &Fixture) -> Scenario {
    Scenario::new(
        "missing_layer",
        vec![Rule::always("GET", &fixture.layer_path(), status(404))],
        failed(EXIT_PULL_FAILED, &["error: layer 0", "404"]),
    )
}

fn rate_limited_with_retry_after() -> Scenario {
    Scenario::new(
        "rate_limited_with_retry_after",
        vec![Rule::first(
            2,
            "GET",
            MANIFEST,
            status_retry_after(429, "1"),
        )],
        scanned(true),
    )
}

fn rate_limited_with_http_date(fixture: &Fixture) -> Scenario {
    let retry_at = http_date(SystemTime::now() + Duration::from_secs(3));
    Scenario::new(
        "rate_limited_with_http_date",
        vec![Rule::first(
            1,
            "GET",
            &fixture.config_path(),
            status_retry_after(429, &retry_at),
        )],
        scanned(true),
    )
}

fn rate_limited_without_retry_after(fixture: &Fixture) -> Scenario {
    Scenario::new(
        "rate_limited_without_retry_after",
        vec![Rule::first(2, "GET", &fixture.layer_path(), status(429))],
        scanned(true),
    )
}

fn rate_limit_exhausted() -> Scenario {
    Scenario::new(
        "rate_limit_exhausted",
        vec![Rule::always("GET", MANIFEST, status(429))],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "429", "3 attempts"]),
    )
    .env("COMPLIANCE_RETRIES", "2")
}

fn rate_limit_retry_after_too_long() -> Scenario {
    Scenario::new(
        "rate_limit_retry_after_too_long",
        vec![Rule::always(
            "GET",
            MANIFEST,
            status_retry_after(429, "3600"),
        )],
        failed(
            EXIT_PULL_FAILED,
            &["error: manifest:", "429", "Retry-After"],
        ),
    )
}

/// Returns a scenario where `path` returns HTTP `code` twice and then succeeds.
fn server_error_then_success(name: &'static str, code: u16, path: &str) -> Scenario {
    Scenario::new(
        name,
        vec![Rule::first(2, "GET", path, status(code))],
        scanned(true),
    )
}

fn always_unavailable() -> Scenario {
    Scenario::new(
        "always_unavailable",
        vec![Rule::always("GET", MANIFEST, status(503))],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "503", "5 attempts"]),
    )
}

fn stall_mid_layer(fixture: &Fixture) -> Scenario {
    let stall = Fault::Stall {
        after_bytes: PARTIAL_BYTES,
    };
    Scenario::new(
        "stall_mid_layer",
        vec![Rule::always("GET", &fixture.layer_path(), stall)],
        failed(
            EXIT_PULL_FAILED,
            &[
                "error: layer 0",
                "no data for 2 s",
                "COMPLIANCE_TIMEOUT",
                "cannot rewind",
            ],
        ),
    )
    .short_timeout()
}

fn stall_before_first_byte(fixture: &Fixture) -> Scenario {
    let stall = Fault::Stall { after_bytes: 0 };
    Scenario::new(
        "stall_before_first_byte",
        vec![Rule::first(1, "GET", &fixture.layer_path(), stall)],
        scanned(true),
    )
    .short_timeout()
}

fn reset_before_response(fixture: &Fixture) -> Scenario {
    let reset = Fault::Reset { after_bytes: None };
    Scenario::new(
        "reset_before_response",
        vec![Rule::first(2, "GET", &fixture.layer_path(), reset)],
        scanned(true),
    )
}

fn reset_mid_layer(fixture: &Fixture) -> Scenario {
    let reset = Fault::Reset {
        after_bytes: Some(PARTIAL_BYTES),
    };
    Scenario::new(
        "reset_mid_layer",
        vec![Rule::always("GET", &fixture.layer_path(), reset)],
        failed(EXIT_PULL_FAILED, &["error: layer 0", "cannot rewind"]),
    )
}

fn truncated_layer(fixture: &Fixture) -> Scenario {
    let truncate = Fault::Truncate {
        after_bytes: PARTIAL_BYTES,
    };
    Scenario::new(
        "truncated_layer",
        vec![Rule::always("GET", &fixture.layer_path(), truncate)],
        failed(
            EXIT_PULL_FAILED,
            &[
                "error: layer 0",
                &PARTIAL_BYTES.to_string(),
                "cannot rewind",
            ],
        ),
    )
}

fn truncated_config(fixture: &Fixture) -> Scenario {
    let truncate = Fault::Truncate { after_bytes: 10 };
    Scenario::new(
        "truncated_config",
        vec![Rule::first(1, "GET", &fixture.config_path(), truncate)],
        scanned(true),
    )
}

fn redirect_layer_to_other_host(fixture: &Fixture) -> Scenario {
    Scenario::new(
        "redirect_layer_to_other_host",
        vec![Rule::always(
            "GET",
            &fixture.layer_path(),
            Fault::RedirectToOtherHost,
        )],
        scanned(false),
    )
}

fn redirect_loop(fixture: &Fixture) -> Scenario {
    Scenario::new(
        "redirect_loop",
        vec![Rule::always(
            "GET",
            &fixture.layer_path(),
            Fault::RedirectLoop,
        )],
        failed(EXIT_PULL_FAILED, &["error: layer 0", "redirect"]),
    )
}

fn oversized_manifest(content_length: bool) -> Scenario {
    let oversized = Fault::OversizedBody {
        bytes: OVERSIZED_MANIFEST_BYTES,
        content_length,
    };
    // Each message shows that the body was rejected before it was read whole: from its
    // Content-Length, or once the limit was passed.
    let (name, rejected_at) = if content_length {
        (
            "oversized_manifest_with_length",
            "(Content-Length)".to_owned(),
        )
    } else {
        (
            "oversized_manifest_streamed",
            format!("more than {MANIFEST_LIMIT_TEXT} bytes"),
        )
    };
    Scenario::new(
        name,
        vec![Rule::always("GET", MANIFEST, oversized)],
        failed(
            EXIT_METADATA_FAILED,
            &["error: manifest:", MANIFEST_LIMIT_TEXT, &rejected_at],
        ),
    )
}

fn echoed_credentials() -> Scenario {
    Scenario::new(
        "echoed_credentials",
        vec![Rule::always("GET", MANIFEST, Fault::EchoAuthorization)],
        failed(EXIT_PULL_FAILED, &["error: manifest:", "400"]),
    )
}

fn missing_credentials() -> Scenario {
    Scenario {
        auth: ScenarioAuth::None,
        ..Scenario::new(
            "missing_credentials",
            Vec::new(),
            failed(EXIT_PULL_FAILED, &["error: manifest:", "401"]),
        )
    }
}

fn wrong_password(fixture: &Fixture) -> Scenario {
    let password = secret_marker("wrong-password");
    let config = docker_auth_config_basic(fixture.proxy.host(), USER, &password);
    Scenario {
        auth: ScenarioAuth::Config(config),
        secrets: secret_forms(USER, &password),
        ..Scenario::new(
            "wrong_password",
            Vec::new(),
            failed(EXIT_PULL_FAILED, &["error: manifest:", "401"]),
        )
    }
}

/// Returns every scenario, for the secrets matrix.
fn all_scenarios(fixture: &Fixture) -> Vec<Scenario> {
    vec![
        unauthorized_manifest(),
        forbidden_manifest(),
        missing_manifest(),
        missing_layer(fixture),
        rate_limited_with_retry_after(),
        rate_limited_with_http_date(fixture),
        rate_limited_without_retry_after(fixture),
        rate_limit_exhausted(),
        rate_limit_retry_after_too_long(),
        server_error_then_success("manifest_500", 500, MANIFEST),
        server_error_then_success("config_502", 502, &fixture.config_path()),
        server_error_then_success("layer_503", 503, &fixture.layer_path()),
        always_unavailable(),
        stall_mid_layer(fixture),
        stall_before_first_byte(fixture),
        reset_before_response(fixture),
        reset_mid_layer(fixture),
        truncated_layer(fixture),
        truncated_config(fixture),
        redirect_layer_to_other_host(fixture),
        redirect_loop(fixture),
        oversized_manifest(true),
        oversized_manifest(false),
        echoed_credentials(),
        missing_credentials(),
        wrong_password(fixture),
    ]
}

// Authentication and missing content.

#[test]
fn injected_401_fails() {
    let fixture = Fixture::anonymous();
    fixture.run(&unauthorized_manifest());
}

#[test]
fn missing_credentials_fail_with_401() {
    let fixture = Fixture::basic();
    fixture.run(&missing_credentials());
}

#[test]
fn wrong_password_fails_with_401() {
    let fixture = Fixture::basic();
    let scenario = wrong_password(&fixture);
    let scan = fixture.run(&scenario);
    for secret in &scenario.secrets {
        scan.assert_secret_hidden(scenario.name, secret);
    }
}

#[test]
fn wrong_registry_token_fails_with_401() {
    let registry = Registry::token(TokenOptions {
        anonymous_pull: true,
        ..TokenOptions::default()
    });
    let fixture = Fixture::start(registry, None);
    let token = secret_marker("registry-token");
    let config = json!({ "auths": { fixture.proxy.host(): { "registrytoken": token } } });
    let scenario = Scenario {
        auth: ScenarioAuth::Config(config.to_string()),
        ..Scenario::new(
            "wrong_registry_token",
            Vec::new(),
            failed(EXIT_PULL_FAILED, &["error: manifest:", "401"]),
        )
    };

    let scan = fixture.run(&scenario);

    scan.assert_secret_hidden(scenario.name, &token);
}

#[test]
fn forbidden_manifest_fails() {
    let fixture = Fixture::anonymous();
    fixture.run(&forbidden_manifest());
}

#[test]
fn missing_manifest_fails() {
    let fixture = Fixture::anonymous();
    fixture.run(&missing_manifest());
}

#[test]
fn missing_layer_fails() {
    let fixture = Fixture::anonymous();
    fixture.run(&missing_layer(&fixture));
    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 1);
}

// Rate limits and server errors.

#[test]
fn rate_limit_retry_after_honoured() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&rate_limited_with_retry_after());

    assert_eq!(fixture.proxy.count("GET", MANIFEST), 3);
    scan.assert_elapsed_between(Duration::from_secs(2), Duration::from_secs(60));
}

#[test]
fn rate_limit_http_date_honoured() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&rate_limited_with_http_date(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.config_path()), 2);
    // The date is 3 s ahead, cut to whole seconds, so the scan waits at least 2 s of it.
    scan.assert_elapsed_between(Duration::from_secs(2), Duration::from_secs(60));
}

#[test]
fn rate_limit_without_retry_after_backs_off() {
    let fixture = Fixture::anonymous();

    fixture.run(&rate_limited_without_retry_after(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 3);
}

#[test]
fn rate_limit_exhausted_fails() {
    let fixture = Fixture::anonymous();

    fixture.run(&rate_limit_exhausted());

    assert_eq!(fixture.proxy.count("GET", MANIFEST), 3);
}

#[test]
fn rate_limit_long_retry_after_fails_fast() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&rate_limit_retry_after_too_long());

    assert_eq!(fixture.proxy.count("GET", MANIFEST), 1);
    scan.assert_elapsed_between(Duration::ZERO, Duration::from_secs(20));
}

#[test]
fn server_errors_retried_then_succeed() {
    let fixture = Fixture::anonymous();
    let paths = [
        ("manifest", MANIFEST.to_owned()),
        ("config", fixture.config_path()),
        ("layer", fixture.layer_path()),
    ];
    for code in [500, 502, 503] {
        for (stage, path) in &paths {
            let scenario = server_error_then_success("server_error", code, path);

            fixture.run(&scenario);

            let requests = fixture.proxy.count("GET", path);
            assert_eq!(
                requests, 3,
                "HTTP {code} on the {stage}: {requests} requests"
            );
        }
    }
}

#[test]
fn always_unavailable_fails_in_bounded_time() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&always_unavailable());

    // The default 4 retries wait 0.5, 1, 2 and 4 s, each cut by up to half by jitter.
    assert_eq!(fixture.proxy.count("GET", MANIFEST), 5);
    scan.assert_elapsed_between(Duration::from_millis(3750), Duration::from_secs(30));
}

// Broken bodies.

#[test]
fn stall_mid_layer_times_out() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&stall_mid_layer(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 1);
    scan.assert_elapsed_between(Duration::from_secs(2), Duration::from_secs(30));
}

#[test]
fn stall_before_first_byte_retried() {
    let fixture = Fixture::anonymous();

    let scan = fixture.run(&stall_before_first_byte(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 2);
    scan.assert_elapsed_between(Duration::from_secs(2), Duration::from_secs(30));
}

#[test]
fn reset_before_response_retried() {
    let fixture = Fixture::anonymous();

    fixture.run(&reset_before_response(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 3);
}

#[test]
fn reset_mid_layer_fails() {
    let fixture = Fixture::anonymous();

    fixture.run(&reset_mid_layer(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 1);
}

#[test]
fn truncated_layer_fails() {
    let fixture = Fixture::anonymous();

    fixture.run(&truncated_layer(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.layer_path()), 1);
}

#[test]
fn truncated_config_retried() {
    let fixture = Fixture::anonymous();

    fixture.run(&truncated_config(&fixture));

    assert_eq!(fixture.proxy.count("GET", &fixture.config_path()), 2);
}

// Redirects.

#[test]
fn redirect_to_other_host_drops_credentials() {
    let fixture = Fixture::basic();

    fixture.run(&redirect_layer_to_other_host(&fixture));

    let proxied: Vec<_> = fixture
        .proxy
        .requests()
        .into_iter()
        .filter(|request| request.path == fixture.layer_path())
        .collect();
    assert_eq!(proxied.len(), 1, "{proxied:?}");
    assert!(
        proxied[0].had_authorization,
        "the registry got the layer request without credentials: {proxied:?}"
    );
    let redirected = fixture.proxy.redirect_target().requests();
    assert_eq!(redirected.len(), 1, "{redirected:?}");
    assert_eq!(redirected[0].method, "GET");
    assert!(
        !redirected[0].had_authorization,
        "the second host {} got an Authorization header",
        fixture.proxy.redirect_target().host()
    );
}

#[test]
fn redirect_loop_fails() {
    let fixture = Fixture::anonymous();
    fixture.run(&redirect_loop(&fixture));
}

// Oversized documents.

#[test]
fn oversized_manifest_with_length_rejected() {
    let fixture = Fixture::anonymous();
    fixture.run(&oversized_manifest(true));
}

#[test]
fn oversized_manifest_streamed_rejected() {
    let fixture = Fixture::anonymous();
    fixture.run(&oversized_manifest(false));
}

// Secrets.

#[test]
fn echoed_credentials_redacted() {
    let fixture = Fixture::basic();

    let scan = fixture.run(&echoed_credentials());

    assert!(
        scan.run.stderr.contains("<redacted>"),
        "the echoed credentials were not replaced\n{}",
        scan.run
    );
    for secret in &fixture.secrets {
        scan.assert_secret_hidden("echoed_credentials", secret);
    }
}

#[test]
fn secrets_hidden_under_every_fault() {
    let fixture = Fixture::basic();
    for scenario in all_scenarios(&fixture) {
        let scenario = Scenario {
            envs: [scenario.envs.clone(), vec![("COMPLIANCE_LOG", "trace")]].concat(),
            ..scenario
        };

        let scan = fixture.run(&scenario);

        if matches!(scenario.auth, ScenarioAuth::Fixture) {
            assert!(
                fixture
                    .proxy
                    .requests()
                    .iter()
                    .any(|request| request.had_authorization),
                "{}: no request carried the credentials, so the check proves nothing",
                scenario.name
            );
        }
        for secret in fixture.secrets.iter().chain(&scenario.secrets) {
            scan.assert_secret_hidden(scenario.name, secret);
        }
    }
}

// Atomic reports.

/// Returns a fraction in [0, 1) from random bytes.
fn random_fraction() -> f64 {
    let value = u32::from_str_radix(&random_hex(4), 16).expect("hex");
    f64::from(value) / (f64::from(u32::MAX) + 1.0)
}

/// Checks that every report in `dir` is complete: JSON and SARIF reports parse, and
/// nothing but reports and `.*.partial` temporary files is there. Returns how many
/// temporary files were left.
fn check_reports_complete(dir: &Path, reference: &str) -> usize {
    let stem = report_file_name(reference)
        .trim_end_matches(".json")
        .to_owned();
    let mut partial = 0;
    for name in directory_entries(dir) {
        if name.starts_with('.') && name.ends_with(".partial") {
            partial += 1;
            continue;
        }
        let path = dir.join(&name);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
        if name == format!("{stem}.json") {
            let report: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{name} is not complete JSON ({error}):\n{text}"));
            let results = report[reference].as_array().map_or(0, Vec::len);
            assert_eq!(results, 17, "{name} lists {results} results:\n{text}");
        } else if name == format!("{stem}.sarif") {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|error| panic!("{name} is not complete JSON ({error})"));
        } else {
            assert!(
                name == format!("{stem}.xml") || name == format!("{stem}.md"),
                "unexpected file {name} in the reports directory"
            );
            assert!(!text.is_empty(), "{name} is empty");
        }
    }
    partial
}

#[test]
fn killed_scans_leave_no_partial_json() {
    const RUNS: usize = 20;
    let fixture = Fixture::anonymous();
    let reference = fixture.registry.reference(REPO_TAG);
    let full = scan(&reference, &[]);
    full.assert_setuid_found("full scan");
    let duration = full.elapsed;

    let mut killed = 0;
    let mut partial_files = 0;
    for _ in 0..RUNS {
        let dir = tempfile::Builder::new()
            .prefix("killed-scan-")
            .tempdir()
            .expect("failed to create a scan directory");
        let reports = dir.path().join("reports");
        let mut child = scanner()
            .current_dir(dir.path())
            .env("COMPLIANCE_IMAGE_FULL_REF", &reference)
            .env("COMPLIANCE_REPORTS_DIR", &reports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start the scanner");
        // Kills land between a fifth of a full scan's duration and its end, where the
        // reports are written.
        thread::sleep(duration.mul_f64(0.2 + 0.8 * random_fraction()));
        if child
            .try_wait()
            .expect("failed to poll the scanner")
            .is_none()
        {
            child.kill().expect("failed to kill the scanner");
            killed += 1;
        }
        child.wait().expect("failed to wait for the scanner");

        partial_files += check_reports_complete(&reports, &reference);
    }
    eprintln!(
        "{killed} of {RUNS} scans killed (a scan takes {duration:?}); {partial_files} temporary \
         files left"
    );
}
