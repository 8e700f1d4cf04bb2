//! Child processes that the harness starts and must stop, and commands it runs to completion.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A background process that is killed, with its descendants, on drop.
///
/// The process stays in the test's process group, so Ctrl-C on `cargo test` stops it even
/// when the test process dies before dropping the guard.
// NOTE: a test process killed with SIGKILL leaves its registries running. The token issuer
// exits by itself within a second of losing its parent.
pub struct ChildGuard {
    child: Child,
    name: String,
    reaped: bool,
}

impl ChildGuard {
    /// Spawns `command` with standard input closed and standard output and error appended to
    /// `log_file`.
    pub fn spawn_logged(mut command: Command, name: &str, log_file: &Path) -> Self {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_file)
            .unwrap_or_else(|error| panic!("failed to open {}: {error}", log_file.display()));
        let log_copy = log
            .try_clone()
            .expect("failed to duplicate the log file handle");
        command.stdout(log).stderr(log_copy);
        Self::spawn(&mut command, name)
    }

    /// Spawns `command` with standard input closed. The caller sets up standard output and
    /// error.
    pub fn spawn(command: &mut Command, name: &str) -> Self {
        command.stdin(Stdio::null());
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {name} ({command:?}): {error}"));
        Self {
            child,
            name: name.to_owned(),
            reaped: false,
        }
    }

    /// Takes the piped standard output, if the command was spawned with one.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Returns the exit status if the process has already exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self
            .child
            .try_wait()
            .unwrap_or_else(|error| panic!("failed to poll {}: {error}", self.name));
        self.reaped |= status.is_some();
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Once the process is reaped its id may be reused, so only a process that is alive or
        // a zombie is signalled.
        // NOTE: descendants of a process that already exited and was reaped are not killed.
        if !self.reaped {
            let mut pids = descendants(self.child.id());
            pids.push(self.child.id());
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            let _ = Command::new("sh")
                .args(["-c", "kill -KILL \"$@\" 2>/dev/null", "sh"])
                .args(&pids)
                .status();
        }
        let _ = self.child.wait();
    }
}

/// Returns the ids of every live descendant of `pid`, read from Linux's
/// `/proc/PID/task/TID/children`, children before their own children.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut pending = vec![pid];
    while let Some(parent) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|id| id.parse().ok()) {
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

/// Reads the first line of `stdout` within `timeout`, or returns `None` at end of file or on
/// time-out. The reading thread keeps draining the pipe afterwards, so the child never blocks
/// on a full pipe.
pub fn read_first_line(stdout: ChildStdout, timeout: Duration) -> Option<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let first = match reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        };
        let _ = sender.send(first);
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    receiver.recv_timeout(timeout).ok().flatten()
}

/// Runs `command` to completion with standard input closed and returns its output, panicking
/// with the command line, status and standard error when it fails.
pub fn run_checked(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("failed to run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "command failed with {}: {command:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}

/// How long `run_with_timeout` keeps reading output after the command exited, for
/// descendants that inherited its pipes and still hold them open.
const PIPE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Runs `command` with piped output, killing it after `timeout`. Returns `None` on time-out,
/// together with whatever output the command wrote before it was killed.
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> (Option<ExitStatus>, Output) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(command, "command");
    let stdout = PipeReader::start(guard.child.stdout.take());
    let stderr = PipeReader::start(guard.child.stderr.take());

    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.exit_status() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    // On time-out, dropping the guard kills the command and its descendants.
    drop(guard);

    let output = Output {
        status: status.unwrap_or_default(),
        stdout: stdout.finish(PIPE_CLOSE_GRACE),
        stderr: stderr.finish(PIPE_CLOSE_GRACE),
    };
    (status, output)
}

/// A thread that copies a pipe into a shared buffer until end of file.
struct PipeReader {
    buffer: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl PipeReader {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let (sender, done) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0_u8; 8192];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(count) => shared.lock().unwrap().extend_from_slice(&chunk[..count]),
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
            let _ = sender.send(());
        });
        Self { buffer, done }
    }

    /// Waits up to `grace` for end of file and returns what was read by then.
    fn finish(self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        std::mem::take(&mut *self.buffer.lock().unwrap())
    }
}
