//! Loading and parsing a docker `config.json`.
//!
//! Field names are looked up without regard to case (exact spelling first), as Go's
//! `encoding/json` does for the docker CLI. Fields this module does not use, such as
//! `HttpHeaders` or `email`, are ignored.

use std::path::PathBuf;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::error::{AuthError, ConfigOrigin, json_problem};
use super::{Credential, Secret};

/// Standard base64 that accepts the value with or without `=` padding.
const AUTH_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Locations that [`load_config_with`] reads the docker config from. Callers pass the
/// environment in here, so that tests never change the process environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The `DOCKER_AUTH_CONFIG` text: a whole docker config as JSON, as GitLab Runner passes it.
    pub auth_config_json: Option<Secret>,
    /// The `DOCKER_CONFIG` directory, which contains `config.json`.
    pub docker_config_dir: Option<PathBuf>,
    /// The `HOME` directory, for `.docker/config.json`.
    pub home_dir: Option<PathBuf>,
}

impl ConfigSources {
    /// Takes `DOCKER_CONFIG` and `HOME` from the process environment. Empty values count as
    /// unset.
    pub fn from_process_env(auth_config_json: Option<&str>) -> Self {
        ConfigSources {
            auth_config_json: auth_config_json.map(Secret::new),
            docker_config_dir: non_empty_env_path("DOCKER_CONFIG"),
            home_dir: non_empty_env_path("HOME"),
        }
    }
}

fn non_empty_env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Parsed docker config: `auths`, `credHelpers` and `credsStore`.
///
/// Entries are kept sorted by key. `Debug` shows keys and redacted credentials only.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    origin: ConfigOrigin,
    /// `auths` keys with the credential each entry carries, if any.
    auths: Vec<(String, Option<Credential>)>,
    /// `credHelpers` keys with the helper name (the suffix after `docker-credential-`).
    cred_helpers: Vec<(String, String)>,
    creds_store: Option<String>,
}

/// Loads the docker config as [`load_config_with`] does, taking `DOCKER_CONFIG` and `HOME` from
/// the process environment.
pub fn load_config(auth_config_json: Option<&str>) -> Result<DockerConfig, AuthError> {
    load_config_with(&ConfigSources::from_process_env(auth_config_json))
}

/// Loads the docker config: the `DOCKER_AUTH_CONFIG` text if given and not blank, else
/// `$DOCKER_CONFIG/config.json` if `DOCKER_CONFIG` is set, else `$HOME/.docker/config.json`.
/// A missing file gives an empty config.
///
/// As in the docker CLI, a set `DOCKER_CONFIG` whose directory has no `config.json` gives an
/// empty config and does not fall back to `HOME`.
pub fn load_config_with(sources: &ConfigSources) -> Result<DockerConfig, AuthError> {
    let text = sources
        .auth_config_json
        .as_ref()
        .map(Secret::expose)
        .filter(|text| !text.trim().is_empty());
    if let Some(text) = text {
        return DockerConfig::from_json(text.as_bytes(), ConfigOrigin::AuthConfigVariable);
    }
    match config_file_path(sources) {
        Some(path) => read_config_file(path),
        None => Ok(DockerConfig::default()),
    }
}

fn config_file_path(sources: &ConfigSources) -> Option<PathBuf> {
    if let Some(dir) = &sources.docker_config_dir {
        return Some(dir.join("config.json"));
    }
    let home = sources.home_dir.as_ref()?;
    Some(home.join(".docker").join("config.json"))
}

