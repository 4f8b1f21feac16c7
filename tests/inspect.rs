//! The inspector over real sockets: `/inspect/ws` with tungstenite's client (an independent
//! implementation of the framing and of the handshake), the reports it sends, the stash after
//! the close, its limits, and the built-in page.

mod support;

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use checks::json::{parse_json, Json};
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::net::TcpStream;
use support::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role};
use tungstenite::{Message, WebSocket};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A connection to the inspector and what it has reported so far.
struct Inspected {
    ws: WebSocket<TcpStream>,
    nonce: String,
    handshake: Json,
    /// Every frame reported, in arrival order: (direction, frame object).
    frames: Vec<(String, Json)>,
    /// Messages that were not reports: the echoes.
    echoes: Vec<Message>,
    closing_answered: bool,
}

impl Inspected {
    fn new(mut ws: WebSocket<TcpStream>) -> Self {
        let first = match ws.read().expect("the first message") {
            Message::Text(text) => text.to_string(),
            other => panic!("the first message is {other:?}"),
        };
        let handshake = parse_json(&first).expect("the handshake report is JSON");
        assert_eq!(handshake.str("type"), Some("handshake"));
        let nonce = handshake.str("inspect").unwrap().to_string();
        Inspected {
            ws,
            nonce,
            handshake,
            frames: Vec::new(),
            echoes: Vec::new(),
            closing_answered: false,
        }
    }

    fn connect(server: &TestServer) -> Self {
        Inspected::new(server.ws("/inspect/ws"))
    }

    fn marker(&self) -> String {
        format!("{{\"inspect\":\"{}\"", self.nonce)
    }

