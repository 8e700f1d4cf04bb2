//! Tests of the credential precedence and of secret redaction.

use super::test_support::HelperDir;
use super::*;

/// A value that must never appear in `Debug` or `Display` output.
const MARKER: &str = "marker-secret-4711";

const HOST: &str = "registry.example.com";

fn parse(json: &str) -> DockerConfig {
    DockerConfig::from_json(json.as_bytes(), ConfigOrigin::AuthConfigVariable)
        .expect("the test config parses")
}

/// A helper script that prints a basic credential whose username is `username`.
fn helper_printing_user(username: &str) -> String {
    format!(
        "cat >/dev/null\nprintf '%s' '{{\"Username\":\"{username}\",\"Secret\":\"helper-pass\"}}'"
    )
}

const NOT_FOUND_HELPER: &str =
    "cat >/dev/null\necho 'credentials not found in native keychain'\nexit 1";

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_string(),
        password: Secret::new(password),
    }
}

async fn resolve(
    config: &DockerConfig,
    registry: &str,
    repository: &str,
    helpers: &HelperDir,
) -> (Credential, Option<CredentialSource>) {
    resolve_credential_with(config, registry, repository, &helpers.options())
        .await
        .expect("resolves")
}

#[tokio::test]
async fn cred_helper_beats_auths_entry() {
    let helpers = HelperDir::new();
    helpers.add("per-host", &helper_printing_user("from-helper"));
    let config = parse(
        r#"{"auths": {"registry.example.com": {"username": "from-auths", "password": "p"}},
            "credHelpers": {"registry.example.com": "per-host"},
            "credsStore": "store"}"#,
    );
    let (credential, source) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("from-helper", "helper-pass"));
    let source = source.expect("a source").0;
    assert!(
        source.contains(r#"credHelpers["registry.example.com"]"#),
        "{source}"
    );
    assert!(source.contains("docker-credential-per-host"), "{source}");
}

#[tokio::test]
async fn auths_entry_beats_creds_store() {
    let helpers = HelperDir::new();
    helpers.add("store", &helper_printing_user("from-store"));
    let config = parse(
        r#"{"auths": {"https://registry.example.com/v2/": {"username": "from-auths", "password": "p"}},
            "credsStore": "store"}"#,
    );
    let (credential, source) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("from-auths", "p"));
    let source = source.expect("a source").0;
    assert_eq!(
        source,
        r#"auths["https://registry.example.com/v2/"] in DOCKER_AUTH_CONFIG"#
    );
}

#[tokio::test]
async fn creds_store_after_empty_entry() {
    let helpers = HelperDir::new();
    helpers.add("store", &helper_printing_user("from-store"));
    let config = parse(r#"{"auths": {"registry.example.com": {}}, "credsStore": "store"}"#);
    let (credential, source) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("from-store", "helper-pass"));
    let source = source.expect("a source").0;
    assert!(
        source.starts_with("credsStore (docker-credential-store)"),
        "{source}"
    );
}

#[tokio::test]
async fn helper_for_other_host_is_not_used() {
    let helpers = HelperDir::new();
    let config = parse(
        r#"{"auths": {"registry.example.com": {"username": "from-auths", "password": "p"}},
            "credHelpers": {"other.example.com": "absent"}}"#,
    );
    let (credential, _) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("from-auths", "p"));
}

#[tokio::test]
async fn no_match_gives_anonymous() {
    let helpers = HelperDir::new();
    let config = parse(r#"{"auths": {"other.example.com": {"username": "u", "password": "p"}}}"#);
    let (credential, source) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, Credential::Anonymous);
    assert_eq!(source, None);
}

#[tokio::test]
async fn empty_config_gives_anonymous() {
    let helpers = HelperDir::new();
    let (credential, source) = resolve(&DockerConfig::default(), HOST, "app", &helpers).await;
    assert_eq!(credential, Credential::Anonymous);
    assert_eq!(source, None);
}

