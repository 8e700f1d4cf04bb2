//! Checks the CI integration files the way their consumers read them, and runs them.
//!
//! - `action.yml` and `docs/examples/github-workflow.yml` against the GitHub schemas that
//!   check-jsonschema ships, and through zizmor's offline audits.
//! - The scan step of `action.yml`, run by bash as a workflow runner runs it: the same
//!   `bash --noprofile --norc -eo pipefail` invocation, a `GITHUB_OUTPUT` file, and the
//!   step's `env:` with `${{ inputs.* }}` replaced by the test's inputs or the defaults.
//! - The GitLab component: each YAML document against check-jsonschema's GitLab CI schema,
//!   and its job run end to end by gitlab-ci-local with the shell executor, in a copy of the
//!   component laid out as a project of its own.
//!
//! Tools: check-jsonschema and zizmor (PyPI, with ruamel.yaml, which check-jsonschema
//! installs), gitlab-ci-local 4.65.1 (npm), git and rsync, and the registry tools of
//! tests/common. A missing tool fails the test with the command that installs it.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::process::run_with_timeout;
use common::{ImageBuilder, Layer, PushedImage, Registry, TarEntry};
use serde_json::Value;
use tempfile::TempDir;

const REPO_ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SCANNER: &str = env!("CARGO_BIN_EXE_image-compliance-scanner");
/// Maximum run time of a validator or a gitlab-ci-local pipeline.
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);
/// Scanner exit code when the highest failed severity is Critical.
const CRITICAL_EXIT_CODE: i32 = 12;
/// Job name that the GitLab tests give the component's job.
const GITLAB_JOB: &str = "image-compliance";
/// Value of `${{ github.token }}` in the tests. No server receives it.
const WORKFLOW_TOKEN: &str = "ghs_workflowtoken_for_tests";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(REPO_ROOT).join(relative)
}

/// Runs `command` with a time limit. Panics when the program is missing, naming `install`,
/// or when it runs past `TOOL_TIMEOUT`.
fn run_tool(command: &mut Command, install: &str) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let found = Command::new("sh")
        .args(["-c", "command -v \"$1\" >/dev/null", "sh", &program])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{program} is not installed; install it with: {install}"
    );
    let (status, output) = run_with_timeout(command, TOOL_TIMEOUT);
    assert!(
        status.is_some(),
        "{program} ran longer than {TOOL_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs check-jsonschema with one of its built-in schemas on `files`.
fn check_jsonschema(schema: &str, files: &[&Path]) -> Output {
    run_tool(
        Command::new("check-jsonschema")
            .args(["--builtin-schema", schema])
            .args(files),
        "pip install check-jsonschema",
    )
}

/// Reads every YAML document of `path` into JSON, with ruamel.yaml as check-jsonschema reads
/// YAML.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let script = "import json, sys\n\
                  from ruamel.yaml import YAML\n\
                  with open(sys.argv[1]) as f:\n    \
                  docs = list(YAML(typ='safe').load_all(f))\n\
                  json.dump(docs, sys.stdout)\n";
    let output = run_tool(
        Command::new("python3").args(["-c", script]).arg(path),
        "pip install check-jsonschema (it brings ruamel.yaml)",
    );
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).expect("python printed invalid JSON")
}

// GitHub Action and workflow.

#[test]
fn action_metadata_matches_schema() {
    let output = check_jsonschema("vendor.github-actions", &[&repo_path("action.yml")]);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn example_workflow_matches_schema() {
    let workflow = repo_path("docs/examples/github-workflow.yml");
    let output = check_jsonschema("vendor.github-workflows", &[&workflow]);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn zizmor_reports_no_findings() {
    // zizmor collects workflows from a directory only under .github/workflows, so the
    // example workflow is named as a file.
    let output = run_tool(
        Command::new("zizmor")
            .arg("--offline")
            .arg(repo_path("action.yml"))
            .arg(repo_path("docs/examples/github-workflow.yml"))
            .arg(repo_path("docs/examples")),
        "pip install zizmor",
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("completed docs/examples/github-workflow.yml")
            || stderr.contains("github-workflow.yml"),
        "zizmor did not audit the example workflow\n{}",
        describe(&output)
    );
}

#[test]
fn action_scripts_have_no_expressions() {
    let action = &yaml_documents(&repo_path("action.yml"))[0];
    let steps = action["runs"]["steps"].as_array().expect("runs.steps");
    for step in steps {
        let run = step["run"].as_str().unwrap_or_default();
        assert!(
            !run.contains("${{"),
            "step {} puts an expression into its script; pass it through env",
            step["name"]
        );
    }
}

/// The result of running one step of `action.yml`.
struct StepRun {
    status: i32,
    stdout: String,
    stderr: String,
    outputs: HashMap<String, String>,
}

impl std::fmt::Display for StepRun {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "exit code {}\noutputs {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.outputs, self.stdout, self.stderr
        )
    }
}

