//! Matching config keys against a registry host and repository. The rules are listed in the
//! module documentation of `auth`.

use std::cmp::{Ordering, Reverse};

/// Docker Hub's canonical host, as `reference` names it.
const DOCKER_HUB: &str = "docker.io";

/// Host names that all mean Docker Hub.
const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The key under which `docker login` stores Docker Hub credentials, and the server URL that
/// the docker CLI sends to helpers for Docker Hub.
const DOCKER_HUB_LEGACY_KEY: &str = "https://index.docker.io/v1/";

/// The registry and repository a credential is requested for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// The registry exactly as the caller passed it, for exact key matches.
    registry: String,
    /// Lowercase host with optional port. Docker Hub aliases become `docker.io`.
    host: String,
    /// Repository path without leading or trailing `/`, such as `group/app`.
    repository: String,
}

impl Target {
    pub(super) fn new(registry: &str, repository: &str) -> Self {
        let (host, _) = split_key(registry);
        Target {
            registry: registry.to_string(),
            host: canonical_host(host),
            repository: repository.trim_matches('/').to_string(),
        }
    }

    fn is_docker_hub(&self) -> bool {
        self.host == DOCKER_HUB
    }

    /// Returns the server URL written to a helper's stdin: `https://index.docker.io/v1/` for Docker
    /// Hub, as the docker CLI sends, else the host with optional port.
    pub(super) fn helper_server_url(&self) -> String {
        if self.is_docker_hub() {
            DOCKER_HUB_LEGACY_KEY.to_string()
        } else {
            self.host.clone()
        }
    }

    fn is_exact_key(&self, key: &str) -> bool {
        key == self.registry || (self.is_docker_hub() && key == DOCKER_HUB_LEGACY_KEY)
    }
}

/// Rank of a matching key for a target. Greater is better.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank<'k> {
    /// Length of the key's repository path, or 0 for a host-wide key.
    path_len: usize,
    /// Whether the key equals the registry as given.
    exact: bool,
    /// The key itself, reversed so that the key that sorts first ranks highest.
    key: Reverse<&'k str>,
}

/// Returns the entry whose key fits `target` best, or `None` when no key matches. The result
/// does not depend on the order of `entries`.
pub(super) fn best_match<'k, T>(
    entries: impl IntoIterator<Item = (&'k str, T)>,
    target: &Target,
) -> Option<(&'k str, T)> {
    let mut best: Option<(Rank<'k>, &'k str, T)> = None;
    for (key, value) in entries {
        let Some(rank) = rank(key, target) else {
            continue;
        };
        let better = match &best {
            Some((best_rank, _, _)) => rank.cmp(best_rank) == Ordering::Greater,
            None => true,
        };
        if better {
            best = Some((rank, key, value));
        }
    }
    best.map(|(_, key, value)| (key, value))
}

/// Ranks `key` for `target`, or returns `None` when the key does not match.
fn rank<'k>(key: &'k str, target: &Target) -> Option<Rank<'k>> {
    let (host, path) = split_key(key);
    if canonical_host(host) != target.host {
        return None;
    }
    let path = repository_path(path);
    if !is_path_prefix(path, &target.repository) {
        return None;
    }
    Some(Rank {
        path_len: path.len(),
        exact: target.is_exact_key(key),
        key: Reverse(key),
    })
}

/// Splits `[scheme://]HOST[:PORT][/PATH]` into host and path. The scheme is dropped when it is
/// `http://` or `https://`, in any case.
fn split_key(key: &str) -> (&str, &str) {
    let key = key.trim();
    let without_scheme = ["https://", "http://"]
        .iter()
        .find_map(|scheme| strip_prefix_ignore_case(key, scheme))
        .unwrap_or(key);
    without_scheme
        .split_once('/')
        .unwrap_or((without_scheme, ""))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// Lowercases `host` and maps Docker Hub aliases to `docker.io`.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// Returns a key's repository path without surrounding `/`. An API version path (`v1` or
/// `v2`) gives the empty path, so that `https://index.docker.io/v1/` covers the whole host.
// NOTE: a repository whose first path segment is `v1` or `v2` cannot get a path-scoped key.
fn repository_path(path: &str) -> &str {
    let path = path.trim_matches('/');
    if path == "v1" || path == "v2" {
        ""
    } else {
        path
    }
}

/// Returns true when `prefix` is empty, equals `repository`, or is followed in `repository`
/// by a `/`.
fn is_path_prefix(prefix: &str, repository: &str) -> bool {
    match repository.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests;
