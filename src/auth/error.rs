//! Errors of the credential lookup. Messages name the config key, helper or host involved and
//! never contain a credential, a helper's stdout or the raw config text.

use std::path::PathBuf;
use std::time::Duration;

/// Origin of a docker config, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigOrigin {
    /// The `DOCKER_AUTH_CONFIG` text.
    AuthConfigVariable,
    /// A `config.json` file.
    File(PathBuf),
    /// No config was found, so the config is empty.
    #[default]
    Empty,
}

impl std::fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigOrigin::AuthConfigVariable => f.write_str("DOCKER_AUTH_CONFIG"),
            ConfigOrigin::File(path) => write!(f, "docker config file {}", path.display()),
            ConfigOrigin::Empty => f.write_str("the empty default docker config"),
        }
    }
}

/// A failure to load the docker config, pick a credential or exchange a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "{origin} is not valid docker config JSON: {problem} at line {line}, column {column}; \
         fix the JSON (its text is not shown because it contains credentials)"
    )]
    InvalidConfigJson {
        origin: ConfigOrigin,
        problem: &'static str,
        line: usize,
        column: usize,
    },

    #[error("{path} in {origin} must be {expected}; fix the docker config")]
    InvalidConfigValue {
        origin: ConfigOrigin,
        /// The field, such as `auths["ghcr.io"].password`.
        path: String,
        expected: &'static str,
    },

    #[error(
        "cannot read docker config file {path}: {source}; make it readable, or set \
         DOCKER_CONFIG to a directory whose config.json is readable"
    )]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the `auth` field of auths entry \"{key}\" in {origin} is invalid: {problem}; it must be \
         the base64 of `username:password`, as `docker login` writes it"
    )]
    InvalidAuthField {
        origin: ConfigOrigin,
        key: String,
        problem: &'static str,
    },

    #[error(
        "invalid credential helper name \"{name}\" in {field} of {origin}: {problem}; give the \
         suffix of a docker-credential-* program on PATH, such as `ecr-login`"
    )]
    InvalidHelperName {
        origin: ConfigOrigin,
        field: String,
        name: String,
        problem: &'static str,
    },

    #[error(
        "credential helper {program} was not found on PATH; install it, or remove it from the \
         docker config"
    )]
    HelperNotFound { program: String },

    #[error("cannot start credential helper {program}: {source}; check that it is executable")]
    HelperSpawn {
        program: String,
        source: std::io::Error,
    },

    #[error("cannot exchange data with credential helper {program}: {source}")]
    HelperIo {
        program: String,
        source: std::io::Error,
    },

    #[error(
        "credential helper {program} timed out after {} s for {server} and was killed; check \
         that it can run without an interactive prompt",
        timeout.as_secs_f64()
    )]
    HelperTimedOut {
        program: String,
        server: String,
        timeout: Duration,
    },

    #[error(
        "credential helper {program} failed for {server} ({status}){}; run it by hand to see its \
         full output",
        describe_stderr(stderr_first_line)
    )]
    HelperFailed {
        program: String,
        server: String,
        status: String,
        /// The first line of the helper's stderr, truncated. Its stdout is never kept.
        stderr_first_line: String,
    },

    #[error(
        "credential helper {program} returned invalid JSON for {server}: {problem} at line \
         {line}, column {column}; it must print {{\"ServerURL\",\"Username\",\"Secret\"}}"
    )]
    InvalidHelperOutput {
        program: String,
        server: String,
        problem: &'static str,
        line: usize,
        column: usize,
    },

    #[error("invalid registry URL {url}: {problem}; give a URL such as https://HOST[:PORT]")]
    InvalidRegistryUrl { url: String, problem: String },

    #[error(
        "the request to {url} failed: {detail}; check that the registry is reachable and its \
         TLS certificate is trusted"
    )]
    ChallengeRequest {
        url: String,
        /// The transport error with its causes.
        detail: String,
    },

    #[error(
        "{url} responded with HTTP {status} where 200 or 401 was expected; check that {url} is a \
         registry (Docker Registry HTTP API V2)"
    )]
    ChallengeStatus { url: String, status: u16 },

    #[error(
        "the Bearer challenge from {url} is invalid: {problem}; the registry's WWW-Authenticate \
         header must carry realm=\"https://...\""
    )]
    InvalidChallenge { url: String, problem: String },

    #[error(
        "the token request to {realm_host} failed: {detail}; check that the token service is \
         reachable and its TLS certificate is trusted"
    )]
    TokenRequest {
        realm_host: String,
        /// The transport error with its causes.
        detail: String,
    },

    #[error(
        "the token service at {realm_host} rejected the identity token with HTTP {status}{}; \
         log in again to get a new identity token",
        describe_detail(detail)
    )]
    TokenRejected {
        realm_host: String,
        status: u16,
        /// Error codes and messages from the response body, stripped of token-like words and capped.
        detail: String,
    },

    #[error(
        "the token service at {realm_host} returned an invalid response: {problem}; it must \
         return JSON with `access_token` or `token`"
    )]
    InvalidTokenResponse { realm_host: String, problem: String },
}

fn describe_stderr(first_line: &str) -> String {
    if first_line.is_empty() {
        String::new()
    } else {
        format!(", stderr: {first_line}")
    }
}

fn describe_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Names a serde_json error's category. The error's own `Display` is never used, because it
/// can quote the offending value, and that value may be a password.
pub(crate) fn json_problem(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "a value has the wrong type",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

/// Returns at most `max_chars` characters of `text`, with `...` appended when it was cut.
pub(crate) fn truncate_chars(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// Formats an error with its chain of causes, such as "error sending request: connection
/// refused".
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
