//! One sticky pull-request comment per scanned image, created on the first run and updated
//! in place on later runs.
//!
//! The comment starts with a hidden HTML comment, the marker, that holds the image reference.
//! A run lists the pull request's comments page by page and updates the first one that starts
//! with its marker, or creates one when none does.

use super::event::{PullRequestEvent, pull_request_event};
use super::{GithubEnv, GithubError, GithubToken};
use octocrab::{Octocrab, Page};
use serde::Deserialize;
use serde_json::json;
use std::fmt;

/// GitHub rejects comment bodies longer than this many characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// Comments requested per page; 100 is the API's maximum.
const PAGE_SIZE: u8 = 100;

/// Pages read before giving up the search and creating a new comment.
// NOTE: a pull request with more than 10,000 comments whose sticky comment lies beyond them
// gets a second comment for the same image.
const MAX_PAGES: usize = 100;

const CUT_NOTE: &str = "\n\n---\nThis comment was cut to fit GitHub's limit of 65,536 \
                        characters per comment. The report files of the job have the rest.\n";

/// Result of [`post_or_update_comment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    Created {
        id: u64,
        url: Option<String>,
    },
    Updated {
        id: u64,
        url: Option<String>,
    },
    /// Nothing was posted; the caller shows the reason as a warning.
    Skipped(SkipReason),
}

impl CommentOutcome {
    /// Returns the warning to show when the comment was skipped.
    pub fn warning(&self) -> Option<String> {
        match self {
            CommentOutcome::Skipped(reason) => Some(reason.to_string()),
            _ => None,
        }
    }
}

/// Reason that no comment was posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The workflow was not started by a pull request (or a comment on one).
    NotPullRequest { event: String },
    /// `GITHUB_TOKEN` is unset or empty.
    MissingToken,
    /// GitHub returned 403, as it does for the read-only token of a pull request from a fork.
    Forbidden { message: String },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotPullRequest { event } => write!(
                formatter,
                "no pull request comment posted: the workflow event is {event}, not a pull request"
            ),
            SkipReason::MissingToken => formatter.write_str(
                "no pull request comment posted: GITHUB_TOKEN is not set; pass the workflow's \
                 token with pull-requests: write permission",
            ),
            SkipReason::Forbidden { message } => write!(
                formatter,
                "no pull request comment posted: GitHub returned 403 ({message}); the token \
                 needs pull-requests: write, which pull requests from forks never get"
            ),
        }
    }
}

/// Creates or updates the comment for `image_ref` on the pull request that started the
/// workflow, with `markdown` as its text.
///
/// Returns [`CommentOutcome::Skipped`] outside a pull request, without a token, or when
/// GitHub returns 403. Every other failure is a [`GithubError`]. Neither changes the scan's
/// verdict.
pub async fn post_or_update_comment(
    markdown: &str,
    image_ref: &str,
    env: &GithubEnv,
) -> Result<CommentOutcome, GithubError> {
    let number = match pull_request_event(env)? {
        PullRequestEvent::Number(number) => number,
        PullRequestEvent::NotPullRequest(event) => {
            return Ok(CommentOutcome::Skipped(SkipReason::NotPullRequest {
                event,
            }));
        }
    };
    let Some(token) = &env.token else {
        return Ok(CommentOutcome::Skipped(SkipReason::MissingToken));
    };
    let (owner, repo) = split_repository(env.repository.as_deref())?;
    let client = build_client(env, token)?;

    let marker = comment_marker(image_ref);
    let body = comment_body(&marker, markdown);
    let issue = IssueRoute {
        owner,
        repo,
        number,
    };
    let result = match find_comment(&client, &issue, &marker).await {
        Ok(Some(id)) => update_comment(&client, &issue, id, &body).await,
        Ok(None) => create_comment(&client, &issue, &body).await,
        Err(error) => Err(error),
    };
    result.or_else(skip_if_forbidden)
}

