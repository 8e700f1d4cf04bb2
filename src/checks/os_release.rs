//! The operating system of the image, from `os-release`.
//!
//! What it checks: NAME and VERSION_ID from `/etc/os-release`, else `/usr/lib/os-release`, of
//! the final filesystem, following symlinks inside the image. It always passes; it records
//! the OS so that a reader knows which distribution's advisories apply.

use super::{CheckInfo, Outcome, ScanContext, Severity};
use crate::filesystem::FileBody;

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS017",
    name: "os-type",
    title: "Checking for OS type",
    severity: Severity::Informational,
    rationale: "Records the distribution and version, so that readers know which security \
                advisories apply to the image.",
    mitigation: "None needed; keep the base image on a supported release.",
};

const PATHS: &[&str] = &["/etc/os-release", "/usr/lib/os-release"];

pub fn check(context: &ScanContext) -> Outcome {
    for path in PATHS {
        match context.fs.file_body(path) {
            FileBody::Captured(body) => {
                let text = String::from_utf8_lossy(body);
                let name = field(&text, "NAME").unwrap_or_else(|| "unknown".to_string());
                let version = field(&text, "VERSION_ID").unwrap_or_else(|| "unknown".to_string());
                return Outcome::pass(format!("{name} {version} (from {path})"));
            }
            FileBody::NotCaptured => {
                return Outcome::pass(format!(
                    "unknown: {path} is a hard link or too large, and its body was not read"
                ));
            }
            FileBody::NoFile => {}
        }
    }
    Outcome::pass("unknown: the image has no /etc/os-release or /usr/lib/os-release")
}

/// Returns the value of `key` in an os-release file, with quotes and escapes removed.
pub fn field(text: &str, key: &str) -> Option<String> {
    let raw = text
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))?;
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(raw);
    let mut value = String::new();
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            value.extend(chars.next());
        } else if !c.is_control() {
            value.push(c);
        }
    }
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn os_release_fields() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                    VERSION_ID=\"12\"\n";
        assert_eq!(field(text, "NAME").as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(field(text, "ID"), None);
    }

    #[test]
    fn unquoted_and_escaped_values() {
        assert_eq!(field("NAME=Alpine\n", "NAME").as_deref(), Some("Alpine"));
        assert_eq!(field("NAME=\"a\\\"b\"\n", "NAME").as_deref(), Some("a\"b"));
    }
}
