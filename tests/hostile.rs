//! Hostile input: the attacks in shared/PEERS.md and the frame-level violations of RFC 6455,
//! each replayed against the real server. After every attack a well-behaved member on another
//! connection can still chat.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;
use tungstenite::Message;

/// Upgrades a raw connection to `path` (joining the chat as `name` when given) and returns
/// the socket, ready for hand-made frames.
fn raw_ws(server: &TestServer, path: &str, name: Option<&str>) -> TcpStream {
    let mut stream = server.connect();
    stream.write_all(upgrade_request(path).as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream, true).status, 101);
    if let Some(name) = name {
        stream
            .write_all(&client_frame(0x1, true, name.as_bytes()))
            .unwrap();
    }
    stream
}

/// Reads server frames until a close frame; returns its code and reason. Panics on EOF first.
fn server_close(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    loop {
        let mut head = [0u8; 2];
        stream
            .read_exact(&mut head)
            .expect("connection ended without a close frame");
        assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                stream.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                stream.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        if head[0] & 0x0f == 0x8 {
            assert!((2..=125).contains(&len), "close payload of {len} bytes");
            return (
                u16::from_be_bytes([payload[0], payload[1]]),
                payload[2..].to_vec(),
            );
        }
    }
}

/// Sends `frames` on a fresh connection and expects the server to close with `code`.
fn expect_close(server: &TestServer, path: &str, frames: &[Vec<u8>], code: u16) {
    let mut stream = raw_ws(server, path, (path == "/chat").then_some("attacker"));
    for frame in frames {
        // The server may close before reading everything; a reset here is fine.
        if stream.write_all(frame).is_err() {
            break;
        }
    }
    let (got, reason) = server_close(&mut stream);
    assert_eq!(got, code, "reason: {}", String::from_utf8_lossy(&reason));
    assert!(std::str::from_utf8(&reason).is_ok());
}

/// The server runs in this test process, so the process's peak resident memory bounds what
/// any attack made the server allocate. The attacks here declare up to 2^63-byte frames and
/// send megabytes; a server that buffered them would blow far past this ceiling.
const PEAK_MEMORY_CEILING_KIB: u64 = 256 * 1024;

fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A good member still chats after the attack, and memory stayed bounded.
fn room_still_works(server: &TestServer) {
    let peak = peak_memory_kib();
    assert!(peak < PEAK_MEMORY_CEILING_KIB, "peak memory {peak} KiB");
    let mut a = server.join(&format!("a{}", rand_suffix()));
    let mut b = server.join(&format!("b{}", rand_suffix()));
    // Skip the backlog the attack may have left; then b's join arrives.
    while !next_text(&mut a).contains(r#""type":"join""#) {}
    b.send(Message::text("after the attack")).unwrap();
    assert!(next_text(&mut a).contains("after the attack"));
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn frame_header(first: u8, len_bytes: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    f.extend_from_slice(len_bytes);
    f.extend_from_slice(&[0, 0, 0, 0]); // mask key
    f
}

#[test]
fn frame_violations_get_1002() {
    let server = TestServer::start();
    let unmasked = b"\x81\x02hi".to_vec();
    let rsv1 = {
        let mut f = client_frame(0x1, true, b"x");
        f[0] |= 0x40;
        f
    };
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("unmasked frame", vec![unmasked]),
        ("reserved bit", vec![rsv1]),
        ("reserved data opcode", vec![client_frame(0x3, true, b"x")]),
        (
            "reserved control opcode",
            vec![client_frame(0xB, true, b"")],
        ),
        ("fragmented ping", vec![client_frame(0x9, false, b"x")]),
        (
            "ping over 125 bytes",
            vec![client_frame(0x9, true, &[0u8; 126])],
        ),
        (
            "continuation without a start",
            vec![client_frame(0x0, true, b"x")],
        ),
        (
            "new message inside a fragmented one",
            vec![
                client_frame(0x1, false, b"a"),
                client_frame(0x1, true, b"b"),
            ],
        ),
        (
            "close code 1005 sent on the wire",
            vec![client_frame(0x8, true, &1005u16.to_be_bytes())],
        ),
        (
            "close code 999",
            vec![client_frame(0x8, true, &999u16.to_be_bytes())],
        ),
        (
            "close payload of one byte",
            vec![client_frame(0x8, true, &[3])],
        ),
    ];
    for (what, frames) in cases {
        for path in ["/echo", "/chat"] {
            let mut stream = raw_ws(&server, path, (path == "/chat").then_some("x"));
            for frame in &frames {
                let _ = stream.write_all(frame);
            }
            let (code, _) = server_close(&mut stream);
            assert_eq!(code, 1002, "{what} on {path}");
        }
    }
    room_still_works(&server);
}

#[test]
fn invalid_utf8_gets_1007() {
    let server = TestServer::start();
    expect_close(
        &server,
        "/echo",
        &[client_frame(0x1, true, b"\xff\xfe")],
        1007,
    );
    expect_close(
        &server,
        "/chat",
        &[client_frame(0x1, true, b"ok\xc3")],
        1007,
    );
    // In a fragmented message, and in a close reason.
    expect_close(
        &server,
        "/echo",
        &[
            client_frame(0x1, false, b"\xe2\x82"),
            client_frame(0x0, true, b"\xff"),
        ],
        1007,
    );
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"\xff");
    expect_close(&server, "/echo", &[client_frame(0x8, true, &close)], 1007);
    room_still_works(&server);
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    let server = TestServer::start();
    // RUSTSEC-2022-0035: a length near 2^63 and no body.
    expect_close(
        &server,
        "/echo",
        &[frame_header(
            0x82,
            &[0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        )],
        1009,
    );
    // The top bit set: a length RFC 6455 section 5.2 forbids outright, so a protocol error.
    expect_close(
        &server,
        "/echo",
        &[frame_header(0x82, &[0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0])],
        1002,
    );
    expect_close(
        &server,
        "/chat",
        &[frame_header(0x81, &[0xFE, 0x20, 0x00])],
        1009,
    ); // 8 KiB > 4 KiB
    room_still_works(&server);
}

#[test]
fn endless_one_byte_continuations_hit_the_size_cap() {
    // ws 8.21: FIN=0 then ~131k one-byte continuations, never finished.
    let server = TestServer::start();
    let mut frames = vec![client_frame(0x1, false, b"a")];
    frames.extend((0..131_000).map(|_| client_frame(0x0, false, b"a")));
    let all: Vec<u8> = frames.concat();
    expect_close(&server, "/chat", &[all], 1009);
    room_still_works(&server);
}

#[test]
fn fragment_lengths_that_add_up_past_the_cap_are_refused() {
    // gorilla CVE-2020-27813: fragment lengths that overflow a counter.
    let server = TestServer::with(|c| c.max_echo_message = 1 << 16);
    let frames = vec![
        client_frame(0x2, false, &[0u8; 40_000]),
        client_frame(0x0, false, &[0u8; 40_000]),
    ];
    expect_close(&server, "/echo", &frames, 1009);
    room_still_works(&server);
}

#[test]
fn close_reasons_are_at_most_123_bytes_of_utf8() {
    // ws 8.20.1: the close reason is sent exactly and fits a control frame.
    let server = TestServer::start();
    let mut stream = raw_ws(&server, "/chat", Some("bob"));
    stream
        .write_all(&client_frame(0x2, true, b"binary"))
        .unwrap();
    let (code, reason) = server_close(&mut stream);
    assert_eq!(code, 1003);
    assert!(reason.len() <= 123);
    assert_eq!(
        std::str::from_utf8(&reason).unwrap(),
        "the chat accepts text messages only"
    );
    room_still_works(&server);
}

#[test]
fn a_long_subprotocol_header_is_linear_and_limited() {
    // ws CVE-2021-32640: "b" + 30,000 spaces + "x".
    let server = TestServer::start();
    let started = Instant::now();
    let request = upgrade_request("/chat").replace(
        "\r\n\r\n",
        &format!(
            "\r\nSec-WebSocket-Protocol: b{}x\r\n\r\n",
            " ".repeat(30_000)
        ),
    );
    assert_eq!(raw_request(&server, request.as_bytes()).status, 431);
    // Within the head limit it is simply declined: we never parse the list.
    let request = upgrade_request("/chat").replace(
        "\r\n\r\n",
        &format!(
            "\r\nSec-WebSocket-Protocol: b{}x\r\n\r\n",
            " ".repeat(7_000)
        ),
    );
    let response = raw_request(&server, request.as_bytes());
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), None);
    assert!(started.elapsed() < Duration::from_secs(5));
    room_still_works(&server);
}

#[test]
fn an_unclosed_quoted_extension_parameter_is_harmless() {
    // faye websocket-extensions CVE-2020-7662.
    let server = TestServer::start();
    let request = upgrade_request("/echo").replace(
        "\r\n\r\n",
        &format!(
            "\r\nSec-WebSocket-Extensions: a; b=\"{}\r\n\r\n",
            "\\c".repeat(3000)
        ),
    );
    let response = raw_request(&server, request.as_bytes());
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-extensions"), None);
    room_still_works(&server);
}

#[test]
fn thousands_of_junk_headers_get_431() {
    // ws CVE-2024-37890: 2,000 headers before the upgrade headers.
    let server = TestServer::start();
    let mut request = String::from("GET /chat HTTP/1.1\r\n");
    for i in 0..2000 {
        request.push_str(&format!("a{i}: b\r\n"));
    }
    request.push_str(&upgrade_request("/chat")["GET /chat HTTP/1.1\r\n".len()..]);
    assert_eq!(raw_request(&server, request.as_bytes()).status, 431);
    room_still_works(&server);
}

