//! CNCF distribution registries (`docker-registry serve`) on 127.0.0.1, one per test.

use std::fmt::Write;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::certs::{TlsFiles, generate_tls_files};
use super::http::{HttpOptions, http_get};
use super::process::ChildGuard;
use super::random_hex;
use super::skopeo::{skopeo, skopeo_checked};
use super::token::{PUSH_USER, TokenIssuer, TokenOptions};

/// Attempts to start a registry on a fresh port before giving up.
const START_ATTEMPTS: usize = 5;
/// How long one attempt waits for a response from `/v2/`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Time-out of one start-up probe, short so that a server that accepts connections but never
/// responds does not use up `START_TIMEOUT`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Response header whose value identifies this registry process, so that the start-up probe
/// can tell it from another server that took the same port first.
const INSTANCE_HEADER: &str = "X-Harness-Instance";

/// How clients authenticate to a registry.
#[derive(Clone, Debug)]
pub enum RegistryAuth {
    /// Anonymous pull and push.
    None,
    /// HTTP Basic authentication against a bcrypt htpasswd file with one user.
    Basic { username: String, password: String },
    /// Bearer tokens from a `TokenIssuer` started with the registry.
    Token(TokenOptions),
}

#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub auth: RegistryAuth,
    /// Serve HTTPS with a certificate from a CA made for this registry.
    pub tls: bool,
}

/// A manifest (or index) that skopeo pushed.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// `127.0.0.1:PORT/REPO:TAG`, without a transport prefix.
    pub reference: String,
    /// Digest of the manifest or index as the registry stores it.
    pub digest: String,
}

/// A running registry with its own storage, stopped on drop.
pub struct Registry {
    // Fields drop in declaration order: the processes stop before their files are removed.
    process: ChildGuard,
    issuer: Option<TokenIssuer>,
    host: String,
    auth: RegistryAuth,
    tls: Option<TlsFiles>,
    log_file: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry that needs no credentials.
    pub fn plain() -> Self {
        Self::start(RegistryOptions {
            auth: RegistryAuth::None,
            tls: false,
        })
    }

    /// Starts a registry that requires HTTP Basic credentials for every request.
    pub fn basic(username: &str, password: &str) -> Self {
        Self::start(RegistryOptions {
            auth: RegistryAuth::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            tls: false,
        })
    }

    /// Starts a token issuer and a registry that requires its bearer tokens.
    pub fn token(options: TokenOptions) -> Self {
        Self::start(RegistryOptions {
            auth: RegistryAuth::Token(options),
            tls: false,
        })
    }

    /// Starts an anonymous registry that serves HTTPS only.
    pub fn tls() -> Self {
        Self::start(RegistryOptions {
            auth: RegistryAuth::None,
            tls: true,
        })
    }

    /// Starts a registry on a port that is free at the time, retrying on a new port when
    /// start-up fails, for example because another process bound the port first.
    pub fn start(options: RegistryOptions) -> Self {
        Self::start_on_ports(
            options,
            std::iter::repeat_with(free_port).take(START_ATTEMPTS),
        )
    }

    /// Starts a registry on the first of `ports` where it starts and responds on `/v2/`.
    pub fn start_on_ports(options: RegistryOptions, ports: impl IntoIterator<Item = u16>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .expect("failed to create the registry directory");
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("failed to create the registry storage directory");

        let tls = options.tls.then(|| generate_tls_files(dir.path()));
        let issuer = match &options.auth {
            RegistryAuth::Token(token_options) => Some(TokenIssuer::start(
                token_options.clone(),
                &random_hex(16),
                dir.path(),
            )),
            _ => None,
        };
        let auth_section = auth_config(&options.auth, issuer.as_ref(), dir.path());
        let log_file = dir.path().join("registry.log");
        let ca_file = tls.as_ref().map(|files| files.ca_cert.clone());

        let mut failures = Vec::new();
        for port in ports {
            let host = format!("127.0.0.1:{port}");
            let instance = random_hex(16);
            let config = registry_config(&host, &storage, &instance, &auth_section, tls.as_ref());
            let config_file = dir.path().join("config.yml");
            fs::write(&config_file, config).expect("failed to write the registry configuration");

            let mut command = Command::new("docker-registry");
            command.arg("serve").arg(&config_file);
            // distribution reads REGISTRY_* variables as overrides of the configuration file.
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("REGISTRY_") {
                    command.env_remove(name);
                }
            }
            let mut process = ChildGuard::spawn_logged(command, "docker-registry", &log_file);
            let scheme = if tls.is_some() { "https" } else { "http" };
            let probe_url = format!("{scheme}://{host}/v2/");
            match wait_until_ready(&mut process, &probe_url, &instance, ca_file.as_deref()) {
                Ok(()) => {
                    return Self {
                        process,
                        issuer,
                        host,
                        auth: options.auth,
                        tls,
                        log_file,
                        dir,
                    };
                }
                Err(reason) => failures.push(format!("{host}: {reason}")),
            }
        }
        panic!(
            "docker-registry did not start after {} attempts:\n{}\nlog:\n{}",
            failures.len(),
            failures.join("\n"),
            fs::read_to_string(&log_file).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// Returns `127.0.0.1:PORT/REPO:TAG` for `repo_and_tag`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }

    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Returns the CA certificate (PEM) that signed this registry's server certificate.
    ///
    /// Panics when the registry serves plain HTTP.
    pub fn ca_file(&self) -> &Path {
        &self.tls_files().ca_cert
    }

    /// Returns a directory with the CA as `ca.crt`, for skopeo's `--cert-dir` and
    /// `--dest-cert-dir`.
    ///
    /// Panics when the registry serves plain HTTP.
    pub fn cert_dir(&self) -> &Path {
        &self.tls_files().cert_dir
    }

    /// Returns the token issuer of a token-auth registry.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.issuer.as_ref()
    }

