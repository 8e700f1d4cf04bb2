//! Registry requests for manifests, configs and layer blobs, with retries and size caps.
//!
//! oci-client 0.18 reads manifest bodies whole and never retries, so the scanner uses it only
//! to authenticate and sends these GET requests itself with reqwest. Each request is retried
//! on HTTP 408, 429 and 5xx, on connection errors and on time-outs, with exponential backoff
//! and jitter or the registry's `Retry-After` (see [`RetryPolicy`]). A layer blob is retried
//! only until its first byte goes to the tar walk, which cannot rewind.

mod blob;
mod retry;

pub use retry::RetryPolicy;

use super::BlobReader;
use crate::error::{ScanError, Stage};
use crate::image::{self, Descriptor};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Maximum number of redirects followed for one request. S3 and CDN redirects take one.
pub const MAX_REDIRECTS: usize = 5;

/// Maximum number of bytes of an error response read for the registry's error codes.
const MAX_ERROR_BODY_BYTES: usize = 16 << 10;

/// Returns the redirect policy for registry requests: at most [`MAX_REDIRECTS`] hops, and an
/// error on a URL visited before. reqwest drops `Authorization` when a redirect leaves the
/// scheme, host or port, so credentials never reach a CDN or storage host.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().contains(attempt.url()) {
            let looped = format!(
                "redirect loop: {} redirects to a URL already visited",
                authority(attempt.url())
            );
            attempt.error(looped)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The `Authorization` header for registry requests, and the secrets it contains so that
/// text from the registry can be redacted before it is shown.
pub struct Credentials {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    header: tokio::sync::RwLock<Option<HeaderValue>>,
    /// Whether the header contains a token from the registry's token service, which can be
    /// requested again when the registry rejects it as expired.
    renewable: bool,
    secrets: std::sync::Mutex<Vec<String>>,
}

impl Credentials {
    /// Authenticates through oci-client: a token-auth registry gets a bearer token from its
    /// token service, a Basic registry the user name and password.
    pub async fn authenticate(
        client: Client,
        reference: Reference,
        auth: RegistryAuth,
    ) -> Result<Self, OciDistributionError> {
        let token = client
            .auth(&reference, &auth, RegistryOperation::Pull)
            .await?;
        let mut secrets = Vec::new();
        let renewable = token.is_some() && !matches!(auth, RegistryAuth::Bearer(_));
        let header = match (&token, &auth) {
            (Some(token), _) => bearer_header(token, &mut secrets),
            (None, RegistryAuth::Basic(username, password)) => {
                let pair = format!("{username}:{password}");
                let encoded = BASE64.encode(&pair);
                let header = HeaderValue::from_str(&format!("Basic {encoded}")).ok();
                secrets.extend([password.clone(), pair, encoded]);
                header
            }
            (None, RegistryAuth::Bearer(token)) => bearer_header(token, &mut secrets),
            (None, RegistryAuth::Anonymous) => None,
        };
        Ok(Credentials {
            client,
            reference,
            auth,
            header: tokio::sync::RwLock::new(header.map(sensitive)),
            renewable,
            secrets: std::sync::Mutex::new(secrets),
        })
    }

    async fn header(&self) -> Option<HeaderValue> {
        self.header.read().await.clone()
    }

    /// Requests a new token from the token service. Returns whether a new one was stored.
    async fn renew(&self) -> bool {
        if !self.renewable {
            return false;
        }
        match self
            .client
            .auth(&self.reference, &self.auth, RegistryOperation::Pull)
            .await
        {
            Ok(Some(token)) => {
                let header = {
                    let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
                    bearer_header(&token, &mut secrets)
                };
                *self.header.write().await = header.map(sensitive);
                tracing::debug!("requested a new registry token after HTTP 401");
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "requesting a new registry token after HTTP 401 failed");
                false
            }
        }
    }

    /// Replaces every credential in `text` with `<redacted>`. Registry error bodies and
    /// messages are shown to the user, and a registry may echo what it was sent.
    // NOTE: secrets shorter than 4 characters are not redacted, because replacing them would
    // garble ordinary words.
    fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut redacted = text.to_string();
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            redacted = redacted.replace(secret.as_str(), "<redacted>");
        }
        redacted
    }
}

