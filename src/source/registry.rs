//! Reading images from a registry with the docker config's credentials. oci-client
//! authenticates, and [`super::fetch`] sends the manifest and blob requests.

use super::fetch::{self, Credentials, Fetcher, FetcherSettings, RetryPolicy, chain, truncate};
use super::{BlobReader, ResolvedImage, SourceOptions};
use crate::auth::{self, AuthError, BearerChallenge, Credential, Secret};
use crate::error::{ScanError, Stage};
use crate::image::{
    self, Descriptor, Manifest, ManifestDocument, Platform, parse_manifest_document,
};
use crate::reference::RegistryRef;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// A registry connection for one repository.
pub struct RegistrySource {
    fetcher: Fetcher,
    reference: Reference,
    parsed: RegistryRef,
}

impl RegistrySource {
    /// Chooses HTTPS or plain HTTP, resolves credentials and authenticates, so that
    /// connection and auth failures surface with their cause.
    pub async fn open(parsed: &RegistryRef, options: &SourceOptions) -> Result<Self, ScanError> {
        let extra_roots = read_ca_file(options)?;
        let http = http_client(&extra_roots, options)?;
        let reference = to_client_reference(parsed);
        // The host that oci-client sends requests to, `index.docker.io` for Docker Hub.
        let api_host = reference.resolve_registry().to_string();
        let may_use_plain_http = parsed.is_loopback()
            || options
                .insecure_registries
                .iter()
                .any(|r| r == &parsed.registry);
        let endpoint = probe_endpoint(&http, &api_host, may_use_plain_http).await?;

        let protocol = match endpoint.scheme {
            Scheme::Https => ClientProtocol::Https,
            Scheme::Http => ClientProtocol::HttpsExcept(vec![api_host.clone()]),
        };
        let config = ClientConfig {
            protocol,
            extra_root_certificates: extra_roots,
            platform_resolver: None,
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            user_agent: concat!("image-compliance-scanner/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::new(config);

        let auth = registry_auth(parsed, options, &http, &endpoint).await?;
        let host = parsed.registry.clone();
        let credentials = Credentials::authenticate(client, reference.clone(), auth)
            .await
            .map_err(|e| ScanError::pull(Stage::Auth, describe(&e, &host)))?;
        let fetcher = Fetcher::new(FetcherSettings {
            http,
            scheme: endpoint.scheme.as_str(),
            api_host,
            host,
            repository: reference.repository().to_string(),
            timeout: options.timeout,
            policy: RetryPolicy::with_retries(options.retries),
            credentials,
        });
        Ok(RegistrySource {
            fetcher,
            reference,
            parsed: parsed.clone(),
        })
    }

    /// Returns the registry host.
    pub fn host(&self) -> &str {
        &self.parsed.registry
    }

    /// Reads the manifest, choosing the platform from an index, then the config.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ScanError> {
        let reference = match self.reference.digest() {
            Some(digest) => digest,
            None => self.reference.tag().unwrap_or("latest"),
        };
        let (bytes, digest) = self.fetcher.fetch_manifest(reference).await?;
        let document = parse_manifest_document(&bytes, None)
            .map_err(|e| ScanError::metadata(Stage::Manifest, e))?;
        let (manifest, manifest_digest) = match document {
            ManifestDocument::Image(manifest) => (manifest, digest),
            ManifestDocument::Index(index) => {
                let chosen = image::select_platform(&index, platform).map_err(|e| {
                    ScanError::pull(Stage::Manifest, format!("{}: {e}", self.host()))
                })?;
                self.pull_platform_manifest(chosen, platform).await?
            }
        };
        let config_bytes = self.read_config(&manifest.config).await?;
        let config = image::parse_config(&config_bytes)
            .map_err(|e| ScanError::metadata(Stage::Config, e))?;
        Ok(ResolvedImage {
            manifest_digest: Some(manifest_digest),
            manifest,
            config,
            tag: self.parsed.tag.clone(),
            pinned_digest: self.parsed.digest.clone(),
        })
    }

    async fn pull_platform_manifest(
        &self,
        chosen: &Descriptor,
        platform: &Platform,
    ) -> Result<(Manifest, String), ScanError> {
        let (bytes, digest) = self.fetcher.fetch_manifest(&chosen.digest).await?;
        match parse_manifest_document(&bytes, Some(&chosen.media_type)) {
            Ok(ManifestDocument::Image(manifest)) => Ok((manifest, digest)),
            Ok(ManifestDocument::Index(_)) => Err(ScanError::metadata(
                Stage::Manifest,
                format!(
                    "the index entry for {platform} ({}) is itself an index; nested indexes \
                     are not supported",
                    chosen.digest
                ),
            )),
            Err(e) => Err(ScanError::metadata(Stage::Manifest, e)),
        }
    }

    async fn read_config(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ScanError> {
        if descriptor.size < 0 || descriptor.size as u64 > image::MAX_CONFIG_BYTES {
            return Err(ScanError::metadata(
                Stage::Config,
                format!(
                    "the manifest gives the config a size of {} bytes; the limit is {}",
                    descriptor.size,
                    image::MAX_CONFIG_BYTES
                ),
            ));
        }
        self.fetcher.fetch_config(descriptor).await
    }

    /// Opens a layer blob as a stream. The layer walk checks its digest.
    pub async fn open_blob(
        &self,
        descriptor: &Descriptor,
        stage: Stage,
    ) -> Result<BlobReader, ScanError> {
        self.fetcher.open_blob(descriptor, stage).await
    }
}

fn to_client_reference(parsed: &RegistryRef) -> Reference {
    let registry = parsed.registry.clone();
    let repository = parsed.repository.clone();
    match (&parsed.tag, &parsed.digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag.clone(), digest.clone())
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.clone()),
        (tag, None) => Reference::with_tag(
            registry,
            repository,
            tag.clone().unwrap_or_else(|| "latest".to_string()),
        ),
    }
}