    /// Sorts one message into reports and echoes.
    fn take(&mut self, message: Message) {
        match message {
            Message::Text(text) if text.starts_with(&self.marker()) => {
                let report = parse_json(&text).expect("a report is JSON");
                match report.str("type") {
                    Some("frames") => {
                        let dir = report.str("dir").unwrap().to_string();
                        let Some(Json::Array(frames)) = report.get("frames") else {
                            panic!("no frames in {text}");
                        };
                        for frame in frames {
                            self.frames.push((dir.clone(), frame.clone()));
                        }
                    }
                    Some("closing") => self.closing_answered = true,
                    other => panic!("report of type {other:?}"),
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => self.echoes.push(other),
        }
    }

    /// Reads until a frame going `dir` satisfies `want`, and returns it.
    fn wait_frame(&mut self, dir: &str, want: impl Fn(&Json) -> bool) -> Json {
        loop {
            if let Some((_, frame)) = self.frames.iter().find(|(d, f)| d == dir && want(f)) {
                return frame.clone();
            }
            let message = self.ws.read().expect("read while waiting for a report");
            self.take(message);
        }
    }
}

fn text_of(frame: &Json, field: &str) -> String {
    frame
        .str(field)
        .unwrap_or_else(|| panic!("no {field} in {frame:?}"))
        .to_string()
}

fn number(frame: &Json, field: &str) -> u64 {
    match frame.get(field) {
        Some(Json::Number(n)) => n.parse().unwrap(),
        other => panic!("{field} is {other:?}"),
    }
}

fn flag(frame: &Json, field: &str) -> bool {
    match frame.get(field) {
        Some(Json::Bool(b)) => *b,
        other => panic!("{field} is {other:?}"),
    }
}

/// The payload of a frame the client sent, checked to be masked: wire XOR key = payload.
fn unmasked(frame: &Json) -> Vec<u8> {
    assert!(flag(frame, "masked"), "a client frame is masked: {frame:?}");
    let key = unhex(&text_of(frame, "mask"));
    let wire = unhex(&text_of(frame, "wire"));
    let payload = unhex(&text_of(frame, "payload"));
    let xored: Vec<u8> = wire
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    assert_eq!(xored, payload, "masked XOR masking key = unmasked");
    payload
}

fn is(op: &'static str) -> impl Fn(&Json) -> bool {
    move |f| f.str("op") == Some(op)
}

#[test]
fn the_handshake_report_is_the_request_byte_for_byte() {
    let server = TestServer::start();
    // Odd case, a bare LF, headers in an unusual order, and two a proxy adds.
    let head = "GET /inspect/ws?from=test HTTP/1.1\r\nUser-Agent: inspect-test\r\nhost: test\r\n\
                UPGRADE: WebSocket\r\nConnection: keep-alive, Upgrade\nSec-WebSocket-Key: \
                dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: \
                203.0.113.9\r\nX-Forwarded-Proto: https\r\nSec-WebSocket-Extensions: \
                permessage-deflate\r\n\r\n";
    let mut stream = server.connect();
    stream.write_all(head.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "reply cut short");
        reply.push(byte[0]);
    }
    let inspected = Inspected::new(WebSocket::from_raw_socket(stream, Role::Client, None));
    let report = &inspected.handshake;

    let Some(Json::Array(lines)) = report.get("lines") else {
        panic!("no lines");
    };
    let rebuilt: String = lines
        .iter()
        .map(|l| text_of(l, "text") + &text_of(l, "end"))
        .collect();
    assert_eq!(rebuilt, head, "every byte, in order, case kept");
    assert_eq!(number(report, "bytes"), head.len() as u64);
    let verdicts: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| (text_of(l, "text"), text_of(l, "item"), text_of(l, "status")))
        .collect();
    let expect = |line: &str, item: &str, status: &str| {
        assert!(
            verdicts.contains(&(line.into(), item.into(), status.into())),
            "{line}: wanted item {item} {status}, have {verdicts:?}"
        );
    };
    expect("GET /inspect/ws?from=test HTTP/1.1", "1", "passed");
    expect("host: test", "2", "passed");
    expect("UPGRADE: WebSocket", "3", "passed");
    expect("Connection: keep-alive, Upgrade", "4", "passed");
    expect("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "5", "passed");
    expect("Sec-WebSocket-Version: 13", "6", "passed");
    expect(
        "Sec-WebSocket-Extensions: permessage-deflate",
        "9",
        "declined",
    );
    expect("User-Agent: inspect-test", "10", "");
    assert_eq!(
        report.get("forwarded"),
        Some(&Json::Array(vec![
            Json::String("X-Forwarded-For: 203.0.113.9".into()),
            Json::String("X-Forwarded-Proto: https".into()),
        ]))
    );

    // The accept value, step by step: the RFC 6455 section 1.3 example.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_eq!(report.str("key"), Some(key));
    assert_eq!(report.str("keyGuid"), Some(format!("{key}{GUID}").as_str()));
    assert_eq!(
        report.str("sha1"),
        Some("b37a4f2cc0624f1690f64606cf385945b2bec4ea")
    );
    assert_eq!(report.str("accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_eq!(
        report.str("reply").map(str::as_bytes),
        Some(&reply[..]),
        "the reply exactly as sent"
    );
}

#[test]
fn frames_both_ways_are_reported_as_on_the_wire() {
    let server = TestServer::start();
    let mut ins = Inspected::connect(&server);
    // tungstenite's client chose its key at random and checked our accept value with its own
    // SHA-1; the report shows that same computation.
    let key = ins.handshake.str("key").unwrap().to_string();
    let sha1 = Sha1::digest(format!("{key}{GUID}"));
    assert_eq!(ins.handshake.str("sha1"), Some(hex(&sha1).as_str()));

    ins.ws.send(Message::text("hello")).unwrap();
    let sent = ins.wait_frame("in", is("text"));
    assert_eq!(unmasked(&sent), b"hello");
    assert!(flag(&sent, "fin"));
    assert_eq!((number(&sent, "opcode"), number(&sent, "lenBits")), (1, 7));
    assert_eq!(text_of(&sent, "len"), "5");
    assert_eq!(
        text_of(&sent, "total"),
        "11",
        "2 header bytes, 4 of key, 5 of payload"
    );
    assert_eq!(text_of(&sent, "text"), "hello");
    let echo = ins.wait_frame("out", is("text"));
    assert!(!flag(&echo, "masked"), "a server does not mask");
    assert_eq!(text_of(&echo, "head"), "8105");
    assert_eq!(unhex(&text_of(&echo, "payload")), b"hello");

    // A ping from the client is answered with a pong carrying its payload.
    ins.ws.send(Message::Ping("are you there".into())).unwrap();
    let ping = ins.wait_frame("in", is("ping"));
    assert_eq!(unmasked(&ping), b"are you there");
    let pong = ins.wait_frame("out", is("pong"));
    assert_eq!(unhex(&text_of(&pong, "payload")), b"are you there");

    // The three length encodings, and a large payload cut to its first bytes.
    for (size, bits) in [(125usize, 7), (126, 16), (65536, 64)] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        ins.ws.send(Message::binary(data.clone())).unwrap();
        let len = size.to_string();
        let sent = ins.wait_frame("in", |f| f.str("len") == Some(len.as_str()));
        assert_eq!(
            number(&sent, "lenBits"),
            bits,
            "{size} bytes from the client"
        );
        assert_eq!(unmasked(&sent), data[..size.min(128)]);
        assert_eq!(flag(&sent, "cut"), size > 128);
        let echo = ins.wait_frame("out", |f| f.str("len") == Some(len.as_str()));
        assert_eq!(
            number(&echo, "lenBits"),
            bits,
            "{size} bytes from the server"
        );
    }

    // The echoes themselves arrived as ordinary messages, unchanged.
    while ins.echoes.len() < 4 {
        let message = ins.ws.read().unwrap();
        ins.take(message);
    }
    assert_eq!(ins.echoes[0], Message::text("hello"));
    // No report describes a report, and the frames are numbered from 1 without gaps.
    let marker = hex(ins.marker().as_bytes());
    for dir in ["in", "out"] {
        let numbers: Vec<u64> = ins
            .frames
            .iter()
            .filter(|(d, _)| d == dir)
            .map(|(_, f)| number(f, "n"))
            .collect();
        assert_eq!(
            numbers,
            (1..=numbers.len() as u64).collect::<Vec<_>>(),
            "{dir}"
        );
    }
    assert!(ins
        .frames
        .iter()
        .all(|(_, f)| !text_of(f, "payload").starts_with(&marker)));
}

#[test]
fn a_visitor_sees_only_their_own_connection() {
    let server = TestServer::start();
    let mut a = Inspected::connect(&server);
    let mut b = Inspected::connect(&server);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.handshake.str("key"), b.handshake.str("key"));
    a.ws.send(Message::text("only a says this")).unwrap();
    b.ws.send(Message::text("only b says this")).unwrap();
    a.wait_frame("out", is("text"));
    b.wait_frame("out", is("text"));
    a.ws.send(Message::text("a again")).unwrap();
    let again = hex(b"a again");
    a.wait_frame("out", |f| f.str("payload") == Some(again.as_str()));
    let from = |ins: &Inspected, text: &[u8]| {
        let text = hex(text);
        ins.frames
            .iter()
            .any(|(_, f)| text_of(f, "payload").contains(&text))
    };
    assert!(from(&a, b"only a") && !from(&a, b"only b"));
    assert!(from(&b, b"only b") && !from(&b, b"only a"));
}

