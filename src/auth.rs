//! Registry credentials from a docker `config.json`: parsing, key matching as the docker CLI
//! and GitLab Runner do it, credential helpers, and the identity-token exchange.
// Owned by the auth helper; stub until then.

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Returns the secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`), exchanged for an access token at the realm.
    IdentityToken { username: String, token: Secret },
    /// A bearer token sent as it is (`registrytoken`).
    RegistryToken(Secret),
}

/// Parsed docker config: `auths`, `credHelpers` and `credsStore`.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {}

/// Where the credential came from, for logs: the config key or helper name, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource(pub String);

/// Loads the docker config: `DOCKER_AUTH_CONFIG` text if given, else
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, else an empty config.
pub fn load_config(auth_config_json: Option<&str>) -> Result<DockerConfig, String> {
    let _ = auth_config_json;
    Ok(DockerConfig {})
}

/// Chooses the credential for `repository` on `registry` (host with optional port).
pub async fn resolve_credential(
    config: &DockerConfig,
    registry: &str,
    repository: &str,
) -> Result<(Credential, Option<CredentialSource>), String> {
    let _ = (config, registry, repository);
    Ok((Credential::Anonymous, None))
}
