use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::*;

/// A value that must never appear in a message.
const MARKER: &str = "marker-secret-4711";

fn parse(json: &str) -> DockerConfig {
    DockerConfig::from_json(json.as_bytes(), ConfigOrigin::AuthConfigVariable)
        .expect("the test config parses")
}

fn parse_error(json: &str) -> AuthError {
    DockerConfig::from_json(json.as_bytes(), ConfigOrigin::AuthConfigVariable)
        .expect_err("the test config is rejected")
}

/// Returns the credential stored for `key`. The outer `None` means the key is absent.
fn entry(config: &DockerConfig, key: &str) -> Option<Option<Credential>> {
    config
        .auths
        .iter()
        .find(|(entry_key, _)| entry_key == key)
        .map(|(_, credential)| credential.clone())
}

fn basic(username: &str, password: &str) -> Option<Option<Credential>> {
    Some(Some(Credential::Basic {
        username: username.to_string(),
        password: Secret::new(password),
    }))
}

fn auths_with_auth_field(encoded: &str) -> String {
    format!(r#"{{"auths": {{"registry.example.com": {{"auth": "{encoded}"}}}}}}"#)
}

#[test]
fn auth_field_gives_basic() {
    let config = parse(&auths_with_auth_field(&STANDARD.encode("ci-user:pass-1")));
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pass-1")
    );
}

#[test]
fn auth_field_splits_at_first_colon() {
    let config = parse(&auths_with_auth_field(&STANDARD.encode("ci-user:pa:ss")));
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pa:ss")
    );
}

#[test]
fn auth_field_without_padding_decodes() {
    let value = "ci-user:pass-1";
    assert!(
        STANDARD.encode(value).ends_with('='),
        "the value must need padding"
    );
    let config = parse(&auths_with_auth_field(&STANDARD_NO_PAD.encode(value)));
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pass-1")
    );
}

#[test]
fn auth_field_with_line_breaks_decodes() {
    let encoded = STANDARD.encode("ci-user:a-long-password-value");
    let (head, tail) = encoded.split_at(10);
    let config = parse(&auths_with_auth_field(&format!("{head}\\n{tail}\\n")));
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "a-long-password-value")
    );
}

#[test]
fn auth_field_invalid_base64_names_key() {
    let message = parse_error(&auths_with_auth_field(&format!("{MARKER}!!"))).to_string();
    assert!(message.contains("\"registry.example.com\""), "{message}");
    assert!(message.contains("not valid base64"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[test]
fn auth_field_without_colon_names_key() {
    let error = parse_error(&auths_with_auth_field(&STANDARD.encode(MARKER)));
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::InvalidAuthField { .. }),
        "{error:?}"
    );
    assert!(message.contains("\"registry.example.com\""), "{message}");
    assert!(message.contains("no `:`"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[test]
fn auth_field_empty_username_rejected() {
    let message = parse_error(&auths_with_auth_field(&STANDARD.encode(":pass"))).to_string();
    assert!(
        message.contains("username before `:` is empty"),
        "{message}"
    );
}

#[test]
fn auth_field_non_utf8_rejected() {
    let message =
        parse_error(&auths_with_auth_field(&STANDARD.encode([0xff, b':', b'x']))).to_string();
    assert!(message.contains("not UTF-8"), "{message}");
}

#[test]
fn username_password_fields_give_basic() {
    let config = parse(
        r#"{"auths": {"registry.example.com": {"username": "ci-user", "password": "pass-2"}}}"#,
    );
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pass-2")
    );
}

#[test]
fn auth_field_overrides_username_fields() {
    let json = format!(
        r#"{{"auths": {{"registry.example.com":
            {{"auth": "{}", "username": "other", "password": "other-pass"}}}}}}"#,
        STANDARD.encode("ci-user:pass-3")
    );
    let config = parse(&json);
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pass-3")
    );
}

#[test]
fn identitytoken_gives_identity_token() {
    let json = format!(
        r#"{{"auths": {{"registry.example.com":
            {{"auth": "{}", "identitytoken": "refresh-1"}}}}}}"#,
        STANDARD.encode("ci-user:")
    );
    let config = parse(&json);
    let expected = Credential::IdentityToken {
        username: "ci-user".to_string(),
        token: Secret::new("refresh-1"),
    };
    assert_eq!(entry(&config, "registry.example.com"), Some(Some(expected)));
}

#[test]
fn registrytoken_gives_registry_token() {
    let config = parse(r#"{"auths": {"registry.example.com": {"registrytoken": "bearer-1"}}}"#);
    let expected = Credential::RegistryToken(Secret::new("bearer-1"));
    assert_eq!(entry(&config, "registry.example.com"), Some(Some(expected)));
}

#[test]
fn registrytoken_beats_identitytoken_and_password() {
    let config = parse(
        r#"{"auths": {"registry.example.com": {"username": "u", "password": "p",
            "identitytoken": "refresh-1", "registrytoken": "bearer-1"}}}"#,
    );
    let expected = Credential::RegistryToken(Secret::new("bearer-1"));
    assert_eq!(entry(&config, "registry.example.com"), Some(Some(expected)));
}

