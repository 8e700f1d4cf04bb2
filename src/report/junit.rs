//! The JUnit XML report, for GitLab's `artifacts:reports:junit` and other CI test viewers.
//!
//! One test suite per image and one test case per check, passed checks included. GitLab
//! identifies a test case by class name plus name, so the class name is the image reference
//! and the name is the check id and title, e.g. `ICS007 Checking for a suid bit file`.

use crate::checks::CheckResult;
use crate::scan::ScanReport;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeSet;

/// The maximum number of paths listed in one failure. GitLab reads files up to 30 MB; 17 checks with this
/// many paths of 1,000 bytes each stay well below that.
pub const MAX_PATHS_PER_FAILURE: usize = 1_000;

/// Renders one test suite per report as JUnit XML.
pub fn render(reports: &[ScanReport]) -> String {
    let mut document = Report::new("image-compliance-scanner");
    for report in reports {
        document.add_test_suite(suite(report));
    }
    // quick-junit serialises into a Vec, which has no write errors, from `XmlString`s, which
    // are UTF-8, so this cannot fail.
    document.to_string().unwrap_or_default()
}

fn suite(report: &ScanReport) -> TestSuite {
    let mut suite = TestSuite::new(&report.reference);
    suite.add_property(("image.reference", report.reference.as_str()));
    if let Some(digest) = &report.manifest_digest {
        suite.add_property(("image.manifestDigest", digest.as_str()));
    }
    suite.add_property(("image.platform", report.platform.as_str()));
    for result in &report.results {
        suite.add_test_case(test_case(&report.reference, result));
    }
    suite
}

fn test_case(reference: &str, result: &CheckResult) -> TestCase {
    let name = format!("{} {}", result.id, result.title);
    let status = if result.pass {
        TestCaseStatus::success()
    } else {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(&result.description)
            .set_type(result.check_severity.as_str())
            .set_description(failure_text(result));
        status
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(reference);
    case.set_system_out(&result.description);
    case
}

/// Returns the text inside `<failure>`: severity, description, remedy and the files found.
fn failure_text(result: &CheckResult) -> String {
    let mut text = format!(
        "Severity: {}\n{}\n\nHow to fix: {}\n",
        result.check_severity, result.description, result.mitigation
    );
    if result.findings.is_empty() {
        return text;
    }
    let paths: BTreeSet<&str> = result.findings.iter().map(|f| f.path.as_str()).collect();
    let present: BTreeSet<&str> = result
        .present_in_final_image
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    text.push_str(&format!("\nFiles ({}):\n", paths.len()));
    for path in paths.iter().take(MAX_PATHS_PER_FAILURE) {
        text.push_str(path);
        if !present.contains(path) {
            text.push_str("  (deleted by a later layer, still in the layer blob)");
        }
        text.push('\n');
    }
    if paths.len() > MAX_PATHS_PER_FAILURE {
        text.push_str(&format!(
            "... and {} more; the JSON report lists all of them.\n",
            paths.len() - MAX_PATHS_PER_FAILURE
        ));
    }
    text
}