fn read_ca_file(options: &SourceOptions) -> Result<Vec<Certificate>, ScanError> {
    let Some(path) = &options.ca_file else {
        return Ok(Vec::new());
    };
    let data = std::fs::read(path).map_err(|e| ScanError::InvalidSetting {
        name: "COMPLIANCE_CA_FILE".to_string(),
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    Ok(vec![Certificate {
        encoding: CertificateEncoding::Pem,
        data,
    }])
}

/// Turns the docker config's credential into what oci-client sends. An identity token is
/// exchanged for an access token first, and a user name and password for a token-auth
/// registry are checked at its token service first.
async fn registry_auth(
    parsed: &RegistryRef,
    options: &SourceOptions,
    http: &reqwest::Client,
    endpoint: &Endpoint,
) -> Result<RegistryAuth, ScanError> {
    let fail = |e: String| ScanError::pull(Stage::Auth, e);
    let config =
        auth::load_config(options.auth_config.as_deref()).map_err(|e| fail(e.to_string()))?;
    let (credential, source) =
        auth::resolve_credential(&config, &parsed.registry, &parsed.repository)
            .await
            .map_err(|e| fail(e.to_string()))?;
    if let Some(source) = &source {
        tracing::debug!(registry = %parsed.registry, source = %source.0, "using credentials");
    }
    let source = source.map_or_else(|| "the docker config".to_string(), |s| s.0);
    match credential {
        Credential::Anonymous => Ok(RegistryAuth::Anonymous),
        Credential::Basic { username, password } => {
            if let Some(challenge) = &endpoint.challenge {
                check_token_credentials(http, challenge, parsed, &username, &password, &source)
                    .await?;
            }
            Ok(RegistryAuth::Basic(username, password.expose().to_string()))
        }
        Credential::RegistryToken(token) => Ok(RegistryAuth::Bearer(token.expose().to_string())),
        Credential::IdentityToken { token, .. } => {
            let challenge = endpoint.challenge.as_ref().ok_or_else(|| {
                fail(format!(
                    "{} offers no bearer token service, so the identity token from {source} \
                     cannot be used; give a username and password instead",
                    parsed.registry
                ))
            })?;
            let scope = format!("repository:{}:pull", parsed.repository);
            // NOTE: oci-client sends this access token until the scan ends and cannot renew
            // it, so a scan that outlives the token's lifetime fails with 401.
            let access = auth::exchange_identity_token(http, challenge, &scope, &token)
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(RegistryAuth::Bearer(access.expose().to_string()))
        }
    }
}

/// Requests a pull token with a user name and password from the registry's token service and
/// returns an error with the service's host and HTTP status when the service rejects them.
///
/// oci-client reports a rejection with the response body only. The token is dropped, because
/// oci-client requests its own and requests it again when it expires.
async fn check_token_credentials(
    http: &reqwest::Client,
    challenge: &BearerChallenge,
    parsed: &RegistryRef,
    username: &str,
    password: &Secret,
    source: &str,
) -> Result<(), ScanError> {
    let registry = &parsed.registry;
    // fetch_challenge accepts only a realm that is an http(s) URL with a host.
    let realm = reqwest::Url::parse(&challenge.realm).map_err(|e| {
        ScanError::pull(
            Stage::Auth,
            format!("{registry} names an invalid token service URL: {e}"),
        )
    })?;
    let host = realm.host_str().unwrap_or_default();
    let realm_host = match realm.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };

    let mut query = vec![("scope", format!("repository:{}:pull", parsed.repository))];
    if let Some(service) = &challenge.service {
        query.push(("service", service.clone()));
    }
    let response = http
        .get(realm)
        .query(&query)
        .basic_auth(username, Some(password.expose()))
        .send()
        .await
        .map_err(|e| {
            ScanError::pull(
                Stage::Auth,
                format!(
                    "the token request to {realm_host} for {registry} failed: {}; check that \
                     the token service is reachable",
                    chain(&e.without_url())
                ),
            )
        })?;

    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = if matches!(status.as_u16(), 401 | 403) {
        format!(
            "the token service at {realm_host} rejected the credentials for {registry} from \
             {source} with HTTP {status}; check the user name and password, and that the user \
             may pull {}",
            parsed.repository
        )
    } else {
        format!(
            "the token service at {realm_host} answered HTTP {status} to the token request for \
             {registry}; try again later, or check the token service"
        )
    };
    Err(ScanError::pull(Stage::Auth, message))
}

/// URL scheme used to reach a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// The scheme that reaches a registry, and the Bearer challenge of its `/v2/` if it sends one.
struct Endpoint {
    scheme: Scheme,
    challenge: Option<BearerChallenge>,
}

/// Chooses the scheme for `registry` by GETting `/v2/` without credentials.
///
/// HTTPS is tried first, as Docker does. With `may_use_plain_http` (a loopback registry, or one
/// in `COMPLIANCE_INSECURE_REGISTRIES`) the probe falls back to plain HTTP when the HTTPS
/// request fails and the port responds to a plain HTTP request with a status other than 400. TLS servers respond
/// to a plain HTTP request with 400, so a TLS registry whose certificate is not trusted gets
/// the certificate error instead of a fallback. Other registries never fall back.
async fn probe_endpoint(
    http: &reqwest::Client,
    registry: &str,
    may_use_plain_http: bool,
) -> Result<Endpoint, ScanError> {
    let https_error = match probe_scheme(http, registry, Scheme::Https).await {
        Ok(challenge) => {
            return Ok(Endpoint {
                scheme: Scheme::Https,
                challenge,
            });
        }
        Err(error) => error,
    };
    if !may_use_plain_http {
        return Err(unreachable_error(registry, &https_error, None));
    }
    match probe_scheme(http, registry, Scheme::Http).await {
        Ok(challenge) => {
            tracing::debug!(%registry, "HTTPS failed and plain HTTP works, so plain HTTP is used");
            Ok(Endpoint {
                scheme: Scheme::Http,
                challenge,
            })
        }
        Err(http_error) => Err(unreachable_error(registry, &https_error, Some(&http_error))),
    }
}

/// GETs `/v2/` with `scheme`. Returns the Bearer challenge when the server responds in that
/// scheme, and an error when the request fails or, for plain HTTP, the server responds 400.
async fn probe_scheme(
    http: &reqwest::Client,
    registry: &str,
    scheme: Scheme,
) -> Result<Option<BearerChallenge>, AuthError> {
    let base_url = format!("{}://{registry}", scheme.as_str());
    match auth::fetch_challenge(http, &base_url).await {
        Ok(challenge) => Ok(challenge),
        // The server speaks this scheme. The manifest request reports the unexpected status.
        Err(AuthError::ChallengeStatus { status, .. })
            if !(scheme == Scheme::Http && status == 400) =>
        {
            Ok(None)
        }
        Err(AuthError::InvalidChallenge { url, problem }) => {
            tracing::warn!(%url, %problem, "the registry's Bearer challenge is invalid, so it is ignored");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Builds the error for a registry that HTTPS, and plain HTTP where allowed, did not reach.
/// The plain HTTP failure is reported only when no server responded, because a 400 response
/// comes from a TLS server and then the HTTPS error is the one to fix.
fn unreachable_error(
    registry: &str,
    https_error: &AuthError,
    http_error: Option<&AuthError>,
) -> ScanError {
    let message = match http_error {
        Some(http_error @ AuthError::ChallengeRequest { .. }) => format!(
            "{registry} could not be reached over HTTPS ({}) or plain HTTP ({}); check the \
             host name and port",
            request_failure(https_error),
            request_failure(http_error)
        ),
        _ => format!(
            "{registry} could not be reached over HTTPS: {}; check the host name and port, and \
             set COMPLIANCE_CA_FILE when the registry's certificate comes from a private CA",
            request_failure(https_error)
        ),
    };
    ScanError::pull(Stage::Auth, message)
}

/// Returns the cause of a failed `/v2/` request without the advice that `AuthError` adds.
fn request_failure(error: &AuthError) -> String {
    match error {
        AuthError::ChallengeRequest { url, detail } => format!("GET {url}: {detail}"),
        other => other.to_string(),
    }
}

fn http_client(
    extra_roots: &[Certificate],
    options: &SourceOptions,
) -> Result<reqwest::Client, ScanError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!(
            "image-compliance-scanner/",
            env!("CARGO_PKG_VERSION")
        ))
        .redirect(fetch::redirect_policy())
        .connect_timeout(options.timeout)
        .read_timeout(options.timeout);
    for certificate in extra_roots {
        let parsed = reqwest::Certificate::from_pem(&certificate.data).map_err(|e| {
            ScanError::InvalidSetting {
                name: "COMPLIANCE_CA_FILE".to_string(),
                message: format!("not a PEM certificate: {e}"),
            }
        })?;
        builder = builder.add_root_certificate(parsed);
    }
    builder
        .build()
        .map_err(|e| ScanError::pull(Stage::Auth, format!("cannot set up the HTTP client: {e}")))
}

/// Describes an oci-client error with the registry host and status, without credentials.
fn describe(error: &OciDistributionError, host: &str) -> String {
    match error {
        OciDistributionError::AuthenticationFailure(reason) => format!(
            "the token service for {host} rejected the request: {}; check the entry for \
             {host} in DOCKER_AUTH_CONFIG",
            truncate(reason.trim(), 200)
        ),
        OciDistributionError::UnauthorizedError { url } => format!(
            "401 Unauthorized from {url}; check the credentials for {host} in DOCKER_AUTH_CONFIG"
        ),
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, truncate(&e.message, 200)))
                .collect();
            format!(
                "{host} answered {} for {url}; {}",
                codes.join("; "),
                hint_for(&codes)
            )
        }
        OciDistributionError::ServerError { code, url, message } => format!(
            "{host} answered HTTP {code} for {url}: {}",
            truncate(message.trim(), 200)
        ),
        OciDistributionError::RequestError(e) => {
            format!(
                "request to {host} failed: {}; check the host name, port and TLS",
                chain(e)
            )
        }
        OciDistributionError::DigestError(e) => {
            format!("content from {host} does not match its digest: {e}")
        }
        other => format!("{host}: {other}"),
    }
}

fn hint_for(codes: &[String]) -> &'static str {
    let joined = codes.join(" ");
    if joined.contains("Unknown") {
        "check the repository name and tag"
    } else if joined.contains("Denied") || joined.contains("Unauthorized") {
        "check that the credentials may pull this repository"
    } else {
        "see the registry's log"
    }
}
