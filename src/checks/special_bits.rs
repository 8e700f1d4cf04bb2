//! Files and directories with the set-user-ID or set-group-ID bit.
//!
//! What it checks: every entry of every layer whose mode has the bit, including hard links to
//! such files (a hard link shares its target's mode) and entries a later layer deleted.
//! Why it matters: a set-ID program runs with its owner's or group's rights, so a flaw in it
//! gives an attacker inside the container root or group access.
//! How to fix: remove the bit in the layer that adds the file (`chmod u-s,g-s`), or remove
//! the program there. Deleting it in a later layer leaves it in the image's blobs.

use super::file_findings::{find_entries, outcome};
use super::{CheckInfo, Outcome, ScanContext, Severity};
use crate::layer::EntryKind;

pub const SUID_INFO: CheckInfo = CheckInfo {
    id: "ICS007",
    name: "suid-file",
    title: "Checking for a suid bit file",
    severity: Severity::Critical,
    rationale: "A set-user-ID program runs with its owner's rights, usually root's, so any \
                flaw in it is a privilege escalation inside the container.",
    mitigation: "Remove the setuid bit (chmod u-s) or the program in the same Dockerfile \
                 instruction that installs it, e.g. RUN apt-get install ... && chmod u-s \
                 /usr/bin/passwd; removing it in a later layer leaves it in the image.",
};

pub const SGID_INFO: CheckInfo = CheckInfo {
    id: "ICS008",
    name: "sgid-file",
    title: "Checking for a sgid bit file",
    severity: Severity::Critical,
    rationale: "A set-group-ID program or directory grants its group's rights, such as \
                shadow or mail, to whoever runs it or writes into it.",
    mitigation: "Remove the setgid bit (chmod g-s) in the same Dockerfile instruction that \
                 creates the file or directory, e.g. RUN ... && find / -xdev -perm /2000 \
                 -exec chmod g-s {} +.",
};

const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;

fn has_bit(kind: EntryKind, mode: u32, bit: u32) -> bool {
    // The runtime cannot set mode bits on a symlink, so a symlink's header mode is moot.
    kind != EntryKind::Symlink && mode & bit != 0
}

pub fn check_suid(context: &ScanContext) -> Outcome {
    let found = find_entries(context, |_, _, kind, mode| has_bit(kind, mode, SETUID));
    outcome(found, "files with the setuid bit")
}

pub fn check_sgid(context: &ScanContext) -> Outcome {
    let found = find_entries(context, |_, _, kind, mode| has_bit(kind, mode, SETGID));
    outcome(found, "files or directories with the setgid bit")
}