fn read_config_file(path: PathBuf) -> Result<DockerConfig, AuthError> {
    match std::fs::read(&path) {
        Ok(bytes) if bytes.trim_ascii().is_empty() => Ok(DockerConfig {
            origin: ConfigOrigin::File(path),
            ..DockerConfig::default()
        }),
        Ok(bytes) => DockerConfig::from_json(&bytes, ConfigOrigin::File(path)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
        Err(source) => Err(AuthError::ReadConfig { path, source }),
    }
}

impl DockerConfig {
    /// Parses the JSON of a docker config. Errors name the origin and the JSON position or
    /// the key, never the text.
    pub(super) fn from_json(json: &[u8], origin: ConfigOrigin) -> Result<Self, AuthError> {
        let root: Map<String, Value> =
            serde_json::from_slice(json).map_err(|error| AuthError::InvalidConfigJson {
                origin: origin.clone(),
                problem: json_problem(&error),
                line: error.line(),
                column: error.column(),
            })?;
        let parser = Parser { origin: &origin };
        Ok(DockerConfig {
            auths: parser.auths(&root)?,
            cred_helpers: parser.cred_helpers(&root)?,
            creds_store: parser.creds_store(&root)?,
            origin,
        })
    }

    /// Returns the config's origin, for messages and logs.
    pub fn origin(&self) -> &ConfigOrigin {
        &self.origin
    }

    /// Returns true when the config has no `auths`, `credHelpers` or `credsStore`.
    pub fn is_empty(&self) -> bool {
        self.auths.is_empty() && self.cred_helpers.is_empty() && self.creds_store.is_none()
    }

    /// `auths` entries that carry credentials, sorted by key.
    pub(super) fn auths_with_credentials(&self) -> impl Iterator<Item = (&str, &Credential)> {
        self.auths
            .iter()
            .filter_map(|(key, credential)| Some((key.as_str(), credential.as_ref()?)))
    }

    /// `credHelpers` keys with helper names, sorted by key.
    pub(super) fn cred_helpers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cred_helpers
            .iter()
            .map(|(key, name)| (key.as_str(), name.as_str()))
    }

    pub(super) fn creds_store(&self) -> Option<&str> {
        self.creds_store.as_deref()
    }
}

/// Reads the sections of one parsed config, naming `origin` in errors.
struct Parser<'a> {
    origin: &'a ConfigOrigin,
}

