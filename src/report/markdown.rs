//! The Markdown report, for GitHub step summaries, pull-request comments and merge-request
//! notes.
//!
//! The template is `templates/report.md.j2`, compiled into the binary. Every string from the
//! image is escaped (see [`escape_inline`]), because whoever built the image chooses its paths,
//! labels and history. A report larger than its limit lists fewer paths per check, then
//! shortens descriptions, and says what it left out.

mod escape;

use super::{Verdict, shorten};
use crate::checks::{CheckResult, FileFinding};
use crate::scan::ScanReport;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, Output, State};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

pub use escape::inline as escape_inline;

const TEMPLATE_NAME: &str = "report.md";
const TEMPLATE: &str = include_str!("../../templates/report.md.j2");

/// GitHub shows at most 1 MiB of step summary per step.
pub const STEP_SUMMARY_MAX_BYTES: usize = 1024 * 1024;

/// GitHub rejects pull-request comments longer than this many characters.
pub const COMMENT_MAX_CHARS: usize = 65_536;

/// Descriptions in the checks table are cut to this many characters.
const DESCRIPTION_CHARS: usize = 500;

/// Descriptions when even a report without file lists is over its limit.
const SHORT_DESCRIPTION_CHARS: usize = 80;

/// Layer history quoted in a file section, in characters.
const CREATED_BY_CHARS: usize = 200;

/// The size limit of a rendered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many characters (Unicode scalar values), as GitHub counts comment length.
    Chars(usize),
    /// At most this many bytes of UTF-8, as GitHub counts step summaries.
    Bytes(usize),
    None,
}

impl Limit {
    fn allows(self, text: &str) -> bool {
        match self {
            Limit::Chars(max) => text.chars().count() <= max,
            Limit::Bytes(max) => text.len() <= max,
            Limit::None => true,
        }
    }
}

/// Renders the report in full.
pub fn render(report: &ScanReport, verdict: &Verdict) -> String {
    render_within(report, verdict, Limit::None)
}

/// Renders the report for a pull-request comment of at most `max_chars` characters.
pub fn render_for_comment(report: &ScanReport, verdict: &Verdict, max_chars: usize) -> String {
    render_within(report, verdict, Limit::Chars(max_chars))
}

