//! Running the scanner binary under test and reading its reports.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::process::run_with_timeout;

/// How long `run_scan` lets the scanner run before killing it.
pub const SCAN_TIMEOUT: Duration = Duration::from_secs(300);

/// Returns a command for the scanner binary with an empty environment except `PATH`,
/// `NO_COLOR=1` and `HOME`, set to a new empty directory.
///
/// The home directory is created under Cargo's `CARGO_TARGET_TMPDIR` and is not removed, so
/// that it outlives the command; `scanner_with_home` takes one that the test owns.
pub fn scanner() -> Command {
    let home = tempfile::Builder::new()
        .prefix("scanner-home-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("failed to create a home directory for the scanner")
        .keep();
    scanner_with_home(&home)
}

/// Returns a command for the scanner binary like `scanner`, with `HOME` set to `home`.
pub fn scanner_with_home(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-compliance-scanner"));
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin")),
        )
        .env("HOME", home)
        .env("NO_COLOR", "1");
    command
}

/// Returns the `HOME` that a command from `scanner` or `scanner_with_home` sets.
pub fn scanner_home(command: &Command) -> PathBuf {
    command
        .get_envs()
        .find(|(key, _)| *key == "HOME")
        .and_then(|(_, value)| value)
        .map(PathBuf::from)
        .expect("the command sets no HOME")
}

/// The outcome of one scanner run.
#[derive(Clone, Debug)]
pub struct ScanRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for ScanRun {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the scanner with standard input closed and returns its exit code and output.
///
/// Panics when the scanner runs longer than `SCAN_TIMEOUT` or is killed by a signal.
pub fn run_scan(command: &mut Command) -> ScanRun {
    let (status, output) = run_with_timeout(command, SCAN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let Some(status) = status else {
        panic!("scanner timed out after {SCAN_TIMEOUT:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    let Some(code) = status.code() else {
        panic!("scanner was killed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    ScanRun {
        code,
        stdout,
        stderr,
    }
}

/// Returns the report file name for `reference`: every character outside `[A-Za-z0-9._-]`
/// replaced by `_`, plus `.json`.
pub fn report_file_name(reference: &str) -> String {
    let stem: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.json")
}

/// Reads and parses the JSON report for `reference` in `reports_dir`.
pub fn read_report(reports_dir: &Path, reference: &str) -> serde_json::Value {
    let path = reports_dir.join(report_file_name(reference));
    let text = fs::read_to_string(&path).unwrap_or_else(|error| {
        let present: Vec<String> = fs::read_dir(reports_dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "failed to read report {} ({error}); directory contains {present:?}",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("report {} is not JSON ({error}):\n{text}", path.display()))
}

/// Returns the findings list stored under `reference` in the report for `reference`.
pub fn read_findings(reports_dir: &Path, reference: &str) -> Vec<serde_json::Value> {
    let report = read_report(reports_dir, reference);
    report
        .get(reference)
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_else(|| panic!("report has no findings list under {reference:?}: {report}"))
}

/// Returns a Docker `config.json` document with Basic credentials for `registry`, as
/// `DOCKER_AUTH_CONFIG` carries it.
pub fn docker_auth_config_basic(registry: &str, username: &str, password: &str) -> String {
    let auth = BASE64.encode(format!("{username}:{password}"));
    serde_json::json!({ "auths": { registry: { "auth": auth } } }).to_string()
}

/// Returns a Docker `config.json` document with an identity token (an OAuth2 refresh token)
/// for `registry`, as `docker login` stores it for token-auth registries.
pub fn docker_auth_config_identity_token(
    registry: &str,
    username: &str,
    identity_token: &str,
) -> String {
    let auth = BASE64.encode(format!("{username}:"));
    serde_json::json!({ "auths": { registry: { "auth": auth, "identitytoken": identity_token } } })
        .to_string()
}
