//! The registry's Bearer challenge and the OAuth2 refresh-token grant that turns a docker
//! identity token into an access token.

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::Secret;
use super::error::{AuthError, error_chain, json_problem, truncate_chars};

/// The `client_id` sent with the refresh-token grant.
const CLIENT_ID: &str = "image-compliance-scanner";

/// Maximum bytes read from a token service's response.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// Maximum characters of a token service's error details kept in a message.
const MAX_ERROR_DETAIL_CHARS: usize = 200;

/// Words of at least this many token characters are treated as possible tokens.
const MIN_TOKEN_LIKE_CHARS: usize = 24;

/// A registry's `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// URL of the token service.
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// GETs `{base_url}/v2/` and returns the registry's Bearer challenge. Returns `None` when the
/// registry responds with 2xx (no authentication needed) or with 401 without a Bearer
/// challenge (such as Basic only).
///
/// Errors on a transport failure, on any other status, and on a Bearer challenge without a
/// valid http(s) realm.
pub async fn fetch_challenge(
    http: &reqwest::Client,
    base_url: &str,
) -> Result<Option<BearerChallenge>, AuthError> {
    let url = version_check_url(base_url)?;
    let display_url = without_userinfo(&url);
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|error| AuthError::ChallengeRequest {
            url: display_url.clone(),
            detail: error_chain(&error.without_url()),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(None);
    }
    if status != StatusCode::UNAUTHORIZED {
        return Err(AuthError::ChallengeStatus {
            url: display_url,
            status: status.as_u16(),
        });
    }
    let headers = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE);
    for value in headers {
        let Ok(value) = value.to_str() else {
            continue;
        };
        if let Some(params) = bearer_params(value) {
            return challenge_from_params(params).map(Some).map_err(|problem| {
                AuthError::InvalidChallenge {
                    url: display_url,
                    problem,
                }
            });
        }
    }
    Ok(None)
}

/// Exchanges an identity token (an OAuth2 refresh token) for an access token at the
/// challenge's realm.
///
/// POSTs the form `grant_type=refresh_token`, `service`, `scope`, `client_id` and
/// `refresh_token`. An empty `scope` falls back to the challenge's scope. Accepts the access
/// token as `access_token` or `token` in the JSON response. Errors name the realm host and
/// HTTP status, with only the error codes and messages of the response, stripped of
/// token-like words.
pub async fn exchange_identity_token(
    http: &reqwest::Client,
    challenge: &BearerChallenge,
    scope: &str,
    token: &Secret,
) -> Result<Secret, AuthError> {
    let realm = realm_url(&challenge.realm).map_err(|problem| AuthError::InvalidChallenge {
        url: truncate_chars(&challenge.realm, MAX_ERROR_DETAIL_CHARS),
        problem,
    })?;
    let realm_host = host_label(&realm);
    let scope = if scope.is_empty() {
        challenge.scope.as_deref().unwrap_or_default()
    } else {
        scope
    };
    let form = refresh_form(challenge.service.as_deref(), scope, token);
    let request_error = |error: reqwest::Error| AuthError::TokenRequest {
        realm_host: realm_host.clone(),
        detail: error_chain(&error.without_url()),
    };

    let response = http
        .post(realm)
        .form(&form)
        .send()
        .await
        .map_err(request_error)?;
    let status = response.status();
    let body = read_body(response).await.map_err(request_error)?;

    if !status.is_success() {
        return Err(AuthError::TokenRejected {
            realm_host,
            status: status.as_u16(),
            detail: error_summary(&body.bytes),
        });
    }
    if body.truncated {
        return Err(AuthError::InvalidTokenResponse {
            realm_host,
            problem: format!("the response is larger than {MAX_TOKEN_RESPONSE_BYTES} bytes"),
        });
    }
    access_token(&realm_host, &body.bytes)
}