#[test]
fn a_20_mb_header_gets_431_after_8_kib() {
    // tungstenite CVE-2023-43669.
    let server = TestServer::start();
    let mut stream = server.connect();
    stream.write_all(b"GET /chat HTTP/1.1\r\nX-Huge: ").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    // The server answers after 8 KiB and closes; our writes then fail. We never send 20 MB.
    for _ in 0..(20 * 1024 * 1024 / chunk.len()) {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        // Stop early once the reply has arrived.
        stream.set_nonblocking(true).unwrap();
        let mut peek = [0u8; 1];
        let arrived = matches!(stream.peek(&mut peek), Ok(1));
        stream.set_nonblocking(false).unwrap();
        if arrived {
            break;
        }
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"HTTP/1.1 431 "),
        "{:?}",
        String::from_utf8_lossy(&reply[..reply.len().min(60)])
    );
    room_still_works(&server);
}

#[test]
fn a_head_one_byte_per_packet_still_parses_in_bounded_time() {
    let server = TestServer::start();
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    let started = Instant::now();
    for byte in upgrade_request("/echo").bytes() {
        stream.write_all(&[byte]).unwrap();
    }
    assert_eq!(read_response(&mut stream, true).status, 101);
    assert!(started.elapsed() < Duration::from_secs(5));
    room_still_works(&server);
}

#[test]
fn handshake_smuggling_and_odd_targets() {
    let server = TestServer::start();
    let with = |edit: &dyn Fn(String) -> String| {
        raw_request(&server, edit(upgrade_request("/chat")).as_bytes()).status
    };
    assert_eq!(
        with(&|r| r.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"
        )),
        400
    );
    assert_eq!(
        with(&|r| r.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ")),
        400
    );
    assert_eq!(
        with(&|r| r.replace("\r\n\r\n", "\r\nContent-Length: 2\r\n\r\nhi")),
        400
    );
    assert_eq!(
        with(&|r| r.replace(
            "\r\n\r\n",
            "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )),
        400
    );
    assert_eq!(with(&|r| r.replace("HTTP/1.1", "HTTP/1.0")), 400);
    // Absolute-form is not routed to an endpoint: it is refused as a static path.
    assert_eq!(with(&|r| r.replacen("/chat", "http://test/chat", 1)), 400);
    let long = format!("/chat?{}", "a".repeat(9000));
    assert_eq!(with(&|r| r.replacen("/chat", &long, 1)), 431);
    room_still_works(&server);
}

#[test]
fn hostile_names() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let mut mallory = server.ws("/chat");
    // 10,000 characters is over the 4 KiB message cap: the connection closes with 1009.
    mallory.send(Message::text("n".repeat(10_000))).unwrap();
    assert_eq!(close_code(&mut mallory), 1009);
    let mut mallory = server.ws("/chat");
    for bad in [
        "n".repeat(33),
        "     ".into(),
        "\u{1}\u{2}".into(),
        "\u{7f}x".into(),
        "ALICE".into(),
        "Alice".into(),
        "\u{430}lice".into(),         // Cyrillic a
        "\u{FF41}\u{FF4C}ice".into(), // full-width a, l
        "al\u{200B}ice".into(),       // zero-width space
        "\u{202E}ecila".into(),       // right-to-left override
    ] {
        mallory.send(Message::text(bad.clone())).unwrap();
        let reply = next_text(&mut mallory);
        assert!(
            reply.starts_with(r#"{"type":"name-refused""#),
            "{bad:?}: {reply}"
        );
    }
    mallory.send(Message::text("mallory")).unwrap();
    assert!(next_text(&mut mallory).contains("welcome"));
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"mallory"}"#);
    room_still_works(&server);
}

#[test]
fn a_flood_from_one_member_is_cut_off_with_1008() {
    let server = TestServer::with(|c| c.rate_limit = 20);
    let mut alice = server.join("alice");
    let mut flooder = server.join("flooder");
    next_text(&mut alice);
    for i in 0..200 {
        if flooder.send(Message::text(format!("spam {i}"))).is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut flooder), 1008);
    // Alice got at most the 20 allowed, then the leave.
    let mut spam = 0;
    loop {
        let text = next_text(&mut alice);
        if text == r#"{"type":"leave","name":"flooder"}"# {
            break;
        }
        spam += 1;
    }
    assert!(spam <= 20, "{spam} messages got through");
    room_still_works(&server);
}

#[test]
fn joining_and_leaving_a_thousand_times_leaves_the_room_clean() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    for _ in 0..1000 {
        let mut churn = server.join("churn");
        churn.close(None).unwrap();
        // Wait for our own leave to be announced so the name is free for the next round.
        assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"churn"}"#);
        assert_eq!(next_text(&mut alice), r#"{"type":"leave","name":"churn"}"#);
    }
    room_still_works(&server);
}

#[test]
fn thousands_of_connections_at_once_get_a_clear_refusal() {
    // websocketd 0.5.0: thread exhaustion. With a cap of 50, connection 51 onward get 503.
    let server = TestServer::with(|c| c.max_connections = 50);
    let held: Vec<TcpStream> = (0..50).map(|_| server.connect()).collect();
    let mut refused = 0;
    for _ in 0..200 {
        if get(&server, "/", "").status == 503 {
            refused += 1;
        }
    }
    assert_eq!(refused, 200);
    drop(held);
    assert!((0..200).any(|_| get(&server, "/", "").status == 200));
    room_still_works(&server);
}