#[tokio::test]
async fn helper_not_found_gives_anonymous() {
    let helpers = HelperDir::new();
    helpers.add("per-host", NOT_FOUND_HELPER);
    let config = parse(
        r#"{"auths": {"registry.example.com": {"username": "from-auths", "password": "p"}},
            "credHelpers": {"registry.example.com": "per-host"}}"#,
    );
    let (credential, source) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, Credential::Anonymous);
    assert_eq!(source, None);
}

#[tokio::test]
async fn missing_store_helper_is_an_error() {
    let helpers = HelperDir::new();
    let config = parse(r#"{"credsStore": "absent"}"#);
    let error = resolve_credential_with(&config, HOST, "app", &helpers.options())
        .await
        .expect_err("missing helper");
    assert!(
        matches!(error, AuthError::HelperNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn hub_helper_gets_legacy_url() {
    let helpers = HelperDir::new();
    helpers.add(
        "store",
        r#"server=$(cat)
printf '{"Username":"%s","Secret":"s"}' "$server""#,
    );
    let config = parse(r#"{"credsStore": "store"}"#);
    let (credential, _) = resolve(&config, "docker.io", "library/alpine", &helpers).await;
    assert_eq!(credential, basic("https://index.docker.io/v1/", "s"));
}

#[tokio::test]
async fn docker_hub_entry_matches_alias_registry() {
    let helpers = HelperDir::new();
    let config = parse(
        r#"{"auths": {"https://index.docker.io/v1/": {"username": "hub-user", "password": "p"}}}"#,
    );
    let (credential, _) = resolve(&config, "docker.io", "library/alpine", &helpers).await;
    assert_eq!(credential, basic("hub-user", "p"));
}

#[tokio::test]
async fn path_scoped_entry_beats_host_entry() {
    let helpers = HelperDir::new();
    let config = parse(
        r#"{"auths": {
            "registry.example.com": {"username": "host-user", "password": "p"},
            "registry.example.com/group/app": {"username": "project-user", "password": "p"},
            "registry.example.com/group": {"username": "group-user", "password": "p"}
        }}"#,
    );
    let (credential, _) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("project-user", "p"));
}

#[tokio::test]
async fn empty_path_entry_is_skipped() {
    let helpers = HelperDir::new();
    let config = parse(
        r#"{"auths": {
            "registry.example.com": {"username": "host-user", "password": "p"},
            "registry.example.com/group": {}
        }}"#,
    );
    let (credential, _) = resolve(&config, HOST, "group/app", &helpers).await;
    assert_eq!(credential, basic("host-user", "p"));
}

#[test]
fn credential_debug_hides_secrets() {
    let credentials = [
        basic("ci-user", MARKER),
        Credential::IdentityToken {
            username: "ci-user".to_string(),
            token: Secret::new(MARKER),
        },
        Credential::RegistryToken(Secret::new(MARKER)),
    ];
    for credential in credentials {
        let debug = format!("{credential:?}");
        assert!(!debug.contains(MARKER), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}

#[test]
fn secret_display_hides_value() {
    let secret = Secret::new(MARKER);
    assert_eq!(secret.to_string(), "<redacted>");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(secret.expose(), MARKER);
}

#[test]
fn config_debug_hides_secrets() {
    let config = parse(&format!(
        r#"{{"auths": {{"registry.example.com": {{"username": "u", "password": "{MARKER}"}}}}}}"#
    ));
    let debug = format!("{config:?}");
    assert!(!debug.contains(MARKER), "{debug}");
    assert!(debug.contains("registry.example.com"), "{debug}");
}

#[test]
fn config_sources_debug_hides_auth_text() {
    let sources = ConfigSources {
        auth_config_json: Some(Secret::new(MARKER)),
        ..ConfigSources::default()
    };
    let debug = format!("{sources:?}");
    assert!(!debug.contains(MARKER), "{debug}");
}
