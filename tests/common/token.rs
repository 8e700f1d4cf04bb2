//! The token issuer that a token-auth registry sends clients to (tests/support/token_issuer.py).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::certs::generate_signing_key;
use super::process::{ChildGuard, read_first_line};

/// The account that `Registry::push_layout` uses on token-auth registries. The issuer grants
/// it pull and push on every repository, and its requests appear in the request log too.
pub const PUSH_USER: &str = "harness-push";

/// A user the issuer accepts with HTTP Basic credentials or the `password` grant.
#[derive(Clone, Debug)]
pub struct TokenUser {
    pub username: String,
    pub password: String,
    /// Repository actions the user may receive, for example `pull` and `push`.
    pub actions: Vec<String>,
}

impl TokenUser {
    /// Creates a user allowed to pull and push.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            actions: vec!["pull".to_owned(), "push".to_owned()],
        }
    }

    /// Creates a user allowed to pull only.
    pub fn pull_only(username: &str, password: &str) -> Self {
        Self {
            actions: vec!["pull".to_owned()],
            ..Self::new(username, password)
        }
    }
}

/// Settings of a token issuer.
#[derive(Clone, Debug)]
pub struct TokenOptions {
    pub users: Vec<TokenUser>,
    /// Refresh tokens accepted by the `refresh_token` grant, as `(token, username)` pairs.
    /// Tokens that the issuer hands out for `offline_token=true` or `access_type=offline`
    /// are accepted as well.
    pub refresh_tokens: Vec<(String, String)>,
    /// Whether a request without credentials receives `pull`. Without it an anonymous request
    /// still gets a token, with an empty access list, as Docker Hub does.
    pub anonymous_pull: bool,
    /// Lifetime of an access token, the JWT's `exp` minus its `iat`.
    pub token_lifetime: Duration,
    /// The registry's `auth.token.service`, which becomes the JWT's `aud`.
    pub service: String,
    /// The JWT's `iss`, which the registry checks against `auth.token.issuer`.
    pub issuer: String,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            refresh_tokens: Vec::new(),
            anonymous_pull: false,
            token_lifetime: Duration::from_secs(300),
            service: "harness-registry".to_owned(),
            issuer: "harness-token-issuer".to_owned(),
        }
    }
}

/// One request as the issuer recorded it. Secrets are reduced to `*_present` flags.
#[derive(Clone, Debug, Deserialize)]
pub struct IssuerRequest {
    /// `GET` or `POST`.
    pub method: String,
    pub path: String,
    /// The POST form's `grant_type`, `None` for GET.
    pub grant_type: Option<String>,
    /// The `service` parameter as sent, `None` when missing.
    pub service: Option<String>,
    /// Every `scope` parameter as sent.
    pub scope: Vec<String>,
    pub client_id: Option<String>,
    /// GET `offline_token=true`, or POST `access_type=offline`.
    pub offline_token: bool,
    /// The Basic or form user name, or the owner of a valid refresh token.
    pub username: Option<String>,
    pub password_present: bool,
    pub refresh_token_present: bool,
    /// The HTTP status of the issuer's response.
    pub status: u16,
    /// The JWT's `access` claim, empty when the request was rejected.
    pub granted: Vec<serde_json::Value>,
}

/// A running token issuer on 127.0.0.1, stopped on drop.
pub struct TokenIssuer {
    process: ChildGuard,
    realm: String,
    options: TokenOptions,
    push_password: String,
    signing_cert: PathBuf,
    request_log: PathBuf,
    stderr_log: PathBuf,
}

impl TokenIssuer {
    /// Starts an issuer whose key, configuration and request log live in `dir`.
    ///
    /// The issuer also accepts `PUSH_USER` with `push_password`.
    pub fn start(options: TokenOptions, push_password: &str, dir: &Path) -> Self {
        let (signing_key, signing_cert) = generate_signing_key(dir);
        let request_log = dir.join("token-requests.jsonl");
        let stderr_log = dir.join("token-issuer.log");
        let config_file = dir.join("token-issuer.json");
        let config = issuer_config(
            &options,
            push_password,
            &signing_key,
            &signing_cert,
            &request_log,
        );
        fs::write(&config_file, serde_json::to_vec_pretty(&config).unwrap())
            .expect("failed to write the token issuer configuration");

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/token_issuer.py");
        let stderr = fs::File::create(&stderr_log).expect("failed to create the token issuer log");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(&config_file)
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut process = ChildGuard::spawn(&mut command, "token issuer");

        let stdout = process.take_stdout().expect("token issuer stdout is piped");
        let first_line = read_first_line(stdout, Duration::from_secs(20));
        let address = first_line
            .as_deref()
            .and_then(|line| line.strip_prefix("listening on "))
            .unwrap_or_else(|| {
                panic!(
                    "token issuer did not report its address (first line {first_line:?}); log:\n{}",
                    fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let realm = format!("http://{address}/token");

        Self {
            process,
            realm,
            options,
            push_password: push_password.to_owned(),
            signing_cert,
            request_log,
            stderr_log,
        }
    }

    /// Returns the token endpoint URL, `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn options(&self) -> &TokenOptions {
        &self.options
    }

    /// Returns the password of `PUSH_USER`.
    pub fn push_password(&self) -> &str {
        &self.push_password
    }

    /// Returns the self-signed certificate whose key signs every token, for
    /// `auth.token.rootcertbundle`.
    pub fn signing_cert(&self) -> &Path {
        &self.signing_cert
    }

    /// Returns the path of the JSON-lines file with one `IssuerRequest` per request.
    pub fn request_log(&self) -> &Path {
        &self.request_log
    }

    /// Returns every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<IssuerRequest> {
        let text = fs::read_to_string(&self.request_log).unwrap_or_default();
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("invalid request log line ({error}): {line}"))
            })
            .collect()
    }

    /// Returns the recorded requests that did not come from `PUSH_USER`.
    pub fn client_requests(&self) -> Vec<IssuerRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.username.as_deref() != Some(PUSH_USER))
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        fs::write(&self.request_log, "").expect("failed to clear the token request log");
    }

    /// Returns what the issuer wrote to standard error, such as a Python traceback.
    pub fn stderr_log(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

fn issuer_config(
    options: &TokenOptions,
    push_password: &str,
    signing_key: &Path,
    signing_cert: &Path,
    request_log: &Path,
) -> serde_json::Value {
    let mut users: Vec<serde_json::Value> = options
        .users
        .iter()
        .map(|user| {
            serde_json::json!({
                "username": user.username,
                "password": user.password,
                "actions": user.actions,
            })
        })
        .collect();
    users.push(serde_json::json!({
        "username": PUSH_USER,
        "password": push_password,
        "actions": ["pull", "push"],
    }));
    let refresh_tokens: Vec<serde_json::Value> = options
        .refresh_tokens
        .iter()
        .map(|(token, username)| serde_json::json!({ "token": token, "username": username }))
        .collect();

    serde_json::json!({
        "issuer": options.issuer,
        "service": options.service,
        "key_file": signing_key,
        "cert_file": signing_cert,
        "request_log": request_log,
        "token_lifetime_seconds": options.token_lifetime.as_secs(),
        "anonymous_pull": options.anonymous_pull,
        "users": users,
        "refresh_tokens": refresh_tokens,
    })
}
