//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a test registry.
//!
//! A test adds rules that match requests by method and path pattern. A matching rule replaces
//! or damages the registry's response with an error status, a stalled, reset or truncated
//! body, a redirect to a second host on 127.0.0.2, a redirect loop, an oversized body, or an
//! error that echoes the request's credentials. The proxy and the second host record each
//! request's method, path and whether it carried an `Authorization` header, never the
//! header's value.
//!
//! Every response closes its connection, so each request arrives on a connection of its own.
//! Request bodies are read by `Content-Length` only; the scanner sends GET requests.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::random_hex;

/// Maximum time a stalled response keeps its connection open while the proxy runs.
const STALL_LIMIT: Duration = Duration::from_secs(120);
/// Read and write time-out on every socket, so that no connection thread blocks for ever.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Maximum size of a request head.
const MAX_HEAD_BYTES: usize = 64 << 10;
/// Maximum size of an upstream response, which is read into memory.
const MAX_UPSTREAM_BYTES: u64 = 256 << 20;
/// Pause after the partial body of a reset or truncated response, so that the client reads
/// those bytes before the connection ends.
const PARTIAL_BODY_PAUSE: Duration = Duration::from_millis(300);

/// What the proxy does to a matched request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Responds with `code` and a registry error body, and `Retry-After: value` when given.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Forwards the request, sends the response headers and the first `after_bytes` bytes of
    /// the body, then sends nothing until the proxy is dropped or `STALL_LIMIT` passes.
    Stall { after_bytes: usize },
    /// Ends the connection with a TCP reset: before any response when `after_bytes` is `None`,
    /// else after forwarding and sending the headers and `after_bytes` bytes of the body.
    Reset { after_bytes: Option<usize> },
    /// Forwards the request and sends the upstream `Content-Length` but only `after_bytes`
    /// bytes of the body, then closes the connection.
    Truncate { after_bytes: usize },
    /// Forwards the request and responds `307` with the second host (127.0.0.2) as
    /// `Location`, which then serves the body, as registries that keep blobs in S3 or behind a
    /// CDN do.
    RedirectToOtherHost,
    /// Responds `307` with the request's own path as `Location`.
    RedirectLoop,
    /// Responds `200` with a JSON object of `bytes` bytes, with or without `Content-Length`.
    OversizedBody { bytes: usize, content_length: bool },
    /// Responds `400` with the request's `Authorization` header, and its base64 part decoded,
    /// in the error message, as a hostile or broken registry might.
    EchoAuthorization,
}

/// Applies `fault` to requests with `method` whose path (without query) matches `pattern`,
/// where `*` matches any run of characters.
#[derive(Clone, Debug)]
pub struct Rule {
    method: String,
    pattern: String,
    fault: Fault,
    /// How many more requests the rule applies to; `None` for every request.
    remaining: Option<usize>,
}

impl Rule {
    /// Creates a rule that applies to every matching request.
    pub fn always(method: &str, pattern: &str, fault: Fault) -> Self {
        Self {
            method: method.to_owned(),
            pattern: pattern.to_owned(),
            fault,
            remaining: None,
        }
    }

    /// Creates a rule that applies to the first `times` matching requests only.
    pub fn first(times: usize, method: &str, pattern: &str, fault: Fault) -> Self {
        Self {
            remaining: Some(times),
            ..Self::always(method, pattern, fault)
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0) && self.method == method && glob_match(&self.pattern, path)
    }
}

/// One request as the proxy or the second host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub had_authorization: bool,
    /// Whether a rule applied to the request.
    pub faulted: bool,
}

/// State shared by the accept loop and the connection threads.
struct Shared {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: Arc<AtomicBool>,
    target: Arc<TargetShared>,
    /// `127.0.0.2:PORT` of the second host.
    target_host: String,
}

impl Shared {
    /// Returns the fault of the first rule that matches, counting the request against it.
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules.iter_mut().find(|rule| rule.matches(method, path))?;
        if let Some(remaining) = &mut rule.remaining {
            *remaining -= 1;
        }
        Some(rule.fault.clone())
    }
}

