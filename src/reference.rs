//! Image references: which source to read, and for registries the docker CLI's grammar and
//! Docker Hub normalisation.
//!
//! Accepted forms:
//! - `[HOST[:PORT]/]NAME[:TAG][@DIGEST]`: a registry; `alpine` is `docker.io/library/alpine`.
//! - `oci:PATH[:TAG]`: an OCI image layout directory.
//! - `oci-archive:PATH[:TAG]`: a tar of an OCI image layout.
//! - `docker-archive:PATH[:NAME:TAG]`: the tar written by `docker save` or `podman save`.

use std::path::{Path, PathBuf};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";

/// An image reference, by the source it is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Registry(RegistryRef),
    OciLayout { path: PathBuf, tag: Option<String> },
    OciArchive { path: PathBuf, tag: Option<String> },
    DockerArchive { path: PathBuf, tag: Option<String> },
}

/// A registry reference, normalised as the docker CLI normalises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// Registry host with optional port; Docker Hub is `docker.io`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `library/alpine`.
    pub repository: String,
    /// Tag as written; `None` when the reference has no tag.
    pub tag: Option<String>,
    /// Digest as written, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// An invalid image reference, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl ImageRef {
    /// Parses `text`, choosing the source by its prefix.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        if text.trim() != text || text.is_empty() {
            return Err(fail("it is empty or has leading or trailing white space"));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, tag) = split_local(rest, |p| p.is_dir());
            return local(path, tag, text).map(|(path, tag)| ImageRef::OciLayout { path, tag });
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, tag) = split_local(rest, |p| p.is_file());
            return local(path, tag, text).map(|(path, tag)| ImageRef::OciArchive { path, tag });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, tag) = split_docker_archive(rest);
            return local(path, tag, text).map(|(path, tag)| ImageRef::DockerArchive { path, tag });
        }
        RegistryRef::parse(text)
            .map(ImageRef::Registry)
            .map_err(|reason| fail(&reason))
    }
}

/// Splits `PATH[:TAG]`: when the whole text names an existing path it has no tag, else the
/// part after the last `:` is the tag if it contains no `/`.
fn split_local(text: &str, exists: impl Fn(&Path) -> bool) -> (&str, Option<&str>) {
    if exists(Path::new(text)) {
        return (text, None);
    }
    match text.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !path.is_empty() => (path, Some(tag)),
        _ => (text, None),
    }
}

/// Splits `PATH[:NAME:TAG]` as skopeo writes docker-archive references: the path is the
/// longest prefix that names an existing file, else everything before the first `:`.
fn split_docker_archive(text: &str) -> (&str, Option<&str>) {
    if Path::new(text).is_file() {
        return (text, None);
    }
    let split_at = text
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|i| Path::new(&text[..*i]).is_file())
        .or_else(|| text.find(':'));
    match split_at {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    }
}

fn local(
    path: &str,
    tag: Option<&str>,
    text: &str,
) -> Result<(PathBuf, Option<String>), ReferenceError> {
    let fail = |reason: &str| ReferenceError {
        reference: text.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(fail("the path is empty"));
    }
    if tag == Some("") {
        return Err(fail("the tag after ':' is empty"));
    }
    Ok((PathBuf::from(path), tag.map(str::to_string)))
}