#[test]
fn entries_without_credentials_carry_none() {
    let config = parse(
        r#"{"auths": {
            "a.example": {},
            "b.example": {"auth": ""},
            "c.example": {"username": "only-user"},
            "d.example": null,
            "e.example": {"auth": "Y2ktdXNlcjo="}
        }}"#,
    );
    assert_eq!(entry(&config, "a.example"), Some(None));
    assert_eq!(entry(&config, "b.example"), Some(None));
    assert_eq!(entry(&config, "c.example"), Some(None));
    assert_eq!(entry(&config, "d.example"), Some(None));
    // `Y2ktdXNlcjo=` is `ci-user:`, a username with an empty password.
    assert_eq!(entry(&config, "e.example"), Some(None));
    assert_eq!(config.auths_with_credentials().count(), 0);
}

#[test]
fn unknown_fields_are_ignored() {
    let config = parse(
        r#"{
            "auths": {"registry.example.com": {"auth": "Y2ktdXNlcjpwYXNz", "email": "x@example.com"}},
            "HttpHeaders": {"User-Agent": "Docker-Client/24.0"},
            "psFormat": "table {{.ID}}",
            "currentContext": "default",
            "plugins": {"buildx": {"enabled": true}},
            "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}}
        }"#,
    );
    assert_eq!(
        entry(&config, "registry.example.com"),
        basic("ci-user", "pass")
    );
}

#[test]
fn field_names_ignore_case() {
    let config = parse(
        r#"{"Auths": {"registry.example.com": {"IdentityToken": "refresh-1"}},
            "CredsStore": "desktop"}"#,
    );
    let expected = Credential::IdentityToken {
        username: String::new(),
        token: Secret::new("refresh-1"),
    };
    assert_eq!(entry(&config, "registry.example.com"), Some(Some(expected)));
    assert_eq!(config.creds_store(), Some("desktop"));
}

#[test]
fn helpers_and_store_are_read() {
    let config = parse(
        r#"{"credHelpers": {"b.example": "ecr-login", "a.example": "gcloud"},
            "credsStore": "desktop"}"#,
    );
    let helpers: Vec<(&str, &str)> = config.cred_helpers().collect();
    assert_eq!(
        helpers,
        [("a.example", "gcloud"), ("b.example", "ecr-login")]
    );
    assert_eq!(config.creds_store(), Some("desktop"));
}

