use std::time::Instant;

use super::*;
use crate::auth::test_support::HelperDir;

const SERVER: &str = "registry.example.com";

/// A value that must never appear in a message.
const MARKER: &str = "marker-secret-4711";

/// Returns a script body that ignores stdin and prints `json`.
fn printing(json: &str) -> String {
    format!("cat >/dev/null\nprintf '%s' '{json}'")
}

#[tokio::test]
async fn helper_returns_basic_credential() {
    let helpers = HelperDir::new();
    helpers.add(
        "test",
        &printing(r#"{"ServerURL":"registry.example.com","Username":"ci-user","Secret":"pass-1"}"#),
    );
    let credential = get_credential("test", SERVER, &helpers.options())
        .await
        .expect("helper runs");
    let expected = Credential::Basic {
        username: "ci-user".to_string(),
        password: Secret::new("pass-1"),
    };
    assert_eq!(credential, Some(expected));
}

#[tokio::test]
async fn helper_reads_server_from_stdin() {
    let helpers = HelperDir::new();
    helpers.add(
        "echo",
        r#"server=$(cat)
printf '{"Username":"%s","Secret":"s"}' "$server""#,
    );
    let credential = get_credential("echo", SERVER, &helpers.options())
        .await
        .expect("helper runs");
    let Some(Credential::Basic { username, .. }) = credential else {
        panic!("expected a basic credential, got {credential:?}");
    };
    assert_eq!(username, SERVER);
}

#[tokio::test]
async fn helper_token_username_gives_identity_token() {
    let helpers = HelperDir::new();
    helpers.add(
        "token",
        &printing(r#"{"Username":"<token>","Secret":"refresh-1"}"#),
    );
    let credential = get_credential("token", SERVER, &helpers.options())
        .await
        .expect("helper runs");
    let expected = Credential::IdentityToken {
        username: String::new(),
        token: Secret::new("refresh-1"),
    };
    assert_eq!(credential, Some(expected));
}

#[tokio::test]
async fn helper_not_found_gives_none() {
    let helpers = HelperDir::new();
    helpers.add(
        "empty",
        "cat >/dev/null\necho 'credentials not found in native keychain'\nexit 1",
    );
    let credential = get_credential("empty", SERVER, &helpers.options()).await;
    assert!(matches!(credential, Ok(None)), "{credential:?}");
}

#[tokio::test]
async fn helper_empty_secret_gives_none() {
    let helpers = HelperDir::new();
    helpers.add("blank", &printing(r#"{"Username":"","Secret":""}"#));
    let credential = get_credential("blank", SERVER, &helpers.options()).await;
    assert!(matches!(credential, Ok(None)), "{credential:?}");
}

#[tokio::test]
async fn helper_timeout_kills_helper() {
    let helpers = HelperDir::new();
    let pid_file = helpers.path().join("pid");
    helpers.add(
        "slow",
        &format!("echo $$ > '{}'\nexec sleep 30", pid_file.display()),
    );
    let options = helpers.options_with_timeout(Duration::from_millis(300));

    let started = Instant::now();
    let error = get_credential("slow", SERVER, &options)
        .await
        .expect_err("times out");
    let elapsed = started.elapsed();

    assert!(
        matches!(error, AuthError::HelperTimedOut { .. }),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let message = error.to_string();
    assert!(message.contains("docker-credential-slow"), "{message}");
    assert!(message.contains("0.3 s"), "{message}");
    let pid = std::fs::read_to_string(&pid_file).expect("the helper wrote its pid");
    let proc_entry = Path::new("/proc").join(pid.trim());
    assert!(
        !proc_entry.exists(),
        "helper process {} still exists",
        pid.trim()
    );
}

#[tokio::test]
async fn missing_helper_names_program() {
    let helpers = HelperDir::new();
    let error = get_credential("absent", SERVER, &helpers.options())
        .await
        .expect_err("missing");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::HelperNotFound { .. }),
        "{error:?}"
    );
    assert!(message.contains("docker-credential-absent"), "{message}");
}

#[tokio::test]
async fn non_executable_helper_is_not_found() {
    use std::os::unix::fs::PermissionsExt as _;
    let helpers = HelperDir::new();
    let path = helpers.add("plain", &printing(r#"{"Username":"u","Secret":"s"}"#));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = get_credential("plain", SERVER, &helpers.options())
        .await
        .expect_err("missing");
    assert!(
        matches!(error, AuthError::HelperNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn failed_helper_shows_first_stderr_line() {
    let helpers = HelperDir::new();
    helpers.add(
        "broken",
        &format!(
            "cat >/dev/null\necho '{MARKER}'\necho 'keychain locked' >&2\necho 'second line' >&2\nexit 3"
        ),
    );
    let error = get_credential("broken", SERVER, &helpers.options())
        .await
        .expect_err("fails");
    let message = error.to_string();
    assert!(matches!(error, AuthError::HelperFailed { .. }), "{error:?}");
    assert!(message.contains("docker-credential-broken"), "{message}");
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("keychain locked"), "{message}");
    assert!(!message.contains("second line"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[tokio::test]
async fn invalid_helper_json_hides_output() {
    let helpers = HelperDir::new();
    helpers.add(
        "garbled",
        &printing(&format!(r#"{{"Username":"u","Secret":{MARKER}}}"#)),
    );
    let error = get_credential("garbled", SERVER, &helpers.options())
        .await
        .expect_err("rejected");
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::InvalidHelperOutput { .. }),
        "{error:?}"
    );
    assert!(message.contains("line 1, column"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
    assert!(!format!("{error:?}").contains(MARKER), "{error:?}");
}

#[test]
fn stderr_line_is_truncated() {
    let long = "x".repeat(500);
    let line = first_line(format!("\n\u{1b}[31m{long}\nnext").as_bytes());
    assert_eq!(line.chars().count(), MAX_STDERR_CHARS + 3);
    assert!(line.ends_with("..."), "{line}");
    assert!(!line.contains('\u{1b}'), "{line:?}");
}

#[test]
fn search_path_skips_empty_entries() {
    let search_path = std::ffi::OsString::from("::");
    let error = find_program("docker-credential-x", Some(&search_path)).expect_err("missing");
    assert!(
        matches!(error, AuthError::HelperNotFound { .. }),
        "{error:?}"
    );
}
