//! The SARIF 2.1.0 report, for GitHub code scanning and other SARIF viewers.
//!
//! One run per scanned image and one rule per check. A failed check gives one result, and a
//! failed file check one result per offending path. Each result points at the Dockerfile
//! instruction behind it when a Dockerfile is given, and otherwise at line 1 of the image's
//! repository written as a relative URI. Results carry their own `partialFingerprints`,
//! because GitHub's upload action computes fingerprints only for files in the checkout.

mod source_map;

use crate::checks::{CHECKS, CheckInfo, CheckResult, FileFinding, Severity};
use crate::report::dockerfile::Dockerfile;
use crate::report::shorten;
use crate::scan::ScanReport;
use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultKind,
    ResultLevel, Run, RunAutomationDetails, Sarif, Tool, ToolComponent,
};
use sha2::{Digest, Sha256};
use source_map::{Reason, SourceMap};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// GitHub code scanning rejects runs with more results than this.
pub const MAX_RESULTS_PER_RUN: usize = 25_000;

/// GitHub code scanning rejects uploads larger than 10 MB after gzip compression. The cap is
/// 10,000,000 bytes, the smaller reading of "10 MB".
pub const MAX_GZIP_BYTES: usize = 10_000_000;

/// GitHub shows at most this many locations per result.
const MAX_LOCATIONS_PER_RESULT: usize = 1_000;

/// The `$schema` of the document: the SARIF 2.1.0 schema as OASIS publishes it.
const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Key of the fingerprint in `partialFingerprints`. The `/v1` suffix lets a later version
/// change what is hashed without matching old alerts wrongly.
const FINGERPRINT_KEY: &str = "imageComplianceFinding/v1";

/// The longest `created_by` quoted in a message, in characters.
const MAX_CREATED_BY_CHARS: usize = 200;

/// A Dockerfile and the URI that the results use for it.
#[derive(Debug, Clone)]
pub struct DockerfileSource {
    /// Relative URI of the Dockerfile, from the path as given, without `./`.
    pub uri: String,
    pub dockerfile: Dockerfile,
}

impl DockerfileSource {
    /// Reads the Dockerfile at `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(DockerfileSource {
            uri: dockerfile_uri(path),
            dockerfile: Dockerfile::read(path)?,
        })
    }
}

/// Renders one run per report as pretty-printed SARIF with a trailing newline.
///
/// Results are capped so the document stays within [`MAX_RESULTS_PER_RUN`] and
/// [`MAX_GZIP_BYTES`]. A run whose results were cut records that in its properties and in
/// the first result of each cut check.
pub fn render(reports: &[ScanReport], dockerfile: Option<&DockerfileSource>) -> String {
    let mut cap = MAX_RESULTS_PER_RUN;
    loop {
        let runs: Vec<Run> = reports
            .iter()
            .map(|report| build_run(report, dockerfile, cap))
            .collect();
        let text = to_text(runs);
        let compressed = gzip_len(&text);
        if compressed <= MAX_GZIP_BYTES || cap == 0 {
            return text;
        }
        // Aim 10% below the ratio so that one more pass is usually enough.
        let ratio = MAX_GZIP_BYTES as f64 / compressed as f64 * 0.9;
        cap = ((cap as f64 * ratio) as usize).min(cap - 1);
    }
}

fn to_text(runs: Vec<Run>) -> String {
    let document = Sarif::builder()
        .schema(SCHEMA_URI)
        .version(json!("2.1.0"))
        .runs(runs)
        .build();
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Returns the gzip-compressed size of `text`, or 0 when it is too small to matter.
fn gzip_len(text: &str) -> usize {
    if text.len() <= MAX_GZIP_BYTES {
        return 0;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(text.as_bytes());
    encoder.finish().map_or(usize::MAX, |bytes| bytes.len())
}

/// The facts about an image that every result message repeats.
struct ImageFacts<'a> {
    reference: &'a str,
    repository: &'a str,
    digest: &'a str,
    /// The URI that results point at when there is no Dockerfile.
    repository_uri: String,
}

impl ImageFacts<'_> {
    fn sentence(&self) -> String {
        format!("Image {}, manifest {}.", self.reference, self.digest)
    }
}