/// Renders the report within `limit`. It lists as many paths per check as fit. When not even
/// the report without paths fits, it shortens descriptions and drops the remedies, and a limit
/// still too small cuts the report off with a note.
pub fn render_within(report: &ScanReport, verdict: &Verdict, limit: Limit) -> String {
    let max_paths_per_check = report
        .results
        .iter()
        .map(|r| distinct_paths(&r.findings))
        .max()
        .unwrap_or(0);
    let full = Shape {
        paths_per_check: max_paths_per_check,
        description_chars: DESCRIPTION_CHARS,
        remedies: true,
    };
    let text = render_shape(report, verdict, full);
    if limit.allows(&text) {
        return text;
    }

    // The largest number of paths per check that fits, by bisection: fewer paths always
    // give a shorter report.
    let (mut low, mut high) = (0, max_paths_per_check);
    while low < high {
        let middle = (low + high).div_ceil(2);
        let shape = Shape {
            paths_per_check: middle,
            ..full
        };
        if limit.allows(&render_shape(report, verdict, shape)) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    let text = render_shape(
        report,
        verdict,
        Shape {
            paths_per_check: low,
            ..full
        },
    );
    if limit.allows(&text) {
        return text;
    }
    let short = Shape {
        paths_per_check: 0,
        description_chars: SHORT_DESCRIPTION_CHARS,
        remedies: false,
    };
    cut_to(&render_shape(report, verdict, short), limit)
}

/// Appends the full report, or as much as fits, to the step summary file at `path`. GitHub's
/// limit is per step, so text that earlier writers in the same step left counts too.
pub fn append_step_summary(
    path: &Path,
    report: &ScanReport,
    verdict: &Verdict,
) -> std::io::Result<()> {
    let used = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    // The blank line keeps this report apart from what earlier writers left.
    let separator = if used > 0 { "\n" } else { "" };
    let budget = STEP_SUMMARY_MAX_BYTES.saturating_sub(used + separator.len());
    let text = render_within(report, verdict, Limit::Bytes(budget));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(separator.as_bytes())?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

const CUT_NOTE: &str = "\n\n> The report was cut here to fit its size limit. The JSON report \
                        has all results.\n";

/// Cuts `text` to `limit`, with a note, for limits too small for a whole report. Returns an
/// empty string when not even the note fits.
fn cut_to(text: &str, limit: Limit) -> String {
    if limit.allows(text) {
        return text.to_string();
    }
    let end = match limit {
        Limit::Chars(max) => {
            let keep = max.saturating_sub(CUT_NOTE.chars().count());
            text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i)
        }
        Limit::Bytes(max) => {
            let mut end = max.saturating_sub(CUT_NOTE.len()).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            end
        }
        Limit::None => text.len(),
    };
    // NOTE: a cut inside a table or a <details> block leaves it unclosed; GitHub renders
    // that, only less tidily. It happens only for limits of a few thousand characters.
    let kept = format!("{}{CUT_NOTE}", &text[..end]);
    if limit.allows(&kept) {
        kept
    } else {
        String::new()
    }
}

/// How much of the report to show.
#[derive(Debug, Clone, Copy)]
struct Shape {
    paths_per_check: usize,
    description_chars: usize,
    remedies: bool,
}

fn distinct_paths(findings: &[FileFinding]) -> usize {
    findings
        .iter()
        .map(|f| f.path.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

#[derive(Serialize)]
struct Context<'a> {
    reference: &'a str,
    digest: &'a str,
    platform: &'a str,
    layer_count: usize,
    verdict: VerdictView,
    checks: Vec<CheckRow<'a>>,
    file_sections: Vec<FileSection<'a>>,
    fixes: Vec<Fix<'a>>,
    cut_note: Option<String>,
}

#[derive(Serialize)]
struct VerdictView {
    icon: &'static str,
    word: &'static str,
    text: String,
    exit_code: u8,
}

#[derive(Serialize)]
struct CheckRow<'a> {
    pass: bool,
    severity: &'static str,
    id: &'a str,
    title: &'a str,
    description: String,
}

#[derive(Serialize)]
struct FileSection<'a> {
    id: &'a str,
    title: &'a str,
    path_count: usize,
    layer_count: usize,
    /// A backtick fence longer than any run of backticks in the paths shown.
    fence: String,
    layers: Vec<LayerFiles>,
    /// Paths left out of this section to fit the limit.
    omitted: usize,
}

#[derive(Serialize)]
struct LayerFiles {
    number: usize,
    /// The algorithm and the first 12 hex digits, as `docker images` shortens ids.
    short_digest: String,
    created_by: Option<String>,
    files: Vec<FileLine>,
}

#[derive(Serialize)]
struct FileLine {
    path: String,
    present: bool,
}

#[derive(Serialize)]
struct Fix<'a> {
    id: &'a str,
    title: &'a str,
    mitigation: &'a str,
}

fn render_shape(report: &ScanReport, verdict: &Verdict, shape: Shape) -> String {
    let context = context(report, verdict, shape);
    // The template is fixed and tested, so a failure here is a bug. The fallback still shows
    // the reader the error.
    environment()
        .get_template(TEMPLATE_NAME)
        .and_then(|template| template.render(Serde(&context)))
        .unwrap_or_else(|error| format!("The Markdown report failed to render: {error}\n"))
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        environment.set_syntax(syntax);
    }
    environment.set_auto_escape_callback(|_| AutoEscape::Custom("markdown".into()));
    environment.set_formatter(format_value);
    environment.add_filter("code_line", |text: String| {
        Value::from_safe_string(escape::code_line(&text))
    });
    // The template is compiled into the binary; a syntax error fails the unit tests.
    let _ = environment.add_template(TEMPLATE_NAME, TEMPLATE);
    environment
}

/// Writes a value the template prints: safe strings as they are, everything else escaped
/// for Markdown.
fn format_value(output: &mut Output, _state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_safe() {
        return write!(output, "{value}").map_err(Error::from);
    }
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    output
        .write_str(&escape::inline(&value.to_string()))
        .map_err(Error::from)
}