/// Returns the hidden HTML comment that marks the comment for `image_ref`.
///
/// Bytes of the reference other than ASCII letters, digits and `-._~:/@+` are
/// percent-encoded, so the reference can never close the HTML comment (`-->` needs `>`) or
/// break the line.
pub fn comment_marker(image_ref: &str) -> String {
    let mut encoded = String::with_capacity(image_ref.len());
    for byte in image_ref.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:/@+".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("<!-- image-compliance-scanner image={encoded} -->")
}

/// Returns the marker line followed by `markdown`, cut to [`MAX_COMMENT_CHARS`] with a note
/// when it is longer.
fn comment_body(marker: &str, markdown: &str) -> String {
    let budget = MAX_COMMENT_CHARS - marker.chars().count() - 1;
    if markdown.chars().count() <= budget {
        return format!("{marker}\n{markdown}");
    }
    let kept: String = markdown
        .chars()
        .take(budget - CUT_NOTE.chars().count())
        .collect();
    format!("{marker}\n{kept}{CUT_NOTE}")
}

/// The pull request, addressed as an issue: comments on a pull request's conversation are
/// issue comments in the REST API.
struct IssueRoute<'a> {
    owner: &'a str,
    repo: &'a str,
    number: u64,
}

impl IssueRoute<'_> {
    fn comments(&self) -> String {
        format!(
            "/repos/{}/{}/issues/{}/comments",
            self.owner, self.repo, self.number
        )
    }

    fn comment(&self, id: u64) -> String {
        format!("/repos/{}/{}/issues/comments/{id}", self.owner, self.repo)
    }
}

/// The fields of an issue comment that this module reads.
#[derive(Debug, Deserialize)]
struct IssueComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

/// Splits `owner/name`, accepting only the characters GitHub allows in either part.
fn split_repository(value: Option<&str>) -> Result<(&str, &str), GithubError> {
    let value = value.ok_or(GithubError::MissingRepository)?;
    let invalid = || GithubError::InvalidRepository {
        value: value.to_string(),
    };
    let (owner, repo) = value.split_once('/').ok_or_else(invalid)?;
    let valid_part = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !valid_part(owner) || !valid_part(repo) {
        return Err(invalid());
    }
    Ok((owner, repo))
}

fn build_client(env: &GithubEnv, token: &GithubToken) -> Result<Octocrab, GithubError> {
    let http = reqwest::Client::builder()
        .connect_timeout(env.timeout)
        .timeout(env.timeout)
        .build()
        .map_err(|e| GithubError::Client {
            message: e.to_string(),
        })?;
    let api_url = env.api_url.trim_end_matches('/');
    let invalid_url = |message: String| GithubError::InvalidApiUrl {
        value: env.api_url.clone(),
        message,
    };
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(invalid_url("expected an http or https URL".to_string()));
    }
    Octocrab::builder()
        .base_uri(api_url)
        .map_err(|e| invalid_url(e.to_string()))?
        .personal_token(token.expose().to_string())
        .add_header(
            reqwest::header::HeaderName::from_static("x-github-api-version"),
            "2022-11-28".to_string(),
        )
        .build_with_reqwest(http)
        .map_err(|e| GithubError::Client {
            message: e.to_string(),
        })
}

/// Returns the id of the first comment, oldest first, whose body starts with `marker`.
async fn find_comment(
    client: &Octocrab,
    issue: &IssueRoute<'_>,
    marker: &str,
) -> Result<Option<u64>, GithubError> {
    let operation = || format!("listing the comments of pull request #{}", issue.number);
    let mut page: Page<IssueComment> = client
        .get(issue.comments(), Some(&[("per_page", PAGE_SIZE)]))
        .await
        .map_err(|e| api_error(operation(), e))?;
    for _ in 0..MAX_PAGES {
        let found = page.items.iter().find(|comment| {
            comment
                .body
                .as_deref()
                .is_some_and(|body| body.trim_start().starts_with(marker))
        });
        if let Some(comment) = found {
            return Ok(Some(comment.id));
        }
        match client.get_page::<IssueComment>(&page.next).await {
            Ok(Some(next)) => page = next,
            Ok(None) => return Ok(None),
            Err(e) => return Err(api_error(operation(), e)),
        }
    }
    Ok(None)
}