/// Returns the value of a `${{ ... }}` expression that the step's `env:` uses.
fn evaluate(expression: &str, inputs: &HashMap<String, String>, scanner: &Path) -> String {
    if let Some(name) = expression.strip_prefix("inputs.") {
        return inputs
            .get(name)
            .unwrap_or_else(|| panic!("action.yml has no input {name}"))
            .clone();
    }
    match expression {
        "steps.install.outputs.path" => scanner.display().to_string(),
        "github.token" => WORKFLOW_TOKEN.to_string(),
        other => panic!("the test runner cannot evaluate ${{{{ {other} }}}}"),
    }
}

/// Replaces every `${{ ... }}` in `text`.
fn substitute(text: &str, inputs: &HashMap<String, String>, scanner: &Path) -> String {
    let mut result = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        result.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed expression in {text:?}"));
        let expression = rest[start + 3..start + end].trim();
        result.push_str(&evaluate(expression, inputs, scanner));
        rest = &rest[start + end + 2..];
    }
    result.push_str(rest);
    result
}

/// Parses a `GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIMITER` blocks.
fn parse_outputs(text: &str) -> HashMap<String, String> {
    let mut outputs = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            outputs.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_string(), value.to_string());
        }
    }
    outputs
}

/// Runs the step `step_id` of `action.yml` in `workspace` as a Linux runner runs a composite
/// action's `shell: bash` step, with `given` inputs over the defaults and `scanner` as the
/// install step's output.
fn run_action_step(
    step_id: &str,
    given: &[(&str, &str)],
    workspace: &Path,
    scanner: &Path,
) -> StepRun {
    let action = &yaml_documents(&repo_path("action.yml"))[0];
    let mut inputs = HashMap::new();
    for (name, spec) in action["inputs"].as_object().expect("action inputs") {
        let default = spec["default"].as_str().unwrap_or_default();
        let default = substitute(default, &HashMap::new(), scanner);
        inputs.insert(name.clone(), default);
    }
    for (name, value) in given {
        assert!(inputs.contains_key(*name), "action.yml has no input {name}");
        inputs.insert((*name).to_string(), (*value).to_string());
    }
    let step = action["runs"]["steps"]
        .as_array()
        .expect("runs.steps")
        .iter()
        .find(|step| step["id"] == step_id)
        .unwrap_or_else(|| panic!("action.yml has no step {step_id}"));
    assert_eq!(step["shell"], "bash");

    let runner = tempfile::tempdir().expect("create the runner directory");
    let script = runner.path().join("step.sh");
    fs::write(&script, step["run"].as_str().expect("step run")).expect("write the step script");
    let output_file = runner.path().join("github_output");
    fs::write(&output_file, "").expect("create GITHUB_OUTPUT");
    let temp = runner.path().join("temp");
    fs::create_dir(&temp).expect("create RUNNER_TEMP");

    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script)
        .current_dir(workspace)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", runner.path())
        .env("NO_COLOR", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_WORKSPACE", workspace)
        .env("GITHUB_ACTION_PATH", REPO_ROOT)
        .env("RUNNER_TEMP", &temp);
    for (name, value) in step["env"].as_object().into_iter().flatten() {
        let value = value.as_str().expect("env values are strings");
        command.env(name, substitute(value, &inputs, scanner));
    }
    let (status, output) = run_with_timeout(&mut command, TOOL_TIMEOUT);
    let status = status
        .expect("the step timed out")
        .code()
        .expect("the step was killed");
    StepRun {
        status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        outputs: parse_outputs(&fs::read_to_string(&output_file).expect("read GITHUB_OUTPUT")),
    }
}

/// Returns an image that passes every check: one layer, a numeric non-root user, every label
/// that ICS004 reads and an entrypoint.
fn passing_image() -> ImageBuilder {
    ImageBuilder::new()
        .layer(Layer::new(vec![
            TarEntry::dir("app", 0o755),
            TarEntry::file("app/serve", 0o755, "#!/bin/sh\nexec true\n"),
        ]))
        .user("10001:10001")
        .entrypoint(&["/app/serve"])
        .label("org.opencontainers.image.vendor", "Example Corp")
        .label("org.opencontainers.image.authors", "platform@example.com")
        .label("org.opencontainers.image.version", "1.0.0")
        .label("component", "api")
        .label("product", "storefront")
}

