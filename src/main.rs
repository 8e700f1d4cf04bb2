//! The `image-compliance-scanner` binary: settings in, table and reports out, exit code by
//! the highest failed severity.

#[cfg(target_os = "linux")]
mod allocator;
mod cli;

use clap::Parser;
use cli::Cli;
use image_compliance_scanner::checks::Severity;
use image_compliance_scanner::error::ScanError;
use image_compliance_scanner::github::{self, ActionOutputs, GithubEnv};
use image_compliance_scanner::image::Platform;
use image_compliance_scanner::layer::WalkLimits;
use image_compliance_scanner::report::sarif::DockerfileSource;
use image_compliance_scanner::report::{self, ExitCodes, ReportFormat, Verdict};
use image_compliance_scanner::scan::{self, Progress, ScanSettings};
use image_compliance_scanner::source::SourceOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(target_os = "linux")]
    {
        allocator::configure();
        builder.on_thread_start(allocator::share_arena);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = match runtime.block_on(run(cli)) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("error: {error}");
            RunOutcome {
                exit_code: error.exit_code(),
                highest_failed: None,
                written: Vec::new(),
            }
        }
    };
    write_action_outputs(&outcome);
    ExitCode::from(outcome.exit_code)
}

/// What a run ended with, for the exit code and the GitHub Action's outputs.
struct RunOutcome {
    exit_code: u8,
    highest_failed: Option<Severity>,
    written: Vec<(ReportFormat, PathBuf)>,
}

/// Appends the exit code, highest severity and report paths to `GITHUB_OUTPUT` when it is
/// set, on success and on error, so that the action's outputs are always filled.
fn write_action_outputs(outcome: &RunOutcome) {
    let Some(path) = github::output_file_from_env() else {
        return;
    };
    let outputs = ActionOutputs {
        exit_code: outcome.exit_code,
        highest_severity: outcome.highest_failed,
        reports: outcome
            .written
            .iter()
            .map(|(format, path)| (format.name().to_string(), path.clone()))
            .collect(),
    };
    if let Err(e) = github::write_action_outputs(&path, &outputs) {
        eprintln!(
            "warning: failed to write the action outputs to {}: {e}",
            path.display()
        );
    }
}

/// Logs go to stderr; `COMPLIANCE_LOG` takes a tracing filter such as `debug`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COMPLIANCE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> Result<RunOutcome, ScanError> {
    let reference = cli
        .image
        .clone()
        .filter(|r| !r.trim().is_empty())
        .ok_or(ScanError::NoImage)?;
    let settings = settings(&cli)?;
    let codes = ExitCodes {
        informational: cli.informational_exit_code,
        low: cli.low_exit_code,
        medium: cli.medium_exit_code,
        high: cli.high_exit_code,
        critical: cli.critical_exit_code,
    };
    std::fs::create_dir_all(&cli.reports_dir).map_err(|e| ScanError::Reports {
        path: cli.reports_dir.clone(),
        message: format!("cannot create the reports directory: {e}"),
    })?;

    let dockerfile = read_dockerfile(&cli)?;

    let report = scan::scan(&reference, &settings, progress_printer()).await?;
    let verdict = Verdict::of(&report, &codes);

    let written = report::write_reports(
        &cli.reports_dir,
        &report,
        &verdict,
        &cli.formats.0,
        dockerfile.as_ref(),
    )?;

    let json = report::json::render(&report);
    print_outputs(&cli, &report, &verdict, &json);
    for (_, path) in &written {
        eprintln!("Report written to {}", path.display());
    }
    if cli.formats.contains(ReportFormat::Markdown) {
        append_step_summary(&report, &verdict);
    }
    if cli.github_comment {
        post_pull_request_comment(&report, &verdict).await;
    }
    Ok(RunOutcome {
        exit_code: verdict.exit_code,
        highest_failed: verdict.highest_failed,
        written,
    })
}