/// The proxy, stopped on drop.
pub struct FaultProxy {
    host: String,
    shared: Arc<Shared>,
    target: RedirectTarget,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `upstream`
    /// (`127.0.0.1:PORT`), and its second host on a free port of 127.0.0.2.
    pub fn start(upstream: &str) -> Self {
        let target = RedirectTarget::start();
        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind 127.0.0.1:0");
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            rules: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            target: Arc::clone(&target.shared),
            target_host: target.host.clone(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = accept_loop(listener, Arc::clone(&shared.stop), move |stream| {
            handle_proxy_connection(stream, &accept_shared)
        });
        Self {
            host,
            shared,
            target,
            accept_thread: Some(accept_thread),
        }
    }

    /// `127.0.0.1:PORT`, the registry host that the scanner is given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns `HOST/REPO:TAG` through the proxy for `repo_and_tag`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host)
    }

    /// Adds `rule` after the rules already set. The first matching rule applies.
    pub fn add_rule(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule and every recorded request, of the proxy and of the second host.
    pub fn reset(&self) {
        self.shared.rules.lock().unwrap().clear();
        self.shared.requests.lock().unwrap().clear();
        self.target.shared.requests.lock().unwrap().clear();
    }

    /// Returns the requests that the proxy received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Returns how many requests with `method` matched `pattern`.
    pub fn count(&self, method: &str, pattern: &str) -> usize {
        self.requests()
            .iter()
            .filter(|request| request.method == method && glob_match(pattern, &request.path))
            .count()
    }

    /// Returns the second host that `Fault::RedirectToOtherHost` sends clients to.
    pub fn redirect_target(&self) -> &RedirectTarget {
        &self.target
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// State of the second host.
struct TargetShared {
    /// Bodies by path, stored by the proxy before it redirects.
    bodies: Mutex<HashMap<String, Vec<u8>>>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: Arc<AtomicBool>,
}

/// A plain HTTP server on 127.0.0.2, another host than the proxy's for the client, that
/// serves the bodies the proxy redirected to it.
pub struct RedirectTarget {
    host: String,
    shared: Arc<TargetShared>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl RedirectTarget {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").expect("failed to bind 127.0.0.2:0");
        let host = format!("127.0.0.2:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(TargetShared {
            bodies: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = accept_loop(listener, Arc::clone(&shared.stop), move |stream| {
            handle_target_connection(stream, &accept_shared)
        });
        Self {
            host,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// `127.0.0.2:PORT`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the requests that the second host received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for RedirectTarget {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stop` is set and runs `handle` on a thread for each.
fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) -> thread::JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("failed to make the listener non-blocking");
    let handle = Arc::new(handle);
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let handle = Arc::clone(&handle);
                    thread::spawn(move || {
                        if stream.set_nonblocking(false).is_ok()
                            && stream.set_read_timeout(Some(IO_TIMEOUT)).is_ok()
                            && stream.set_write_timeout(Some(IO_TIMEOUT)).is_ok()
                        {
                            handle(stream);
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// A parsed request head.
struct RequestHead {
    method: String,
    /// The request target as sent, query included.
    target: String,
    /// The path without the query.
    path: String,
    headers: Vec<(String, String)>,
    /// Length of the head in bytes, up to and including the blank line.
    length: usize,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Reads the request head with `peek`, leaving it unread in the socket so that closing the
/// socket can reset the connection: Linux sends a TCP reset when a socket is closed with
/// unread data. Returns `None` for end of file, a time-out or bytes that are not HTTP, such
/// as a TLS handshake.
fn peek_request_head(stream: &TcpStream) -> Option<RequestHead> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buffer = vec![0_u8; MAX_HEAD_BYTES];
    let mut seen = 0;
    loop {
        let count = stream.peek(&mut buffer).ok()?;
        let data = &buffer[..count];
        if count == 0 || !data[0].is_ascii_uppercase() {
            return None;
        }
        if let Some(end) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            return parse_request_head(&data[..end + 4]);
        }
        if count == buffer.len() || Instant::now() >= deadline {
            return None;
        }
        if count == seen {
            thread::sleep(Duration::from_millis(2));
        }
        seen = count;
    }
}

fn parse_request_head(head: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let headers = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Some(RequestHead {
        method,
        target,
        path,
        headers,
        length: head.len(),
    })
}

/// Reads the peeked head and the `Content-Length` body of `head` from the socket.
fn consume_request(stream: &mut TcpStream, head: &RequestHead) -> io::Result<Vec<u8>> {
    let mut discarded = vec![0_u8; head.length];
    stream.read_exact(&mut discarded)?;
    let length: usize = head
        .header("Content-Length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn handle_proxy_connection(mut stream: TcpStream, shared: &Shared) {
    let Some(head) = peek_request_head(&stream) else {
        return;
    };
    let fault = shared.take_fault(&head.method, &head.path);
    shared.requests.lock().unwrap().push(RecordedRequest {
        method: head.method.clone(),
        path: head.path.clone(),
        had_authorization: head.header("Authorization").is_some(),
        faulted: fault.is_some(),
    });

    // A reset needs the request unread, so only the other faults consume it.
    if let Some(Fault::Reset { after_bytes }) = fault {
        if let Some(after_bytes) = after_bytes
            && let Ok(response) = forward(&shared.upstream, &head, &[])
        {
            let _ = write_partial(&mut stream, &head, &response, after_bytes);
            thread::sleep(PARTIAL_BODY_PAUSE);
        }
        return;
    }
    let Ok(body) = consume_request(&mut stream, &head) else {
        return;
    };
    let _ = respond(&mut stream, &head, &body, fault, shared);
    let _ = stream.shutdown(Shutdown::Both);
}

fn respond(
    stream: &mut TcpStream,
    head: &RequestHead,
    body: &[u8],
    fault: Option<Fault>,
    shared: &Shared,
) -> io::Result<()> {
    let Some(fault) = fault else {
        let response = forward_or_bad_gateway(&shared.upstream, head, body);
        return write_response(stream, head, &response);
    };
    match fault {
        Fault::Status { code, retry_after } => {
            let mut response = error_response(code, "INJECTED", "injected by the fault proxy");
            if code == 401 {
                response.headers.push((
                    "WWW-Authenticate".to_owned(),
                    "Basic realm=\"fault-proxy\"".to_owned(),
                ));
            }
            if let Some(value) = retry_after {
                response.headers.push(("Retry-After".to_owned(), value));
            }
            write_response(stream, head, &response)
        }
        Fault::Stall { after_bytes } => {
            let response = forward_or_bad_gateway(&shared.upstream, head, body);
            write_partial(stream, head, &response, after_bytes)?;
            let deadline = Instant::now() + STALL_LIMIT;
            while !shared.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
        Fault::Truncate { after_bytes } => {
            let response = forward_or_bad_gateway(&shared.upstream, head, body);
            write_partial(stream, head, &response, after_bytes)?;
            thread::sleep(PARTIAL_BODY_PAUSE);
            Ok(())
        }
        Fault::RedirectToOtherHost => {
            let response = forward_or_bad_gateway(&shared.upstream, head, body);
            if response.status != 200 {
                return write_response(stream, head, &response);
            }
            let path = format!("/storage/{}", random_hex(16));
            let location = format!("http://{}{path}", shared.target_host);
            shared
                .target
                .bodies
                .lock()
                .unwrap()
                .insert(path, response.body);
            write_response(stream, head, &redirect_response(&location))
        }
        Fault::RedirectLoop => write_response(stream, head, &redirect_response(&head.target)),
        Fault::OversizedBody {
            bytes,
            content_length,
        } => write_oversized(stream, bytes, content_length),
        Fault::EchoAuthorization => {
            let value = head.header("Authorization").unwrap_or("none");
            let decoded = value
                .split_once(' ')
                .and_then(|(_, encoded)| BASE64.decode(encoded).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let message = format!("rejected Authorization {value} ({decoded})");
            write_response(stream, head, &error_response(400, "DENIED", &message))
        }
        Fault::Reset { .. } => unreachable!("resets are handled before the request is read"),
    }
}

/// A response to send, with the body in memory.
struct Response {
    status: u16,
    reason: String,
    /// Headers other than `Content-Length`, `Transfer-Encoding` and `Connection`.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The upstream `Content-Length` of a HEAD response, which has no body.
    head_length: Option<String>,
}

fn error_response(code: u16, error_code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "code": error_code, "message": message }] });
    Response {
        status: code,
        reason: reason_phrase(code).to_owned(),
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: body.to_string().into_bytes(),
        head_length: None,
    }
}

fn redirect_response(location: &str) -> Response {
    Response {
        status: 307,
        reason: reason_phrase(307).to_owned(),
        headers: vec![("Location".to_owned(), location.to_owned())],
        body: Vec::new(),
        head_length: None,
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// Sends the request to `upstream` with `Connection: close` and reads the whole response.
fn forward(upstream: &str, head: &RequestHead, body: &[u8]) -> io::Result<Response> {
    let mut connection = TcpStream::connect(upstream)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut request = format!("{} {} HTTP/1.1\r\n", head.method, head.target);
    for (name, value) in &head.headers {
        if !is_hop_by_hop(name) {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    connection.write_all(request.as_bytes())?;
    connection.write_all(body)?;

    let mut raw = Vec::new();
    connection.take(MAX_UPSTREAM_BYTES).read_to_end(&mut raw)?;
    parse_response(&raw, head.method == "HEAD")
}

fn forward_or_bad_gateway(upstream: &str, head: &RequestHead, body: &[u8]) -> Response {
    forward(upstream, head, body).unwrap_or_else(|error| {
        error_response(502, "UPSTREAM", &format!("the registry failed: {error}"))
    })
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
    ]
    .iter()
    .any(|hop| name.eq_ignore_ascii_case(hop))
}

fn parse_response(raw: &[u8], is_head: bool) -> io::Result<Response> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("the upstream response has no complete head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("invalid status line"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let all_headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked = header_value(&all_headers, "Transfer-Encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"));
    let head_length = is_head
        .then(|| header_value(&all_headers, "Content-Length").map(str::to_owned))
        .flatten();
    let rest = &raw[end + 4..];
    let body = if is_head {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| invalid("invalid chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        reason,
        headers: all_headers
            .into_iter()
            .filter(|(name, _)| !is_hop_by_hop(name))
            .collect(),
        body,
        head_length,
    })
}

/// Decodes a chunked body, ignoring chunk extensions and trailers.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn write_head(
    stream: &mut TcpStream,
    response: &Response,
    content_length: Option<&str>,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = content_length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())
}

fn write_response(
    stream: &mut TcpStream,
    head: &RequestHead,
    response: &Response,
) -> io::Result<()> {
    if head.method == "HEAD" {
        let length = response
            .head_length
            .clone()
            .unwrap_or_else(|| "0".to_owned());
        return write_head(stream, response, Some(&length));
    }
    write_head(stream, response, Some(&response.body.len().to_string()))?;
    stream.write_all(&response.body)?;
    stream.flush()
}

/// Sends the head with the full `Content-Length` and the first `after_bytes` bytes of the
/// body.
fn write_partial(
    stream: &mut TcpStream,
    head: &RequestHead,
    response: &Response,
    after_bytes: usize,
) -> io::Result<()> {
    if head.method == "HEAD" {
        return write_response(stream, head, response);
    }
    write_head(stream, response, Some(&response.body.len().to_string()))?;
    let sent = after_bytes.min(response.body.len());
    stream.write_all(&response.body[..sent])?;
    stream.flush()
}

/// Sends a `200` JSON object of `bytes` bytes in 64 KiB pieces, stopping when the client
/// hangs up.
fn write_oversized(stream: &mut TcpStream, bytes: usize, content_length: bool) -> io::Result<()> {
    let response = Response {
        status: 200,
        reason: reason_phrase(200).to_owned(),
        headers: vec![(
            "Content-Type".to_owned(),
            "application/vnd.oci.image.manifest.v1+json".to_owned(),
        )],
        body: Vec::new(),
        head_length: None,
    };
    let length = bytes.to_string();
    write_head(stream, &response, content_length.then_some(length.as_str()))?;
    let prefix = b"{\"schemaVersion\":2,\"padding\":\"";
    let suffix = b"\"}";
    stream.write_all(prefix)?;
    let mut remaining = bytes.saturating_sub(prefix.len() + suffix.len());
    let piece = vec![b'a'; 64 << 10];
    while remaining > 0 {
        let count = remaining.min(piece.len());
        stream.write_all(&piece[..count])?;
        remaining -= count;
    }
    stream.write_all(suffix)?;
    stream.flush()
}

fn handle_target_connection(mut stream: TcpStream, shared: &TargetShared) {
    let Some(head) = peek_request_head(&stream) else {
        return;
    };
    shared.requests.lock().unwrap().push(RecordedRequest {
        method: head.method.clone(),
        path: head.path.clone(),
        had_authorization: head.header("Authorization").is_some(),
        faulted: false,
    });
    if consume_request(&mut stream, &head).is_err() {
        return;
    }
    let body = shared.bodies.lock().unwrap().get(&head.path).cloned();
    let response = match body {
        Some(body) => Response {
            status: 200,
            reason: reason_phrase(200).to_owned(),
            headers: vec![(
                "Content-Type".to_owned(),
                "application/octet-stream".to_owned(),
            )],
            head_length: Some(body.len().to_string()),
            body,
        },
        None => error_response(404, "BLOB_UNKNOWN", "the second host has no such body"),
    };
    let _ = write_response(&mut stream, &head, &response);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Tells whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = pattern.as_bytes();
    let text = text.as_bytes();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|byte| *byte == b'*')
}