fn push_passing_image(registry: &Registry, repo_and_tag: &str) -> PushedImage {
    let layout = tempfile::tempdir().expect("create a layout directory");
    passing_image().write_layout(layout.path(), "passing");
    registry.push_layout(layout.path(), "passing", repo_and_tag, &[])
}

#[test]
fn action_step_scans_with_registry_credentials() {
    let password = common::random_hex(16);
    let registry = Registry::basic("ci-user", &password);
    let pushed = push_passing_image(&registry, "team/app:1.0");
    let workspace = tempfile::tempdir().expect("create the workspace");

    let run = run_action_step(
        "scan",
        &[
            ("image", &pushed.reference),
            ("registry-username", "ci-user"),
            ("registry-password", &password),
        ],
        workspace.path(),
        Path::new(SCANNER),
    );

    assert_eq!(run.status, 0, "{run}");
    assert_eq!(
        run.outputs.get("exit-code").map(String::as_str),
        Some("0"),
        "{run}"
    );
    assert_eq!(
        run.outputs.get("reports-dir").map(String::as_str),
        Some("reports")
    );
    let report = workspace
        .path()
        .join("reports")
        .join(common::report_file_name(&pushed.reference));
    assert!(
        report.is_file(),
        "no JSON report at {}\n{run}",
        report.display()
    );
    assert!(!run.stdout.contains(&password), "{run}");
    assert!(!run.stderr.contains(&password), "{run}");
}

#[test]
fn action_step_without_credentials_fails_pull() {
    let registry = Registry::basic("ci-user", &common::random_hex(16));
    let pushed = push_passing_image(&registry, "team/app:1.0");
    let workspace = tempfile::tempdir().expect("create the workspace");

    let run = run_action_step(
        "scan",
        &[("image", &pushed.reference)],
        workspace.path(),
        Path::new(SCANNER),
    );

    // Exit code 20: the image could not be pulled, here because of the 401.
    assert_eq!(run.status, 20, "{run}");
    assert_eq!(
        run.outputs.get("exit-code").map(String::as_str),
        Some("20"),
        "{run}"
    );
}

#[test]
fn action_step_maps_exit_code_input() {
    let registry = Registry::plain();
    // The tag `latest` fails ICS001, a Critical check.
    let pushed = push_passing_image(&registry, "team/app:latest");
    let workspace = tempfile::tempdir().expect("create the workspace");

    let default_run = run_action_step(
        "scan",
        &[("image", &pushed.reference)],
        workspace.path(),
        Path::new(SCANNER),
    );
    let mapped_run = run_action_step(
        "scan",
        &[("image", &pushed.reference), ("critical-exit-code", "3")],
        workspace.path(),
        Path::new(SCANNER),
    );

    assert_eq!(default_run.status, CRITICAL_EXIT_CODE, "{default_run}");
    assert_eq!(
        default_run.outputs.get("exit-code").map(String::as_str),
        Some("12")
    );
    assert_eq!(mapped_run.status, 3, "{mapped_run}");
    assert_eq!(
        mapped_run.outputs.get("exit-code").map(String::as_str),
        Some("3")
    );
}

#[test]
fn action_step_rejects_both_credential_forms() {
    let workspace = tempfile::tempdir().expect("create the workspace");

    let run = run_action_step(
        "scan",
        &[
            ("image", "registry.example.com/team/app:1.0"),
            ("docker-auth-config", "{\"auths\":{}}"),
            ("registry-username", "ci-user"),
            ("registry-password", "secret"),
        ],
        workspace.path(),
        Path::new("/bin/false"),
    );

    assert_eq!(run.status, 2, "{run}");
    assert!(
        run.stdout
            .contains("::error::Set either docker-auth-config"),
        "{run}"
    );
    assert!(run.outputs.is_empty(), "{run}");
}