#[test]
fn the_close_frames_are_fetched_after_the_close() {
    let server = TestServer::start();
    let mut ins = Inspected::connect(&server);
    // The page announces its close; once answered, every earlier report has arrived.
    let notice = format!("{{\"closing\":\"{}\"}}", ins.nonce);
    ins.ws.send(Message::text(notice.clone())).unwrap();
    while !ins.closing_answered {
        let message = ins.ws.read().unwrap();
        ins.take(message);
    }
    let reported = ins.wait_frame("in", is("text"));
    assert_eq!(unmasked(&reported), notice.as_bytes());
    ins.ws
        .close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "see you".into(),
        }))
        .unwrap();
    // Until the server's close frame and the end of the connection.
    loop {
        match ins.ws.read() {
            Ok(message) => ins.take(message),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the close handshake failed: {e}"),
        }
    }
    assert!(
        ins.frames.iter().all(|(_, f)| f.str("op") != Some("close")),
        "nothing is reported over the connection after the close"
    );

    let fetched = get(
        &server,
        &format!("/inspect/after-close?n={}", ins.nonce),
        "",
    );
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("content-type"), Some("application/json"));
    assert_eq!(fetched.header("cache-control"), Some("no-store"));
    let Json::Array(reports) = parse_json(&fetched.text()).unwrap() else {
        panic!("not an array: {}", fetched.text());
    };
    for report in reports {
        assert_eq!(report.str("inspect"), Some(ins.nonce.as_str()));
        let dir = report.str("dir").unwrap().to_string();
        if let Some(Json::Array(frames)) = report.get("frames") {
            ins.frames
                .extend(frames.iter().map(|f| (dir.clone(), f.clone())));
        }
    }
    let close = ins.wait_frame("in", is("close"));
    assert_eq!(number(&close, "closeCode"), 4000);
    assert_eq!(text_of(&close, "text"), "see you");
    assert_eq!(unmasked(&close), [&[0x0f, 0xa0][..], b"see you"].concat());
    let answer = ins.wait_frame("out", is("close"));
    assert_eq!(
        number(&answer, "closeCode"),
        4000,
        "the server echoes the code"
    );
    assert!(!flag(&answer, "masked"));
    // Fetched once only.
    let again = get(
        &server,
        &format!("/inspect/after-close?n={}", ins.nonce),
        "",
    );
    assert_eq!(again.status, 404);
}

