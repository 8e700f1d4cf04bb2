//! The LABEL metadata that identifies an image.
//!
//! What it checks: labels for five pieces of information, each accepted under an OCI
//! annotation key or a plain key (the first key with a non-empty value counts):
//! - vendor: `org.opencontainers.image.vendor`, `vendor`, `company`;
//! - contact e-mail (a value containing `@`): `org.opencontainers.image.authors`,
//!   `maintainer`, `email`, `e-mail`;
//! - version or build number: `org.opencontainers.image.version`, `version`,
//!   `org.label-schema.version`, `build`, `build-number`, `build_number`;
//! - component: `component`, `app.kubernetes.io/component`;
//! - product: `product`, `app.kubernetes.io/part-of`.
//!
//! Why it matters: without them nobody can tell who owns an image found running, which
//! release it is, or where to report a problem.
//! How to fix: add the labels in the Dockerfile or at build time.

use super::{CheckInfo, Outcome, ScanContext, Severity};
use std::collections::BTreeMap;

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS004",
    name: "missing-labels",
    title: "Image LABEL metadata",
    severity: Severity::Low,
    rationale: "Labels for vendor, contact, version, component and product tell whoever finds \
                the image running who owns it and which release it is.",
    mitigation: "Add labels, e.g. LABEL org.opencontainers.image.vendor=\"Example Ltd\" \
                 org.opencontainers.image.authors=\"team@example.com\" \
                 org.opencontainers.image.version=\"1.4.2\" component=\"backend\" \
                 product=\"shop\".",
};

struct Piece {
    what: &'static str,
    keys: &'static [&'static str],
    needs_at_sign: bool,
}

const PIECES: &[Piece] = &[
    Piece {
        what: "vendor",
        keys: &["org.opencontainers.image.vendor", "vendor", "company"],
        needs_at_sign: false,
    },
    Piece {
        what: "contact e-mail",
        keys: &[
            "org.opencontainers.image.authors",
            "maintainer",
            "email",
            "e-mail",
        ],
        needs_at_sign: true,
    },
    Piece {
        what: "version or build number",
        keys: &[
            "org.opencontainers.image.version",
            "version",
            "org.label-schema.version",
            "build",
            "build-number",
            "build_number",
        ],
        needs_at_sign: false,
    },
    Piece {
        what: "component",
        keys: &["component", "app.kubernetes.io/component"],
        needs_at_sign: false,
    },
    Piece {
        what: "product",
        keys: &["product", "app.kubernetes.io/part-of"],
        needs_at_sign: false,
    },
];

fn find<'a>(
    labels: &'a BTreeMap<String, String>,
    piece: &Piece,
) -> Option<(&'static str, &'a str)> {
    piece.keys.iter().find_map(|key| {
        let value = labels.get(*key)?.trim();
        let valid = !value.is_empty() && (!piece.needs_at_sign || value.contains('@'));
        valid.then_some((*key, value))
    })
}

pub fn check(context: &ScanContext) -> Outcome {
    let labels = context.container_config().labels.unwrap_or_default();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for piece in PIECES {
        match find(&labels, piece) {
            Some((key, value)) => found.push(format!("{key}={value:?}")),
            None => missing.push(piece.what),
        }
    }
    if labels.is_empty() {
        Outcome::fail(format!(
            "The image has no labels; missing: {}.",
            missing.join(", ")
        ))
    } else if missing.is_empty() {
        Outcome::pass(format!("Found {}.", found.join(", ")))
    } else {
        Outcome::fail(format!("Missing: {}.", missing.join(", ")))
    }
}