#[test]
fn action_step_masks_derived_auth() {
    // A stand-in scanner that only reports what it received, so that no registry is needed.
    let runner = tempfile::tempdir().expect("create a directory");
    let stand_in = runner.path().join("scanner");
    fs::write(
        &stand_in,
        "#!/bin/sh\nprintf '%s\\n' \"$DOCKER_AUTH_CONFIG\" > received-auth\n\
         printf 'token=%s\\n' \"${GITHUB_TOKEN:-unset}\" >> received-auth\n",
    )
    .expect("write the stand-in scanner");
    Command::new("chmod")
        .args(["755"])
        .arg(&stand_in)
        .status()
        .expect("chmod the stand-in scanner");
    let workspace = tempfile::tempdir().expect("create the workspace");

    let run = run_action_step(
        "scan",
        &[
            ("image", "registry.example.com:5000/team/app:1.0"),
            ("registry-username", "ci-user"),
            ("registry-password", "p4ss"),
        ],
        workspace.path(),
        &stand_in,
    );

    assert_eq!(run.status, 0, "{run}");
    // base64("ci-user:p4ss")
    let auth = "Y2ktdXNlcjpwNHNz";
    assert!(run.stdout.contains(&format!("::add-mask::{auth}")), "{run}");
    let received =
        fs::read_to_string(workspace.path().join("received-auth")).expect("read received auth");
    assert_eq!(
        received,
        format!(
            "{{\"auths\":{{\"registry.example.com:5000\":{{\"auth\":\"{auth}\"}}}}}}\ntoken=unset\n"
        )
    );
}

#[test]
fn action_step_outputs_from_scanner() {
    let registry = Registry::plain();
    let pushed = push_passing_image(&registry, "team/app:latest");
    let workspace = tempfile::tempdir().expect("create the workspace");

    let run = run_action_step(
        "scan",
        &[("image", &pushed.reference)],
        workspace.path(),
        Path::new(SCANNER),
    );

    assert_eq!(run.status, CRITICAL_EXIT_CODE, "{run}");
    assert_eq!(
        run.outputs.get("highest-severity").map(String::as_str),
        Some("Critical"),
        "{run}"
    );
    for format in ["json", "sarif", "junit", "markdown"] {
        let path = run
            .outputs
            .get(&format!("{format}-report"))
            .unwrap_or_else(|| panic!("no {format}-report output\n{run}"));
        assert!(workspace.path().join(path).is_file(), "{path}\n{run}");
    }
}

// GitLab component.

const COMPONENT: &str = "gitlab-component/templates/compliance-scan.yml";

#[test]
fn gitlab_component_matches_schema() {
    let documents = yaml_documents(&repo_path(COMPONENT));
    assert_eq!(documents.len(), 2, "expected the spec header and the jobs");
    let inputs = documents[0]["spec"]["inputs"]
        .as_object()
        .expect("spec.inputs");
    for name in [
        "image",
        "scanner-image",
        "stage",
        "job-name",
        "formats",
        "informational-exit-code",
        "low-exit-code",
        "medium-exit-code",
        "high-exit-code",
        "critical-exit-code",
    ] {
        assert!(inputs.contains_key(name), "no input {name}");
    }

    let dir = tempfile::tempdir().expect("create a directory");
    let header = dir.path().join("header.json");
    let jobs = dir.path().join("jobs.json");
    fs::write(&header, documents[0].to_string()).expect("write the header");
    fs::write(&jobs, documents[1].to_string()).expect("write the jobs");
    let output = check_jsonschema("vendor.gitlab-ci", &[&header, &jobs]);
    assert!(output.status.success(), "{}", describe(&output));
}

/// A copy of the component laid out as a project of its own, with a `.gitlab-ci.yml` that
/// includes it, committed to git with an `origin` remote.
struct GitlabProject {
    dir: TempDir,
    /// Directory with an `image-compliance-scanner` link to the binary under test.
    bin: PathBuf,
}