fn build_run(report: &ScanReport, dockerfile: Option<&DockerfileSource>, cap: usize) -> Run {
    let facts = ImageFacts {
        reference: &report.reference,
        repository: &report.repository,
        digest: report.manifest_digest.as_deref().unwrap_or("unknown"),
        repository_uri: repository_uri(&report.repository),
    };
    let map = dockerfile.and_then(|source| {
        SourceMap::new(&source.dockerfile, &report.layer_history).map(|map| (source, map))
    });
    let locator = Locator {
        facts: &facts,
        map: map.as_ref().map(|(source, map)| (source.uri.as_str(), map)),
        report,
    };

    let failed: Vec<&CheckResult> = report.results.iter().filter(|r| !r.pass).collect();
    let paths: Vec<Vec<(&str, Vec<&FileFinding>)>> =
        failed.iter().map(|r| findings_by_path(r)).collect();
    let requested: Vec<usize> = paths.iter().map(|p| p.len().max(1)).collect();
    let allowed = allocate(&requested, cap);

    let mut results = Vec::new();
    let mut omitted = BTreeMap::new();
    for ((result, paths), (&requested, &allowed)) in failed
        .iter()
        .zip(&paths)
        .zip(requested.iter().zip(&allowed))
    {
        let cut_note = (allowed < requested).then(|| {
            omitted.insert(result.id.to_string(), requested - allowed);
            cut_sentence(result.id, allowed, requested)
        });
        if paths.is_empty() {
            if allowed > 0 {
                results.push(locator.check_result(result, cut_note));
            }
            continue;
        }
        for (index, (path, findings)) in paths.iter().take(allowed).enumerate() {
            let note = if index == 0 { cut_note.clone() } else { None };
            results.push(locator.file_result(result, path, findings, note));
        }
    }

    let mut properties = BTreeMap::from([
        ("imageReference".to_string(), json!(report.reference)),
        ("imageRepository".to_string(), json!(report.repository)),
        ("manifestDigest".to_string(), json!(report.manifest_digest)),
        ("platform".to_string(), json!(report.platform)),
    ]);
    if !omitted.is_empty() {
        properties.insert("omittedResults".to_string(), json!(omitted));
        properties.insert(
            "omittedResultsReason".to_string(),
            json!(format!(
                "Results were cut to stay within GitHub's limits of {MAX_RESULTS_PER_RUN} \
                 results per run and {MAX_GZIP_BYTES} bytes per gzip-compressed upload. \
                 omittedResults counts the paths left out per check; the JSON report lists \
                 all of them."
            )),
        );
    }

    Run::builder()
        .tool(tool())
        .results(results)
        .automation_details(
            RunAutomationDetails::builder()
                .id(format!(
                    "image-compliance-scanner/{}/{}",
                    facts.repository_uri, facts.digest
                ))
                .build(),
        )
        .properties(property_bag(None, properties))
        .build()
}

fn cut_sentence(id: &str, kept: usize, total: usize) -> String {
    format!(
        "This run lists {kept} of {total} results of {id}; the other {} were left out to stay \
         within GitHub's upload limits, and the JSON report lists all of them.",
        total - kept
    )
}

/// Groups a file check's findings by path, in path order.
fn findings_by_path(result: &CheckResult) -> Vec<(&str, Vec<&FileFinding>)> {
    let mut by_path: BTreeMap<&str, Vec<&FileFinding>> = BTreeMap::new();
    for finding in &result.findings {
        by_path.entry(&finding.path).or_default().push(finding);
    }
    by_path.into_iter().collect()
}