fn refresh_form<'a>(
    service: Option<&'a str>,
    scope: &'a str,
    token: &'a Secret,
) -> Vec<(&'static str, &'a str)> {
    let mut form = vec![("grant_type", "refresh_token")];
    if let Some(service) = service {
        form.push(("service", service));
    }
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    form.push(("client_id", CLIENT_ID));
    form.push(("refresh_token", token.expose()));
    form
}

/// Builds `{base_url}/v2/`, accepting `base_url` with or without a trailing `/`.
fn version_check_url(base_url: &str) -> Result<Url, AuthError> {
    let invalid = |problem: String| AuthError::InvalidRegistryUrl {
        url: truncate_chars(base_url, MAX_ERROR_DETAIL_CHARS),
        problem,
    };
    let url = Url::parse(&format!("{}/v2/", base_url.trim_end_matches('/')))
        .map_err(|error| invalid(error.to_string()))?;
    if !is_http(&url) {
        return Err(invalid("the scheme must be http or https".to_string()));
    }
    Ok(url)
}

/// Parses a realm and checks that it is an http(s) URL with a host.
// NOTE: an `http` realm is accepted even for an `https` registry, as the docker CLI does, so
// a registry that names such a realm gets the refresh token sent in clear text.
fn realm_url(realm: &str) -> Result<Url, String> {
    let url = Url::parse(realm).map_err(|error| format!("the realm is not a URL ({error})"))?;
    if !is_http(&url) {
        return Err("the realm's scheme must be http or https".to_string());
    }
    Ok(url)
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some()
}

/// Returns `host[:port]` of `url`, for messages.
fn host_label(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn without_userinfo(url: &Url) -> String {
    let mut redacted = url.clone();
    // Both setters fail only for URLs that cannot have userinfo, which then have none.
    let _ = redacted.set_password(None);
    let _ = redacted.set_username("");
    redacted.to_string()
}

/// A response body read up to [`MAX_TOKEN_RESPONSE_BYTES`].
struct Body {
    bytes: Vec<u8>,
    truncated: bool,
}

async fn read_body(mut response: reqwest::Response) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_TOKEN_RESPONSE_BYTES - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Body {
                bytes,
                truncated: true,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes,
        truncated: false,
    })
}

/// The token service's JSON response on success.
#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    token: Option<String>,
}

fn access_token(realm_host: &str, body: &[u8]) -> Result<Secret, AuthError> {
    let invalid = |problem: String| AuthError::InvalidTokenResponse {
        realm_host: realm_host.to_string(),
        problem,
    };
    let reply: TokenReply = serde_json::from_slice(body).map_err(|error| {
        invalid(format!(
            "{} at line {}, column {}",
            json_problem(&error),
            error.line(),
            error.column()
        ))
    })?;
    let non_empty = |value: Option<String>| value.filter(|text| !text.is_empty());
    non_empty(reply.access_token)
        .or_else(|| non_empty(reply.token))
        .map(Secret::new)
        .ok_or_else(|| invalid("it has neither `access_token` nor `token`".to_string()))
}

/// Summarizes an error response from its `errors[].code`, `errors[].message`, `error` and
/// `error_description` fields. Words that could be tokens are replaced, and the result is
/// capped. A body that is not JSON gives an empty summary, because it is never echoed.
fn error_summary(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let mut parts = Vec::new();
    let errors = value.get("errors").and_then(Value::as_array);
    for entry in errors.into_iter().flatten() {
        let fields = ["code", "message"].map(|name| entry.get(name).and_then(Value::as_str));
        let text: Vec<&str> = fields.into_iter().flatten().collect();
        if !text.is_empty() {
            parts.push(text.join(": "));
        }
    }
    for name in ["error", "error_description"] {
        if let Some(text) = value.get(name).and_then(Value::as_str) {
            parts.push(text.to_string());
        }
    }
    truncate_chars(
        &redact_token_like(&parts.join("; ")),
        MAX_ERROR_DETAIL_CHARS,
    )
}

