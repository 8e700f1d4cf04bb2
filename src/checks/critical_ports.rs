//! Remote-access ports in EXPOSE.
//!
//! What it checks: ExposedPorts lists 22 (SSH), 23 (telnet), 2375 or 2376 (the Docker
//! daemon API) on any protocol, as `22/tcp`, `22/udp`, bare `22` or a range such as
//! `20-25/tcp`. `8022/tcp` is not port 22.
//! Why it matters: these ports serve remote shells or control of the Docker daemon, which
//! an application image should never offer.
//! How to fix: drop the EXPOSE instruction for these ports and the service behind it.

use super::{CheckInfo, Outcome, ScanContext, Severity};

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS002",
    name: "critical-exposed-port",
    title: "Critical ports in the instructions EXPOSE",
    severity: Severity::High,
    rationale: "Ports 22, 23, 2375 and 2376 serve SSH, telnet and the Docker daemon API: a \
                remote shell or full control of the host.",
    mitigation: "Remove the EXPOSE instruction for these ports and the service that listens \
                 on them; use the orchestrator's exec for debugging.",
};

const CRITICAL: &[u32] = &[22, 23, 2375, 2376];

/// Parses `PORT[/PROTO]` or `START-END[/PROTO]` as the Docker engine does (decimal, leading
/// zeros allowed) and returns the inclusive range.
fn port_range(key: &str) -> Option<(u32, u32)> {
    let ports = key.split('/').next().unwrap_or(key).trim();
    let parse = |s: &str| s.parse::<u32>().ok().filter(|p| *p <= 65_535);
    match ports.split_once('-') {
        Some((start, end)) => Some((parse(start)?, parse(end)?)),
        None => parse(ports).map(|p| (p, p)),
    }
}

pub fn check(context: &ScanContext) -> Outcome {
    let config = context.container_config();
    let exposed: Vec<&str> = config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
        .map(String::as_str)
        .collect();
    let critical: Vec<&str> = exposed
        .iter()
        .copied()
        .filter(|key| {
            port_range(key)
                .is_some_and(|(start, end)| CRITICAL.iter().any(|p| (start..=end).contains(p)))
        })
        .collect();
    if !critical.is_empty() {
        return Outcome::fail(format!("The image exposes {}.", critical.join(", ")));
    }
    if exposed.is_empty() {
        Outcome::pass("The image exposes no ports.")
    } else {
        Outcome::pass(format!(
            "The image exposes {}, none of them critical.",
            exposed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::port_range;

    #[test]
    fn port_forms() {
        assert_eq!(port_range("22/tcp"), Some((22, 22)));
        assert_eq!(port_range("22"), Some((22, 22)));
        assert_eq!(port_range("022/udp"), Some((22, 22)));
        assert_eq!(port_range("20-25/tcp"), Some((20, 25)));
        assert_eq!(port_range("8022/tcp"), Some((8022, 8022)));
        assert_eq!(port_range("x/tcp"), None);
    }
}
