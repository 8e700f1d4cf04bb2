//! Posts the sticky pull-request comment against a stand-in for the GitHub REST API that each
//! test starts on 127.0.0.1. The stand-in serves the three endpoints the comment uses (list,
//! create and update issue comments), paginates with `Link` headers as GitHub does, and
//! records every request.
//!
//! Every `GithubEnv` here sets `api_url` to the stand-in, so no test reaches GitHub.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use image_compliance_scanner::github::{
    CommentOutcome, DEFAULT_API_URL, GithubEnv, GithubError, GithubToken, SkipReason,
    comment_marker, post_or_update_comment,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const OWNER: &str = "octo-org";
const REPO: &str = "app";
const PULL_NUMBER: u64 = 42;
const TOKEN: &str = "ghs_testtoken0123456789abcdef";
const IMAGE: &str = "registry.example.com/team/app:1.2";
const FORBIDDEN_MESSAGE: &str = "Resource not accessible by integration";

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
struct RecordedRequest {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Clone, Debug)]
struct StoredComment {
    id: u64,
    body: String,
}

#[derive(Default)]
struct ApiState {
    comments: Vec<StoredComment>,
    next_id: u64,
    requests: Vec<RecordedRequest>,
    /// Maximum page size of the stand-in, whatever `per_page` requests.
    max_page_size: usize,
    /// Return 403 to creates and updates, as GitHub does for a read-only token.
    forbid_writes: bool,
    /// Return this status and a JSON message to every request.
    fail_with: Option<u16>,
}