/// Largest body GitHub accepts for an issue or pull-request comment, in characters.
const COMMENT_MAX_CHARS: usize = 65_536;

/// Posts or updates the pull-request comment. Every failure is a warning: the scan's exit
/// code stands whether or not the comment could be written.
async fn post_pull_request_comment(report: &scan::ScanReport, verdict: &Verdict) {
    // Leave room for the hidden marker that identifies the comment.
    let markdown = report::markdown::render_for_comment(report, verdict, COMMENT_MAX_CHARS - 1_024);
    let env = GithubEnv::from_env();
    match github::post_or_update_comment(&markdown, &report.reference, &env).await {
        Ok(outcome) => {
            if let Some(warning) = outcome.warning() {
                eprintln!("warning: pull-request comment not posted: {warning}");
            }
        }
        Err(e) => eprintln!("warning: pull-request comment failed: {e}"),
    }
}

/// Reads the Dockerfile given by `--dockerfile` before the scan, so a wrong path fails fast.
fn read_dockerfile(cli: &Cli) -> Result<Option<DockerfileSource>, ScanError> {
    let Some(path) = cli
        .dockerfile
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty())
    else {
        return Ok(None);
    };
    DockerfileSource::read(path)
        .map(Some)
        .map_err(|e| ScanError::InvalidSetting {
            name: "COMPLIANCE_DOCKERFILE".to_string(),
            message: format!("cannot read the Dockerfile {}: {e}", path.display()),
        })
}

/// Appends the Markdown report to the file that `GITHUB_STEP_SUMMARY` names, when it is set.
/// A failure is a warning: the summary is a convenience, not part of the verdict.
fn append_step_summary(report: &scan::ScanReport, verdict: &Verdict) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    if let Err(e) = report::markdown::append_step_summary(&path, report, verdict) {
        tracing::warn!(
            "failed to append the report to the step summary {}: {e}",
            path.display()
        );
    }
}

fn settings(cli: &Cli) -> Result<ScanSettings, ScanError> {
    let platform = Platform::parse(&cli.platform).map_err(|message| ScanError::InvalidSetting {
        name: "COMPLIANCE_PLATFORM".to_string(),
        message,
    })?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(ScanSettings {
        source: SourceOptions {
            platform,
            ca_file: cli.ca_file.clone(),
            insecure_registries: cli
                .insecure_registries
                .iter()
                .map(|r| r.trim().to_string())
                .collect(),
            auth_config: cli.auth_config.clone().filter(|c| !c.trim().is_empty()),
            timeout: Duration::from_secs(cli.timeout),
            retries: cli.retries,
        },
        walk: WalkLimits {
            max_unpacked_size: cli.max_unpacked_layer_size,
            ..WalkLimits::default()
        },
        concurrency: cli.concurrency.map_or(cores, |n| n as usize),
    })
}

/// Prints the table (stdout, or stderr when the JSON goes to stdout) and the JSON.
fn print_outputs(cli: &Cli, report: &scan::ScanReport, verdict: &Verdict, json: &str) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if cli.json_stdout {
        let colour = !no_color && std::io::stderr().is_terminal();
        eprint!("{}", report::table::render(report, verdict, colour));
        let mut stdout = std::io::stdout().lock();
        // A closed pipe on stdout is the reader's choice, not a failed scan.
        let _ = stdout
            .write_all(json.as_bytes())
            .and_then(|()| stdout.flush());
    } else {
        let colour = !no_color && std::io::stdout().is_terminal();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(report::table::render(report, verdict, colour).as_bytes())
            .and_then(|()| stdout.flush());
    }
}

/// Shows layer progress on stderr when it is a terminal.
fn progress_printer() -> Option<scan::ProgressFn> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Some(Arc::new(move |event| match event {
        Progress::Resolved { layers } => {
            total.store(layers, std::sync::atomic::Ordering::Relaxed);
        }
        Progress::LayerDone { .. } => {
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let total = total.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("read layer {finished}/{total}");
        }
    }))
}
