//! The upgrade over real sockets: one test per rejection, the accept value checked by an
//! independent client, a first frame in the same packet, and a head dribbled in pieces.

mod support;

use std::io::{Read, Write};
use support::*;
use tungstenite::Message;

fn upgrade_with(server: &TestServer, edit: impl FnOnce(String) -> String) -> HttpResponse {
    raw_request(server, edit(upgrade_request("/chat")).as_bytes())
}

#[test]
fn rfc_example_key_gets_the_rfc_accept_value() {
    let server = TestServer::start();
    let response = raw_request(&server, upgrade_request("/echo").as_bytes());
    assert_eq!(response.status, 101);
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(response.header("upgrade"), Some("websocket"));
    assert_eq!(response.header("connection"), Some("Upgrade"));
}

#[test]
fn an_independent_client_accepts_our_handshake() {
    // tungstenite's client generates a random key and verifies Sec-WebSocket-Accept with its
    // own SHA-1 and base64 code; a wrong value fails the upgrade.
    let server = TestServer::start();
    for _ in 0..5 {
        let mut ws = server.ws("/echo");
        ws.send(Message::text("ping")).unwrap();
        assert_eq!(next_text(&mut ws), "ping");
    }
}

#[test]
fn not_get_is_405_with_allow() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| r.replacen("GET", "POST", 1));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn http_1_0_is_400() {
    let server = TestServer::start();
    assert_eq!(
        upgrade_with(&server, |r| r.replace("HTTP/1.1", "HTTP/1.0")).status,
        400
    );
}

#[test]
fn missing_host_is_400() {
    let server = TestServer::start();
    assert_eq!(
        upgrade_with(&server, |r| r.replace("Host: test\r\n", "")).status,
        400
    );
}

#[test]
fn plain_get_to_a_websocket_endpoint_is_426() {
    let server = TestServer::start();
    for path in ["/chat", "/echo"] {
        let r = get(&server, path, "");
        assert_eq!(r.status, 426, "{path}");
        assert_eq!(r.header("upgrade"), Some("websocket"));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.text().contains("WebSocket"));
    }
}

#[test]
fn connection_without_upgrade_token_is_400() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| {
        r.replace("Connection: Upgrade", "Connection: keep-alive")
    });
    assert_eq!(r.status, 400);
    // A substring is not a token.
    let r = upgrade_with(&server, |r| {
        r.replace("Connection: Upgrade", "Connection: Upgraded")
    });
    assert_eq!(r.status, 400);
}

#[test]
fn token_lists_are_case_insensitive() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| {
        r.replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE")
            .replace("Upgrade: websocket", "Upgrade: WebSocket")
    });
    assert_eq!(r.status, 101);
}

#[test]
fn bad_keys_are_400() {
    let server = TestServer::start();
    for key in [
        "",
        "short",
        "dGhlIHNhbXBsZQ==",
        "!!!!!!!!!!!!!!!!!!!!!!!!",
        "dGhlIHNhbXBsZSBub25jZSEh",
    ] {
        let r = upgrade_with(&server, |r| r.replace("dGhlIHNhbXBsZSBub25jZQ==", key));
        assert_eq!(r.status, 400, "key {key:?}");
    }
    let r = upgrade_with(&server, |r| {
        r.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")
    });
    assert_eq!(r.status, 400);
}

#[test]
fn duplicate_key_is_400() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| {
        r.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
        )
    });
    assert_eq!(r.status, 400);
}

#[test]
fn missing_version_is_400_and_another_version_is_426() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| r.replace("Sec-WebSocket-Version: 13\r\n", ""));
    assert_eq!(r.status, 400);
    let r = upgrade_with(&server, |r| r.replace("Version: 13", "Version: 8"));
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
}

#[test]
fn body_or_transfer_encoding_on_the_upgrade_is_400() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| {
        r.replace("\r\n\r\n", "\r\nContent-Length: 4\r\n\r\nabcd")
    });
    assert_eq!(r.status, 400);
    let r = upgrade_with(&server, |r| {
        r.replace("\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n")
    });
    assert_eq!(r.status, 400);
}

fn with_origin(server: &TestServer, origins: &[&str]) -> HttpResponse {
    let lines: String = origins.iter().map(|o| format!("Origin: {o}\r\n")).collect();
    upgrade_with(server, |r| {
        r.replace("\r\n\r\n", &format!("\r\n{lines}\r\n"))
    })
}

#[test]
fn same_origin_by_default() {
    // The requests say `Host: test`.
    let server = TestServer::start();
    assert_eq!(
        with_origin(&server, &[]).status,
        101,
        "no Origin: not a browser"
    );
    for own in [
        "http://test",
        "https://test",
        "HTTPS://TEST:443",
        "http://test:80",
    ] {
        assert_eq!(with_origin(&server, &[own]).status, 101, "{own}");
    }
    for other in [
        "https://evil.example",
        "http://test:8080",
        "https://test.evil.example",
        "null",
        "http://test/",
    ] {
        let r = with_origin(&server, &[other]);
        assert_eq!(r.status, 403, "{other}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.text().contains("Origin"), "{}", r.text());
    }
    assert_eq!(
        with_origin(&server, &["http://test", "http://test"]).status,
        403
    );
}

#[test]
fn any_origin_with_a_star() {
    let server = TestServer::with(|c| c.allowed_origins = vec!["*".into()]);
    assert_eq!(with_origin(&server, &["https://evil.example"]).status, 101);
    assert_eq!(with_origin(&server, &["null"]).status, 101);
    let twice = with_origin(&server, &["https://a.example", "https://b.example"]);
    assert_eq!(twice.status, 403, "two Origin headers are never a browser");
}

#[test]
fn origin_allow_list() {
    let server = TestServer::with(|c| c.allowed_origins = vec!["https://chat.example".into()]);
    let r = upgrade_with(&server, |r| {
        r.replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n")
    });
    assert_eq!(r.status, 403);
    let r = upgrade_with(&server, |r| {
        r.replace("\r\n\r\n", "\r\nOrigin: https://chat.example\r\n\r\n")
    });
    assert_eq!(r.status, 101); // The server's own origin still works next to the list.
    assert_eq!(with_origin(&server, &["http://test"]).status, 101);
}

#[test]
fn extensions_and_subprotocols_are_declined_not_refused() {
    let server = TestServer::start();
    let r = upgrade_with(&server, |r| {
        r.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n",
        )
    });
    assert_eq!(r.status, 101);
    assert_eq!(r.header("sec-websocket-extensions"), None);
    assert_eq!(r.header("sec-websocket-protocol"), None);
}

#[test]
fn a_frame_sent_with_the_request_is_not_lost() {
    let server = TestServer::start();
    let mut stream = server.connect();
    let mut bytes = upgrade_request("/echo").into_bytes();
    bytes.extend(client_frame(0x1, true, b"first"));
    stream.write_all(&bytes).unwrap(); // one write: head and frame in the same packet
    let response = read_response(&mut stream, true);
    assert_eq!(response.status, 101);
    let mut frame = [0u8; 7];
    stream.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x05first");
}

#[test]
fn a_request_dribbled_a_few_bytes_at_a_time_still_upgrades() {
    let server = TestServer::start();
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    let mut bytes = upgrade_request("/echo").into_bytes();
    bytes.extend(client_frame(0x1, true, b"slow"));
    for piece in bytes.chunks(3) {
        stream.write_all(piece).unwrap();
        stream.flush().unwrap();
    }
    assert_eq!(read_response(&mut stream, true).status, 101);
    let mut frame = [0u8; 6];
    stream.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x04slow");
}
