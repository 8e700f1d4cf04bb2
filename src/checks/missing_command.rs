//! The CMD and ENTRYPOINT parameters.
//!
//! What it checks: the config sets a CMD or an ENTRYPOINT with at least one non-empty word.
//! Why it matters: without either, the image runs whatever each deployment passes, so its
//! behaviour is not defined by the image that was reviewed.
//! How to fix: add `ENTRYPOINT ["/app"]` (and CMD for default arguments).

use super::{CheckInfo, Outcome, ScanContext, Severity};
use crate::image::StringList;

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS006",
    name: "missing-command",
    title: "Parameters CMD, ENTRYPOINT",
    severity: Severity::Low,
    rationale: "An image without CMD or ENTRYPOINT runs whatever each deployment passes, so \
                the reviewed image does not define what runs.",
    mitigation: "Set ENTRYPOINT [\"/path/to/app\"] in exec form, and CMD for default \
                 arguments.",
};

fn words(list: &Option<StringList>) -> Option<&[String]> {
    let list = list.as_ref()?;
    list.0
        .iter()
        .any(|w| !w.trim().is_empty())
        .then_some(list.0.as_slice())
}

fn render(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

pub fn check(context: &ScanContext) -> Outcome {
    let config = context.container_config();
    let mut parts = Vec::new();
    if let Some(entrypoint) = words(&config.entrypoint) {
        parts.push(format!("ENTRYPOINT {}", render(entrypoint)));
    }
    if let Some(cmd) = words(&config.cmd) {
        parts.push(format!("CMD {}", render(cmd)));
    }
    if parts.is_empty() {
        Outcome::fail("Neither CMD nor ENTRYPOINT is set.")
    } else {
        Outcome::pass(format!("{}.", parts.join(", ")))
    }
}