/// A stand-in for the GitHub REST API on 127.0.0.1, stopped on drop.
struct MockGithub {
    address: SocketAddr,
    /// Path prefix of the API: empty as on github.com, `/api/v3` as on GitHub Enterprise.
    prefix: String,
    state: Arc<Mutex<ApiState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockGithub {
    fn start() -> Self {
        Self::start_with_prefix("")
    }

    fn start_with_prefix(prefix: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in API");
        let address = listener.local_addr().expect("read the stand-in's address");
        let state = Arc::new(Mutex::new(ApiState {
            next_id: 1000,
            max_page_size: 100,
            ..ApiState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let base = format!("http://{address}{prefix}");
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            let prefix = prefix.to_string();
            std::thread::spawn(move || serve(&listener, &state, &stop, &base, &prefix))
        };
        MockGithub {
            address,
            prefix: prefix.to_string(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn api_url(&self) -> String {
        format!("http://{}{}", self.address, self.prefix)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().expect("stand-in state lock")
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    fn comments(&self) -> Vec<StoredComment> {
        self.state().comments.clone()
    }

    fn add_comment(&self, body: &str) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        state.comments.push(StoredComment {
            id,
            body: body.to_string(),
        });
        id
    }

    fn clear_requests(&self) {
        self.state().requests.clear();
    }
}

impl Drop for MockGithub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A connection wakes the blocked accept call, so the thread then reads the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: &TcpListener,
    state: &Mutex<ApiState>,
    stop: &AtomicBool,
    base: &str,
    prefix: &str,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let Some(request) = read_request(&stream) else {
            continue;
        };
        let response = {
            let mut state = state.lock().expect("stand-in state lock");
            state.requests.push(request.clone());
            respond(&mut state, &request, base, prefix)
        };
        let _ = stream.write_all(response.as_bytes());
    }
}

fn read_request(stream: &TcpStream) -> Option<RecordedRequest> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();

    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    Some(RecordedRequest {
        method,
        path: path.to_string(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(state: &mut ApiState, request: &RecordedRequest, base: &str, prefix: &str) -> String {
    if let Some(status) = state.fail_with {
        return http_response(status, &[], &json!({"message": "stand-in failure"}));
    }
    let comments_path = format!("{prefix}/repos/{OWNER}/{REPO}/issues/{PULL_NUMBER}/comments");
    let comment_prefix = format!("{prefix}/repos/{OWNER}/{REPO}/issues/comments/");
    let forbidden = json!({
        "message": FORBIDDEN_MESSAGE,
        "documentation_url": "https://docs.github.com/rest/issues/comments",
        "status": "403",
    });

    match request.method.as_str() {
        "GET" if request.path == comments_path => list_comments(state, request, base, prefix),
        "POST" if request.path == comments_path => {
            if state.forbid_writes {
                return http_response(403, &[], &forbidden);
            }
            let body = request_body_text(request);
            state.next_id += 1;
            let comment = StoredComment {
                id: state.next_id,
                body,
            };
            state.comments.push(comment.clone());
            http_response(201, &[], &comment_json(&comment))
        }
        "PATCH" if request.path.starts_with(&comment_prefix) => {
            if state.forbid_writes {
                return http_response(403, &[], &forbidden);
            }
            let id: Option<u64> = request.path[comment_prefix.len()..].parse().ok();
            let body = request_body_text(request);
            match state.comments.iter_mut().find(|c| Some(c.id) == id) {
                Some(comment) => {
                    comment.body = body;
                    let json = comment_json(comment);
                    http_response(200, &[], &json)
                }
                None => http_response(404, &[], &json!({"message": "Not Found"})),
            }
        }
        _ => http_response(404, &[], &json!({"message": "Not Found"})),
    }
}

fn list_comments(state: &ApiState, request: &RecordedRequest, base: &str, prefix: &str) -> String {
    let per_page: usize = request
        .query
        .get("per_page")
        .and_then(|value| value.parse().ok())
        .unwrap_or(30);
    let page_size = per_page.min(state.max_page_size).max(1);
    let page: usize = request
        .query
        .get("page")
        .and_then(|value| value.parse().ok())
        .unwrap_or(1);
    let items: Vec<Value> = state
        .comments
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(comment_json)
        .collect();

    let pages = state.comments.len().div_ceil(page_size).max(1);
    let mut headers = Vec::new();
    if page < pages {
        // GitHub's Link URLs are absolute and include the API's path prefix.
        let base_host = base.strip_suffix(prefix).unwrap_or(base);
        let link = |number: usize| {
            format!(
                "{base_host}{prefix}/repos/{OWNER}/{REPO}/issues/{PULL_NUMBER}/comments\
                 ?per_page={per_page}&page={number}"
            )
        };
        headers.push(format!(
            "Link: <{}>; rel=\"next\", <{}>; rel=\"last\"",
            link(page + 1),
            link(pages)
        ));
    }
    http_response(200, &headers, &Value::Array(items))
}

fn request_body_text(request: &RecordedRequest) -> String {
    let json: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    json["body"].as_str().unwrap_or_default().to_string()
}

fn comment_json(comment: &StoredComment) -> Value {
    json!({
        "id": comment.id,
        "node_id": format!("IC_{}", comment.id),
        "body": comment.body,
        "html_url": format!(
            "https://github.example/{OWNER}/{REPO}/pull/{PULL_NUMBER}#issuecomment-{}",
            comment.id
        ),
        "user": {"login": "github-actions[bot]", "type": "Bot"},
    })
}

fn http_response(status: u16, headers: &[String], body: &Value) -> String {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        201 => "Created",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(&body);
    text
}

/// Writes an event payload and returns its directory (kept alive by the caller) and path.
fn write_event(payload: &Value) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a directory for the event payload");
    let path = dir.path().join("event.json");
    std::fs::write(&path, payload.to_string()).expect("write the event payload");
    (dir, path)
}

fn pull_request_payload() -> Value {
    json!({
        "action": "synchronize",
        "number": PULL_NUMBER,
        "pull_request": {"number": PULL_NUMBER, "head": {"repo": {"fork": false}}},
    })
}

/// Returns the environment of a `pull_request` run whose API is `server`.
fn pull_request_env(server: &MockGithub, event_path: PathBuf) -> GithubEnv {
    GithubEnv {
        token: GithubToken::new(TOKEN),
        repository: Some(format!("{OWNER}/{REPO}")),
        api_url: server.api_url(),
        event_name: Some("pull_request".to_string()),
        event_path: Some(event_path),
        timeout: Duration::from_secs(10),
    }
}

fn methods(requests: &[RecordedRequest]) -> Vec<&str> {
    requests.iter().map(|r| r.method.as_str()).collect()
}

#[tokio::test]
async fn first_run_creates_comment() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let outcome = post_or_update_comment("# Compliance\nAll good.\n", IMAGE, &env)
        .await
        .expect("post the comment");

    let comments = server.comments();
    assert_eq!(comments.len(), 1);
    let CommentOutcome::Created { id, url } = outcome else {
        panic!("expected a created comment, got {outcome:?}");
    };
    assert_eq!(id, comments[0].id);
    assert!(url.is_some_and(|url| url.ends_with(&format!("#issuecomment-{id}"))));
    assert_eq!(
        comments[0].body,
        format!("{}\n# Compliance\nAll good.\n", comment_marker(IMAGE))
    );
    let requests = server.requests();
    assert_eq!(methods(&requests), ["GET", "POST"]);
    assert_eq!(
        requests[0].query.get("per_page").map(String::as_str),
        Some("100")
    );
}

#[tokio::test]
async fn second_run_updates_same_comment() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let first = post_or_update_comment("first run\n", IMAGE, &env)
        .await
        .expect("post the first comment");
    server.clear_requests();
    let second = post_or_update_comment("second run\n", IMAGE, &env)
        .await
        .expect("update the comment");

    let CommentOutcome::Created { id: created, .. } = first else {
        panic!("expected a created comment, got {first:?}");
    };
    let CommentOutcome::Updated { id: updated, .. } = second else {
        panic!("expected an updated comment, got {second:?}");
    };
    assert_eq!(updated, created);
    let comments = server.comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.ends_with("\nsecond run\n"),
        "{}",
        comments[0].body
    );
    let requests = server.requests();
    assert_eq!(methods(&requests), ["GET", "PATCH"]);
    assert_eq!(
        requests[1].path,
        format!("/repos/{OWNER}/{REPO}/issues/comments/{created}")
    );
}

#[tokio::test]
async fn read_only_token_warns() {
    let server = MockGithub::start();
    server.state().forbid_writes = true;
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("a 403 is a skip, not an error");

    assert_eq!(
        outcome,
        CommentOutcome::Skipped(SkipReason::Forbidden {
            message: FORBIDDEN_MESSAGE.to_string()
        })
    );
    let warning = outcome.warning().expect("a skipped comment has a warning");
    assert!(warning.contains(FORBIDDEN_MESSAGE), "{warning}");
    assert!(warning.contains("pull-requests: write"), "{warning}");
    assert!(!warning.contains(TOKEN), "{warning}");
    assert!(server.comments().is_empty());
}

#[tokio::test]
async fn pagination_finds_marker_on_page_two() {
    let server = MockGithub::start();
    server.state().max_page_size = 2;
    server.add_comment("Looks good to me.");
    server.add_comment(&format!("{}\nanother image", comment_marker("other/app:1")));
    let sticky = server.add_comment(&format!("{}\nold report", comment_marker(IMAGE)));
    server.add_comment("A later review comment.");
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let outcome = post_or_update_comment("new report\n", IMAGE, &env)
        .await
        .expect("update the comment");

    assert!(
        matches!(outcome, CommentOutcome::Updated { id, .. } if id == sticky),
        "{outcome:?}"
    );
    let requests = server.requests();
    assert_eq!(methods(&requests), ["GET", "GET", "PATCH"]);
    assert_eq!(requests[1].query.get("page").map(String::as_str), Some("2"));
    assert_eq!(server.comments().len(), 4);
}

#[tokio::test]
async fn marker_inside_body_is_not_sticky() {
    let server = MockGithub::start();
    let quoted = format!("Why is this here?\n> {}", comment_marker(IMAGE));
    server.add_comment(&quoted);
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("post the comment");

    assert!(
        matches!(outcome, CommentOutcome::Created { .. }),
        "{outcome:?}"
    );
    assert_eq!(server.comments()[0].body, quoted);
}

#[tokio::test]
async fn each_image_gets_own_comment() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    for image in [IMAGE, "registry.example.com/team/worker:1.2", IMAGE] {
        post_or_update_comment(&format!("report of {image}\n"), image, &env)
            .await
            .expect("post the comment");
    }

    let comments = server.comments();
    assert_eq!(comments.len(), 2);
    assert!(comments[0].body.starts_with(&comment_marker(IMAGE)));
    assert!(
        comments[1]
            .body
            .starts_with(&comment_marker("registry.example.com/team/worker:1.2"))
    );
}

#[tokio::test]
async fn missing_token_skips_without_requests() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&pull_request_payload());
    let mut env = pull_request_env(&server, event);
    env.token = None;

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("a missing token is a skip");