fn context<'a>(report: &'a ScanReport, verdict: &Verdict, shape: Shape) -> Context<'a> {
    let checks = report
        .results
        .iter()
        .map(|result| CheckRow {
            pass: result.pass,
            severity: result.check_severity.as_str(),
            id: result.id,
            title: result.title,
            description: shorten(&result.description, shape.description_chars),
        })
        .collect();
    let failed: Vec<&CheckResult> = report.results.iter().filter(|r| !r.pass).collect();
    let file_sections = failed
        .iter()
        .filter(|r| !r.findings.is_empty())
        .map(|r| file_section(report, r, shape.paths_per_check))
        .collect();
    let fixes = if shape.remedies {
        failed
            .iter()
            .map(|r| Fix {
                id: r.id,
                title: r.title,
                mitigation: r.mitigation,
            })
            .collect()
    } else {
        Vec::new()
    };
    let cut_note = (!shape.remedies).then(|| {
        "The report was shortened to fit its size limit: no file lists, short descriptions \
         and no remedies. The JSON report has all results."
            .to_string()
    });
    Context {
        reference: &report.reference,
        digest: report.manifest_digest.as_deref().unwrap_or("unknown"),
        platform: &report.platform,
        layer_count: report.layer_digests.len(),
        verdict: verdict_view(verdict),
        checks,
        file_sections,
        fixes,
        cut_note,
    }
}

fn verdict_view(verdict: &Verdict) -> VerdictView {
    match verdict.highest_failed {
        None => VerdictView {
            icon: "✅",
            word: "passed",
            text: format!("all {} checks passed", verdict.total),
            exit_code: verdict.exit_code,
        },
        Some(severity) => VerdictView {
            icon: "❌",
            word: "failed",
            text: format!(
                "{} of {} checks failed; the highest severity is {severity}",
                verdict.failed, verdict.total
            ),
            exit_code: verdict.exit_code,
        },
    }
}

/// Lists the paths of a failed file check by layer, at most `max_paths` of them.
fn file_section<'a>(
    report: &ScanReport,
    result: &'a CheckResult,
    max_paths: usize,
) -> FileSection<'a> {
    let mut by_layer: BTreeMap<usize, BTreeMap<&str, bool>> = BTreeMap::new();
    for finding in &result.findings {
        by_layer
            .entry(finding.layer)
            .or_default()
            .insert(&finding.path, finding.present);
    }
    let path_count = distinct_paths(&result.findings);
    let layer_count = by_layer.len();
    let mut listed_before = 0;
    let mut layers = Vec::new();
    for (layer, paths) in by_layer {
        let files: Vec<FileLine> = paths
            .into_iter()
            .take(max_paths.saturating_sub(listed_before))
            .map(|(path, present)| FileLine {
                path: path.to_string(),
                present,
            })
            .collect();
        if files.is_empty() {
            break;
        }
        listed_before += files.len();
        layers.push(LayerFiles {
            number: layer + 1,
            short_digest: short_digest(report.layer_digests.get(layer).map_or("", String::as_str)),
            created_by: report
                .layer_history
                .get(layer)
                .cloned()
                .flatten()
                .map(|text| shorten(&text, CREATED_BY_CHARS)),
            files,
        });
    }
    let fence = escape::code_fence(
        layers
            .iter()
            .flat_map(|layer| &layer.files)
            .map(|file| file.path.as_str()),
    );
    let listed: usize = layers.iter().map(|layer| layer.files.len()).sum();
    FileSection {
        id: result.id,
        title: result.title,
        path_count,
        layer_count,
        fence,
        layers,
        // A path found in two layers is listed twice, so count what is left by entries.
        omitted: result.findings.len().saturating_sub(listed),
    }
}

fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => {
            format!("{algorithm}:{}", hex.chars().take(12).collect::<String>())
        }
        None => digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_compiles() {
        let environment = environment();
        assert!(environment.get_template(TEMPLATE_NAME).is_ok());
    }

    #[test]
    fn cut_to_respects_the_limit() {
        let text = "é".repeat(500);
        let cut = cut_to(&text, Limit::Chars(300));
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with(CUT_NOTE));
        let cut = cut_to(&text, Limit::Bytes(301));
        assert!(cut.len() <= 301);
    }
}
