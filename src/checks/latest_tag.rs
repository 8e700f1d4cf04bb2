//! The `:latest` tag.
//!
//! What it checks: the reference's tag is `latest`, or the reference has neither tag nor
//! digest, which registries resolve to `latest`. A reference pinned by digest passes.
//! Why it matters: `latest` moves, so a scan of it tells nothing about what runs tomorrow,
//! and deployments of it cannot be reproduced or rolled back.
//! How to fix: tag releases with a version, or deploy by digest.

use super::{CheckInfo, Outcome, ScanContext, Severity};

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS001",
    name: "latest-tag",
    title: "Tag :latest",
    severity: Severity::Critical,
    rationale: "The latest tag moves to whatever was pushed last, so neither the scan result \
                nor a deployment of it can be reproduced.",
    mitigation: "Tag the image with a version (e.g. app:1.4.2 or a commit hash) or refer to \
                 it by digest (app@sha256:...).",
};

pub fn check(context: &ScanContext) -> Outcome {
    if let Some(digest) = context.pinned_digest {
        return Outcome::pass(format!("The reference is pinned by digest {digest}."));
    }
    match context.tag {
        Some("latest") => Outcome::fail("The image is tagged latest."),
        Some(tag) => Outcome::pass(format!("The image is tagged {tag}.")),
        None => {
            Outcome::fail("The reference has neither tag nor digest, so it means the latest tag.")
        }
    }
}