impl RegistryRef {
    /// Parses a registry reference with the docker CLI's rules.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest)?)),
            None => (text, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let (registry, repository) = split_registry(name)?;
        validate_repository(&repository)?;
        Ok(RegistryRef {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Tells whether the registry is on a loopback address, where plain HTTP is used.
    pub fn is_loopback(&self) -> bool {
        let host = host_without_port(&self.registry);
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Returns the host part of `registry`, without the port and without IPv6 brackets.
pub fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn split_registry(name: &str) -> Result<(String, String), String> {
    if name.is_empty() {
        return Err("the repository name is empty".to_string());
    }
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (registry, repository) = match rest {
        Some(rest) if is_host => {
            validate_registry(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    Ok((registry, repository))
}

/// Validates a registry as the docker CLI's reference grammar does: a domain name or an IPv6
/// address in brackets, then an optional `:PORT`. The registry becomes the authority of
/// request URLs, so a character such as `#`, `?` or `*` would change where requests go.
///
/// Two rules are stricter than docker's: the port must fit in 16 bits, and a domain whose last
/// label is a number must be a dotted-decimal IPv4 address. URL parsers read such a name as an
/// IPv4 address in their own way (`127.1` is 127.0.0.1), so the host that
/// [`RegistryRef::is_loopback`] checks could differ from the host that requests are sent to.
fn validate_registry(registry: &str) -> Result<(), String> {
    let fail = |problem: &str| Err(format!("registry {registry:?} is invalid: {problem}"));
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return fail("the IPv6 address has no closing ']'");
        };
        let valid_chars = address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !valid_chars || address.parse::<std::net::Ipv6Addr>().is_err() {
            return fail("the text in brackets is not an IPv6 address");
        }
        match after {
            "" => (address, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return fail("only ':PORT' may follow the IPv6 address"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().is_err() {
            return fail("the port must be a number from 0 to 65535");
        }
    }
    if registry.starts_with('[') {
        return Ok(());
    }
    let valid_label = |label: &str| {
        let bytes = label.as_bytes();
        !label.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
    };
    if !host.split('.').all(valid_label) {
        return fail(
            "the host must be labels of letters, digits and '-' separated by '.', or an IPv6 \
             address in brackets",
        );
    }
    let last_label = host.rsplit('.').next().unwrap_or_default();
    let numeric = last_label.bytes().all(|b| b.is_ascii_digit())
        || last_label.starts_with("0x")
        || last_label.starts_with("0X");
    if numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return fail("a host ending in a number must be an IPv4 address such as 127.0.0.1");
    }
    Ok(())
}

fn validate_repository(repository: &str) -> Result<(), String> {
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let valid = !component.is_empty()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
        if !valid {
            return Err(format!(
                "repository component {component:?} must be lowercase letters, digits and \
                 separators (., _, -), starting and ending with a letter or digit"
            ));
        }
    }
    if repository.len() > 255 {
        return Err("the repository name is longer than 255 characters".to_string());
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with \
             '.' or '-'"
        ))
    }
}

/// Validates a digest such as `sha256:<64 hex>` and returns it.
pub fn parse_digest(digest: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "digest {digest:?} has no algorithm prefix such as sha256:"
        ));
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm {algorithm:?} is not supported")),
    };
    let valid_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != expected_len || !valid_hex {
        return Err(format!(
            "digest {digest:?} must have {expected_len} lowercase hex digits after {algorithm}:"
        ));
    }
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(text: &str) -> RegistryRef {
        match ImageRef::parse(text) {
            Ok(ImageRef::Registry(r)) => r,
            other => panic!("{text}: expected a registry reference, got {other:?}"),
        }
    }

    #[test]
    fn docker_hub_short_name() {
        let r = registry("alpine");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn docker_hub_aliases_normalise() {
        assert_eq!(
            registry("index.docker.io/library/alpine:3").registry,
            "docker.io"
        );
        assert_eq!(registry("docker.io/alpine").repository, "library/alpine");
        assert_eq!(registry("user/app").repository, "user/app");
    }

    #[test]
    fn port_is_not_a_tag() {
        let r = registry("registry.example.com:5000/team/app");
        assert_eq!(r.registry, "registry.example.com:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn tag_and_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = registry(&format!("127.0.0.1:5000/app:1.2@{digest}"));
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn localhost_is_a_host() {
        let r = registry("localhost/app:x");
        assert_eq!(r.registry, "localhost");
        assert!(r.is_loopback());
    }

    #[test]
    fn loopback_detection() {
        assert!(registry("127.0.0.2:5000/a").is_loopback());
        assert!(registry("[::1]:5000/a").is_loopback());
        assert!(!registry("registry.example.com/a").is_loopback());
    }

    #[test]
    fn invalid_references_rejected() {
        for text in [
            "",
            "App",
            "app:",
            "app:-x",
            "app@sha256:zz",
            "a//b",
            " app",
            "app@md5:00",
            "*27.0.0.1:5000/app",
            "localhost:5000#/app",
            "registry.example.com?x/app",
            "localhost:/app",
            "localhost:65536/app",
            "127.1:5000/app",
            "0x7f.0.0.1/app",
            "[::1/app",
            "[not-ipv6]:5000/app",
            "[::1]x:5000/app",
            "-registry.example.com/app",
        ] {
            assert!(
                ImageRef::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn registry_host_forms() {
        assert_eq!(registry("[::1]/app").registry, "[::1]");
        assert_eq!(registry("10.0.0.1:443/app").registry, "10.0.0.1:443");
        assert_eq!(
            registry("Registry.Example.com/app").registry,
            "Registry.Example.com"
        );
        assert_eq!(
            registry("my-registry.local:5000/app").registry,
            "my-registry.local:5000"
        );
    }

    #[test]
    fn local_sources() {
        assert_eq!(
            ImageRef::parse("oci:/nonexistent/dir:v1").unwrap(),
            ImageRef::OciLayout {
                path: "/nonexistent/dir".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:/nonexistent/x.tar").unwrap(),
            ImageRef::DockerArchive {
                path: "/nonexistent/x.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:/nonexistent/x.tar:app:1.0").unwrap(),
            ImageRef::DockerArchive {
                path: "/nonexistent/x.tar".into(),
                tag: Some("app:1.0".into())
            }
        );
    }
}
