//! The number of layers.
//!
//! What it checks: the manifest lists more than one layer.
//! Why it matters: every layer ships in full, so files deleted in a later layer still reach
//! every host, and secrets removed later remain readable in the earlier layer.
//! How to fix: squash the final stage, or copy the result of a build stage into a fresh one.

use super::{CheckInfo, Outcome, ScanContext, Severity};

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS005",
    name: "multiple-layers",
    title: "The number of layers in the image",
    severity: Severity::Low,
    rationale: "Each layer ships in full: files that a later layer deletes still reach every \
                host, and one layer is easier to audit.",
    mitigation: "Build with a multi-stage Dockerfile whose final stage is FROM scratch with \
                 COPY --from=build / /, or squash the image (buildah --squash).",
};

pub fn check(context: &ScanContext) -> Outcome {
    let count = context.manifest.layers.len();
    let text = format!(
        "The image has {count} layer{}.",
        if count == 1 { "" } else { "s" }
    );
    if count > 1 {
        Outcome::fail(text)
    } else {
        Outcome::pass(text)
    }
}
