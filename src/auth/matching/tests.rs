use super::*;

/// Returns the key that `best_match` picks among `keys`.
fn pick<'k>(keys: &[&'k str], registry: &str, repository: &str) -> Option<&'k str> {
    let target = Target::new(registry, repository);
    best_match(keys.iter().map(|key| (*key, ())), &target).map(|(key, _)| key)
}

const HOST: &str = "registry.example.com";

#[test]
fn exact_key_matches() {
    assert_eq!(pick(&[HOST], HOST, "group/app"), Some(HOST));
}

#[test]
fn other_host_never_matches() {
    let keys = ["other.example.com", "registry.example.co", "example.com"];
    assert_eq!(pick(&keys, HOST, "group/app"), None);
}

#[test]
fn scheme_is_ignored() {
    assert_eq!(
        pick(&["https://registry.example.com"], HOST, "app"),
        Some("https://registry.example.com")
    );
    assert_eq!(
        pick(&["http://registry.example.com/"], HOST, "app"),
        Some("http://registry.example.com/")
    );
    assert_eq!(
        pick(&["HTTPS://registry.example.com"], HOST, "app"),
        Some("HTTPS://registry.example.com")
    );
}

#[test]
fn api_version_path_covers_host() {
    assert_eq!(
        pick(&["https://registry.example.com/v1/"], HOST, "app"),
        Some("https://registry.example.com/v1/")
    );
    assert_eq!(
        pick(&["registry.example.com/v2"], HOST, "group/app"),
        Some("registry.example.com/v2")
    );
}

#[test]
fn host_case_is_ignored() {
    assert_eq!(
        pick(&["Registry.Example.COM"], HOST, "app"),
        Some("Registry.Example.COM")
    );
    assert_eq!(pick(&[HOST], "REGISTRY.example.com", "app"), Some(HOST));
}

#[test]
fn port_must_match() {
    assert_eq!(pick(&[HOST], "registry.example.com:5000", "app"), None);
    assert_eq!(pick(&["registry.example.com:5000"], HOST, "app"), None);
    assert_eq!(
        pick(
            &["registry.example.com:5000"],
            "registry.example.com:5000",
            "app"
        ),
        Some("registry.example.com:5000")
    );
    assert_eq!(
        pick(&["https://127.0.0.1:5000/v2/"], "127.0.0.1:5000", "app"),
        Some("https://127.0.0.1:5000/v2/")
    );
}

#[test]
fn exact_key_beats_equivalent_keys() {
    // Both keys sort before the exact key, so only the exact rule can pick it.
    let keys = [
        "http://registry.example.com",
        "https://registry.example.com/v2/",
        HOST,
    ];
    assert_eq!(pick(&keys, HOST, "app"), Some(HOST));
}

#[test]
fn docker_hub_aliases_match_each_other() {
    let aliases = [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    ];
    for key in aliases {
        for registry in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(
                pick(&[key], registry, "library/alpine"),
                Some(key),
                "{key} for {registry}"
            );
        }
    }
}

#[test]
fn docker_hub_legacy_key_is_exact() {
    // `docker.io/` sorts first, so only the exact rule can pick the legacy key.
    let keys = ["docker.io/", "https://index.docker.io/v1/"];
    assert_eq!(
        pick(&keys, "docker.io", "library/alpine"),
        Some("https://index.docker.io/v1/")
    );
}

#[test]
fn hub_key_rejects_other_hosts() {
    assert_eq!(
        pick(
            &["https://index.docker.io/v1/"],
            "ghcr.io",
            "library/alpine"
        ),
        None
    );
}

#[test]
fn path_key_matches_at_segment_boundary() {
    let key = "registry.example.com/group";
    assert_eq!(pick(&[key], HOST, "group/app"), Some(key));
    assert_eq!(pick(&[key], HOST, "group"), Some(key));
    assert_eq!(pick(&[key], HOST, "groupware/app"), None);
    assert_eq!(pick(&[key], HOST, "other/group"), None);
}

#[test]
fn path_key_with_scheme_and_slash_matches() {
    let key = "https://registry.example.com/group/app/";
    assert_eq!(pick(&[key], HOST, "group/app"), Some(key));
}

#[test]
fn path_key_rejects_shorter_repository() {
    assert_eq!(
        pick(&["registry.example.com/group/app"], HOST, "group"),
        None
    );
}

#[test]
fn longest_path_wins() {
    let keys = [
        "registry.example.com/group",
        "registry.example.com/group/app",
        HOST,
        "registry.example.com/group/app/sub",
    ];
    assert_eq!(
        pick(&keys, HOST, "group/app/tool"),
        Some("registry.example.com/group/app")
    );
    assert_eq!(
        pick(&keys, HOST, "group/lib"),
        Some("registry.example.com/group")
    );
    assert_eq!(pick(&keys, HOST, "other/app"), Some(HOST));
}

#[test]
fn path_key_beats_exact_host_key() {
    let keys = [HOST, "https://registry.example.com/group"];
    assert_eq!(
        pick(&keys, HOST, "group/app"),
        Some("https://registry.example.com/group")
    );
}

#[test]
fn docker_hub_path_key_matches() {
    let keys = ["https://index.docker.io/v1/", "docker.io/acme"];
    assert_eq!(pick(&keys, "docker.io", "acme/app"), Some("docker.io/acme"));
    assert_eq!(
        pick(&keys, "docker.io", "library/alpine"),
        Some("https://index.docker.io/v1/")
    );
}

#[test]
fn choice_ignores_entry_order() {
    // No key equals the registry as given, so the tie goes to the key that sorts first.
    let keys = [
        "https://registry.example.com",
        "http://registry.example.com/",
        "registry.example.com/v1/",
        "HTTPS://REGISTRY.EXAMPLE.COM",
    ];
    let mut orders = Vec::new();
    for rotation in 0..keys.len() {
        let mut order = keys.to_vec();
        order.rotate_left(rotation);
        orders.push(order.clone());
        order.reverse();
        orders.push(order);
    }
    for order in orders {
        assert_eq!(
            pick(&order, HOST, "app"),
            Some("HTTPS://REGISTRY.EXAMPLE.COM"),
            "{order:?}"
        );
    }
}

#[test]
fn helper_server_url_uses_legacy_hub_key() {
    assert_eq!(
        Target::new("docker.io", "library/alpine").helper_server_url(),
        DOCKER_HUB_LEGACY_KEY
    );
    assert_eq!(
        Target::new("registry-1.docker.io", "x/y").helper_server_url(),
        DOCKER_HUB_LEGACY_KEY
    );
}

#[test]
fn helper_server_url_is_host_with_port() {
    assert_eq!(
        Target::new("Registry.Example.com:5000", "app").helper_server_url(),
        "registry.example.com:5000"
    );
}

#[test]
fn unusual_keys_do_not_panic() {
    let keys = [
        "",
        "/",
        "://",
        "https://",
        "é/ü",
        "h\u{0}st",
        "https://[::1]:5000/v2/",
        "ｈｔｔｐｓ://x",
    ];
    for key in keys {
        let _ = pick(&[key], HOST, "app");
        let _ = pick(&[key], key, key);
    }
    assert_eq!(
        pick(&["https://[::1]:5000/v2/"], "[::1]:5000", "app"),
        Some("https://[::1]:5000/v2/")
    );
}