impl GitlabProject {
    fn new(gitlab_ci: &str) -> Self {
        let dir = tempfile::tempdir().expect("create the project directory");
        let templates = dir.path().join("templates");
        fs::create_dir(&templates).expect("create templates");
        fs::copy(repo_path(COMPONENT), templates.join("compliance-scan.yml"))
            .expect("copy the component");
        fs::write(dir.path().join(".gitlab-ci.yml"), gitlab_ci).expect("write .gitlab-ci.yml");
        fs::write(dir.path().join(".gitignore"), "bin/\n").expect("write .gitignore");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("create bin");
        std::os::unix::fs::symlink(SCANNER, bin.join("image-compliance-scanner"))
            .expect("link the scanner");

        // gitlab-ci-local takes the server and project path from the origin URL. The host is
        // loopback so that nothing could reach a real server.
        for args in [
            vec!["init", "--quiet", "--initial-branch=main"],
            vec!["add", "--all"],
            vec!["commit", "--quiet", "--message", "Include the component"],
            vec![
                "remote",
                "add",
                "origin",
                "git@127.0.0.1:tools/image-compliance-scanner.git",
            ],
        ] {
            let output = run_tool(
                Command::new("git")
                    .args(["-c", "user.name=CI test", "-c", "user.email=ci@example.com"])
                    .args(&args)
                    .current_dir(dir.path()),
                "apt-get install git",
            );
            assert!(
                output.status.success(),
                "git {args:?}: {}",
                describe(&output)
            );
        }
        GitlabProject { dir, bin }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs gitlab-ci-local with the shell executor and returns its output.
    fn run(&self, args: &[&str]) -> Output {
        let path = std::env::join_paths(std::iter::once(self.bin.clone()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("join PATH");
        let home = self.dir.path().join(".home");
        fs::create_dir_all(&home).expect("create HOME");
        run_tool(
            Command::new("gitlab-ci-local")
                .args(["--force-shell-executor", "--color=false"])
                .args(args)
                .current_dir(self.dir.path())
                .env("PATH", path)
                .env("HOME", &home)
                .env("NO_COLOR", "1"),
            "npm install --global gitlab-ci-local@4.65.1 (and apt-get install rsync)",
        )
    }

    /// Files in the job's artifacts under `reports/`.
    fn artifact_reports(&self) -> Vec<String> {
        let dir = self
            .dir
            .path()
            .join(".gitlab-ci-local/artifacts")
            .join(GITLAB_JOB)
            .join("reports");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Returns a `.gitlab-ci.yml` that includes the component of the same project, as a project
/// that mirrors `gitlab-component/` does.
fn component_include(image: &str) -> String {
    format!(
        "include:\n  \
         - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/compliance-scan@$CI_COMMIT_SHA\n    \
         inputs:\n      \
         image: {image}\n      \
         scanner-image: registry.example.com/tools/image-compliance-scanner-ci:0.1.0\n      \
         job-name: {GITLAB_JOB}\n"
    )
}

#[test]
fn gitlab_component_job_passes() {
    let registry = Registry::plain();
    let pushed = push_passing_image(&registry, "team/app:1.0");
    let project = GitlabProject::new(&component_include(&pushed.reference));

    let output = project.run(&[GITLAB_JOB]);

    assert!(output.status.success(), "{}", describe(&output));
    let reports = project.artifact_reports();
    assert!(
        reports.iter().any(|name| name.ends_with(".json")),
        "no JSON report in {reports:?}\n{}",
        describe(&output)
    );
    assert!(
        reports.iter().any(|name| name.ends_with(".xml")),
        "no JUnit report in {reports:?}\n{}",
        describe(&output)
    );
}

#[test]
fn gitlab_failed_scan_keeps_reports() {
    let registry = Registry::plain();
    let pushed = push_passing_image(&registry, "team/app:latest");
    let project = GitlabProject::new(&component_include(&pushed.reference));

    let output = project.run(&[GITLAB_JOB]);

    assert!(!output.status.success(), "{}", describe(&output));
    // gitlab-ci-local prints the job's result line on standard error.
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        log.contains(&format!("FAIL {CRITICAL_EXIT_CODE}")),
        "the job did not fail with exit code {CRITICAL_EXIT_CODE}\n{}",
        describe(&output)
    );
    let reports = project.artifact_reports();
    assert!(
        reports.iter().any(|name| name.ends_with(".xml")),
        "no JUnit report in {reports:?}\n{}",
        describe(&output)
    );
}

#[test]
fn gitlab_local_include_with_inputs() {
    let gitlab_ci = format!(
        "include:\n  \
         - local: templates/compliance-scan.yml\n    \
         inputs:\n      \
         image: registry.example.com/team/app:1.0\n      \
         scanner-image: registry.example.com/tools/image-compliance-scanner-ci:0.1.0\n      \
         stage: verify\n      \
         job-name: {GITLAB_JOB}\n      \
         critical-exit-code: 3\n\
         stages: [verify]\n"
    );
    let project = GitlabProject::new(&gitlab_ci);

    let output = project.run(&["--preview"]);

    assert!(output.status.success(), "{}", describe(&output));
    let expanded: Value = {
        let documents = yaml_documents(
            &project
                .path()
                .join(".gitlab-ci-local/expanded-gitlab-ci.yml"),
        );
        documents.into_iter().next().expect("the expanded pipeline")
    };
    let job = &expanded[GITLAB_JOB];
    assert_eq!(job["stage"], "verify", "{job}");
    assert_eq!(job["variables"]["CRITICAL_EXIT_CODE"], "3", "{job}");
    assert_eq!(
        job["variables"]["COMPLIANCE_IMAGE_FULL_REF"],
        "registry.example.com/team/app:1.0"
    );
    assert_eq!(job["artifacts"]["when"], "always", "{job}");
    assert_eq!(
        job["artifacts"]["reports"]["junit"], "reports/*.xml",
        "{job}"
    );
}
