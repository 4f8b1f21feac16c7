//! `--metrics-addr` over real sockets: every counter moves by exactly what a scripted session
//! did, as measured by its clients on the wire; the endpoint's refusals; off by default; the
//! binary's second line.
//!
//! The clients here speak WebSocket over plain sockets so that they can count every byte and
//! every data frame in each direction; those counts are what the server's counters must equal.
//! Counters are added once per read or per batch written, an instant after the bytes moved, so
//! the test scrapes until the numbers settle and then compares all of them at once.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::*;

/// Samples by series (`name{label="value"}`), from one scrape.
type Samples = BTreeMap<String, f64>;

/// `GET /metrics` on a connection of its own; checks the reply and the shape of the text.
fn scrape(addr: SocketAddr) -> Samples {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: monitor\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, false);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(closed_by_server(&mut stream), "one request per connection");
    parse(&response.text())
}

/// Parses the exposition, checking that every sample belongs to a family announced by a HELP
/// and a TYPE line, and that counters and only counters end in `_total`.
fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut helped = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "{line}");
            helped = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(helped.as_deref(), Some(name), "TYPE without HELP: {line}");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
            family = Some((name.to_string(), kind.to_string()));
        } else {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let name = series.split('{').next().unwrap();
            let (announced, _) = family.as_ref().expect("a sample before any TYPE");
            assert_eq!(name, announced, "sample outside its family: {line}");
            assert!(name.starts_with("wschat_"), "{line}");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "repeated series: {line}"
            );
        }
    }
    samples
}

