//! Errors of a scan and the process exit codes they map to.

use std::path::PathBuf;

/// Exit code when the image could not be pulled or a layer could not be read.
pub const EXIT_PULL_FAILED: u8 = 20;
/// Exit code when the manifest, index or config could not be read or parsed.
pub const EXIT_METADATA_FAILED: u8 = 21;
/// Exit code when no image reference was given.
pub const EXIT_NO_IMAGE: u8 = 22;
/// Exit code when the reports directory could not be created or written.
pub const EXIT_REPORTS_DIR: u8 = 23;
/// Exit code for an invalid setting (clap's usage errors use the same code).
pub const EXIT_USAGE: u8 = 2;

/// The stage of a scan at which something failed; it prefixes every error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Reference,
    Auth,
    Manifest,
    Config,
    /// A layer, by its position in the manifest (0-based) and digest.
    Layer {
        index: usize,
        digest: String,
    },
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Reference => f.write_str("reference"),
            Stage::Auth => f.write_str("auth"),
            Stage::Manifest => f.write_str("manifest"),
            Stage::Config => f.write_str("config"),
            Stage::Layer { index, digest } => write!(f, "layer {index} {digest}"),
        }
    }
}

/// A failed scan. Messages never contain credentials: registry answers are summarised by
/// status and error code, and auth errors name the config key, never its value.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// No image reference was given.
    #[error(
        "no image given: set COMPLIANCE_IMAGE_FULL_REF or pass --image \
         (for example registry.example.com/team/app:1.2)"
    )]
    NoImage,

    /// A setting has an invalid value.
    #[error("invalid {name}: {message}")]
    InvalidSetting { name: String, message: String },

    /// The image could not be pulled: reference, auth, network, missing manifest or blob,
    /// digest mismatch or an unreadable layer.
    #[error("{stage}: {message}")]
    Pull { stage: Stage, message: String },

    /// The manifest, index or config was fetched but is not valid.
    #[error("{stage}: {message}")]
    Metadata { stage: Stage, message: String },

    /// The reports directory or a report file could not be written.
    #[error("reports: cannot write {}: {message}", path.display())]
    Reports { path: PathBuf, message: String },
}

impl ScanError {
    /// Builds a pull error for `stage`.
    pub fn pull(stage: Stage, message: impl Into<String>) -> Self {
        ScanError::Pull {
            stage,
            message: message.into(),
        }
    }

    /// Builds a metadata error for `stage`.
    pub fn metadata(stage: Stage, message: impl Into<String>) -> Self {
        ScanError::Metadata {
            stage,
            message: message.into(),
        }
    }

    /// Returns the documented process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ScanError::NoImage => EXIT_NO_IMAGE,
            ScanError::InvalidSetting { .. } => EXIT_USAGE,
            ScanError::Pull { .. } => EXIT_PULL_FAILED,
            ScanError::Metadata { .. } => EXIT_METADATA_FAILED,
            ScanError::Reports { .. } => EXIT_REPORTS_DIR,
        }
    }
}
