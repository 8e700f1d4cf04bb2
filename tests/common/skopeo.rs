//! Running skopeo without the machine's trust policy, registry configuration or auth files.

use std::process::{Command, Output};

use super::process::run_checked;

/// Returns a `skopeo` command with global options that make it independent of the machine's
/// configuration: no trust policy check and a command time-out.
///
/// Callers pass `--creds`, `--no-creds` or their `--src-`/`--dest-` forms for registry
/// images, so skopeo never reads an auth file.
pub fn skopeo() -> Command {
    let mut command = Command::new("skopeo");
    command.args(["--insecure-policy", "--command-timeout", "180s"]);
    command
}

/// Runs a skopeo command and panics with its output when it fails.
pub fn skopeo_checked(command: &mut Command) -> Output {
    run_checked(command)
}
