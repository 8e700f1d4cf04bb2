//! The table printed to the terminal: one row per check and a closing verdict line.

use super::Verdict;
use crate::checks::{CheckResult, Severity};
use crate::scan::ScanReport;
use anstyle::{AnsiColor, Style};

const DESCRIPTION_CHARS: usize = 300;

fn severity_style(severity: Severity) -> Style {
    let colour = match severity {
        Severity::Critical => AnsiColor::BrightRed,
        Severity::High => AnsiColor::Red,
        Severity::Medium => AnsiColor::Yellow,
        Severity::Low => AnsiColor::Cyan,
        Severity::Informational => AnsiColor::White,
    };
    Style::new().fg_color(Some(colour.into()))
}

fn paint(text: &str, style: Style, colour: bool) -> String {
    if colour {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(DESCRIPTION_CHARS).collect();
    if text.chars().count() > DESCRIPTION_CHARS {
        short.push('…');
    }
    short
}

fn row(result: &CheckResult, colour: bool) -> String {
    let (status, status_style) = if result.pass {
        ("PASS", Style::new().fg_color(Some(AnsiColor::Green.into())))
    } else {
        (
            "FAIL",
            Style::new()
                .fg_color(Some(AnsiColor::BrightRed.into()))
                .bold(),
        )
    };
    let severity = format!("{:<13}", result.check_severity.as_str());
    let mut line = format!(
        "{}    {}  {}  {}",
        paint(status, status_style, colour),
        paint(&severity, severity_style(result.check_severity), colour),
        result.id,
        result.title,
    );
    if !result.pass {
        line.push_str(&format!("\n        {}", shorten(&result.description)));
    }
    line
}

/// Renders the table; `colour` adds ANSI colours.
pub fn render(report: &ScanReport, verdict: &Verdict, colour: bool) -> String {
    let mut out = format!("Image:    {}\n", report.reference);
    if let Some(digest) = &report.manifest_digest {
        out.push_str(&format!("Digest:   {digest}\n"));
    }
    let layers = report.layer_digests.len();
    out.push_str(&format!(
        "Platform: {}, {layers} layer{}\n\n",
        report.platform,
        if layers == 1 { "" } else { "s" }
    ));
    out.push_str("RESULT  SEVERITY       ID      CHECK\n");
    for result in &report.results {
        out.push_str(&row(result, colour));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&verdict_line(verdict, colour));
    out.push('\n');
    out
}

fn verdict_line(verdict: &Verdict, colour: bool) -> String {
    match verdict.highest_failed {
        None => paint(
            &format!("PASSED: all {} checks passed (exit 0).", verdict.total),
            Style::new().fg_color(Some(AnsiColor::Green.into())).bold(),
            colour,
        ),
        Some(severity) => paint(
            &format!(
                "FAILED: {} of {} checks failed; highest severity {severity} (exit {}).",
                verdict.failed, verdict.total, verdict.exit_code
            ),
            severity_style(severity).bold(),
            colour,
        ),
    }
}