    /// User name and password that can push: the Basic user, or `PUSH_USER` on a token-auth
    /// registry, or `None` for an anonymous registry.
    pub fn push_credentials(&self) -> Option<(String, String)> {
        match (&self.auth, &self.issuer) {
            (RegistryAuth::Basic { username, password }, _) => {
                Some((username.clone(), password.clone()))
            }
            (RegistryAuth::Token(_), Some(issuer)) => {
                Some((PUSH_USER.to_owned(), issuer.push_password().to_owned()))
            }
            _ => None,
        }
    }

    /// Returns the registry's log so far: warnings, errors and the access log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Returns the directory that contains the configuration, storage, keys and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Returns skopeo options that make it talk to this registry as source (`dest` false) or
    /// destination: TLS verification against the registry's CA, or plain HTTP, and the push
    /// credentials, or anonymous access.
    pub fn skopeo_args(&self, dest: bool) -> Vec<String> {
        let prefix = if dest { "--dest-" } else { "--src-" };
        let mut args = Vec::new();
        match &self.tls {
            Some(files) => {
                args.push(format!("{prefix}tls-verify=true"));
                args.push(format!("{prefix}cert-dir={}", files.cert_dir.display()));
            }
            None => args.push(format!("{prefix}tls-verify=false")),
        }
        match self.push_credentials() {
            Some((username, password)) => args.push(format!("{prefix}creds={username}:{password}")),
            None => args.push(format!("{prefix}no-creds")),
        }
        args
    }

    /// Pushes `oci:LAYOUT_DIR:LAYOUT_TAG` to `REPO:TAG` on this registry with `skopeo copy`.
    ///
    /// `extra_skopeo_args` go to `skopeo copy` as they are, for example `--all`,
    /// `--format v2s2` or `--preserve-digests`. Without `--preserve-digests` skopeo gzips
    /// uncompressed layers on the way. On a TLS registry skopeo verifies the certificate
    /// against `ca_file()`. Panics with skopeo's output when the copy fails.
    pub fn push_layout(
        &self,
        layout_dir: &Path,
        layout_tag: &str,
        dest_repo_and_tag: &str,
        extra_skopeo_args: &[&str],
    ) -> PushedImage {
        let source = format!("oci:{}:{layout_tag}", layout_dir.display());
        self.copy_to(&source, dest_repo_and_tag, extra_skopeo_args)
    }

    /// Pushes the layout image with every layer recompressed to zstd.
    ///
    /// skopeo first recompresses into a `dir:` copy and then pushes that copy with
    /// `--preserve-digests`, because a compression flag on a direct push reuses gzip blobs that
    /// the registry already has. `extra_skopeo_args` go to both copies.
    pub fn push_layout_zstd(
        &self,
        layout_dir: &Path,
        layout_tag: &str,
        dest_repo_and_tag: &str,
        extra_skopeo_args: &[&str],
    ) -> PushedImage {
        let staging = tempfile::Builder::new()
            .prefix("zstd-")
            .tempdir_in(self.dir.path())
            .expect("failed to create the zstd staging directory");
        let staged = staging.path().join("image");
        skopeo_checked(
            skopeo()
                .arg("copy")
                .args(["--dest-compress", "--dest-compress-format", "zstd"])
                .args(extra_skopeo_args)
                .arg(format!("oci:{}:{layout_tag}", layout_dir.display()))
                .arg(format!("dir:{}", staged.display())),
        );

        let mut args = vec!["--preserve-digests"];
        args.extend(
            extra_skopeo_args
                .iter()
                .filter(|arg| **arg != "--preserve-digests"),
        );
        self.copy_to(
            &format!("dir:{}", staged.display()),
            dest_repo_and_tag,
            &args,
        )
    }

    /// Runs `skopeo inspect` on `REPO:TAG` with this registry's credentials and CA, and
    /// returns its standard output. `extra_skopeo_args` go after `inspect`, for example
    /// `--raw`. Panics with skopeo's output when it fails.
    pub fn inspect(&self, repo_and_tag: &str, extra_skopeo_args: &[&str]) -> String {
        let output = skopeo_checked(&mut self.inspect_command(repo_and_tag, extra_skopeo_args));
        String::from_utf8(output.stdout).expect("skopeo inspect output is not UTF-8")
    }

