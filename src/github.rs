//! GitHub Actions integration: a sticky pull-request comment with the Markdown report, and
//! the step outputs that the repository's `action.yml` reads.
//!
//! Settings come from the variables that GitHub Actions sets for every step, collected in
//! [`GithubEnv`]. Like the rest of the library this module prints nothing: the binary turns a
//! skipped comment or a [`GithubError`] into a warning and keeps the scan's exit code.

mod comment;
mod event;
mod outputs;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use comment::{
    CommentOutcome, MAX_COMMENT_CHARS, SkipReason, comment_marker, post_or_update_comment,
};
pub use outputs::{ActionOutputs, output_file_from_env, write_action_outputs};

/// REST API root of github.com, used when `GITHUB_API_URL` is unset or empty.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Time allowed for connecting to the API and for each request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An API token whose `Debug` output hides the value, so that logging a [`GithubEnv`] cannot
/// leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubToken(String);

impl GithubToken {
    /// Wraps `value`, or returns `None` when it is empty or only whitespace.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        if value.trim().is_empty() {
            None
        } else {
            Some(GithubToken(value))
        }
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GithubToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("GithubToken(<redacted>)")
    }
}

/// The GitHub Actions variables that the pull-request comment needs.
#[derive(Clone, Debug)]
pub struct GithubEnv {
    /// `GITHUB_TOKEN`: needs `pull-requests: write` (or `issues: write`) to comment.
    pub token: Option<GithubToken>,
    /// `GITHUB_REPOSITORY`, as `owner/name`.
    pub repository: Option<String>,
    /// `GITHUB_API_URL`: `https://api.github.com`, or `https://HOST/api/v3` on GitHub
    /// Enterprise Server.
    pub api_url: String,
    /// `GITHUB_EVENT_NAME`, such as `pull_request` or `push`.
    pub event_name: Option<String>,
    /// `GITHUB_EVENT_PATH`: the JSON payload of the event that started the workflow.
    pub event_path: Option<PathBuf>,
    /// Connect and request timeout for the API.
    pub timeout: Duration,
}

impl GithubEnv {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, which returns a variable's value by name. Empty
    /// values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        GithubEnv {
            token: non_empty("GITHUB_TOKEN").and_then(GithubToken::new),
            repository: non_empty("GITHUB_REPOSITORY"),
            api_url: non_empty("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string()),
            event_name: non_empty("GITHUB_EVENT_NAME"),
            event_path: non_empty("GITHUB_EVENT_PATH").map(PathBuf::from),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Errors of the pull-request comment, other than the expected skips in [`SkipReason`].
/// Messages name the variable or request that failed and never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GITHUB_REPOSITORY is not set; it must name the repository as owner/name")]
    MissingRepository,

    #[error("GITHUB_REPOSITORY is invalid ({value:?}); expected owner/name")]
    InvalidRepository { value: String },

    #[error(
        "GITHUB_EVENT_PATH is not set, so the pull request number of the {event} event is unknown"
    )]
    MissingEventPath { event: String },

    #[error("failed to read the event payload {path}: {message}")]
    EventPayload { path: PathBuf, message: String },

    #[error("GITHUB_API_URL is invalid ({value:?}): {message}")]
    InvalidApiUrl { value: String, message: String },

    #[error("failed to set up the GitHub API client: {message}")]
    Client { message: String },

    #[error("{operation} failed with HTTP {status}: {message}")]
    Api {
        operation: String,
        status: u16,
        message: String,
    },

    #[error("{operation} failed: {message}")]
    Request { operation: String, message: String },
}