/// Splits `cap` results among checks that request `requested[i]` each: every check gets the same
/// share, and checks that request less than the share leave the rest to the others.
fn allocate(requested: &[usize], cap: usize) -> Vec<usize> {
    if requested.iter().sum::<usize>() <= cap {
        return requested.to_vec();
    }
    let total_at = |level: usize| -> usize { requested.iter().map(|&w| w.min(level)).sum() };
    let (mut low, mut high) = (0, requested.iter().copied().max().unwrap_or(0));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if total_at(middle) <= cap {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    let mut allowed: Vec<usize> = requested.iter().map(|&w| w.min(low)).collect();
    let mut spare = cap - total_at(low);
    for (allowed, &requested) in allowed.iter_mut().zip(requested) {
        if spare > 0 && requested > *allowed {
            *allowed += 1;
            spare -= 1;
        }
    }
    allowed
}

/// Builds results with their locations, messages and fingerprints.
struct Locator<'a> {
    facts: &'a ImageFacts<'a>,
    map: Option<(&'a str, &'a SourceMap<'a>)>,
    report: &'a ScanReport,
}

impl Locator<'_> {
    fn check_result(&self, result: &CheckResult, cut_note: Option<String>) -> SarifResult {
        let (location, source) = match self.map {
            Some((uri, map)) => {
                let line = map.check_line(result);
                let instruction = line.instruction;
                (
                    location(uri, instruction.start_line, instruction.end_line),
                    format!(" {}", line.sentence()),
                )
            }
            None => (location(&self.facts.repository_uri, 1, 1), String::new()),
        };
        let mut text = format!(
            "{} ({}): {}{source} {}",
            result.title,
            result.check_severity,
            result.description,
            self.facts.sentence()
        );
        push_note(&mut text, cut_note);
        self.result(result, text, vec![location], "")
    }

    fn file_result(
        &self,
        result: &CheckResult,
        path: &str,
        findings: &[&FileFinding],
        cut_note: Option<String>,
    ) -> SarifResult {
        let mut locations: Vec<Location> = Vec::new();
        let mut layers = Vec::new();
        for finding in findings {
            let layer = finding.layer;
            let digest = self
                .report
                .layer_digests
                .get(layer)
                .map_or("", String::as_str);
            let created_by = self
                .report
                .layer_history
                .get(layer)
                .cloned()
                .flatten()
                .map(|text| shorten(&text, MAX_CREATED_BY_CHARS));
            let mut layer_text = format!("layer {} ({digest})", layer + 1);
            if let Some(created_by) = created_by {
                layer_text.push_str(&format!(", created by `{created_by}`"));
            }
            if !finding.present {
                layer_text.push_str(", deleted by a later layer but still in the layer blob");
            }
            if let Some((uri, map)) = self.map {
                let line = map.layer_line(layer);
                let place = match line.reason {
                    Reason::Matched => "Dockerfile line",
                    _ => "from the base image of the FROM on Dockerfile line",
                };
                layer_text.push_str(&format!(", {place} {}", line.instruction.start_line));
                locations.push(location(
                    uri,
                    line.instruction.start_line,
                    line.instruction.end_line,
                ));
            }
            layers.push(layer_text);
        }
        if locations.is_empty() {
            locations.push(location(&self.facts.repository_uri, 1, 1));
        }
        locations.dedup();
        locations.truncate(MAX_LOCATIONS_PER_RESULT);
        let mut text = format!(
            "{} ({}): {path} in {}. {}",
            result.title,
            result.check_severity,
            layers.join("; "),
            self.facts.sentence()
        );
        push_note(&mut text, cut_note);
        self.result(result, text, locations, path)
    }

    fn result(
        &self,
        result: &CheckResult,
        text: String,
        locations: Vec<Location>,
        path: &str,
    ) -> SarifResult {
        let rule_index = CHECKS
            .iter()
            .position(|(info, _)| info.id == result.id)
            .unwrap_or_default();
        SarifResult::builder()
            .rule_id(result.id)
            .rule_index(rule_index as i64)
            .kind(ResultKind::Fail)
            .level(level(result.check_severity))
            .message(Message::builder().text(escape_message(&text)).build())
            .locations(locations)
            .partial_fingerprints(BTreeMap::from([(
                FINGERPRINT_KEY.to_string(),
                fingerprint(result.id, self.facts.repository, path),
            )]))
            .build()
    }
}

fn push_note(text: &mut String, note: Option<String>) {
    if let Some(note) = note {
        text.push(' ');
        text.push_str(&note);
    }
}

fn location(uri: &str, start_line: usize, end_line: usize) -> Location {
    let mut region = Region::builder().start_line(start_line as i64).build();
    if end_line > start_line {
        region.end_line = Some(end_line as i64);
    }
    Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(ArtifactLocation::builder().uri(uri).build())
                .region(region)
                .build(),
        )
        .build()
}