fn bearer_header(token: &str, secrets: &mut Vec<String>) -> Option<HeaderValue> {
    secrets.push(token.to_string());
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// Settings of a [`Fetcher`]: the registry, repository, credentials, time-out and retries.
pub struct FetcherSettings {
    pub http: reqwest::Client,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host that requests go to, `index.docker.io` for Docker Hub.
    pub api_host: String,
    /// The registry as the reference names it, for messages.
    pub host: String,
    pub repository: String,
    /// Time-out for each read, as for connecting.
    pub timeout: Duration,
    pub policy: RetryPolicy,
    pub credentials: Credentials,
}

/// Sends the GET requests of one scan to one repository.
pub struct Fetcher {
    settings: FetcherSettings,
}

/// The kind of document that a request fetches, for its messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Config,
    Layer,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Config => "config",
            Kind::Layer => "layer blob",
        }
    }
}

/// One GET request and what it is for.
struct Request<'a> {
    stage: &'a Stage,
    kind: Kind,
    url: String,
    /// The URL path, for messages.
    path: String,
    accept: Option<String>,
}

/// A failed attempt.
enum Failure {
    /// A failure that may not recur on another attempt: HTTP 408, 429 or 5xx, a connection
    /// error, a time-out, or a body that broke before any of it was used.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// A failure that ends the scan.
    Final(ScanError),
}

impl Fetcher {
    pub fn new(settings: FetcherSettings) -> Self {
        Fetcher { settings }
    }

    /// Fetches the manifest or index that `reference` (a tag or digest) names, and returns its
    /// bytes and digest. A body over [`image::MAX_MANIFEST_BYTES`] is rejected from its
    /// `Content-Length`, or once that many bytes arrived, before it is read whole. A digest
    /// `reference` is checked against the bytes.
    pub async fn fetch_manifest(&self, reference: &str) -> Result<(Vec<u8>, String), ScanError> {
        let stage = Stage::Manifest;
        let request = self.request(&stage, Kind::Manifest, "manifests", reference);
        let body = self
            .with_retries(&request, || {
                self.fetch_document(&request, image::MAX_MANIFEST_BYTES)
            })
            .await?;
        // Tags cannot contain `:`, so a reference with one is a digest.
        if reference.contains(':') {
            image::verify_digest(&body, reference).map_err(|e| {
                ScanError::pull(
                    stage,
                    format!(
                        "the manifest from {}: {e}; the registry or a proxy altered it",
                        self.settings.host
                    ),
                )
            })?;
        }
        let digest = sha256_digest(&body);
        Ok((body, digest))
    }

