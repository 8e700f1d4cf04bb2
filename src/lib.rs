//! Library behind the `image-compliance-scanner` binary: reads an OCI image from a registry,
//! an OCI layout or an archive, walks every layer once, and evaluates the compliance checks.
//! The library never prints; the binary owns stdout, stderr and the exit code.

pub mod auth;
pub mod checks;
pub mod digest;
pub mod error;
pub mod filesystem;
pub mod github;
pub mod image;
pub mod layer;
pub mod reference;
pub mod report;
pub mod scan;
pub mod source;
