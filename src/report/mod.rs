//! Report writers. Every format is built from the same [`ScanReport`].

pub mod json;
pub mod table;

use crate::checks::Severity;
use crate::scan::ScanReport;

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

#[cfg(test)]
mod tests {
    use super::*;

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