impl Parser<'_> {
    fn auths(
        &self,
        root: &Map<String, Value>,
    ) -> Result<Vec<(String, Option<Credential>)>, AuthError> {
        let Some(auths) = self.object_field(root, "auths")? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::with_capacity(auths.len());
        for (key, value) in auths {
            let credential = self.auth_entry(key, value)?;
            entries.push((key.clone(), credential));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    fn cred_helpers(&self, root: &Map<String, Value>) -> Result<Vec<(String, String)>, AuthError> {
        let Some(helpers) = self.object_field(root, "credHelpers")? else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::with_capacity(helpers.len());
        for (key, value) in helpers {
            let field = format!("credHelpers[\"{key}\"]");
            if let Some(name) = self.string_value(value, &field)? {
                self.validate_helper_name(&name, &field)?;
                entries.push((key.clone(), name));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    fn creds_store(&self, root: &Map<String, Value>) -> Result<Option<String>, AuthError> {
        let Some(value) = lookup(root, "credsStore") else {
            return Ok(None);
        };
        let name = self.string_value(value, "credsStore")?;
        if let Some(name) = &name {
            self.validate_helper_name(name, "credsStore")?;
        }
        Ok(name)
    }

    /// Reads one `auths` entry. Within an entry, `registrytoken` wins over `identitytoken`,
    /// which wins over the password, as in moby's registry client: it sends a registry token
    /// as it is and otherwise prefers the refresh grant to Basic. `auth`, when present,
    /// overrides `username` and `password`, as in the docker CLI.
    fn auth_entry(&self, key: &str, value: &Value) -> Result<Option<Credential>, AuthError> {
        let path = format!("auths[\"{key}\"]");
        let Some(entry) = self.object_value(value, &path)? else {
            return Ok(None);
        };
        let field = |name: &str| self.string_value_of(entry, name, &path);

        let (username, password) = match field("auth")? {
            Some(encoded) => {
                let (username, password) =
                    decode_auth(&encoded).map_err(|problem| AuthError::InvalidAuthField {
                        origin: self.origin.clone(),
                        key: key.to_string(),
                        problem,
                    })?;
                (Some(username), Some(password).filter(|p| !p.is_empty()))
            }
            None => (field("username")?, field("password")?),
        };

        if let Some(token) = field("registrytoken")? {
            return Ok(Some(Credential::RegistryToken(Secret::new(token))));
        }
        if let Some(token) = field("identitytoken")? {
            return Ok(Some(Credential::IdentityToken {
                username: username.unwrap_or_default(),
                token: Secret::new(token),
            }));
        }
        match (username, password) {
            (Some(username), Some(password)) => Ok(Some(Credential::Basic {
                username,
                password: Secret::new(password),
            })),
            _ => Ok(None),
        }
    }

    /// Returns the top-level object `name`. Absent and `null` give `None`.
    fn object_field<'v>(
        &self,
        root: &'v Map<String, Value>,
        name: &str,
    ) -> Result<Option<&'v Map<String, Value>>, AuthError> {
        match lookup(root, name) {
            Some(value) => self.object_value(value, name),
            None => Ok(None),
        }
    }

    fn object_value<'v>(
        &self,
        value: &'v Value,
        path: &str,
    ) -> Result<Option<&'v Map<String, Value>>, AuthError> {
        match value {
            Value::Null => Ok(None),
            Value::Object(object) => Ok(Some(object)),
            _ => Err(self.wrong_type(path, "a JSON object")),
        }
    }

    /// Returns the string at `name` in `entry`. Absent, `null` and empty give `None`.
    fn string_value_of(
        &self,
        entry: &Map<String, Value>,
        name: &str,
        entry_path: &str,
    ) -> Result<Option<String>, AuthError> {
        match lookup(entry, name) {
            Some(value) => self.string_value(value, &format!("{entry_path}.{name}")),
            None => Ok(None),
        }
    }

    fn string_value(&self, value: &Value, path: &str) -> Result<Option<String>, AuthError> {
        match value {
            Value::Null => Ok(None),
            Value::String(text) if text.is_empty() => Ok(None),
            Value::String(text) => Ok(Some(text.clone())),
            _ => Err(self.wrong_type(path, "a string")),
        }
    }

    fn wrong_type(&self, path: &str, expected: &'static str) -> AuthError {
        AuthError::InvalidConfigValue {
            origin: self.origin.clone(),
            path: path.to_string(),
            expected,
        }
    }

    /// Accepts the suffix of a `docker-credential-*` program: ASCII letters, digits, `-`, `_`
    /// and `.`, not starting with `.`. This keeps the name from reaching outside the search
    /// path, as `../../bin/sh` would.
    fn validate_helper_name(&self, name: &str, field: &str) -> Result<(), AuthError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let problem = if name.starts_with('.') {
            Some("a helper name must not start with `.`")
        } else if !name.chars().all(allowed) {
            Some("a helper name may contain only ASCII letters, digits, `-`, `_` and `.`")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(AuthError::InvalidHelperName {
                origin: self.origin.clone(),
                field: field.to_string(),
                name: name.to_string(),
                problem,
            }),
            None => Ok(()),
        }
    }
}

/// Looks `name` up in `object`: the exact spelling first, else the first key that equals it
/// without regard to ASCII case.
fn lookup<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    if let Some(value) = object.get(name) {
        return Some(value);
    }
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Decodes an `auth` field into username and password, split at the first `:`.
///
/// Line breaks inside the base64 are skipped, as Go's decoder does, because `base64` without
/// `-w0` wraps its output at 76 characters. Errors never include the value.
fn decode_auth(encoded: &str) -> Result<(String, String), &'static str> {
    let compact: String = encoded
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let bytes = AUTH_BASE64
        .decode(compact.as_bytes())
        .map_err(|_| "it is not valid base64")?;
    let decoded = String::from_utf8(bytes).map_err(|_| "the decoded value is not UTF-8")?;
    let Some((username, password)) = decoded.split_once(':') else {
        return Err("the decoded value has no `:` between username and password");
    };
    if username.is_empty() {
        return Err("the username before `:` is empty");
    }
    Ok((username.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests;
