//! Running docker credential helpers (`docker-credential-NAME get`).
//!
//! The protocol, as the docker CLI uses it: the server URL goes to the helper's stdin, and
//! the helper prints `{"ServerURL","Username","Secret"}` on stdout. A `Username` of `<token>`
//! marks `Secret` as an identity token. A helper without credentials for the server exits
//! non-zero and prints "credentials not found" on stdout.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::error::{AuthError, json_problem, truncate_chars};
use super::{Credential, ResolveOptions, Secret};

/// The `Username` value that marks `Secret` as an identity token.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// The stdout text of a helper that has no credentials, compared without regard to case.
const NOT_FOUND_TEXT: &str = "credentials not found";

/// Maximum bytes kept from each of a helper's stdout and stderr. The rest is read and dropped,
/// so that a chatty helper cannot block on a full pipe.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Maximum characters of a helper's stderr line kept in an error message.
const MAX_STDERR_CHARS: usize = 200;

/// How often a spawn that fails with "text file busy" is tried again.
const SPAWN_ATTEMPTS: u32 = 3;

/// Runs `docker-credential-{name} get` for `server`. Returns `None` when the helper has no
/// credentials for `server`.
pub(super) async fn get_credential(
    name: &str,
    server: &str,
    options: &ResolveOptions,
) -> Result<Option<Credential>, AuthError> {
    let program = format!("docker-credential-{name}");
    let path = find_program(&program, options.helper_search_path.as_deref())?;
    let output = run(&program, &path, server, options.helper_timeout).await?;
    interpret_output(&program, server, &output)
}

/// Finds `program` in the directories of `search_path`, or of the process's `PATH` when it is
/// `None`. Empty entries are skipped instead of meaning the current directory.
fn find_program(program: &str, search_path: Option<&OsStr>) -> Result<PathBuf, AuthError> {
    let process_path = std::env::var_os("PATH");
    let search_path = search_path.or(process_path.as_deref()).unwrap_or_default();
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| AuthError::HelperNotFound {
            program: program.to_string(),
        })
}

#[cfg(unix)]
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable_file(path: &Path) -> bool {
    // NOTE: Windows helpers are named `docker-credential-NAME.exe`, but this lookup does not
    // add the extension.
    std::fs::metadata(path)
        .map(|meta| meta.is_file())
        .unwrap_or(false)
}

/// Exit status and output of a helper, capped at [`MAX_OUTPUT_BYTES`] per stream.
struct HelperOutput {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs the helper with `server` on stdin and kills it when `timeout` passes.
// NOTE: only the helper process is killed. Children it started (as a shell script's
// `sleep`) keep running until they exit by themselves.
async fn run(
    program: &str,
    path: &Path,
    server: &str,
    timeout: Duration,
) -> Result<HelperOutput, AuthError> {
    let mut child = spawn(program, path).await?;
    let outcome = tokio::time::timeout(timeout, collect_output(&mut child, server)).await;
    let Ok(result) = outcome else {
        if let Err(error) = child.kill().await {
            tracing::warn!(%program, %error, "cannot kill the timed-out credential helper");
        }
        return Err(AuthError::HelperTimedOut {
            program: program.to_string(),
            server: server.to_string(),
            timeout,
        });
    };
    result.map_err(|source| AuthError::HelperIo {
        program: program.to_string(),
        source,
    })
}

/// Starts the helper. A spawn that fails with "text file busy" is tried again, because
/// another thread's fork can hold a just-written helper open for writing for a moment.
async fn spawn(program: &str, path: &Path) -> Result<Child, AuthError> {
    let mut attempt = 1;
    loop {
        let result = Command::new(path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match result {
            Ok(child) => return Ok(child),
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && attempt < SPAWN_ATTEMPTS =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(source) => {
                return Err(AuthError::HelperSpawn {
                    program: program.to_string(),
                    source,
                });
            }
        }
    }
}

/// Writes `server` to the helper's stdin, closes it, and reads both output streams while
/// waiting for the helper to exit.
async fn collect_output(child: &mut Child, server: &str) -> std::io::Result<HelperOutput> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (written, stdout, stderr, status) = tokio::join!(
        write_server(stdin, server),
        read_capped(stdout),
        read_capped(stderr),
        child.wait(),
    );
    written?;
    Ok(HelperOutput {
        status: status?,
        stdout: stdout?,
        stderr: stderr?,
    })
}

/// Writes the server URL without a line break, as the docker CLI does. A helper that exits
/// without reading stdin is not an error here, so a broken pipe is ignored.
async fn write_server(
    stdin: Option<tokio::process::ChildStdin>,
    server: &str,
) -> std::io::Result<()> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    match stdin.write_all(server.as_bytes()).await {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error),
        _ => Ok(()),
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let Some(mut stream) = stream else {
        return Ok(Vec::new());
    };
    let mut captured = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let count = stream.read(&mut buffer).await?;
        if count == 0 {
            return Ok(captured);
        }
        let room = MAX_OUTPUT_BYTES.saturating_sub(captured.len());
        captured.extend_from_slice(&buffer[..count.min(room)]);
    }
}

/// The JSON a helper prints on success.
#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: Option<String>,
    #[serde(rename = "Secret", default)]
    secret: Option<String>,
}

/// Turns the helper's output into a credential. Stdout is never put into an error, because a
/// helper may print the secret there. Of stderr, only the first line is kept.
fn interpret_output(
    program: &str,
    server: &str,
    output: &HelperOutput,
) -> Result<Option<Credential>, AuthError> {
    if !output.status.success() {
        if reports_not_found(&output.stdout) {
            return Ok(None);
        }
        return Err(AuthError::HelperFailed {
            program: program.to_string(),
            server: server.to_string(),
            status: output.status.to_string(),
            stderr_first_line: first_line(&output.stderr),
        });
    }
    let reply: HelperReply =
        serde_json::from_slice(&output.stdout).map_err(|error| AuthError::InvalidHelperOutput {
            program: program.to_string(),
            server: server.to_string(),
            problem: json_problem(&error),
            line: error.line(),
            column: error.column(),
        })?;
    Ok(credential_from_reply(reply))
}

fn reports_not_found(stdout: &[u8]) -> bool {
    String::from_utf8_lossy(stdout)
        .to_ascii_lowercase()
        .contains(NOT_FOUND_TEXT)
}

/// An empty `Secret` means the helper has nothing for the server.
fn credential_from_reply(reply: HelperReply) -> Option<Credential> {
    let secret = reply.secret.filter(|secret| !secret.is_empty())?;
    let username = reply.username.unwrap_or_default();
    if username == IDENTITY_TOKEN_USERNAME {
        return Some(Credential::IdentityToken {
            username: String::new(),
            token: Secret::new(secret),
        });
    }
    Some(Credential::Basic {
        username,
        password: Secret::new(secret),
    })
}

/// Returns the first non-empty line of `stderr`, without control characters and truncated.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let printable: String = line.chars().filter(|c| !c.is_control()).collect();
    truncate_chars(&printable, MAX_STDERR_CHARS)
}

#[cfg(test)]
mod tests;
