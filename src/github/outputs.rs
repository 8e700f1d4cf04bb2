//! Step outputs for GitHub Actions, appended to the file named by `GITHUB_OUTPUT`.

use crate::checks::Severity;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The values a scan hands to later workflow steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutputs {
    /// Written as `exit-code`.
    pub exit_code: u8,
    /// Written as `highest-severity`: the report name of the severity, or `none` when every
    /// check passed.
    pub highest_severity: Option<Severity>,
    /// Report paths by format name (`json`, `sarif`, `junit`, `markdown`), each written as
    /// `<format>-report`.
    pub reports: Vec<(String, PathBuf)>,
}

/// Returns the path in `GITHUB_OUTPUT`, or `None` outside GitHub Actions.
pub fn output_file_from_env() -> Option<PathBuf> {
    std::env::var_os("GITHUB_OUTPUT")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// Appends `outputs` to the step output file at `path` in the format GitHub Actions reads:
/// `name=value` lines, or a `name<<DELIMITER` block for a value with a line break.
pub fn write_action_outputs(path: &Path, outputs: &ActionOutputs) -> io::Result<()> {
    let mut text = String::new();
    push_output(&mut text, "exit-code", &outputs.exit_code.to_string());
    let severity = outputs.highest_severity.map_or("none", Severity::as_str);
    push_output(&mut text, "highest-severity", severity);
    for (format, report) in &outputs.reports {
        let name = format!("{format}-report");
        push_output(&mut text, &name, &report.to_string_lossy());
    }

    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn push_output(text: &mut String, name: &str, value: &str) {
    if !value.contains(['\n', '\r']) {
        text.push_str(&format!("{name}={value}\n"));
        return;
    }
    // The delimiter must not occur in the value, or the value would end early.
    let mut delimiter = "ICS_OUTPUT_EOF".to_string();
    let mut attempt = 0;
    while value.contains(&delimiter) {
        attempt += 1;
        delimiter = format!("ICS_OUTPUT_EOF_{attempt}");
    }
    text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(outputs: &ActionOutputs) -> String {
        let dir = tempfile::tempdir().expect("create a directory");
        let path = dir.path().join("output");
        std::fs::write(&path, "earlier=kept\n").expect("write the earlier output");
        write_action_outputs(&path, outputs).expect("write the outputs");
        std::fs::read_to_string(&path).expect("read the outputs")
    }

    #[test]
    fn outputs_append_name_value_lines() {
        let text = written(&ActionOutputs {
            exit_code: 12,
            highest_severity: Some(Severity::Critical),
            reports: vec![
                ("json".to_string(), PathBuf::from("reports/app.json")),
                ("sarif".to_string(), PathBuf::from("reports/app.sarif")),
            ],
        });
        assert_eq!(
            text,
            "earlier=kept\nexit-code=12\nhighest-severity=Critical\n\
             json-report=reports/app.json\nsarif-report=reports/app.sarif\n"
        );
    }

    #[test]
    fn passing_scan_has_severity_none() {
        let text = written(&ActionOutputs {
            exit_code: 0,
            highest_severity: None,
            reports: Vec::new(),
        });
        assert!(
            text.ends_with("exit-code=0\nhighest-severity=none\n"),
            "{text}"
        );
    }

    #[test]
    fn value_with_line_break_uses_delimiter() {
        let text = written(&ActionOutputs {
            exit_code: 0,
            highest_severity: None,
            reports: vec![(
                "json".to_string(),
                PathBuf::from("odd\nICS_OUTPUT_EOF\nname.json"),
            )],
        });
        assert!(
            text.ends_with(
                "json-report<<ICS_OUTPUT_EOF_1\nodd\nICS_OUTPUT_EOF\nname.json\nICS_OUTPUT_EOF_1\n"
            ),
            "{text}"
        );
    }
}