async fn create_comment(
    client: &Octocrab,
    issue: &IssueRoute<'_>,
    body: &str,
) -> Result<CommentOutcome, GithubError> {
    let comment: IssueComment = client
        .post(issue.comments(), Some(&json!({ "body": body })))
        .await
        .map_err(|e| {
            api_error(
                format!("creating a comment on pull request #{}", issue.number),
                e,
            )
        })?;
    Ok(CommentOutcome::Created {
        id: comment.id,
        url: comment.html_url,
    })
}

async fn update_comment(
    client: &Octocrab,
    issue: &IssueRoute<'_>,
    id: u64,
    body: &str,
) -> Result<CommentOutcome, GithubError> {
    let comment: IssueComment = client
        .patch(issue.comment(id), Some(&json!({ "body": body })))
        .await
        .map_err(|e| {
            api_error(
                format!("updating comment {id} on pull request #{}", issue.number),
                e,
            )
        })?;
    Ok(CommentOutcome::Updated {
        id: comment.id,
        url: comment.html_url,
    })
}

/// Keeps the status and GitHub's message of an API error. octocrab's messages name the
/// request URL at most, never the Authorization header.
fn api_error(operation: String, error: octocrab::Error) -> GithubError {
    match error {
        octocrab::Error::GitHub { source, .. } => GithubError::Api {
            operation,
            status: source.status_code.as_u16(),
            message: source.message,
        },
        other => GithubError::Request {
            operation,
            message: error_chain(&other),
        },
    }
}

fn skip_if_forbidden(error: GithubError) -> Result<CommentOutcome, GithubError> {
    match error {
        GithubError::Api {
            status: 403,
            message,
            ..
        } => Ok(CommentOutcome::Skipped(SkipReason::Forbidden { message })),
        other => Err(other),
    }
}

/// Joins an error's message with the messages of its sources, as `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_encodes_comment_breakers() {
        let marker = comment_marker("oci:/tmp/a-->b <c>\n&d%");
        assert_eq!(
            marker,
            "<!-- image-compliance-scanner image=oci:/tmp/a--%3Eb%20%3Cc%3E%0A%26d%25 -->"
        );
    }

    #[test]
    fn marker_keeps_registry_reference() {
        let marker = comment_marker("registry.example.com:5000/team/app@sha256:ab12");
        assert!(marker.contains("image=registry.example.com:5000/team/app@sha256:ab12 -->"));
    }

    #[test]
    fn marker_of_prefix_is_not_prefix() {
        let short = comment_marker("team/app:1");
        let long = comment_marker("team/app:10");
        assert!(!long.starts_with(&short));
    }

    #[test]
    fn body_within_limit_is_unchanged() {
        let body = comment_body("<!-- m -->", "# Report\n");
        assert_eq!(body, "<!-- m -->\n# Report\n");
    }

    #[test]
    fn long_body_is_cut_to_limit() {
        let markdown = "é".repeat(MAX_COMMENT_CHARS);
        let body = comment_body("<!-- m -->", &markdown);
        assert_eq!(body.chars().count(), MAX_COMMENT_CHARS);
        assert!(body.starts_with("<!-- m -->\n"));
        assert!(body.ends_with(CUT_NOTE));
    }

    #[test]
    fn repository_must_be_owner_and_name() {
        assert_eq!(
            split_repository(Some("octo-org/app.rs")).unwrap(),
            ("octo-org", "app.rs")
        );
        for value in [
            "octo",
            "/app",
            "octo/",
            "octo/app/x",
            "octo/a b",
            "octo/a?b",
        ] {
            assert!(
                matches!(
                    split_repository(Some(value)),
                    Err(GithubError::InvalidRepository { .. })
                ),
                "{value}"
            );
        }
        assert!(matches!(
            split_repository(None),
            Err(GithubError::MissingRepository)
        ));
    }
}
