//! The `image-compliance-scanner` binary: settings in, table and reports out, exit code by
//! the highest failed severity.

mod cli;

use clap::Parser;
use cli::Cli;
use image_compliance_scanner::error::ScanError;
use image_compliance_scanner::image::Platform;
use image_compliance_scanner::layer::WalkLimits;
use image_compliance_scanner::report::{self, ExitCodes, Verdict};
use image_compliance_scanner::scan::{self, Progress, ScanSettings};
use image_compliance_scanner::source::SourceOptions;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
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

async fn run(cli: Cli) -> Result<u8, ScanError> {
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

    let report = scan::scan(&reference, &settings, progress_printer()).await?;
    let verdict = Verdict::of(&report, &codes);

    let json = report::json::render(&report);
    let name = format!("{}.json", report::file_stem(&report.reference));
    let path = report::json::write_atomically(&cli.reports_dir, &name, json.as_bytes())?;

    print_outputs(&cli, &report, &verdict, &json);
    eprintln!("Report written to {}", path.display());
    Ok(verdict.exit_code)
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
        },
        walk: WalkLimits::default(),
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
