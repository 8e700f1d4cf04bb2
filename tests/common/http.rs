//! A minimal blocking HTTP client for probing registries and the token issuer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::HeaderMap;

/// Options for one request. The client never uses a proxy, whatever the environment sets.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    /// PEM file with the only CA certificates to trust for `https` URLs.
    pub ca_file: Option<PathBuf>,
    /// User name and password sent as HTTP Basic credentials.
    pub basic_auth: Option<(String, String)>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Time-out of the whole request; 30 seconds when `None`.
    pub timeout: Option<Duration>,
}

impl HttpOptions {
    pub fn with_ca_file(ca_file: Option<&Path>) -> Self {
        Self {
            ca_file: ca_file.map(Path::to_path_buf),
            ..Self::default()
        }
    }

    pub fn with_basic_auth(username: &str, password: &str) -> Self {
        Self {
            basic_auth: Some((username.to_owned(), password.to_owned())),
            ..Self::default()
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl HttpResponse {
    /// Returns a header's value, or `None` when it is missing or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Parses the body as JSON, panicking with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("response body is not JSON ({error}): {}", self.body))
    }
}

/// Sends a GET request. Connection and TLS errors are returned, HTTP error statuses are not.
pub fn http_get(url: &str, options: &HttpOptions) -> Result<HttpResponse, reqwest::Error> {
    send(url, options, None)
}

/// Sends a POST request with an `application/x-www-form-urlencoded` body.
pub fn http_post_form(
    url: &str,
    options: &HttpOptions,
    form: &[(&str, &str)],
) -> Result<HttpResponse, reqwest::Error> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    send(url, options, Some(form))
}

fn send(
    url: &str,
    options: &HttpOptions,
    form: Option<Vec<(String, String)>>,
) -> Result<HttpResponse, reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("failed to build a Tokio runtime for an HTTP request");
    runtime.block_on(async {
        let client = build_client(options)?;
        let mut request = match &form {
            Some(form) => client.post(url).form(form),
            None => client.get(url),
        };
        if let Some((username, password)) = &options.basic_auth {
            request = request.basic_auth(username, Some(password));
        }
        for (name, value) in &options.headers {
            request = request.header(name, value);
        }

        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    })
}

fn build_client(options: &HttpOptions) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(options.timeout.unwrap_or(Duration::from_secs(30)))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca_file) = &options.ca_file {
        let pem = std::fs::read(ca_file)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", ca_file.display()));
        let certificate = reqwest::Certificate::from_pem(&pem)?;
        builder = builder.tls_certs_only([certificate]);
    }
    builder.build()
}