    assert_eq!(outcome, CommentOutcome::Skipped(SkipReason::MissingToken));
    assert!(outcome.warning().is_some());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn push_event_skips_without_requests() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&json!({"ref": "refs/heads/main"}));
    let mut env = pull_request_env(&server, event);
    env.event_name = Some("push".to_string());

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("a push is a skip");

    assert_eq!(
        outcome,
        CommentOutcome::Skipped(SkipReason::NotPullRequest {
            event: "push".to_string()
        })
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn issue_comment_on_pull_request_posts() {
    let server = MockGithub::start();
    let payload = json!({
        "action": "created",
        "issue": {"number": PULL_NUMBER, "pull_request": {"url": "https://github.example/pr"}},
    });
    let (_dir, event) = write_event(&payload);
    let mut env = pull_request_env(&server, event);
    env.event_name = Some("issue_comment".to_string());

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("post the comment");

    assert!(
        matches!(outcome, CommentOutcome::Created { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn enterprise_path_prefix_is_kept() {
    let server = MockGithub::start_with_prefix("/api/v3");
    server.state().max_page_size = 1;
    server.add_comment("unrelated");
    server.add_comment(&format!("{}\nold report", comment_marker(IMAGE)));
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let outcome = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("update the comment");

    assert!(
        matches!(outcome, CommentOutcome::Updated { .. }),
        "{outcome:?}"
    );
    for request in server.requests() {
        assert!(request.path.starts_with("/api/v3/repos/"), "{request:?}");
    }
}

#[tokio::test]
async fn token_only_in_authorization_header() {
    let server = MockGithub::start();
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect("post the comment");

    assert!(!format!("{env:?}").contains(TOKEN));
    for request in server.requests() {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert!(!request.path.contains(TOKEN));
        assert!(!request.body.contains(TOKEN));
    }
}

#[tokio::test]
async fn server_error_is_an_error() {
    let server = MockGithub::start();
    server.state().fail_with = Some(500);
    let (_dir, event) = write_event(&pull_request_payload());
    let env = pull_request_env(&server, event);

    let error = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect_err("a 500 is an error");

    assert!(
        matches!(error, GithubError::Api { status: 500, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("pull request #42"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
}

#[tokio::test]
async fn unreachable_api_is_an_error() {
    // A port that was free a moment ago: the connection is refused on loopback.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port();
    let (_dir, event) = write_event(&pull_request_payload());
    let env = GithubEnv {
        token: GithubToken::new(TOKEN),
        repository: Some(format!("{OWNER}/{REPO}")),
        api_url: format!("http://127.0.0.1:{port}"),
        event_name: Some("pull_request".to_string()),
        event_path: Some(event),
        timeout: Duration::from_secs(5),
    };

    let error = post_or_update_comment("report\n", IMAGE, &env)
        .await
        .expect_err("a refused connection is an error");

    assert!(matches!(error, GithubError::Request { .. }), "{error:?}");
    assert!(!error.to_string().contains(TOKEN));
}

#[test]
fn environment_defaults_to_github_com() {
    let env = GithubEnv::from_lookup(|name| match name {
        "GITHUB_API_URL" => Some(String::new()),
        "GITHUB_TOKEN" => Some("  ".to_string()),
        "GITHUB_REPOSITORY" => Some("octo-org/app".to_string()),
        _ => None,
    });

    assert_eq!(env.api_url, DEFAULT_API_URL);
    assert!(env.token.is_none());
    assert_eq!(env.repository.as_deref(), Some("octo-org/app"));
    assert!(env.event_name.is_none());
}