#[test]
fn a_close_of_the_servers_own_is_fetched_too() {
    let server = TestServer::start();
    let mut ins = Inspected::connect(&server);
    // An unmasked frame breaks RFC 6455 section 5.1: the server closes with 1002.
    ins.ws
        .get_mut()
        .write_all(&[0x81, 0x02, b'n', b'o'])
        .unwrap();
    let bad = ins.wait_frame("in", is("text"));
    assert!(!flag(&bad, "masked"));
    let Some(Json::Array(notes)) = bad.get("notes") else {
        panic!("no notes");
    };
    assert!(
        matches!(&notes[..], [Json::String(note)] if note.contains("MUST mask")),
        "{notes:?}"
    );
    assert_eq!(close_code(&mut ins.ws), 1002);
    drop(ins.ws);
    let fetched = get(
        &server,
        &format!("/inspect/after-close?n={}", ins.nonce),
        "",
    );
    assert_eq!(fetched.status, 200);
    assert!(
        fetched.text().contains(r#""op":"close","#)
            && fetched.text().contains(r#""closeCode":1002"#),
        "{}",
        fetched.text()
    );
}

#[test]
fn limits_and_heartbeat_are_those_of_echo() {
    let server = TestServer::with(|config| {
        config.max_echo_message = 1000;
        config.ping_interval = std::time::Duration::from_secs(1);
    });
    let mut ins = Inspected::connect(&server);
    // The heartbeat pings the inspector's visitors too; the ping and the pong are reported.
    ins.wait_frame("out", is("ping"));
    ins.wait_frame("in", is("pong"));
    ins.ws.send(Message::binary(vec![0u8; 1001])).unwrap();
    assert_eq!(close_code(&mut ins.ws), 1009);
}

#[test]
fn the_page_is_built_in_even_with_a_root() {
    let root = TempDir::new("inspect-root");
    root.write("index.html", b"<p>my own site</p>");
    let server = TestServer::with(|config| config.root = Some(root.0.clone()));
    let page = get(&server, "/inspect", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page
        .text()
        .contains(r#"<script src="/inspect/app.js" defer>"#));
    let script = get(&server, "/inspect/app.js", "");
    assert_eq!(script.status, 200);
    assert!(script.text().contains("/inspect/ws"));
    assert_eq!(get(&server, "/inspect/style.css", "").status, 200);
    assert_eq!(get(&server, "/inspect/", "").text(), page.text());
    assert_eq!(get(&server, "/inspect/nothing.js", "").status, 404);
    assert_eq!(get(&server, "/", "").text(), "<p>my own site</p>");
    // The socket is a WebSocket endpoint like the others; the stash answers GET only.
    assert_eq!(get(&server, "/inspect/ws", "").status, 426);
    assert_eq!(
        get(&server, "/inspect/after-close?n=0123456789abcdef", "").status,
        404
    );
    let head = raw_request(
        &server,
        b"HEAD /inspect/after-close?n=0123456789abcdef HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    assert_eq!(head.status, 405);
}

#[test]
fn the_chat_page_links_to_the_inspector() {
    let server = TestServer::start();
    assert!(get(&server, "/", "")
        .text()
        .contains(r#"<a class="nav" href="/inspect">"#));
}

#[test]
fn a_message_larger_than_the_queue_bound_is_echoed_and_reported() {
    // The echo is the visitor's own frame, bounded by its writer waiting; the reports on it
    // come after and must not find the queue "full" of it.
    let server = TestServer::start();
    let mut ins = Inspected::connect(&server);
    let size = 2 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    ins.ws.send(Message::binary(data.clone())).unwrap();
    let len = size.to_string();
    ins.wait_frame("out", |f| f.str("len") == Some(len.as_str()));
    while ins.echoes.is_empty() {
        let message = ins.ws.read().unwrap();
        ins.take(message);
    }
    assert_eq!(ins.echoes[0], Message::binary(data));
    ins.ws.send(Message::text("still here")).unwrap();
    while ins.echoes.len() < 2 {
        let message = ins.ws.read().unwrap();
        ins.take(message);
    }
    assert_eq!(ins.echoes[1], Message::text("still here"));
}
