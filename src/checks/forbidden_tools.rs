//! Programs that give a shell user more power or a way out: sudo, su, sshd, the ssh client,
//! nc, netcat and socat.
//!
//! What it checks: an executable with one of the check's names in any layer: a regular file
//! with an execute bit, a hard link to one, or a symlink to one (busybox applets such as
//! `/bin/su -> /bin/busybox` count). A non-executable file of that name (a bash completion
//! script), a directory such as `/etc/ssh`, a symlink to a directory, and files under
//! `/etc/init.d/`, `/usr/lib/apt/methods/` and `/usr/share/doc/` do not count.
//! Why it matters: these tools escalate privileges, open remote shells or relay traffic, so
//! an attacker who gets code execution in the container gains much more.
//! How to fix: do not install the package, or remove the program in the same instruction
//! that installs it.

use super::file_findings::{find_entries, is_program, outcome};
use super::{CheckInfo, Outcome, ScanContext, Severity};

const fn critical(
    id: &'static str,
    name: &'static str,
    title: &'static str,
    rationale: &'static str,
    mitigation: &'static str,
) -> CheckInfo {
    CheckInfo {
        id,
        name,
        title,
        severity: Severity::Critical,
        rationale,
        mitigation,
    }
}

pub const SUDO_INFO: CheckInfo = critical(
    "ICS009",
    "sudo-file",
    "Checking for a sudo file",
    "sudo lets a user run commands as root; a container should start with the rights it \
     needs and never gain more.",
    "Do not install sudo. Run the build steps that need root before the USER instruction.",
);
pub const SU_INFO: CheckInfo = critical(
    "ICS010",
    "su-file",
    "Checking for a su file",
    "su switches to another user, root by default, so it is a privilege escalation path.",
    "Remove su in the instruction that installs it (for busybox images, delete the /bin/su \
     applet link), or base the image on a distroless or scratch image.",
);
pub const SSHD_INFO: CheckInfo = critical(
    "ICS011",
    "sshd-file",
    "Checking for a sshd file",
    "An SSH server opens a remote shell into the container and bypasses the orchestrator's \
     access control and audit.",
    "Do not install openssh-server; use kubectl exec or docker exec for debugging.",
);
pub const SSH_INFO: CheckInfo = critical(
    "ICS012",
    "ssh-client-file",
    "Checking for a ssh client file",
    "An SSH client lets an intruder move from the container to other hosts and tunnel \
     traffic out.",
    "Do not install openssh-client in the final image; fetch private sources in a build \
     stage of a multi-stage Dockerfile.",
);
pub const NC_INFO: CheckInfo = critical(
    "ICS013",
    "nc-file",
    "Checking for a nc file",
    "nc (and ncat, nc.openbsd, nc.traditional) opens raw connections, the usual tool for a \
     reverse shell.",
    "Do not install netcat-openbsd, netcat-traditional or ncat, and remove the busybox nc \
     applet.",
);
pub const NETCAT_INFO: CheckInfo = critical(
    "ICS014",
    "netcat-file",
    "Checking for a netcat file",
    "netcat opens raw connections, the usual tool for a reverse shell.",
    "Do not install the netcat packages, and remove the busybox netcat applet.",
);
pub const SOCAT_INFO: CheckInfo = critical(
    "ICS015",
    "socat-file",
    "Checking for a socat file",
    "socat relays any socket to any other, enough for a reverse shell or a tunnel.",
    "Do not install socat in the final image.",
);

fn check_names(context: &ScanContext, names: &[&str], what: &str) -> Outcome {
    let found = find_entries(context, |layer, entry, kind, mode| {
        names.contains(&entry.name) && is_program(context, layer, entry, kind, mode)
    });
    outcome(found, what)
}

pub fn check_sudo(context: &ScanContext) -> Outcome {
    check_names(context, &["sudo"], "sudo executables")
}

pub fn check_su(context: &ScanContext) -> Outcome {
    check_names(context, &["su"], "su executables")
}

pub fn check_sshd(context: &ScanContext) -> Outcome {
    check_names(context, &["sshd"], "sshd executables")
}

pub fn check_ssh(context: &ScanContext) -> Outcome {
    check_names(context, &["ssh", "slogin"], "ssh client executables")
}

pub fn check_nc(context: &ScanContext) -> Outcome {
    check_names(
        context,
        &["nc", "ncat", "nc.openbsd", "nc.traditional"],
        "nc executables",
    )
}

pub fn check_netcat(context: &ScanContext) -> Outcome {
    check_names(context, &["netcat"], "netcat executables")
}

pub fn check_socat(context: &ScanContext) -> Outcome {
    check_names(context, &["socat", "socat1"], "socat executables")
}
