//! Compilers in the image.
//!
//! What it checks: executables named as a C, C++, Fortran, Go, Rust or Java compiler or
//! compiler driver, including versioned and target-prefixed names (`gcc-12`,
//! `x86_64-linux-gnu-g++-12`, `clang-16`), the Go toolchain's `go`, and the compilers proper
//! that drivers call (`cc1`, `cc1plus`, `f951`, `go1`).
//! Why it matters: a compiler lets an intruder build exploits and tools inside the container,
//! and it shows that build-time packages reached the runtime image.
//! How to fix: compile in a build stage and copy only the artefacts into the final stage.

use super::file_findings::{find_entries, is_program, outcome};
use super::{CheckInfo, Outcome, ScanContext, Severity};

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS016",
    name: "compiler",
    title: "Compilers in the image",
    severity: Severity::Medium,
    rationale: "A compiler lets an intruder build tools inside the container, and it shows \
                that build dependencies reached the runtime image.",
    mitigation: "Build in a separate stage of a multi-stage Dockerfile and COPY --from only \
                 the artefacts into a runtime base image without compilers.",
};

/// Driver names that may carry a target prefix (`x86_64-linux-gnu-`) and a version suffix.
const DRIVERS: &[&str] = &[
    "gcc", "cc", "c++", "g++", "c89", "c99", "clang", "clang++", "gfortran", "f77", "f95", "gccgo",
    "tcc", "rustc", "javac",
];
/// Names matched exactly: the Go tool and the compilers proper behind the drivers.
const EXACT: &[&str] = &[
    "go",
    "cc1",
    "cc1plus",
    "cc1obj",
    "cc1objplus",
    "f951",
    "go1",
];

/// Returns the compiler a file name stands for, if any.
pub fn compiler_name(name: &str) -> Option<&'static str> {
    if let Some(exact) = EXACT.iter().find(|c| **c == name) {
        return Some(exact);
    }
    let unversioned = strip_version(name);
    DRIVERS.iter().copied().find(|driver| {
        unversioned == *driver
            || unversioned
                .strip_suffix(driver)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('-'))
    })
}

/// Strips a `-12` or `-12.2` version suffix.
fn strip_version(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, version))
            if version.starts_with(|c: char| c.is_ascii_digit())
                && version.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            head
        }
        _ => name,
    }
}

pub fn check(context: &ScanContext) -> Outcome {
    let found = find_entries(context, |layer, entry, kind, mode| {
        compiler_name(entry.name).is_some() && is_program(context, layer, entry, kind, mode)
    });
    outcome(found, "compiler executables")
}

#[cfg(test)]
mod tests {
    use super::compiler_name;

    #[test]
    fn compiler_names_match() {
        for name in [
            "gcc",
            "gcc-12",
            "x86_64-linux-gnu-g++-12",
            "clang-16",
            "clang++",
            "go",
            "cc1",
            "cc1plus",
            "gfortran-12",
            "x86_64-linux-gnu-gccgo-12",
            "rustc",
            "javac",
            "c++",
        ] {
            assert!(compiler_name(name).is_some(), "{name} should match");
        }
    }

    #[test]
    fn other_tools_do_not_match() {
        for name in [
            "gcc-ar-12",
            "x86_64-linux-gnu-gcc-nm-12",
            "c++filt",
            "cargo",
            "gofmt",
            "mongo",
            "cpp",
            "ld",
            "ccache-",
            "-gcc",
            "occ",
        ] {
            assert!(compiler_name(name).is_none(), "{name} should not match");
        }
    }
}
