//! Registry credentials from a docker `config.json`: parsing, key matching as the docker CLI
//! and GitLab Runner do it, credential helpers, and the identity-token exchange.
//!
//! # Where the config comes from
//! [`load_config_with`] reads the `DOCKER_AUTH_CONFIG` text when it is given and not blank.
//! Otherwise it reads `$DOCKER_CONFIG/config.json` when `DOCKER_CONFIG` is set, and
//! `$HOME/.docker/config.json` when it is not. A missing file gives an empty config.
//!
//! # Which credential is used
//! For a registry host `H` (with optional port) and repository path `R`, the first of these
//! that exists wins:
//! 1. the helper named by a matching `credHelpers` key;
//! 2. the best matching `auths` entry that carries credentials (a `registrytoken`, an
//!    `identitytoken`, or a non-empty username and password);
//! 3. the `credsStore` helper;
//! 4. anonymous access.
//!
//! A helper whose output is "credentials not found" gives anonymous access. The lookup does
//! not go on to the next step, which is how the docker CLI treats `credHelpers`.
//!
//! # How keys match
//! A key is read as `[scheme://]HOST[:PORT][/PATH]`. The scheme (`http://` or `https://`) is
//! ignored, and the host is compared without regard to case. `docker.io`, `index.docker.io`
//! and `registry-1.docker.io` all name Docker Hub. A `PATH` of `v1` or `v2` is an API version,
//! as in Docker Hub's key `https://index.docker.io/v1/`, so such a key covers the whole host.
//! Any other `PATH` is a repository prefix, as GitLab Runner reads it: `host/group` matches
//! `R = group/app` but not `R = groupware/app`. Among the keys that match, the key with the
//! longest path wins, so a project's key beats its group's key and both beat a host-wide key.
//! Between host-wide keys, the key that equals `H` as given wins (for Docker Hub, also
//! `https://index.docker.io/v1/`). Remaining ties go to the key that sorts first, so the choice
//! never depends on the order of the JSON object.

mod config;
mod error;
mod helper;
mod matching;
mod token;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::time::Duration;

pub use config::{ConfigSources, DockerConfig, load_config, load_config_with};
pub use error::{AuthError, ConfigOrigin};
pub use token::{BearerChallenge, exchange_identity_token, fetch_challenge};

use matching::Target;

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

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged for an access token at the realm.
    IdentityToken {
        username: String,
        token: Secret,
    },
    /// A bearer token sent as it is (`registrytoken`).
    RegistryToken(Secret),
}

/// Where the credential came from, for logs: the config key or helper name, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource(pub String);

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings for running credential helpers.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Directories searched for `docker-credential-*` programs, in `PATH` syntax. `None`
    /// searches the process's `PATH`.
    pub helper_search_path: Option<OsString>,
    /// Maximum run time of one helper call. A helper still running then is killed.
    pub helper_timeout: Duration,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            helper_search_path: None,
            helper_timeout: Duration::from_secs(30),
        }
    }
}

/// Chooses the credential for `repository` on `registry` (host with optional port), running
/// helpers with [`ResolveOptions::default`]. See [`resolve_credential_with`].
pub async fn resolve_credential(
    config: &DockerConfig,
    registry: &str,
    repository: &str,
) -> Result<(Credential, Option<CredentialSource>), AuthError> {
    resolve_credential_with(config, registry, repository, &ResolveOptions::default()).await
}

/// Chooses the credential for `repository` on `registry` (host with optional port) in the
/// order given in the module documentation. Returns the source with every credential except
/// [`Credential::Anonymous`].
///
/// Errors when a chosen helper is missing, fails, times out or prints invalid JSON.
pub async fn resolve_credential_with(
    config: &DockerConfig,
    registry: &str,
    repository: &str,
    options: &ResolveOptions,
) -> Result<(Credential, Option<CredentialSource>), AuthError> {
    let target = Target::new(registry, repository);
    let origin = config.origin();

    if let Some((key, name)) = matching::best_match(config.cred_helpers(), &target) {
        let source = format!("credHelpers[\"{key}\"] (docker-credential-{name}) in {origin}");
        return credential_from_helper(name, &target, options, source).await;
    }
    if let Some((key, credential)) = matching::best_match(config.auths_with_credentials(), &target)
    {
        let source = CredentialSource(format!("auths[\"{key}\"] in {origin}"));
        return Ok((credential.clone(), Some(source)));
    }
    if let Some(name) = config.creds_store() {
        let source = format!("credsStore (docker-credential-{name}) in {origin}");
        return credential_from_helper(name, &target, options, source).await;
    }
    Ok((Credential::Anonymous, None))
}

async fn credential_from_helper(
    name: &str,
    target: &Target,
    options: &ResolveOptions,
    source: String,
) -> Result<(Credential, Option<CredentialSource>), AuthError> {
    let server = target.helper_server_url();
    match helper::get_credential(name, &server, options).await? {
        Some(credential) => Ok((credential, Some(CredentialSource(source)))),
        None => {
            tracing::debug!(%server, %source, "credential helper has no credentials, so the pull is anonymous");
            Ok((Credential::Anonymous, None))
        }
    }
}
