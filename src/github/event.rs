//! The pull request number from the event payload at `GITHUB_EVENT_PATH`.

use super::{GithubEnv, GithubError};
use serde_json::Value;

/// Pull request number of the event, or the name of an event that has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullRequestEvent {
    Number(u64),
    /// Name of an event that is not about a pull request, for the warning.
    NotPullRequest(String),
}

/// Finds the pull request that started the workflow.
///
/// `pull_request` and `pull_request_target` payloads carry `pull_request.number`.
/// `issue_comment` payloads carry `issue.number`, and `issue.pull_request` only when the
/// issue is a pull request. Every other event, and a run outside GitHub Actions (no
/// `GITHUB_EVENT_NAME`), has no pull request.
pub(crate) fn pull_request_event(env: &GithubEnv) -> Result<PullRequestEvent, GithubError> {
    let Some(name) = env.event_name.as_deref() else {
        return Ok(PullRequestEvent::NotPullRequest(
            "none (GITHUB_EVENT_NAME is not set)".to_string(),
        ));
    };
    if !matches!(
        name,
        "pull_request" | "pull_request_target" | "issue_comment"
    ) {
        return Ok(PullRequestEvent::NotPullRequest(name.to_string()));
    }

    let payload = read_payload(env, name)?;
    let number = match name {
        "issue_comment" => issue_comment_number(&payload),
        _ => payload
            .pointer("/pull_request/number")
            .or_else(|| payload.get("number"))
            .and_then(Value::as_u64),
    };
    match (name, number) {
        (_, Some(number)) => Ok(PullRequestEvent::Number(number)),
        ("issue_comment", None) => Ok(PullRequestEvent::NotPullRequest(
            "issue_comment on an issue".to_string(),
        )),
        (_, None) => Err(GithubError::EventPayload {
            path: env.event_path.clone().unwrap_or_default(),
            message: format!("the {name} payload has no pull_request.number"),
        }),
    }
}

fn issue_comment_number(payload: &Value) -> Option<u64> {
    let issue = payload.get("issue")?;
    let is_pull_request = issue.get("pull_request").is_some_and(Value::is_object);
    if !is_pull_request {
        return None;
    }
    issue.get("number").and_then(Value::as_u64)
}

fn read_payload(env: &GithubEnv, event: &str) -> Result<Value, GithubError> {
    let path = env
        .event_path
        .as_ref()
        .ok_or_else(|| GithubError::MissingEventPath {
            event: event.to_string(),
        })?;
    let text = std::fs::read(path).map_err(|e| GithubError::EventPayload {
        path: path.clone(),
        message: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| GithubError::EventPayload {
        path: path.clone(),
        message: format!("not valid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env_with_payload(name: &str, payload: &Value) -> (tempfile::TempDir, GithubEnv) {
        let dir = tempfile::tempdir().expect("create a directory for the event payload");
        let path = dir.path().join("event.json");
        std::fs::write(&path, payload.to_string()).expect("write the event payload");
        let env = GithubEnv::from_lookup(|key| match key {
            "GITHUB_EVENT_NAME" => Some(name.to_string()),
            "GITHUB_EVENT_PATH" => Some(path.display().to_string()),
            _ => None,
        });
        (dir, env)
    }

    #[test]
    fn pull_request_payload_number() {
        let payload = json!({"number": 7, "pull_request": {"number": 7}});
        for name in ["pull_request", "pull_request_target"] {
            let (_dir, env) = env_with_payload(name, &payload);
            assert_eq!(
                pull_request_event(&env).unwrap(),
                PullRequestEvent::Number(7),
                "{name}"
            );
        }
    }

    #[test]
    fn issue_comment_on_pull_request() {
        let payload = json!({"issue": {"number": 9, "pull_request": {"url": "x"}}});
        let (_dir, env) = env_with_payload("issue_comment", &payload);
        assert_eq!(
            pull_request_event(&env).unwrap(),
            PullRequestEvent::Number(9)
        );
    }

    #[test]
    fn issue_comment_on_issue_is_skipped() {
        let payload = json!({"issue": {"number": 9}});
        let (_dir, env) = env_with_payload("issue_comment", &payload);
        assert!(matches!(
            pull_request_event(&env).unwrap(),
            PullRequestEvent::NotPullRequest(_)
        ));
    }

    #[test]
    fn push_event_reads_no_payload() {
        let env = GithubEnv::from_lookup(|key| match key {
            "GITHUB_EVENT_NAME" => Some("push".to_string()),
            "GITHUB_EVENT_PATH" => Some("/nonexistent/event.json".to_string()),
            _ => None,
        });
        assert_eq!(
            pull_request_event(&env).unwrap(),
            PullRequestEvent::NotPullRequest("push".to_string())
        );
    }

    #[test]
    fn missing_payload_file_is_an_error() {
        let env = GithubEnv::from_lookup(|key| match key {
            "GITHUB_EVENT_NAME" => Some("pull_request".to_string()),
            "GITHUB_EVENT_PATH" => Some("/nonexistent/event.json".to_string()),
            _ => None,
        });
        let error = pull_request_event(&env).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/event.json"),
            "{error}"
        );
    }

    #[test]
    fn pull_request_payload_without_number_is_an_error() {
        let (_dir, env) = env_with_payload("pull_request", &json!({"action": "opened"}));
        assert!(matches!(
            pull_request_event(&env),
            Err(GithubError::EventPayload { .. })
        ));
    }
}
