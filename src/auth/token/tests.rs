use super::*;
use crate::auth::test_support::{http_response, loopback_client, serve_once};

/// A value that must never appear in a message.
const MARKER: &str = "marker-secret-4711";

fn params(header: &str) -> Option<Vec<(String, String)>> {
    bearer_params(header)
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

#[test]
fn bearer_params_read_quoted_values() {
    let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:group/app:pull,push""#;
    let expected = vec![
        pair("realm", "https://auth.example/token"),
        pair("service", "registry.example"),
        pair("scope", "repository:group/app:pull,push"),
    ];
    assert_eq!(params(header), Some(expected));
}

#[test]
fn bearer_params_skip_other_challenges() {
    let header = r#"Basic realm="basic, realm", Bearer realm="https://auth.example/token", error="invalid_token""#;
    let expected = vec![
        pair("realm", "https://auth.example/token"),
        pair("error", "invalid_token"),
    ];
    assert_eq!(params(header), Some(expected));
}

#[test]
fn bearer_params_stop_at_next_challenge() {
    let header = r#"bearer realm="https://auth.example/token" , Basic realm="other""#;
    assert_eq!(
        params(header),
        Some(vec![pair("realm", "https://auth.example/token")])
    );
}

#[test]
fn bearer_params_read_escapes_and_bare_values() {
    let header = r#"BEARER Realm = https://auth.example/token, service="a\"b\\c""#;
    let expected = vec![
        pair("realm", "https://auth.example/token"),
        pair("service", r#"a"b\c"#),
    ];
    assert_eq!(params(header), Some(expected));
}

#[test]
fn bearer_params_absent_without_bearer() {
    assert_eq!(params(r#"Basic realm="registry""#), None);
    assert_eq!(params(""), None);
}

#[test]
fn bearer_params_survive_malformed_headers() {
    let headers = [
        "=",
        "\"",
        "Bearer",
        "Bearer =",
        "Bearer realm=\"unterminated",
        "Bearer realm=",
        ",,,",
        "Basic dXNlcjpwYXNz==, Bearer realm=x",
        "Bearer realm=\"a\\",
        "é=ü\"",
    ];
    for header in headers {
        let _ = params(header);
    }
    assert_eq!(
        params("Basic dXNlcjpwYXNz==, Bearer realm=x"),
        Some(vec![pair("realm", "x")])
    );
    assert_eq!(params("Bearer realm=\"a\\"), Some(vec![pair("realm", "a")]));
}

#[test]
fn challenge_requires_realm() {
    let problem = challenge_from_params(vec![pair("service", "s")]).expect_err("rejected");
    assert!(problem.contains("no realm"), "{problem}");
}

#[test]
fn challenge_requires_http_realm() {
    let problem = challenge_from_params(vec![pair("realm", "ftp://auth.example/token")])
        .expect_err("rejected");
    assert!(problem.contains("http or https"), "{problem}");
}

fn unauthorized(challenge: &str) -> String {
    http_response(
        "401 Unauthorized",
        &[
            ("WWW-Authenticate", challenge),
            ("Content-Type", "application/json"),
        ],
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
    )
}

/// Serves `response` once and fetches the challenge from that server. Returns the server's
/// base URL and the result.
async fn fetch_served(response: String) -> (String, Result<Option<BearerChallenge>, AuthError>) {
    let (base_url, _request) = serve_once(response).await;
    let result = fetch_challenge(&loopback_client(), &base_url).await;
    (base_url, result)
}

#[tokio::test]
async fn fetch_challenge_parses_bearer_header() {
    let challenge = r#"Bearer realm="http://127.0.0.1:9/token",service="registry.test",scope="repository:group/app:pull,push""#;
    let (base_url, request) = serve_once(unauthorized(challenge)).await;

    let parsed = fetch_challenge(&loopback_client(), &base_url)
        .await
        .expect("fetched");
    let request = request.await.expect("server task");

    let expected = BearerChallenge {
        realm: "http://127.0.0.1:9/token".to_string(),
        service: Some("registry.test".to_string()),
        scope: Some("repository:group/app:pull,push".to_string()),
    };
    assert_eq!(parsed, Some(expected));
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/v2/");
}

#[tokio::test]
async fn fetch_challenge_accepts_trailing_slash() {
    let (base_url, request) = serve_once(http_response("200 OK", &[], "{}")).await;
    fetch_challenge(&loopback_client(), &format!("{base_url}/"))
        .await
        .expect("fetched");
    assert_eq!(request.await.expect("server task").path, "/v2/");
}

#[tokio::test]
async fn fetch_challenge_success_gives_none() {
    let (_, result) = fetch_served(http_response("200 OK", &[], "{}")).await;
    assert_eq!(result.expect("fetched"), None);
}

#[tokio::test]
async fn fetch_challenge_basic_only_gives_none() {
    let (_, result) = fetch_served(unauthorized(r#"Basic realm="registry""#)).await;
    assert_eq!(result.expect("fetched"), None);
}

#[tokio::test]
async fn fetch_challenge_rejects_unexpected_status() {
    let response = http_response("503 Service Unavailable", &[], MARKER);
    let (base_url, result) = fetch_served(response).await;
    let error = result.expect_err("rejected");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::ChallengeStatus { status: 503, .. }),
        "{error:?}"
    );
    assert!(message.contains(&format!("{base_url}/v2/")), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[tokio::test]
async fn fetch_challenge_rejects_missing_realm() {
    let (_, result) = fetch_served(unauthorized(r#"Bearer service="registry.test""#)).await;
    let error = result.expect_err("rejected");
    assert!(
        matches!(error, AuthError::InvalidChallenge { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn fetch_challenge_rejects_non_http_url() {
    let error = fetch_challenge(&loopback_client(), "ftp://127.0.0.1")
        .await
        .expect_err("rejected");
    assert!(
        matches!(error, AuthError::InvalidRegistryUrl { .. }),
        "{error:?}"
    );
}

/// Returns a loopback address that very likely has no listener: a listener is bound to a
/// free port and dropped again.
async fn closed_loopback_address() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address")
}

#[tokio::test]
async fn fetch_challenge_reports_refused_connection() {
    let address = closed_loopback_address().await;
    let base_url = format!("http://{address}");
    let error = fetch_challenge(&loopback_client(), &base_url)
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::ChallengeRequest { .. }),
        "{error:?}"
    );
    assert!(message.contains(&address.to_string()), "{message}");
}

fn challenge_at(base_url: &str) -> BearerChallenge {
    BearerChallenge {
        realm: format!("{base_url}/token"),
        service: Some("registry.test".to_string()),
        scope: Some("repository:from/challenge:pull".to_string()),
    }
}

fn token_ok(body: &str) -> String {
    http_response("200 OK", &[("Content-Type", "application/json")], body)
}

/// Serves `response` once at the realm and exchanges a fixed identity token there. Returns
/// the realm host (`127.0.0.1:PORT`) and the result.
async fn exchange_served(response: String) -> (String, Result<Secret, AuthError>) {
    let (base_url, _request) = serve_once(response).await;
    let challenge = challenge_at(&base_url);
    let result =
        exchange_identity_token(&loopback_client(), &challenge, "s", &Secret::new("r")).await;
    (base_url.trim_start_matches("http://").to_string(), result)
}

#[tokio::test]
async fn exchange_posts_refresh_form() {
    let (base_url, request) = serve_once(token_ok(r#"{"access_token":"access-1"}"#)).await;
    let token = Secret::new("refresh-1");

    let access = exchange_identity_token(
        &loopback_client(),
        &challenge_at(&base_url),
        "repository:group/app:pull",
        &token,
    )
    .await
    .expect("exchanged");
    let request = request.await.expect("server task");

    assert_eq!(access.expose(), "access-1");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/token");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form_value("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        request.form_value("service").as_deref(),
        Some("registry.test")
    );
    assert_eq!(
        request.form_value("scope").as_deref(),
        Some("repository:group/app:pull")
    );
    assert_eq!(
        request.form_value("client_id").as_deref(),
        Some("image-compliance-scanner")
    );
    assert_eq!(
        request.form_value("refresh_token").as_deref(),
        Some("refresh-1")
    );
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn exchange_empty_scope_uses_challenge_scope() {
    let (base_url, request) = serve_once(token_ok(r#"{"access_token":"access-1"}"#)).await;
    exchange_identity_token(
        &loopback_client(),
        &challenge_at(&base_url),
        "",
        &Secret::new("r"),
    )
    .await
    .expect("exchanged");
    let request = request.await.expect("server task");
    assert_eq!(
        request.form_value("scope").as_deref(),
        Some("repository:from/challenge:pull")
    );
}

#[tokio::test]
async fn exchange_accepts_token_field() {
    let (_, result) = exchange_served(token_ok(r#"{"token":"access-2","expires_in":300}"#)).await;
    assert_eq!(result.expect("exchanged").expose(), "access-2");
}

#[tokio::test]
async fn exchange_prefers_access_token() {
    let body = r#"{"token":"access-2","access_token":"access-1"}"#;
    let (_, result) = exchange_served(token_ok(body)).await;
    assert_eq!(result.expect("exchanged").expose(), "access-1");
}

#[tokio::test]
async fn exchange_rejection_names_host_status_code() {
    let body = format!(
        r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"token eyJhbGciOiJSUzI1NiJ9.{MARKER} expired"}}],
            "refresh_token":"{MARKER}"}}"#
    );
    let response = http_response(
        "401 Unauthorized",
        &[("Content-Type", "application/json")],
        &body,
    );
    let (realm_host, result) = exchange_served(response).await;
    let error = result.expect_err("rejected");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::TokenRejected { status: 401, .. }),
        "{error:?}"
    );
    assert!(message.contains(&realm_host), "{message}");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(
        message.contains("UNAUTHORIZED: token <redacted> expired"),
        "{message}"
    );
    assert!(!message.contains(MARKER), "{message}");
    assert!(!message.contains("eyJ"), "{message}");
}

#[tokio::test]
async fn exchange_rejection_hides_plain_body() {
    let response = http_response("400 Bad Request", &[], &format!("refresh_token={MARKER}"));
    let (_, result) = exchange_served(response).await;
    let message = result.expect_err("rejected").to_string();
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[tokio::test]
async fn exchange_rejection_reads_oauth_error() {
    let body = r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#;
    let (_, result) = exchange_served(http_response("400 Bad Request", &[], body)).await;
    let message = result.expect_err("rejected").to_string();
    assert!(
        message.contains("invalid_grant; refresh token revoked"),
        "{message}"
    );
}

#[tokio::test]
async fn exchange_without_token_field_errors() {
    let (_, result) = exchange_served(token_ok(r#"{"expires_in":300}"#)).await;
    let error = result.expect_err("rejected");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::InvalidTokenResponse { .. }),
        "{error:?}"
    );
    assert!(
        message.contains("neither `access_token` nor `token`"),
        "{message}"
    );
}

#[tokio::test]
async fn exchange_invalid_json_hides_body() {
    let (_, result) = exchange_served(token_ok(&format!("{{\"token\": {MARKER}"))).await;
    let message = result.expect_err("rejected").to_string();
    assert!(message.contains("syntax error"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[tokio::test]
async fn exchange_rejects_non_http_realm() {
    let challenge = BearerChallenge {
        realm: "file:///etc/passwd".to_string(),
        service: None,
        scope: None,
    };
    let error = exchange_identity_token(&loopback_client(), &challenge, "s", &Secret::new("r"))
        .await
        .expect_err("rejected");
    assert!(
        matches!(error, AuthError::InvalidChallenge { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn exchange_reports_refused_connection() {
    let address = closed_loopback_address().await;
    let challenge = challenge_at(&format!("http://{address}"));
    let error = exchange_identity_token(&loopback_client(), &challenge, "s", &Secret::new("r"))
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(matches!(error, AuthError::TokenRequest { .. }), "{error:?}");
    assert!(message.contains(&address.to_string()), "{message}");
}

#[test]
fn error_summary_is_capped() {
    let message = "word ".repeat(100);
    let body = format!(r#"{{"errors":[{{"code":"DENIED","message":"{message}"}}]}}"#);
    let summary = error_summary(body.as_bytes());
    assert_eq!(summary.chars().count(), MAX_ERROR_DETAIL_CHARS + 3);
    assert!(summary.starts_with("DENIED: word"), "{summary}");
}

#[test]
fn long_base64_words_are_redacted() {
    let text = format!("bad token {} here", "A1b2C3d4".repeat(4));
    assert_eq!(redact_token_like(&text), "bad token <redacted> here");
}

#[test]
fn short_words_are_kept() {
    assert_eq!(redact_token_like("access denied"), "access denied");
}
