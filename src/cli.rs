//! Command-line flags. Each flag also reads an environment variable; the variables are the
//! interface that CI jobs of the older scanner already set.

use clap::Parser;
use clap::builder::BoolishValueParser;
use image_compliance_scanner::report::ReportFormats;
use std::path::PathBuf;

/// Checks an OCI container image against compliance rules and exits by the highest failed
/// severity.
#[derive(Debug, Parser)]
#[command(
    name = "image-compliance-scanner",
    version,
    about,
    max_term_width = 100
)]
pub struct Cli {
    /// Image to scan: a registry reference (registry.example.com:5000/team/app:1.2),
    /// oci:PATH[:TAG], oci-archive:PATH[:TAG] or docker-archive:PATH[:NAME:TAG].
    #[arg(long, env = "COMPLIANCE_IMAGE_FULL_REF", value_name = "REF")]
    pub image: Option<String>,

    /// Registry credentials: the JSON of a docker config.json (auths, credHelpers,
    /// credsStore). Default: $DOCKER_CONFIG/config.json, then ~/.docker/config.json.
    #[arg(
        long,
        env = "DOCKER_AUTH_CONFIG",
        value_name = "JSON",
        hide_env_values = true
    )]
    pub auth_config: Option<String>,

    /// Directory for the reports, relative to the working directory.
    #[arg(
        long,
        env = "COMPLIANCE_REPORTS_DIR",
        value_name = "DIR",
        default_value = "reports"
    )]
    pub reports_dir: PathBuf,

    /// Report formats to write, comma-separated: json, sarif, junit (JUnit XML), markdown.
    /// Files go into the reports directory with the extensions .json, .sarif, .xml and .md.
    /// An empty list means all four.
    #[arg(
        long = "format",
        env = "COMPLIANCE_REPORT_FORMATS",
        value_name = "FORMATS",
        default_value = "json,sarif,junit,markdown",
        value_parser = clap::builder::ValueParser::new(parse_formats),
    )]
    pub formats: ReportFormats,

    /// The Dockerfile the image was built from. SARIF results then point at the line of the
    /// instruction behind each finding instead of at the image.
    #[arg(long, env = "COMPLIANCE_DOCKERFILE", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,

    /// Print the JSON report on stdout, alone; the table then goes to stderr.
    #[arg(
        long,
        env = "COMPLIANCE_JSON_STDOUT",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
    )]
    pub json_stdout: bool,

    /// Post the Markdown report as a pull-request comment, or update the one posted before.
    /// Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_EVENT_PATH.
    #[arg(
        long,
        env = "COMPLIANCE_GITHUB_COMMENT",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "false",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
    )]
    pub github_comment: bool,

    /// Platform to scan from a multi-platform image, as os/arch[/variant].
    #[arg(
        long,
        env = "COMPLIANCE_PLATFORM",
        value_name = "PLATFORM",
        default_value = "linux/amd64"
    )]
    pub platform: String,

    /// PEM file of extra CA certificates to trust for registry TLS.
    #[arg(long, env = "COMPLIANCE_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Registries (host or host:port, comma-separated) that may fall back to plain HTTP when
    /// they do not speak HTTPS. Loopback registries (127.0.0.0/8, ::1, localhost) always may,
    /// as with Docker.
    #[arg(
        long = "insecure-registry",
        env = "COMPLIANCE_INSECURE_REGISTRIES",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// Seconds to wait for a registry connection or for each read from it.
    #[arg(
        long,
        env = "COMPLIANCE_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub timeout: u64,

    /// Retries of a registry request that failed with HTTP 408, 429 or 5xx, a connection error
    /// or a time-out, with exponential backoff or the registry's Retry-After; 0 turns them off.
    #[arg(
        long,
        env = "COMPLIANCE_RETRIES",
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(0..=10)
    )]
    pub retries: u32,

    /// Layers read at once (default: the number of CPU cores).
    #[arg(
        long,
        env = "COMPLIANCE_CONCURRENCY",
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=64)
    )]
    pub concurrency: Option<u64>,

    /// Largest size one layer may decompress to, in bytes or with a suffix (K, M, G, T: powers
    /// of 1024). A larger layer fails the scan with exit code 20, which stops decompression
    /// bombs.
    #[arg(
        long,
        env = "COMPLIANCE_MAX_UNPACKED_LAYER_SIZE",
        value_name = "SIZE",
        default_value = "64G",
        value_parser = clap::builder::ValueParser::new(parse_size)
    )]
    pub max_unpacked_layer_size: u64,

    /// Exit code when the highest failed severity is Informational.
    #[arg(
        long,
        env = "INFORMATIONAL_EXIT_CODE",
        value_name = "INFORMATIONAL_EXIT_CODE",
        default_value_t = 0
    )]
    pub informational_exit_code: u8,

    /// Exit code when the highest failed severity is Low.
    #[arg(
        long,
        env = "LOW_EXIT_CODE",
        value_name = "LOW_EXIT_CODE",
        default_value_t = 15
    )]
    pub low_exit_code: u8,

    /// Exit code when the highest failed severity is Medium.
    #[arg(
        long,
        env = "MEDIUM_EXIT_CODE",
        value_name = "MEDIUM_EXIT_CODE",
        default_value_t = 14
    )]
    pub medium_exit_code: u8,

    /// Exit code when the highest failed severity is High.
    #[arg(
        long,
        env = "HIGH_EXIT_CODE",
        value_name = "HIGH_EXIT_CODE",
        default_value_t = 13
    )]
    pub high_exit_code: u8,

    /// Exit code when the highest failed severity is Critical.
    #[arg(
        long,
        env = "CRITICAL_EXIT_CODE",
        value_name = "CRITICAL_EXIT_CODE",
        default_value_t = 12
    )]
    pub critical_exit_code: u8,
}

fn parse_formats(text: &str) -> Result<ReportFormats, String> {
    text.parse()
}

/// Parses a byte count such as `1048576`, `512M` or `64GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown unit {suffix:?}; use K, M, G or T")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512M or 64G"))?;
    let size = number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if size == 0 {
        return Err("the size must be above 0".to_string());
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64GiB"), Ok(64 << 30));
        assert_eq!(parse_size("2 t"), Ok(2 << 40));
    }

    #[test]
    fn bad_sizes_rejected() {
        for text in ["", "0", "G", "12X", "-1", "99999999999T"] {
            assert!(parse_size(text).is_err(), "{text:?} accepted");
        }
    }
}