#[test]
fn empty_creds_store_is_none() {
    let config = parse(r#"{"credsStore": ""}"#);
    assert_eq!(config.creds_store(), None);
    assert!(config.is_empty());
}

#[test]
fn helper_name_with_path_rejected() {
    let error = parse_error(r#"{"credHelpers": {"registry.example.com": "../../bin/sh"}}"#);
    let message = error.to_string();
    assert!(
        matches!(error, AuthError::InvalidHelperName { .. }),
        "{error:?}"
    );
    assert!(
        message.contains("credHelpers[\"registry.example.com\"]"),
        "{message}"
    );
}

#[test]
fn creds_store_with_slash_rejected() {
    let error = parse_error(r#"{"credsStore": "bin/sh"}"#);
    assert!(
        matches!(error, AuthError::InvalidHelperName { .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_json_names_variable_not_content() {
    let json = format!(r#"{{"auths": {{"registry.example.com": {{"password": {MARKER}}}}}}}"#);
    let error = parse_error(&json);
    let message = error.to_string();
    assert!(
        message.starts_with("DOCKER_AUTH_CONFIG is not valid"),
        "{message}"
    );
    assert!(message.contains("line 1, column"), "{message}");
    assert!(message.contains("syntax error"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
    assert!(!format!("{error:?}").contains(MARKER), "{error:?}");
}

#[test]
fn truncated_json_reports_end_of_input() {
    let json = format!(r#"{{"auths": {{"registry.example.com": {{"password": "{MARKER}"#);
    let message = parse_error(&json).to_string();
    assert!(message.contains("unexpected end of input"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[test]
fn wrong_type_names_field_not_value() {
    let message =
        parse_error(r#"{"auths": {"registry.example.com": {"password": 4711}}}"#).to_string();
    assert!(
        message.contains(r#"auths["registry.example.com"].password"#),
        "{message}"
    );
    assert!(message.contains("must be a string"), "{message}");
    assert!(!message.contains("4711"), "{message}");
}

#[test]
fn top_level_array_rejected_without_content() {
    let message = parse_error(&format!(r#"["{MARKER}"]"#)).to_string();
    assert!(message.contains("wrong type"), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[test]
fn auths_of_wrong_type_rejected() {
    let message = parse_error(r#"{"auths": "registry.example.com"}"#).to_string();
    assert!(
        message.contains("auths in DOCKER_AUTH_CONFIG must be a JSON object"),
        "{message}"
    );
}

/// A home directory and a separate `DOCKER_CONFIG` directory, each with a config naming a
/// different registry.
struct ConfigDirs {
    home: tempfile::TempDir,
    docker_config: tempfile::TempDir,
}

impl ConfigDirs {
    fn new() -> Self {
        let dirs = ConfigDirs {
            home: tempfile::tempdir().expect("create a home directory"),
            docker_config: tempfile::tempdir().expect("create a DOCKER_CONFIG directory"),
        };
        let home_docker = dirs.home.path().join(".docker");
        std::fs::create_dir(&home_docker).expect("create ~/.docker");
        write_config(&home_docker, "home.example");
        write_config(dirs.docker_config.path(), "docker-config.example");
        dirs
    }

    fn sources(&self) -> ConfigSources {
        ConfigSources {
            auth_config_json: None,
            docker_config_dir: Some(self.docker_config.path().to_path_buf()),
            home_dir: Some(self.home.path().to_path_buf()),
        }
    }
}

fn write_config(dir: &std::path::Path, registry: &str) {
    let json = format!(r#"{{"auths": {{"{registry}": {{"username": "u", "password": "p"}}}}}}"#);
    std::fs::write(dir.join("config.json"), json).expect("write config.json");
}

fn keys(config: &DockerConfig) -> Vec<&str> {
    config.auths.iter().map(|(key, _)| key.as_str()).collect()
}

#[test]
fn load_prefers_auth_config_text() {
    let dirs = ConfigDirs::new();
    let sources = ConfigSources {
        auth_config_json: Some(Secret::new(r#"{"auths": {"text.example": {}}}"#)),
        ..dirs.sources()
    };
    let config = load_config_with(&sources).expect("load");
    assert_eq!(keys(&config), ["text.example"]);
    assert_eq!(config.origin(), &ConfigOrigin::AuthConfigVariable);
}

#[test]
fn load_blank_auth_config_reads_file() {
    let dirs = ConfigDirs::new();
    let sources = ConfigSources {
        auth_config_json: Some(Secret::new("  \n")),
        ..dirs.sources()
    };
    let config = load_config_with(&sources).expect("load");
    assert_eq!(keys(&config), ["docker-config.example"]);
}

#[test]
fn load_reads_docker_config_dir() {
    let dirs = ConfigDirs::new();
    let config = load_config_with(&dirs.sources()).expect("load");
    assert_eq!(keys(&config), ["docker-config.example"]);
    let expected = ConfigOrigin::File(dirs.docker_config.path().join("config.json"));
    assert_eq!(config.origin(), &expected);
}

#[test]
fn load_reads_home_docker_config() {
    let dirs = ConfigDirs::new();
    let sources = ConfigSources {
        docker_config_dir: None,
        ..dirs.sources()
    };
    let config = load_config_with(&sources).expect("load");
    assert_eq!(keys(&config), ["home.example"]);
}

#[test]
fn load_empty_docker_config_dir() {
    let dirs = ConfigDirs::new();
    let empty_dir = tempfile::tempdir().expect("create an empty directory");
    let sources = ConfigSources {
        docker_config_dir: Some(empty_dir.path().to_path_buf()),
        ..dirs.sources()
    };
    let config = load_config_with(&sources).expect("load");
    assert!(config.is_empty());
}

#[test]
fn load_without_sources_is_empty() {
    let config = load_config_with(&ConfigSources::default()).expect("load");
    assert!(config.is_empty());
    assert_eq!(config.origin(), &ConfigOrigin::Empty);
}

#[test]
fn load_empty_file_is_empty() {
    let dir = tempfile::tempdir().expect("create a directory");
    std::fs::write(dir.path().join("config.json"), "\n").expect("write config.json");
    let sources = ConfigSources {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..ConfigSources::default()
    };
    let config = load_config_with(&sources).expect("load");
    assert!(config.is_empty());
}

#[test]
fn load_invalid_file_names_path() {
    let dir = tempfile::tempdir().expect("create a directory");
    let path = dir.path().join("config.json");
    std::fs::write(&path, format!("{{\"auths\": {MARKER}")).expect("write config.json");
    let sources = ConfigSources {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..ConfigSources::default()
    };
    let message = load_config_with(&sources)
        .expect_err("rejected")
        .to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains(MARKER), "{message}");
}

#[test]
fn load_unreadable_file_names_path() {
    let dir = tempfile::tempdir().expect("create a directory");
    let path = dir.path().join("config.json");
    std::fs::create_dir(&path).expect("create a directory where the file is expected");
    let sources = ConfigSources {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..ConfigSources::default()
    };
    let error = load_config_with(&sources).expect_err("rejected");
    let message = error.to_string();
    assert!(matches!(error, AuthError::ReadConfig { .. }), "{error:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}