    /// Fetches the config blob, capped at [`image::MAX_CONFIG_BYTES`], and checks its digest.
    pub async fn fetch_config(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ScanError> {
        let stage = Stage::Config;
        let request = self.request(&stage, Kind::Config, "blobs", &descriptor.digest);
        let body = self
            .with_retries(&request, || {
                self.fetch_document(&request, image::MAX_CONFIG_BYTES)
            })
            .await?;
        image::verify_digest(&body, &descriptor.digest).map_err(|e| {
            ScanError::pull(
                stage,
                format!("the config from {}: {e}", self.settings.host),
            )
        })?;
        Ok(body)
    }

    /// Opens a layer blob as a stream of exactly `descriptor.size` bytes. The request is
    /// retried until the first byte arrives. The stream checks the digest at its end, so the
    /// layer walk does not hash it again.
    pub async fn open_blob(
        &self,
        descriptor: &Descriptor,
        stage: Stage,
    ) -> Result<BlobReader, ScanError> {
        let size = u64::try_from(descriptor.size).map_err(|_| {
            ScanError::metadata(
                stage.clone(),
                format!(
                    "the manifest gives the layer a negative size, {}",
                    descriptor.size
                ),
            )
        })?;
        let request = self.request(&stage, Kind::Layer, "blobs", &descriptor.digest);
        let (response, first_chunk) = self
            .with_retries(&request, || self.start_blob(&request, size))
            .await?;
        let source = self.responding_host(&response);
        Ok(blob::reader(
            response,
            first_chunk,
            blob::ExpectedBlob {
                size,
                digest: descriptor.digest.clone(),
                timeout: self.settings.timeout,
            },
            source,
        ))
    }

    fn request<'a>(
        &self,
        stage: &'a Stage,
        kind: Kind,
        endpoint: &str,
        reference: &str,
    ) -> Request<'a> {
        let path = format!("/v2/{}/{endpoint}/{reference}", self.settings.repository);
        let accept = (kind == Kind::Manifest).then(|| image::ACCEPTED_MANIFEST_TYPES.join(", "));
        Request {
            stage,
            kind,
            url: format!(
                "{}://{}{path}",
                self.settings.scheme, self.settings.api_host
            ),
            path,
            accept,
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry policy stops it.
    async fn with_retries<T, F, Fut>(
        &self,
        request: &Request<'_>,
        mut attempt: F,
    ) -> Result<T, ScanError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut waited = Duration::ZERO;
        let mut retry = 0;
        loop {
            let (message, retry_after) = match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient {
                    message,
                    retry_after,
                }) => (message, retry_after),
            };
            let wait = match self.settings.policy.next_wait(retry, retry_after, waited) {
                Ok(wait) => wait,
                Err(reason) => {
                    return Err(ScanError::pull(
                        request.stage.clone(),
                        format!(
                            "{message}; {reason}; the registry or the network is failing, so \
                             try again later"
                        ),
                    ));
                }
            };
            tracing::warn!(
                stage = %request.stage,
                registry = %self.settings.host,
                attempt = retry + 1,
                wait_ms = wait.as_millis() as u64,
                "{message}; retrying"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
            retry += 1;
        }
    }

    /// Sends the request with the credentials. A 401 for a token from the token service
    /// requests a new token and sends the request once more.
    async fn send(&self, request: &Request<'_>) -> Result<reqwest::Response, Failure> {
        let mut renewed = false;
        loop {
            let mut builder = self.settings.http.get(&request.url);
            if let Some(accept) = &request.accept {
                builder = builder.header(ACCEPT, accept);
            }
            if let Some(header) = self.settings.credentials.header().await {
                builder = builder.header(AUTHORIZATION, header);
            }
            tracing::debug!(path = %request.path, registry = %self.settings.host, "GET");
            let response = builder
                .send()
                .await
                .map_err(|e| self.send_failure(request, e))?;
            if response.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && self.settings.credentials.renew().await
            {
                renewed = true;
                continue;
            }
            return self.check_status(request, response).await;
        }
    }

    fn send_failure(&self, request: &Request<'_>, error: reqwest::Error) -> Failure {
        let host = &self.settings.host;
        let is_redirect = error.is_redirect();
        let is_timeout = error.is_timeout();
        let cause = self
            .settings
            .credentials
            .redact(&chain(&error.without_url()));
        if is_redirect {
            return Failure::Final(ScanError::pull(
                request.stage.clone(),
                format!(
                    "GET {} to {host} failed: {cause}; the registry's redirects do not end, so \
                     check the registry or the proxy in front of it",
                    request.path
                ),
            ));
        }
        let message = if is_timeout {
            format!(
                "{host} sent no response to GET {} within {} s (COMPLIANCE_TIMEOUT)",
                request.path,
                self.settings.timeout.as_secs()
            )
        } else {
            format!("GET {} to {host} failed: {cause}", request.path)
        };
        Failure::Transient {
            message,
            retry_after: None,
        }
    }

    /// Passes a 200 response and turns any other status into a failure that names the host,
    /// the status and the registry's error codes.
    async fn check_status(
        &self,
        request: &Request<'_>,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, Failure> {
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response);
        }
        let responder = self.responding_host(&response);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry::parse_retry_after(value, SystemTime::now()));
        let codes = self.error_codes(response).await;
        let summary = format!(
            "{responder} returned HTTP {status} for GET {}{codes}",
            request.path
        );
        let host = &self.settings.host;
        let advice = match status.as_u16() {
            408 | 429 | 500..=599 => {
                return Err(Failure::Transient {
                    message: summary,
                    retry_after,
                });
            }
            401 => format!(
                "check the credentials for {host} in DOCKER_AUTH_CONFIG, or give some if there \
                 are none"
            ),
            403 => format!(
                "check that the credentials may pull {}",
                self.settings.repository
            ),
            404 if request.kind == Kind::Manifest => {
                "check the repository name and the tag or digest".to_string()
            }
            404 => format!(
                "the registry does not have the {} that the manifest lists",
                request.kind.noun()
            ),
            300..=399 => "the redirect could not be followed".to_string(),
            _ => "see the registry's log".to_string(),
        };
        Err(Failure::Final(ScanError::pull(
            request.stage.clone(),
            format!("{summary}; {advice}"),
        )))
    }

    /// Returns ` (CODE: message; …)` from a registry error body, or an empty string. The
    /// body is read up to [`MAX_ERROR_BODY_BYTES`] within the time-out.
    async fn error_codes(&self, mut response: reqwest::Response) -> String {
        let mut body = Vec::new();
        let read = async {
            while body.len() < MAX_ERROR_BODY_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(self.settings.timeout, read).await;

        #[derive(serde::Deserialize)]
        struct Envelope {
            errors: Vec<RegistryError>,
        }
        #[derive(serde::Deserialize)]
        struct RegistryError {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
            return String::new();
        };
        let codes: Vec<String> = envelope
            .errors
            .iter()
            .take(3)
            .map(|e| {
                let text = format!("{}: {}", truncate(&e.code, 50), truncate(&e.message, 200));
                self.settings.credentials.redact(&text)
            })
            .collect();
        if codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", codes.join("; "))
        }
    }

    /// Reads a whole manifest or config body of at most `limit` bytes.
    async fn fetch_document(&self, request: &Request<'_>, limit: u64) -> Result<Vec<u8>, Failure> {
        let mut response = self.send(request).await?;
        let noun = request.kind.noun();
        let responder = self.responding_host(&response);
        let too_large = |size: String| {
            Failure::Final(ScanError::metadata(
                request.stage.clone(),
                format!(
                    "{responder} sent a {noun} of {size} for GET {}, over the limit of {limit} \
                     bytes; the scanner does not read larger documents",
                    request.path
                ),
            ))
        };
        if let Some(length) = response.content_length()
            && length > limit
        {
            return Err(too_large(format!("{length} bytes (Content-Length)")));
        }
        let mut body = Vec::new();
        loop {
            let chunk = tokio::time::timeout(self.settings.timeout, response.chunk()).await;
            let received = body.len();
            let chunk = match chunk {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return Ok(body),
                Ok(Err(error)) if !error.is_timeout() => {
                    let cause = self
                        .settings
                        .credentials
                        .redact(&chain(&error.without_url()));
                    return Err(Failure::Transient {
                        message: format!(
                            "reading the {noun} from {responder} failed after {received} bytes: \
                             {cause}"
                        ),
                        retry_after: None,
                    });
                }
                Ok(Err(_)) | Err(_) => {
                    return Err(Failure::Transient {
                        message: format!(
                            "{responder} sent no data for {} s (COMPLIANCE_TIMEOUT) after \
                             {received} bytes of the {noun}",
                            self.settings.timeout.as_secs()
                        ),
                        retry_after: None,
                    });
                }
            };
            if (received + chunk.len()) as u64 > limit {
                return Err(too_large(format!("more than {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
    }

    /// Sends a blob request and waits for the first bytes of the body, so that a failure
    /// before any byte reached the tar walk can still be retried.
    async fn start_blob(
        &self,
        request: &Request<'_>,
        size: u64,
    ) -> Result<(reqwest::Response, bytes::Bytes), Failure> {
        let mut response = self.send(request).await?;
        let responder = self.responding_host(&response);
        if let Some(length) = response.content_length()
            && length != size
        {
            return Err(Failure::Final(ScanError::pull(
                request.stage.clone(),
                format!(
                    "{responder} sent {length} bytes (Content-Length) for a blob that the \
                     manifest gives {size} bytes; the registry's blob does not match the manifest"
                ),
            )));
        }
        if size == 0 {
            return Ok((response, bytes::Bytes::new()));
        }
        loop {
            let chunk = tokio::time::timeout(self.settings.timeout, response.chunk()).await;
            let message = match chunk {
                Ok(Ok(Some(chunk))) if chunk.is_empty() => continue,
                Ok(Ok(Some(chunk))) => return Ok((response, chunk)),
                Ok(Ok(None)) => format!("{responder} ended the blob before its first byte"),
                Ok(Err(error)) if !error.is_timeout() => {
                    let cause = self
                        .settings
                        .credentials
                        .redact(&chain(&error.without_url()));
                    format!(
                        "reading the blob from {responder} failed before its first byte: {cause}"
                    )
                }
                Ok(Err(_)) | Err(_) => format!(
                    "{responder} sent no data for {} s (COMPLIANCE_TIMEOUT) before the first \
                     byte of the blob",
                    self.settings.timeout.as_secs()
                ),
            };
            return Err(Failure::Transient {
                message,
                retry_after: None,
            });
        }
    }

    /// Returns the registry host, or the host that a redirect led to and where it came from.
    fn responding_host(&self, response: &reqwest::Response) -> String {
        let host = &self.settings.host;
        let final_authority = authority(response.url());
        if final_authority == self.settings.api_host {
            host.clone()
        } else {
            format!("{final_authority} (redirected from {host})")
        }
    }
}

/// Returns `host` or `host:port` of `url`; never its path or query, which for a pre-signed
/// storage URL contain a signature.
fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Joins an error and its sources with `: `.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper and reqwest often repeat the inner message in the outer one.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Returns at most `max_chars` characters of `text`, with `…` when it was cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}
