//! Report writers. Every format is built from the same [`ScanReport`].

pub mod dockerfile;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod table;

use crate::checks::Severity;
use crate::error::ScanError;
use crate::scan::ScanReport;
use sarif::DockerfileSource;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportFormat {
    Json,
    Sarif,
    /// JUnit XML.
    Junit,
    Markdown,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 4] = [
        ReportFormat::Json,
        ReportFormat::Sarif,
        ReportFormat::Junit,
        ReportFormat::Markdown,
    ];

    /// Returns the name that `--format` accepts, e.g. `junit`.
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Junit => "junit",
            ReportFormat::Markdown => "markdown",
        }
    }

    /// Returns the file extension. JUnit is `.xml` because GitLab reads JUnit reports only
    /// from files with that extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Sarif => "sarif",
            ReportFormat::Junit => "xml",
            ReportFormat::Markdown => "md",
        }
    }
}

impl FromStr for ReportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim().to_ascii_lowercase();
        ReportFormat::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| {
                format!("unknown report format {text:?}; expected json, sarif, junit or markdown")
            })
    }
}

/// A comma-separated list of report formats, as `--format` takes it. Blank items are
/// skipped, and a blank list means every format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFormats(pub Vec<ReportFormat>);

impl ReportFormats {
    /// Tells whether the list has `format`.
    pub fn contains(&self, format: ReportFormat) -> bool {
        self.0.contains(&format)
    }
}

impl FromStr for ReportFormats {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let formats = text
            .split(',')
            .filter(|item| !item.trim().is_empty())
            .map(ReportFormat::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        if formats.is_empty() {
            return Ok(ReportFormats(ReportFormat::ALL.to_vec()));
        }
        Ok(ReportFormats(formats))
    }
}

/// Writes `report` in each of `formats` to `dir`, each file atomically, and returns the
/// paths in format order. Every file is named `<file_stem(reference)>.<extension>`.
pub fn write_reports(
    dir: &Path,
    report: &ScanReport,
    verdict: &Verdict,
    formats: &[ReportFormat],
    dockerfile: Option<&DockerfileSource>,
) -> Result<Vec<(ReportFormat, PathBuf)>, ScanError> {
    let stem = file_stem(&report.reference);
    let formats: BTreeSet<ReportFormat> = formats.iter().copied().collect();
    let mut written = Vec::new();
    for format in formats {
        let contents = match format {
            ReportFormat::Json => json::render(report),
            ReportFormat::Sarif => sarif::render(std::slice::from_ref(report), dockerfile),
            ReportFormat::Junit => junit::render(std::slice::from_ref(report)),
            ReportFormat::Markdown => markdown::render(report, verdict),
        };
        let name = format!("{stem}.{}", format.extension());
        let path = json::write_atomically(dir, &name, contents.as_bytes())?;
        written.push((format, path));
    }
    Ok(written)
}

/// Exit codes by highest failed severity, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCodes {
    pub informational: u8,
    pub low: u8,
    pub medium: u8,
    pub high: u8,
    pub critical: u8,
}

impl Default for ExitCodes {
    fn default() -> Self {
        ExitCodes {
            informational: 0,
            low: 15,
            medium: 14,
            high: 13,
            critical: 12,
        }
    }
}

impl ExitCodes {
    /// Returns the exit code for the highest failed severity (`None`: nothing failed).
    pub fn for_severity(&self, highest_failed: Option<Severity>) -> u8 {
        match highest_failed {
            None => 0,
            Some(Severity::Informational) => self.informational,
            Some(Severity::Low) => self.low,
            Some(Severity::Medium) => self.medium,
            Some(Severity::High) => self.high,
            Some(Severity::Critical) => self.critical,
        }
    }
}

/// The verdict of a scan: what failed and the exit code it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub highest_failed: Option<Severity>,
    pub failed: usize,
    pub total: usize,
    pub exit_code: u8,
}

impl Verdict {
    /// Computes the verdict of `report` under `codes`.
    pub fn of(report: &ScanReport, codes: &ExitCodes) -> Self {
        let highest_failed = crate::checks::highest_failed(&report.results);
        Verdict {
            highest_failed,
            failed: report.results.iter().filter(|r| !r.pass).count(),
            total: report.results.len(),
            exit_code: codes.for_severity(highest_failed),
        }
    }
}

/// Returns the report file stem for `reference`: every character outside `[A-Za-z0-9._-]`
/// replaced by `_`.
pub fn file_stem(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Returns at most `max_chars` characters of `text`, with `…` added when it was longer.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let mut short: String = text.chars().take(max_chars).collect();
    if text.chars().count() > max_chars {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_list_parses() {
        let parsed: ReportFormats = " SARIF, junit,,".parse().expect("valid list");
        assert_eq!(parsed.0, [ReportFormat::Sarif, ReportFormat::Junit]);
        let blank: ReportFormats = " ".parse().expect("valid list");
        assert_eq!(blank.0, ReportFormat::ALL);
        let invalid = "json,html".parse::<ReportFormats>();
        assert!(invalid.is_err_and(|e| e.contains("\"html\"")));
    }

    #[test]
    fn file_stem_replaces_separators() {
        assert_eq!(
            file_stem("127.0.0.1:5000/team/app:1.2"),
            "127.0.0.1_5000_team_app_1.2"
        );
        assert_eq!(file_stem("oci:/tmp/x:v1"), "oci__tmp_x_v1");
    }

    #[test]
    fn exit_code_by_highest_severity() {
        let codes = ExitCodes::default();
        assert_eq!(codes.for_severity(None), 0);
        assert_eq!(codes.for_severity(Some(Severity::Critical)), 12);
        assert_eq!(codes.for_severity(Some(Severity::High)), 13);
        assert_eq!(codes.for_severity(Some(Severity::Medium)), 14);
        assert_eq!(codes.for_severity(Some(Severity::Low)), 15);
        assert_eq!(codes.for_severity(Some(Severity::Informational)), 0);
    }
}
