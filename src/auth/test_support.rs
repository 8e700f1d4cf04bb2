//! Fixtures for the auth tests: credential helper scripts in a temporary directory, and a
//! one-request HTTP server on 127.0.0.1 that records what it received.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::ResolveOptions;

/// A temporary directory of `docker-credential-*` shell scripts, used as the helper search
/// path.
pub(super) struct HelperDir {
    dir: tempfile::TempDir,
}

impl HelperDir {
    pub(super) fn new() -> Self {
        HelperDir {
            dir: tempfile::tempdir().expect("create a temporary helper directory"),
        }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `docker-credential-{name}` as an executable `/bin/sh` script running `body`.
    pub(super) fn add(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write helper script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make helper script executable");
        path
    }

    /// Options that search only this directory, with a 10 s timeout.
    pub(super) fn options(&self) -> ResolveOptions {
        self.options_with_timeout(Duration::from_secs(10))
    }

    pub(super) fn options_with_timeout(&self, timeout: Duration) -> ResolveOptions {
        ResolveOptions {
            helper_search_path: Some(self.dir.path().as_os_str().to_owned()),
            helper_timeout: timeout,
        }
    }
}

/// A request as the test server received it.
#[derive(Debug)]
pub(super) struct RecordedRequest {
    pub(super) method: String,
    pub(super) path: String,
    /// Header names in lowercase, with their values.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl RecordedRequest {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the value of `name` in an `application/x-www-form-urlencoded` body.
    pub(super) fn form_value(&self, name: &str) -> Option<String> {
        let body = String::from_utf8_lossy(&self.body);
        // The URL only provides the query parser, and nothing is sent to it.
        let mut url = reqwest::Url::parse("http://127.0.0.1/").expect("parse a fixed URL");
        url.set_query(Some(&body));
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// Builds an HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub(super) fn http_response(status_line: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("HTTP/1.1 {status_line}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    text
}

/// Starts a server on 127.0.0.1 that responds to one request with `response` and then stops.
/// Returns its base URL (`http://127.0.0.1:PORT`) and a handle that yields the request.
pub(super) async fn serve_once(response: String) -> (String, JoinHandle<RecordedRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("read the bound address");
    let handle = tokio::spawn(async move {
        let accept_and_respond = async {
            let (mut stream, _) = listener.accept().await.expect("accept a connection");
            let request = read_request(&mut stream).await;
            stream
                .write_all(response.as_bytes())
                .await
                .expect("write the response");
            stream.shutdown().await.ok();
            request
        };
        tokio::time::timeout(Duration::from_secs(10), accept_and_respond)
            .await
            .expect("the test server got a request within 10 s")
    });
    (format!("http://{address}"), handle)
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> RecordedRequest {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = find_header_end(&data) {
            break end;
        }
        let count = stream.read(&mut buffer).await.expect("read the request");
        assert!(count > 0, "the client closed the connection mid-request");
        data.extend_from_slice(&buffer[..count]);
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_string)
        .collect();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = data[header_end + 4..].to_vec();
    while body.len() < length {
        let count = stream.read(&mut buffer).await.expect("read the body");
        assert!(count > 0, "the client closed the connection mid-body");
        body.extend_from_slice(&buffer[..count]);
    }
    RecordedRequest {
        method: request_line.first().cloned().unwrap_or_default(),
        path: request_line.get(1).cloned().unwrap_or_default(),
        headers,
        body,
    }
}

fn find_header_end(data: &[u8]) -> Option<usize> {
    data.windows(4).position(|window| window == b"\r\n\r\n")
}

/// Builds a client that never uses a proxy, so test requests stay on loopback.
pub(super) fn loopback_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build the test HTTP client")
}
