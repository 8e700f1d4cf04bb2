//! The default user and group.
//!
//! What it checks: the config's User is `user:group` with both parts set, neither `root` nor
//! numerically 0, and neither a name that the final filesystem's `/etc/passwd` or
//! `/etc/group` maps to id 0. Numbers are read as runc reads them (Go's `strconv.Atoi`, so
//! `00` and `+0` are 0).
//! Why it matters: a process running as root in the container is root on the host once it
//! escapes, and root can read every file in the container.
//! How to fix: create an unprivileged user and group and set `USER app:app`.

use super::{CheckInfo, Outcome, ScanContext, Severity};
use crate::filesystem::FileBody;

pub const INFO: CheckInfo = CheckInfo {
    id: "ICS003",
    name: "root-user",
    title: "Default user and group",
    severity: Severity::Critical,
    rationale: "Without a non-root user and group the container runs as root, which turns \
                any escape or file-permission flaw into full control.",
    mitigation: "Create an unprivileged user and group (RUN groupadd -r app && useradd -r -g \
                 app app) and set USER app:app, or a numeric USER 10001:10001.",
};

#[derive(Clone, Copy)]
enum Database {
    Passwd,
    Group,
}

impl Database {
    fn path(self) -> &'static str {
        match self {
            Database::Passwd => "/etc/passwd",
            Database::Group => "/etc/group",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Database::Passwd => "user",
            Database::Group => "group",
        }
    }
}

/// Parses a number as Go's `strconv.Atoi` does: optional sign, decimal digits.
fn parse_numeric_id(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok()
}

/// Returns the id that `name` has in an `/etc/passwd` or `/etc/group` body.
fn lookup_id(body: &str, name: &str) -> Option<String> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 3 && fields[0] == name)
        .map(|fields| fields[2].trim().to_string())
}

/// Returns `Err` with why `part` means root, or `Ok` with what is known about it.
fn judge(context: &ScanContext, part: &str, database: Database) -> Result<String, String> {
    let what = database.what();
    if part == "root" {
        return Err(format!("the {what} is root"));
    }
    if let Some(id) = parse_numeric_id(part) {
        return if id == 0 {
            Err(format!("the {what} id {part} is 0, which is root"))
        } else {
            Ok(format!("{what} id {part}"))
        };
    }
    let path = database.path();
    let body = match context.fs.file_body(path) {
        FileBody::Captured(body) => body,
        FileBody::NoFile => return Ok(format!("{what} {part} (the image has no {path})")),
        // A hard link or an oversized file hides the body, so the check fails closed.
        FileBody::NotCaptured => {
            return Err(format!(
                "{path} could not be read, so the {what} {part} may be root"
            ));
        }
    };
    let body = String::from_utf8_lossy(body);
    match lookup_id(&body, part) {
        Some(id) if parse_numeric_id(&id) == Some(0) => Err(format!(
            "the {what} {part} has id 0 in {path}, which is root"
        )),
        Some(id) => Ok(format!("{what} {part} (id {id})")),
        None => Ok(format!(
            "{what} {part}, which {path} does not list, so the container will not start"
        )),
    }
}

pub fn check(context: &ScanContext) -> Outcome {
    let user = context.container_config().user.unwrap_or_default();
    if user.trim().is_empty() {
        return Outcome::fail("No USER is set, so the container runs as root (uid 0, gid 0).");
    }
    let Some((user_part, group_part)) = user.split_once(':') else {
        return Outcome::fail(format!(
            "USER is {user:?} without a group, so the group is the user's primary group; set \
             USER user:group."
        ));
    };
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for (part, database) in [(user_part, Database::Passwd), (group_part, Database::Group)] {
        if part.is_empty() {
            problems.push(format!("the {} part is empty", database.what()));
            continue;
        }
        match judge(context, part, database) {
            Ok(note) => notes.push(note),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Outcome::pass(format!("USER is {user:?}: {}.", notes.join(", ")))
    } else {
        Outcome::fail(format!("USER is {user:?}: {}.", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::{lookup_id, parse_numeric_id};

    #[test]
    fn numeric_ids_like_atoi() {
        assert_eq!(parse_numeric_id("0"), Some(0));
        assert_eq!(parse_numeric_id("00"), Some(0));
        assert_eq!(parse_numeric_id("+0"), Some(0));
        assert_eq!(parse_numeric_id("1000"), Some(1000));
        assert_eq!(parse_numeric_id("app"), None);
        assert_eq!(parse_numeric_id("+"), None);
    }

    #[test]
    fn passwd_lookup() {
        let body = "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/:/bin/sh\n\
                    app:x:1000:1000::/:/bin/sh\n";
        assert_eq!(lookup_id(body, "toor").as_deref(), Some("0"));
        assert_eq!(lookup_id(body, "app").as_deref(), Some("1000"));
        assert_eq!(lookup_id(body, "nobody"), None);
    }
}