    /// Runs `skopeo inspect` like `inspect` and returns its output, whether it succeeded or
    /// not, so that tests can check a failure.
    pub fn try_inspect(&self, repo_and_tag: &str, extra_skopeo_args: &[&str]) -> Output {
        self.inspect_command(repo_and_tag, extra_skopeo_args)
            .output()
            .expect("failed to run skopeo inspect")
    }

    fn inspect_command(&self, repo_and_tag: &str, extra_skopeo_args: &[&str]) -> Command {
        // `inspect` takes the source-side options without the `--src-` prefix.
        let args: Vec<String> = self
            .skopeo_args(false)
            .into_iter()
            .map(|arg| arg.replacen("--src-", "--", 1))
            .collect();
        let mut command = skopeo();
        command
            .arg("inspect")
            .args(args)
            .args(extra_skopeo_args)
            .arg(format!("docker://{}", self.reference(repo_and_tag)));
        command
    }

    fn copy_to(
        &self,
        source: &str,
        dest_repo_and_tag: &str,
        extra_skopeo_args: &[&str],
    ) -> PushedImage {
        let reference = self.reference(dest_repo_and_tag);
        let digest_file = tempfile::NamedTempFile::new_in(self.dir.path())
            .expect("failed to create the digest file");
        skopeo_checked(
            skopeo()
                .arg("copy")
                .args(self.skopeo_args(true))
                .arg("--digestfile")
                .arg(digest_file.path())
                .args(extra_skopeo_args)
                .arg(source)
                .arg(format!("docker://{reference}")),
        );
        let digest = fs::read_to_string(digest_file.path())
            .expect("failed to read the pushed digest")
            .trim()
            .to_owned();
        PushedImage { reference, digest }
    }

    fn tls_files(&self) -> &TlsFiles {
        self.tls
            .as_ref()
            .unwrap_or_else(|| panic!("registry {} serves plain HTTP, not TLS", self.host))
    }
}

/// Returns a port that was free a moment ago. Another process may take it before the registry
/// binds it, so `Registry::start` retries on a new port when start-up fails.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("failed to read the bound address")
        .port()
}

/// Polls `url` until it returns 200 or 401 with this instance's header, or the process exits.
fn wait_until_ready(
    process: &mut ChildGuard,
    url: &str,
    instance: &str,
    ca_file: Option<&Path>,
) -> Result<(), String> {
    let options = HttpOptions {
        timeout: Some(PROBE_TIMEOUT),
        ..HttpOptions::with_ca_file(ca_file)
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_error = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Some(status) = process.exit_status() {
            return Err(format!("docker-registry exited with {status}"));
        }
        match http_get(url, &options) {
            Ok(response) => {
                let ours = response.header(INSTANCE_HEADER) == Some(instance);
                if ours && (response.status == 200 || response.status == 401) {
                    return Ok(());
                }
                last_error = format!(
                    "GET {url} answered {} with {INSTANCE_HEADER} {:?}",
                    response.status,
                    response.header(INSTANCE_HEADER)
                );
            }
            Err(error) => last_error = format!("GET {url} failed: {error}"),
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "timed out after {START_TIMEOUT:?}; last probe: {last_error}"
    ))
}

/// Renders a registry configuration. Strings are written as JSON strings, which YAML reads
/// as double-quoted scalars.
fn registry_config(
    host: &str,
    storage: &Path,
    instance: &str,
    auth_section: &str,
    tls: Option<&TlsFiles>,
) -> String {
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: warn\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {host}\n  secret: {secret}\n  headers:\n    {INSTANCE_HEADER}: [{instance}]\n",
        storage = quote(&storage.display().to_string()),
        host = quote(host),
        secret = quote(&random_hex(16)),
        instance = quote(instance),
    );
    if let Some(files) = tls {
        write!(
            config,
            "  tls:\n    certificate: {}\n    key: {}\n",
            quote(&files.server_chain.display().to_string()),
            quote(&files.server_key.display().to_string()),
        )
        .expect("writing to a String cannot fail");
    }
    config.push_str(auth_section);
    config
}

/// Renders the `auth:` section, writing the htpasswd file for Basic authentication.
fn auth_config(auth: &RegistryAuth, issuer: Option<&TokenIssuer>, dir: &Path) -> String {
    match auth {
        RegistryAuth::None => String::new(),
        RegistryAuth::Basic { username, password } => {
            let htpasswd = dir.join("htpasswd");
            write_htpasswd(&htpasswd, username, password);
            format!(
                "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
                quote("harness-registry"),
                quote(&htpasswd.display().to_string()),
            )
        }
        RegistryAuth::Token(options) => {
            let issuer = issuer.expect("a token-auth registry has a token issuer");
            format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                quote(issuer.realm()),
                quote(&options.service),
                quote(&options.issuer),
                quote(&issuer.signing_cert().display().to_string()),
            )
        }
    }
}

/// Writes a one-user htpasswd file with a bcrypt hash, the only hash distribution accepts.
fn write_htpasswd(path: &Path, username: &str, password: &str) {
    let output =
        super::process::run_checked(Command::new("htpasswd").args(["-Bbn", username, password]));
    fs::write(path, output.stdout).expect("failed to write the htpasswd file");
}

fn quote(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}
