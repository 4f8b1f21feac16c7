//! Shared test helpers: an in-process server on 127.0.0.1:0, raw HTTP over TCP, and a
//! WebSocket client (tungstenite's own client, an implementation independent of ours).
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use wschat::{Config, Server, ShutdownHandle};

pub mod redis;

/// Every blocking read in a test gives up after this, so no test can hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where metrics are served, when the config asked for them.
    pub metrics: Option<SocketAddr>,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        // The server's log goes to the test's captured output: shown when the test fails.
        wschat::internals::log::capture::start();
        // History in memory unless a test gives a directory: tests never write to a default
        // data directory.
        let mut config = Config {
            addr: "127.0.0.1:0".into(),
            ephemeral: true,
            ..Config::default()
        };
        adjust(&mut config);
        // Bound before the thread starts, so the port accepts connections right away.
        let server = Server::bind(config).expect("bind");
        let addr = server.local_addr().unwrap();
        let metrics = server.metrics_addr().unwrap();
        let handle = server.shutdown_handle().unwrap();
        let thread = std::thread::spawn(move || server.run().unwrap());
        TestServer {
            addr,
            metrics,
            handle,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    pub fn ws(&self, path: &str) -> WebSocket<TcpStream> {
        let stream = self.connect();
        let url = format!("ws://{}{path}", self.addr);
        let (ws, response) = tungstenite::client(url.as_str(), stream).expect("upgrade");
        assert_eq!(response.status(), 101);
        ws
    }

    /// Joins the chat as `name` and returns the socket after the welcome (and the backlog
    /// messages that followed it are left unread).
    pub fn join(&self, name: &str) -> WebSocket<TcpStream> {
        let mut ws = self.ws("/chat");
        ws.send(Message::text(name)).unwrap();
        let welcome = next_text(&mut ws);
        assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
        ws
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits up to [`PATIENCE`] for a server log line, logged after `since`, containing every one
/// of `parts`.
pub fn wait_for_log(since: wschat::internals::log::capture::Mark, parts: &[&str]) -> String {
    wschat::internals::log::capture::wait_for(
        since,
        |line| parts.iter().all(|p| line.contains(p)),
        PATIENCE,
    )
    .unwrap_or_else(|| panic!("no log line with {parts:?} within {PATIENCE:?}"))
}

/// Next text message, skipping pings and pongs.
pub fn next_text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code.
pub fn close_code(ws: &mut WebSocket<TcpStream>) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
            Ok(Message::Close(None)) => return u16::from(CloseCode::Status),
            Ok(_) => continue,
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from `stream` (head, then `Content-Length` bytes unless `head_only`).
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> HttpResponse {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read response head");
        assert!(
            n == 1,
            "connection closed inside the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut response = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    if !head_only && status != 304 {
        response.body = vec![0; length];
        stream.read_exact(&mut response.body).unwrap();
    }
    response
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw_request(server: &TestServer, request: &[u8]) -> HttpResponse {
    let mut stream = server.connect();
    stream.write_all(request).unwrap();
    read_response(&mut stream, request.starts_with(b"HEAD "))
}

/// `GET target` with extra header lines.
pub fn get(server: &TestServer, target: &str, extra: &str) -> HttpResponse {
    raw_request(
        server,
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").as_bytes(),
    )
}

/// True when the server has closed `stream` (EOF or reset) within [`PATIENCE`].
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A valid upgrade request for `path` with the RFC's example key.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A masked client frame (as RFC 6455 section 5.3 requires of clients).
pub fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![(u8::from(fin) << 7) | opcode];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wschat-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn write(&self, rel: &str, contents: &[u8]) -> std::path::PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `wschat` binary running on a free port, its stderr lines collected as they come.
pub struct Binary {
    pub addr: SocketAddr,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line received so far.
    pub seen: Vec<String>,
}

impl Binary {
    /// Starts `wschat --addr 127.0.0.1:0 ARGS` and waits for its `listening on` line. History
    /// stays in memory unless ARGS name a `--data` directory.
    pub fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let keep = match args.contains(&"--data") {
            true => None,
            false => Some("--ephemeral"),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .args(["--addr", "127.0.0.1:0"])
            .args(keep)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/\n"))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Binary {
            addr,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Waits (at most [`PATIENCE`]) for a stderr line containing every one of `parts`.
    pub fn wait_for_log(&mut self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        if let Some(line) = self
            .seen
            .iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if parts.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {parts:?}; log so far: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