/// Scrapes until every series in `expected` has its value, then returns that scrape; fails
/// with the differences if they do not settle within [`PATIENCE`].
fn settle(addr: SocketAddr, expected: &Samples) -> Samples {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = scrape(addr);
        let differ: Vec<String> = expected
            .iter()
            .filter(|(series, value)| got.get(*series) != Some(value))
            .map(|(series, value)| format!("{series}: expected {value}, got {:?}", got.get(series)))
            .collect();
        if differ.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "metrics differ:\n{}",
            differ.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The series that count events: everything but the build, the start time and the gauges.
fn counters(samples: &Samples) -> Samples {
    samples
        .iter()
        .filter(|(series, _)| series.split('{').next().unwrap().ends_with("_total"))
        .map(|(s, v)| (s.clone(), *v))
        .collect()
}

/// A WebSocket client over a plain socket that counts what crosses the wire after the upgrade.
struct Client {
    stream: TcpStream,
    /// Bytes written after the upgrade request.
    wrote: u64,
    /// Bytes read after the `101` reply.
    read: u64,
    /// Text and binary frames read.
    data_frames: u64,
}

impl Client {
    fn open(server: &TestServer, path: &str) -> Client {
        let mut stream = server.connect();
        stream.write_all(upgrade_request(path).as_bytes()).unwrap();
        assert_eq!(read_response(&mut stream, true).status, 101);
        Client {
            stream,
            wrote: 0,
            read: 0,
            data_frames: 0,
        }
    }

    /// Joins the chat room at `path` as `name` and reads the welcome.
    fn join(server: &TestServer, path: &str, name: &str) -> Client {
        let mut client = Client::open(server, path);
        client.send(0x1, name.as_bytes());
        let welcome = client.next_text();
        assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
        client
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.wrote += bytes.len() as u64;
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(&client_frame(opcode, true, payload));
    }

    /// Fills `buf`; false at the end of the stream before any byte of it.
    fn fill(&mut self, buf: &mut [u8]) -> bool {
        let mut at = 0;
        while at < buf.len() {
            match self.stream.read(&mut buf[at..]) {
                Ok(0) if at == 0 => return false,
                Ok(0) => panic!("the stream ended inside a frame"),
                Ok(n) => at += n,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        self.read += buf.len() as u64;
        true
    }

    /// The next frame (opcode, payload); `None` at the end of the stream.
    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        if !self.fill(&mut head) {
            return None;
        }
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0u8; 2];
                assert!(self.fill(&mut ext));
                u64::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                assert!(self.fill(&mut ext));
                u64::from_be_bytes(ext)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        assert!(payload.is_empty() || self.fill(&mut payload));
        let opcode = head[0] & 0x0F;
        if matches!(opcode, 0x1 | 0x2) {
            self.data_frames += 1;
        }
        Some((opcode, payload))
    }

    fn next_text(&mut self) -> String {
        match self.next_frame() {
            Some((0x1, text)) => String::from_utf8(text).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next chat message's text, skipping presence notices.
    fn next_message(&mut self) -> String {
        loop {
            let event = self.next_text();
            if event.starts_with(r#"{"type":"message""#) {
                return event;
            }
        }
    }

    /// Reads to the end of the stream, answering the server's close frame (and closing this
    /// side) if `answer`; returns the code of the server's close frame.
    fn finish(&mut self, answer: bool) -> u16 {
        let mut code = None;
        while let Some((opcode, payload)) = self.next_frame() {
            if opcode == 0x8 {
                code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                if answer {
                    self.send(0x8, &payload[..2]);
                    self.stream.shutdown(std::net::Shutdown::Write).unwrap();
                }
            }
        }
        code.expect("no close frame before the end of the stream")
    }

    /// Closes with 1000 and reads everything up to the server's answer and the end.
    fn close(&mut self) -> u16 {
        self.send(0x8, &1000u16.to_be_bytes());
        self.finish(false)
    }
}

fn series(name: &str, label: Option<(&str, &str)>) -> String {
    match label {
        Some((label, value)) => format!("{name}{{{label}=\"{value}\"}}"),
        None => name.to_string(),
    }
}

#[test]
fn every_counter_moves_by_exactly_what_a_scripted_session_did() {
    const N: usize = 7; // chat messages from alice
    const K: usize = 5; // echoed messages
    let server = TestServer::with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".into());
        // No pings: every frame on the wire is one this script caused.
        c.ping_interval = Duration::ZERO;
        c.max_echo_message = 1000;
    });
    let metrics = server.metrics.expect("a metrics listener");
    let before = scrape(metrics);
    assert!(!counters(&before).is_empty());
    for (series, value) in counters(&before) {
        assert_eq!(value, 0.0, "{series} before any traffic");
    }
    assert_eq!(before[r#"wschat_build_info{version="0.1.0"}"#], 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - before["wschat_start_time_seconds"]).abs() < 60.0);

    // Alice says N things to bob and carol.
    let mut alice = Client::join(&server, "/chat", "alice");
    let mut others = [
        Client::join(&server, "/chat", "bob"),
        Client::join(&server, "/chat", "carol"),
    ];
    for i in 0..N {
        alice.send(0x1, format!("message {i}").as_bytes());
    }
    for other in &mut others {
        for i in 0..N {
            let message = other.next_message();
            assert!(
                message.contains(&format!(r#""text":"message {i}""#)),
                "{message}"
            );
        }
    }
    let gauges = [
        ("wschat_connections", 3.0),
        ("wschat_websockets", 3.0),
        ("wschat_rooms", 1.0),
        ("wschat_members", 3.0),
    ];
    settle(metrics, &gauges.map(|(s, v)| (s.to_string(), v)).into());

    // K messages echoed, text and binary, then a normal close.
    let mut echo = Client::open(&server, "/echo");
    for i in 0..K {
        let opcode = if i % 2 == 0 { 0x1 } else { 0x2 };
        let payload = format!("echo {i} {}", "e".repeat(i * 100));
        echo.send(opcode, payload.as_bytes());
        assert_eq!(echo.next_frame(), Some((opcode, payload.into_bytes())));
    }
    assert_eq!(echo.close(), 1000);

    // A frame over --max-echo-message, refused from its header alone: 1009.
    let mut big = Client::open(&server, "/echo");
    let header = &client_frame(0x2, true, &[0; 1001])[..8];
    big.send_raw(header);
    assert_eq!(big.finish(true), 1009);

    // Two refused requests: a cross-origin upgrade and a malformed head.
    let cross = upgrade_request("/chat").replace(
        "Host: test\r\n",
        "Host: test\r\nOrigin: http://evil.example\r\n",
    );
    assert_eq!(raw_request(&server, cross.as_bytes()).status, 403);
    assert_eq!(
        raw_request(&server, b"GET / HTTP/1.1\r\nHost test\r\n\r\n").status,
        400
    );

    let [mut bob, mut carol] = others;
    for client in [&mut carol, &mut bob, &mut alice] {
        assert_eq!(client.close(), 1000);
    }

    let clients = [&alice, &bob, &carol, &echo, &big];
    let sum = |f: fn(&Client) -> u64| clients.iter().map(|c| f(c)).sum::<u64>() as f64;
    // What the clients saw must be what the script implies, at least: three welcomes, N
    // messages to each of two members, K echoes.
    assert!(sum(|c| c.data_frames) >= (3 + 2 * N + K) as f64);

    let mut expected = counters(&before);
    let mut set = |name: &str, label: Option<(&str, &str)>, value: f64| {
        let key = series(name, label);
        assert!(expected.contains_key(&key), "no series {key}");
        expected.insert(key, value);
    };
    set("wschat_connections_total", None, 7.0);
    set("wschat_messages_received_total", None, (3 + N + K) as f64);
    set("wschat_received_bytes_total", None, sum(|c| c.wrote));
    set("wschat_messages_sent_total", None, sum(|c| c.data_frames));
    set("wschat_sent_bytes_total", None, sum(|c| c.read));
    set("wschat_disconnects_total", Some(("code", "1000")), 4.0);
    set("wschat_disconnects_total", Some(("code", "1009")), 1.0);
    set(
        "wschat_handshake_failures_total",
        Some(("reason", "origin_not_allowed")),
        1.0,
    );
    set(
        "wschat_handshake_failures_total",
        Some(("reason", "malformed_request")),
        1.0,
    );
    for (gauge, value) in [
        ("wschat_connections", 0.0),
        ("wschat_websockets", 0.0),
        ("wschat_rooms", 1.0),
        ("wschat_members", 0.0),
    ] {
        expected.insert(gauge.to_string(), value);
    }
    let after = settle(metrics, &expected);
    // Nothing else counted anything: the counters are exactly the expected ones.
    assert_eq!(counters(&after).len(), counters(&before).len());
}

#[test]
fn rate_limits_and_full_queues_are_counted() {
    let server = TestServer::with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".into());
        c.ping_interval = Duration::ZERO;
        c.rate_limit = 1;
    });
    let metrics = server.metrics.unwrap();
    // One message per 10 s: the second of two sent at once is one too many.
    let mut flooder = Client::join(&server, "/chat/flood", "flooder");
    let mut two = client_frame(0x1, true, b"one");
    two.extend(client_frame(0x1, true, b"two"));
    flooder.send_raw(&two);
    assert_eq!(flooder.finish(true), 1008);
    let limited = [
        (series("wschat_rate_limited_total", None), 1.0),
        (
            series("wschat_disconnects_total", Some(("code", "1008"))),
            1.0,
        ),
        (series("wschat_messages_received_total", None), 3.0),
        (series("wschat_queue_overflows_total", None), 0.0),
        (
            series("wschat_received_bytes_total", None),
            flooder.wrote as f64,
        ),
    ];
    settle(metrics, &limited.into());

    let server = TestServer::with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".into());
        c.ping_interval = Duration::ZERO;
        c.queue_bytes = 64 * 1024;
        c.rate_limit = 0;
    });
    let metrics = server.metrics.unwrap();
    let mut stalled = Client::join(&server, "/chat", "stalled");
    let mut sender = Client::join(&server, "/chat", "sender");
    // The stalled member reads nothing more; the sender goes on until its queue overflows
    // (the socket buffers in between take some megabytes first).
    let text = "x".repeat(4000);
    let overflowed = series("wschat_queue_overflows_total", None);
    let mut sent = 0;
    while scrape(metrics)[&overflowed] == 0.0 {
        assert!(sent < 20_000, "no overflow after {sent} messages");
        for _ in 0..50 {
            sender.send(0x1, text.as_bytes());
            sent += 1;
        }
    }
    assert_eq!(stalled.finish(true), 1008);
    assert_eq!(sender.close(), 1000);
    let full = [
        (overflowed, 1.0),
        (series("wschat_rate_limited_total", None), 0.0),
        (
            series("wschat_disconnects_total", Some(("code", "1008"))),
            1.0,
        ),
        (
            series("wschat_disconnects_total", Some(("code", "1000"))),
            1.0,
        ),
        (
            series("wschat_messages_received_total", None),
            (2 + sent) as f64,
        ),
        (series("wschat_members", None), 0.0),
    ];
    settle(metrics, &full.into());
}

#[test]
fn the_endpoint_serves_only_get_and_head_of_metrics_and_counts_nothing_of_its_own() {
    let server = TestServer::with(|c| c.metrics_addr = Some("127.0.0.1:0".into()));
    let metrics = server.metrics.unwrap();
    let ask = |request: &[u8]| {
        let mut stream = TcpStream::connect(metrics).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(request).unwrap();
        let response = read_response(&mut stream, request.starts_with(b"HEAD"));
        assert!(closed_by_server(&mut stream));
        response
    };
    let head = ask(b"HEAD /metrics HTTP/1.1\r\nHost: m\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 1000
    );
    assert_eq!(ask(b"GET / HTTP/1.1\r\nHost: m\r\n\r\n").status, 404);
    assert_eq!(ask(b"GET /healthz HTTP/1.1\r\nHost: m\r\n\r\n").status, 404);
    let post = ask(b"POST /metrics HTTP/1.1\r\nHost: m\r\n\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(ask(b" GET /metrics HTTP/1.1\r\n\r\n").status, 400);
    // None of that was chat traffic.
    let after = scrape(metrics);
    assert_eq!(after["wschat_connections_total"], 0.0);
    for (series, value) in counters(&after) {
        assert_eq!(value, 0.0, "{series}");
    }
    // The chat port does not serve metrics.
    assert_eq!(get(&server, "/metrics", "").status, 404);
    // Stopping the server closes the metrics port too.
    server.stop();
    assert!(TcpStream::connect(metrics).is_err());
}

#[test]
fn metrics_are_off_by_default() {
    let config = wschat::Config {
        addr: "127.0.0.1:0".into(),
        // Tests never write to a default data directory.
        ephemeral: true,
        ..wschat::Config::default()
    };
    assert_eq!(config.metrics_addr, None);
    let server = wschat::Server::bind(config).unwrap();
    assert_eq!(server.metrics_addr().unwrap(), None);
}

#[test]
fn the_binary_prints_the_metrics_address_on_its_second_line() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wschat"))
        .args(["--addr", "127.0.0.1:0", "--ephemeral"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    let metrics: SocketAddr = second
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .parse()
        .unwrap();
    assert_ne!(metrics.port(), 0);
    let main: SocketAddr = first
        .trim_start_matches("listening on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_ne!(metrics, main);
    let samples = scrape(metrics);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(samples[r#"wschat_build_info{version="0.1.0"}"#], 1.0);
}
