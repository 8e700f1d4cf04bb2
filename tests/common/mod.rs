//! Integration-test harness: real registries on 127.0.0.1, a token issuer, an OCI image
//! builder, image archives and a runner for the scanner binary.
//!
//! Test files include it with `mod common;` and each uses a subset of it. Helpers panic with
//! the failing command's output instead of returning errors, because a harness failure ends
//! the test. External tools: `docker-registry` (CNCF distribution 2.8), `skopeo`, `openssl`,
//! `htpasswd` (apache2-utils) and `python3`.
// Each test file uses a subset of the helpers and of these re-exports.
#![allow(dead_code, unused_imports)]

pub mod archive;
pub mod certs;
pub mod fault_proxy;
pub mod http;
pub mod image;
pub mod process;
pub mod registry;
pub mod scanner;
pub mod skopeo;
pub mod token;

pub use archive::{write_docker_archive, write_oci_archive};
pub use http::{HttpOptions, HttpResponse, http_get, http_post_form};
pub use image::{
    Compression, Descriptor, ImageBuilder, IndexBuilder, Layer, LayoutImage, LayoutIndex, Platform,
    TarEntry, add_to_layout_index, sha256_digest, write_blob,
};
pub use registry::{PushedImage, Registry, RegistryAuth, RegistryOptions};
pub use scanner::{
    ScanRun, docker_auth_config_basic, docker_auth_config_identity_token, read_findings,
    read_report, report_file_name, run_scan, scanner, scanner_home, scanner_with_home,
};
pub use skopeo::skopeo;
pub use token::{IssuerRequest, PUSH_USER, TokenIssuer, TokenOptions, TokenUser};

use std::collections::hash_map::RandomState;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Returns `bytes` random bytes as lowercase hex, for passwords, secrets and instance ids.
///
/// The bytes come from std's randomly seeded SipHash keys. They are unpredictable enough for
/// test credentials on loopback, not for real secrets.
pub fn random_hex(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut output = String::with_capacity(bytes * 2);
    while output.len() < bytes * 2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        write!(output, "{:016x}", hasher.finish()).expect("writing to a String cannot fail");
    }
    output.truncate(bytes * 2);
    output
}
