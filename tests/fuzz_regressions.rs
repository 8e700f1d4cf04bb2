//! Replays saved fuzz inputs through the fuzz harness, so that bugs the fuzz targets found stay
//! fixed in `cargo test` without a nightly toolchain or cargo-fuzz.
//!
//! For each target, every file in `fuzz/regressions/<target>/` (inputs that once crashed) and
//! in `fuzz/corpus/<target>/` (the seed corpus) runs through the same function as the fuzz
//! target. A panic or failed assertion in any of them fails the test and names the file.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Returns the files directly in `dir`, sorted, or none when `dir` does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = listing
        .map(|item| item.expect("failed to list a fuzz input folder").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every regression and seed file of `target` and returns how many ran. Fails with
/// the names of all files that panicked.
fn replay(target: &str) -> usize {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("the fuzz harness has no target {target:?}"));
    let mut inputs = files_in(&fuzz_dir().join("regressions").join(target));
    inputs.extend(files_in(&fuzz_dir().join("corpus").join(target)));
    let mut failed = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).expect("failed to read a fuzz input");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of fuzz target {target} panicked (messages above): {failed:#?}",
        failed.len(),
        inputs.len()
    );
    inputs.len()
}

#[test]
fn every_target_has_a_test() {
    let tested = [
        "reference",
        "auth_config",
        "manifest",
        "image_config",
        "layer_walk",
        "gzip_stream",
    ];
    for (name, _) in harness::TARGETS {
        assert!(
            tested.contains(name),
            "add a replay test for fuzz target {name}"
        );
    }
}

#[test]
fn reference_inputs() {
    assert!(
        replay("reference") > 0,
        "the reference seed corpus is empty"
    );
}

#[test]
fn auth_config_inputs() {
    assert!(
        replay("auth_config") > 0,
        "the auth_config seed corpus is empty"
    );
}

#[test]
fn manifest_inputs() {
    assert!(replay("manifest") > 0, "the manifest seed corpus is empty");
}

#[test]
fn image_config_inputs() {
    assert!(
        replay("image_config") > 0,
        "the image_config seed corpus is empty"
    );
}

#[test]
fn layer_walk_inputs() {
    assert!(
        replay("layer_walk") > 0,
        "the layer_walk seed corpus is empty"
    );
}

#[test]
fn gzip_stream_inputs() {
    assert!(
        replay("gzip_stream") > 0,
        "the gzip_stream seed corpus is empty"
    );
}