/// Replaces each whitespace-separated word that could be a token with `<redacted>`: a JWT
/// (containing `eyJ`, the base64 of `{"`) or a long run of base64 and URL-safe characters.
fn redact_token_like(text: &str) -> String {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|word| {
            if looks_like_token(word) {
                "<redacted>"
            } else {
                word
            }
        })
        .collect();
    words.join(" ")
}

fn looks_like_token(word: &str) -> bool {
    let core = word.trim_matches(|c: char| "\"'`,;:()[]{}<>".contains(c));
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c);
    core.contains("eyJ") || (core.len() >= MIN_TOKEN_LIKE_CHARS && core.chars().all(token_char))
}

/// Returns the parameters of the first Bearer challenge in one `WWW-Authenticate` value,
/// with lowercase names, or `None` when the value has no Bearer challenge.
///
/// Follows the challenge grammar of RFC 7235: a value may list several challenges, and
/// parameter values may be quoted strings that contain commas and backslash escapes.
pub(super) fn bearer_params(header: &str) -> Option<Vec<(String, String)>> {
    let mut cursor = Cursor::new(header);
    loop {
        cursor.skip_separators();
        if cursor.at_end() {
            return None;
        }
        let scheme = cursor.token();
        if scheme.is_empty() {
            // A stray `=` or `"` where a scheme was expected: step over it.
            cursor.advance();
            continue;
        }
        let params = cursor.auth_params();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(params);
        }
    }
}

/// Builds a challenge from Bearer parameters. The first value of each parameter counts.
fn challenge_from_params(params: Vec<(String, String)>) -> Result<BearerChallenge, String> {
    let first = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    };
    let realm = first("realm").ok_or_else(|| "it has no realm parameter".to_string())?;
    realm_url(&realm)?;
    Ok(BearerChallenge {
        realm,
        service: first("service"),
        scope: first("scope"),
    })
}

/// A position in a header value, read one character at a time.
struct Cursor {
    chars: Vec<char>,
    position: usize,
}

impl Cursor {
    fn new(text: &str) -> Self {
        Cursor {
            chars: text.chars().collect(),
            position: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn at_end(&self) -> bool {
        self.position >= self.chars.len()
    }

    fn advance(&mut self) {
        self.position += 1;
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.advance();
        }
    }

    fn skip_separators(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace() || c == ',') {
            self.advance();
        }
    }

    /// Reads a scheme or parameter name: everything up to whitespace, `,`, `=` or `"`.
    fn token(&mut self) -> String {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | '=' | '"') {
                break;
            }
            text.push(c);
            self.advance();
        }
        text
    }

    /// Reads `name=value` pairs until the next challenge's scheme or the end.
    fn auth_params(&mut self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        loop {
            let start = self.position;
            self.skip_separators();
            let name = self.token();
            self.skip_whitespace();
            if name.is_empty() || self.peek() != Some('=') {
                // Not a parameter, so it is the next challenge's scheme (or the end).
                self.position = start;
                return params;
            }
            self.advance();
            self.skip_whitespace();
            let value = self.param_value();
            params.push((name.to_ascii_lowercase(), value));
        }
    }

    /// Reads a quoted string (with `\` escapes) or a bare value up to whitespace or `,`.
    fn param_value(&mut self) -> String {
        let mut text = String::new();
        if self.peek() != Some('"') {
            while let Some(c) = self.peek() {
                if c.is_whitespace() || c == ',' {
                    break;
                }
                text.push(c);
                self.advance();
            }
            return text;
        }
        self.advance();
        while let Some(c) = self.peek() {
            self.advance();
            match c {
                '"' => break,
                '\\' => {
                    if let Some(escaped) = self.peek() {
                        text.push(escaped);
                        self.advance();
                    }
                }
                _ => text.push(c),
            }
        }
        text
    }
}

#[cfg(test)]
mod tests;
