//! The JSON report: `{ "<reference>": [ {Title, Severity, Pass, Description, Mitigation,
//! Files?, Id, PresentInFinalImage?} ] }`.

use crate::error::ScanError;
use crate::scan::ScanReport;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Renders the report as pretty-printed JSON with a trailing newline.
pub fn render(report: &ScanReport) -> String {
    let mut document = serde_json::Map::new();
    let results = serde_json::to_value(&report.results).unwrap_or_default();
    document.insert(report.reference.clone(), results);
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes `contents` to `dir/name` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over the target, so readers never see half a report.
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, ScanError> {
    let path = dir.join(name);
    let fail = |e: std::io::Error| ScanError::Reports {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(&path).map_err(|e| fail(e.error))?;
    Ok(path)
}