/// Returns the SHA-256 hex of the check id, the image repository and the path, separated by
/// NUL bytes, which none of them can contain.
fn fingerprint(id: &str, repository: &str, path: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [id, repository, path] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// Escapes the characters that SARIF gives a meaning in plain-text messages: `[` and `]`
/// open embedded links, and `\` escapes them.
fn escape_message(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '[' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn tool() -> Tool {
    let rules: Vec<ReportingDescriptor> = CHECKS.iter().map(|(info, _)| rule(info)).collect();
    Tool::builder()
        .driver(
            ToolComponent::builder()
                .name("image-compliance-scanner")
                .version(env!("CARGO_PKG_VERSION"))
                .semantic_version(env!("CARGO_PKG_VERSION"))
                .rules(rules)
                .build(),
        )
        .build()
}

fn rule(info: &CheckInfo) -> ReportingDescriptor {
    let help_text = format!("{}\n\nHow to fix: {}", info.rationale, info.mitigation);
    let help_markdown = format!(
        "**Why it matters.** {}\n\n**How to fix.** {}",
        info.rationale, info.mitigation
    );
    let mut properties = BTreeMap::new();
    if let Some(score) = security_severity(info.severity) {
        properties.insert("security-severity".to_string(), json!(score));
    }
    let tags = vec![
        "security".to_string(),
        "container".to_string(),
        "compliance".to_string(),
    ];
    ReportingDescriptor::builder()
        .id(info.id)
        .name(info.name)
        .short_description(text_message(info.title))
        .full_description(text_message(info.rationale))
        .help(
            MultiformatMessageString::builder()
                .text(help_text)
                .markdown(help_markdown)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(json!(level(info.severity)))
                .build(),
        )
        .properties(property_bag(Some(tags), properties))
        .build()
}

fn text_message(text: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(text).build()
}

fn property_bag(
    tags: Option<Vec<String>>,
    properties: BTreeMap<String, serde_json::Value>,
) -> PropertyBag {
    PropertyBag {
        tags,
        additional_properties: properties,
    }
}

/// Returns the SARIF level of a failed check of `severity`.
fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium => ResultLevel::Warning,
        Severity::Low | Severity::Informational => ResultLevel::Note,
    }
}

/// Returns GitHub's `security-severity` score, a string, for `severity`: GitHub shows 9.0 and
/// above as critical, 7.0 to 8.9 as high, 4.0 to 6.9 as medium and 0.1 to 3.9 as low.
/// Informational checks get none.
fn security_severity(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("2.0"),
        Severity::Informational => None,
    }
}

/// Returns the image repository as a relative URI: leading slashes removed and every byte
/// outside RFC 3986's unreserved characters and `/` percent-encoded. A raw `host:5000/app`
/// would read as a URI with the scheme `host`, which GitHub rejects.
fn repository_uri(repository: &str) -> String {
    let encoded = percent_encode_path(repository.trim_start_matches('/'));
    if encoded.is_empty() {
        "image".to_string()
    } else {
        encoded
    }
}

/// Returns the URI of a Dockerfile given as `path`. Under the working directory it is the
/// relative path with `/` separators and no leading `./`. Elsewhere it is a `file://` URI,
/// because SARIF forbids relative references that begin with `/`.
fn dockerfile_uri(path: &Path) -> String {
    // The path exists, because it was just read; symlinks are resolved on both sides.
    let cwd = std::env::current_dir()
        .ok()
        .map(|cwd| std::fs::canonicalize(&cwd).unwrap_or(cwd));
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| match &cwd {
        Some(cwd) => cwd.join(path),
        None => path.to_path_buf(),
    });
    let relative = cwd
        .as_deref()
        .and_then(|cwd| absolute.strip_prefix(cwd).ok())
        .map(|relative| relative.components().collect::<std::path::PathBuf>());
    match relative {
        Some(relative) if !relative.as_os_str().is_empty() => {
            percent_encode_path(&relative.to_string_lossy().replace('\\', "/"))
        }
        _ => format!(
            "file://{}",
            percent_encode_path(&absolute.to_string_lossy().replace('\\', "/"))
        ),
    }
}

fn percent_encode_path(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_shares_the_cap() {
        assert_eq!(allocate(&[1, 2, 3], 10), [1, 2, 3]);
        assert_eq!(allocate(&[1, 30_000, 30_000], 25_000), [1, 12_500, 12_499]);
        assert_eq!(allocate(&[5, 5], 3), [2, 1]);
        assert_eq!(allocate(&[], 3), Vec::<usize>::new());
    }

    #[test]
    fn repository_uri_has_no_colon() {
        assert_eq!(
            repository_uri("registry.example.com:5000/team/app"),
            "registry.example.com%3A5000/team/app"
        );
        assert_eq!(repository_uri("/tmp/layout dir"), "tmp/layout%20dir");
        assert_eq!(repository_uri(""), "image");
    }

    #[test]
    fn message_escapes_embedded_links() {
        assert_eq!(escape_message(r"/x/[a](1)\b"), r"/x/\[a\](1)\\b");
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            fingerprint("ICS007", "a/b", "c"),
            fingerprint("ICS007", "a", "b/c")
        );
        assert_eq!(fingerprint("ICS007", "a", "b").len(), 64);
    }
}
