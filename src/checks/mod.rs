//! The compliance checks: one table of stable ids, titles and severities, one file per check.
//!
//! Every check reads a [`ScanContext`] and returns an [`Outcome`]; [`run_all`] turns outcomes
//! into [`CheckResult`]s in the table's order, which is the order of the JSON report.

mod compilers;
mod critical_ports;
mod file_findings;
mod forbidden_tools;
mod latest_tag;
mod layer_count;
mod missing_command;
mod missing_labels;
mod os_release;
mod root_user;
mod special_bits;

use crate::filesystem::FinalFs;
use crate::image::{ContainerConfig, ImageConfig, Manifest};
use crate::layer::LayerIndex;
use serde::Serialize;
use std::collections::BTreeMap;

pub use file_findings::FileFinding;

/// The severity of a failed check, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Returns the name used in reports, e.g. `Critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check's fixed facts: stable id, report title, severity when it fails, and remedy.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// Stable identifier, never reused, e.g. `ICS001`.
    pub id: &'static str,
    /// Short kebab-case name, e.g. for a SARIF rule name.
    pub name: &'static str,
    /// The report title; these exact strings are part of the JSON contract.
    pub title: &'static str,
    pub severity: Severity,
    /// What the check looks for and why it matters, in one or two sentences.
    pub rationale: &'static str,
    pub mitigation: &'static str,
}

/// Everything a check may read about the image.
pub struct ScanContext<'a> {
    /// The tag the reference or local source names, if any.
    pub tag: Option<&'a str>,
    /// The digest the reference pins, if any.
    pub pinned_digest: Option<&'a str>,
    pub manifest: &'a Manifest,
    pub config: &'a ImageConfig,
    /// Layer indexes in manifest order.
    pub layers: &'a [LayerIndex],
    pub fs: &'a FinalFs<'a>,
}

impl ScanContext<'_> {
    /// Returns the runtime config, or an empty one when the image has none.
    pub fn container_config(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }
}

/// The result of one check, before it becomes a report entry.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub pass: bool,
    pub description: String,
    /// Files found, for file checks (an empty list for a file check that found none).
    pub files: Option<Vec<FileFinding>>,
}

impl Outcome {
    pub fn pass(description: impl Into<String>) -> Self {
        Outcome {
            pass: true,
            description: description.into(),
            files: None,
        }
    }

    pub fn fail(description: impl Into<String>) -> Self {
        Outcome {
            pass: false,
            description: description.into(),
            files: None,
        }
    }
}

/// One check's entry in the report. Field names and order follow the JSON contract.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    #[serde(rename = "Title")]
    pub title: &'static str,
    /// The check's severity when it failed; `Informational` when it passed.
    #[serde(rename = "Severity")]
    pub severity: Severity,
    #[serde(rename = "Pass")]
    pub pass: bool,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Mitigation")]
    pub mitigation: &'static str,
    /// Per layer, in manifest order: `{"<layer digest hex>": [sorted paths]}`.
    #[serde(rename = "Files", skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<BTreeMap<String, Vec<String>>>>,
    #[serde(rename = "Id")]
    pub id: &'static str,
    /// The paths among `Files` that the final filesystem still has. A later layer deleted or
    /// replaced the others, but the image's blobs still ship them.
    #[serde(
        rename = "PresentInFinalImage",
        skip_serializing_if = "Option::is_none"
    )]
    pub present_in_final_image: Option<Vec<String>>,
    /// The check's own severity, whether or not it failed.
    #[serde(skip)]
    pub check_severity: Severity,
    /// The findings behind `Files`, with layer positions, for the other report formats.
    #[serde(skip)]
    pub findings: Vec<FileFinding>,
}

type CheckFn = fn(&ScanContext) -> Outcome;

/// All checks, in report order.
pub const CHECKS: [(CheckInfo, CheckFn); 17] = [
    (latest_tag::INFO, latest_tag::check),
    (critical_ports::INFO, critical_ports::check),
    (root_user::INFO, root_user::check),
    (missing_labels::INFO, missing_labels::check),
    (layer_count::INFO, layer_count::check),
    (missing_command::INFO, missing_command::check),
    (special_bits::SUID_INFO, special_bits::check_suid),
    (special_bits::SGID_INFO, special_bits::check_sgid),
    (forbidden_tools::SUDO_INFO, forbidden_tools::check_sudo),
    (forbidden_tools::SU_INFO, forbidden_tools::check_su),
    (forbidden_tools::SSHD_INFO, forbidden_tools::check_sshd),
    (forbidden_tools::SSH_INFO, forbidden_tools::check_ssh),
    (forbidden_tools::NC_INFO, forbidden_tools::check_nc),
    (forbidden_tools::NETCAT_INFO, forbidden_tools::check_netcat),
    (forbidden_tools::SOCAT_INFO, forbidden_tools::check_socat),
    (compilers::INFO, compilers::check),
    (os_release::INFO, os_release::check),
];

/// Runs every check in report order.
pub fn run_all(context: &ScanContext) -> Vec<CheckResult> {
    CHECKS
        .iter()
        .map(|(info, check)| to_result(info, check(context), context.layers))
        .collect()
}

fn to_result(info: &CheckInfo, outcome: Outcome, layers: &[LayerIndex]) -> CheckResult {
    let files = outcome
        .files
        .as_deref()
        .map(|found| file_findings::group_by_layer(found, layers));
    let present = outcome.files.as_deref().map(file_findings::present_paths);
    CheckResult {
        title: info.title,
        severity: if outcome.pass {
            Severity::Informational
        } else {
            info.severity
        },
        pass: outcome.pass,
        description: outcome.description,
        mitigation: info.mitigation,
        files,
        id: info.id,
        present_in_final_image: present,
        check_severity: info.severity,
        findings: outcome.files.unwrap_or_default(),
    }
}

/// Returns the highest severity among failed checks, if any failed.
pub fn highest_failed(results: &[CheckResult]) -> Option<Severity> {
    results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| r.check_severity)
        .max()
}
