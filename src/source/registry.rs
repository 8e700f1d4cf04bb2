//! Reading images from a registry through oci-client, with the docker config's credentials.

use super::{BlobReader, ResolvedImage, SourceOptions};
use crate::auth::{self, Credential};
use crate::error::{ScanError, Stage};
use crate::image::{
    self, ACCEPTED_MANIFEST_TYPES, Descriptor, Manifest, ManifestDocument, Platform,
    parse_manifest_document,
};
use crate::reference::RegistryRef;
use futures_util::TryStreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

/// A registry connection for one repository.
pub struct RegistrySource {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    parsed: RegistryRef,
}

impl RegistrySource {
    /// Resolves credentials and authenticates, so that auth failures surface with their cause.
    pub async fn open(parsed: &RegistryRef, options: &SourceOptions) -> Result<Self, ScanError> {
        let plain_http = parsed.is_loopback()
            || options
                .insecure_registries
                .iter()
                .any(|r| r == &parsed.registry);
        let extra_roots = read_ca_file(options)?;
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::HttpsExcept(vec![parsed.registry.clone()])
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: extra_roots.clone(),
            platform_resolver: None,
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            user_agent: concat!("image-compliance-scanner/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::new(config);
        let reference = to_client_reference(parsed);
        let scheme = if plain_http { "http" } else { "https" };
        let auth = registry_auth(parsed, options, &extra_roots, scheme).await?;
        let host = parsed.registry.clone();
        client
            .auth(&reference, &auth, RegistryOperation::Pull)
            .await
            .map_err(|e| ScanError::pull(Stage::Auth, describe(&e, &host)))?;
        Ok(RegistrySource {
            client,
            reference,
            auth,
            parsed: parsed.clone(),
        })
    }

    /// Returns the registry host.
    pub fn host(&self) -> &str {
        &self.parsed.registry
    }

    /// Reads the manifest, choosing the platform from an index, then the config.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage, ScanError> {
        let (bytes, digest) = self.pull_manifest(&self.reference).await?;
        let document = parse_manifest_document(&bytes, None)
            .map_err(|e| ScanError::metadata(Stage::Manifest, e))?;
        let (manifest, manifest_digest) = match document {
            ManifestDocument::Image(manifest) => (manifest, digest),
            ManifestDocument::Index(index) => {
                let chosen = image::select_platform(&index, platform)
                    .map_err(|e| ScanError::pull(Stage::Manifest, e))?;
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

    async fn pull_manifest(
        &self,
        reference: &Reference,
    ) -> Result<(bytes::Bytes, String), ScanError> {
        let host = self.host().to_string();
        self.client
            .pull_manifest_raw(reference, &self.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| ScanError::pull(Stage::Manifest, describe(&e, &host)))
    }

    async fn pull_platform_manifest(
        &self,
        chosen: &Descriptor,
        platform: &Platform,
    ) -> Result<(Manifest, String), ScanError> {
        let by_digest = self.reference.clone_with_digest(chosen.digest.clone());
        let (bytes, digest) = self.pull_manifest(&by_digest).await?;
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
        let host = self.host().to_string();
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
        let mut reader = self.open_blob(descriptor, Stage::Config).await?;
        let mut bytes = Vec::new();
        (&mut reader)
            .take(image::MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ScanError::pull(Stage::Config, format!("reading from {host}: {e}")))?;
        image::verify_digest(&bytes, &descriptor.digest)
            .map_err(|e| ScanError::pull(Stage::Config, e))?;
        Ok(bytes)
    }

    /// Opens a blob as a stream. oci-client checks the digest when the stream ends, and the
    /// layer walk checks it again.
    pub async fn open_blob(
        &self,
        descriptor: &Descriptor,
        stage: Stage,
    ) -> Result<BlobReader, ScanError> {
        let host = self.host().to_string();
        let stream = self
            .client
            .pull_blob_stream(&self.reference, descriptor.digest.as_str())
            .await
            .map_err(|e| ScanError::pull(stage.clone(), describe(&e, &host)))?;
        let bytes = stream.stream.map_err(std::io::Error::other);
        Ok(Box::new(StreamReader::new(bytes)))
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

/// Turns the docker config's credential into what oci-client sends, exchanging an identity
/// token for an access token first.
async fn registry_auth(
    parsed: &RegistryRef,
    options: &SourceOptions,
    extra_roots: &[Certificate],
    scheme: &str,
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
    match credential {
        Credential::Anonymous => Ok(RegistryAuth::Anonymous),
        Credential::Basic { username, password } => {
            Ok(RegistryAuth::Basic(username, password.expose().to_string()))
        }
        Credential::RegistryToken(token) => Ok(RegistryAuth::Bearer(token.expose().to_string())),
        Credential::IdentityToken { token, .. } => {
            let http = http_client(extra_roots, options)?;
            let base_url = format!("{scheme}://{}", parsed.registry);
            let challenge = auth::fetch_challenge(&http, &base_url)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| {
                    fail(format!(
                        "{} offers no bearer token service, so its identity token cannot be \
                         used; give a username and password instead",
                        parsed.registry
                    ))
                })?;
            let scope = format!("repository:{}:pull", parsed.repository);
            let access = auth::exchange_identity_token(&http, &challenge, &scope, &token)
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(RegistryAuth::Bearer(access.expose().to_string()))
        }
    }
}

fn http_client(
    extra_roots: &[Certificate],
    options: &SourceOptions,
) -> Result<reqwest::Client, ScanError> {
    let mut builder = reqwest::Client::builder()
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

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}
