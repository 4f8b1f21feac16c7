//! Our close code reaches a client that is still sending (issue 11, fault 2): after its close
//! frame the server stops sending and lingers, reading and discarding, until the client closes
//! too, instead of shutting the socket into the client's late bytes (which makes the kernel
//! answer with a reset that destroys the close frame before the client reads it).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use support::*;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Message, WebSocket};

const RUNS: usize = 20;

/// Reads until the close frame and returns its code; any error on the way (a reset) fails.
fn close_code_after_sending(ws: &mut WebSocket<TcpStream>, what: &str) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return u16::from(frame.code),
            Ok(Message::Close(None)) => panic!("{what}: a close frame without a code"),
            Ok(_) => continue,
            Err(e) => panic!("{what}: no close frame, the connection ended with {e}"),
        }
    }
}

#[test]
fn a_client_streaming_an_oversize_message_receives_1009() {
    const MAX: usize = 1 << 20;
    let server = TestServer::with(|c| c.max_echo_message = MAX);
    for run in 0..RUNS {
        let mut ws = server.ws("/echo");
        // The server refuses the frame from its header; the client goes on writing its
        // payload, all of which must be taken without a reset.
        ws.send(Message::binary(vec![7u8; MAX + 1]))
            .unwrap_or_else(|e| panic!("run {run}: sending failed: {e}"));
        let code = close_code_after_sending(&mut ws, &format!("run {run}"));
        assert_eq!(code, 1009, "run {run}");
    }
}

#[test]
fn a_client_flooding_the_chat_receives_1008() {
    let server = TestServer::with(|c| c.rate_limit = 5);
    let text = "x".repeat(2000);
    for run in 0..RUNS {
        let mut ws = server.join(&format!("flood{run}"));
        // Far past the limit, and 600 KB still arriving after the close.
        for i in 0..300 {
            ws.send(Message::text(format!("{i} {text}")))
                .unwrap_or_else(|e| panic!("run {run}: message {i} failed: {e}"));
        }
        let code = close_code_after_sending(&mut ws, &format!("run {run}"));
        assert_eq!(code, 1008, "run {run}");
    }
}

#[test]
fn a_client_sending_invalid_utf8_and_more_receives_1007() {
    let server = TestServer::start();
    for run in 0..RUNS {
        let mut ws = server.ws("/echo");
        let bad = Frame::message(vec![b'a', 0xFF, b'b'], OpCode::Data(Data::Text), true);
        ws.write(Message::Frame(bad)).unwrap();
        // 2 MiB more behind it, which the server reads and discards.
        for _ in 0..2 {
            ws.send(Message::binary(vec![1u8; 1 << 20]))
                .unwrap_or_else(|e| panic!("run {run}: sending failed: {e}"));
        }
        let code = close_code_after_sending(&mut ws, &format!("run {run}"));
        assert_eq!(code, 1007, "run {run}");
    }
}

#[test]
fn a_peer_that_never_answers_the_close_is_dropped_after_the_linger_time() {
    let server = TestServer::with(|c| c.max_chat_message = 100);
    let since = wschat::internals::log::capture::mark();
    let mut silent = server.connect();
    let me = silent.local_addr().unwrap().to_string();
    silent
        .write_all(upgrade_request("/chat").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut silent, true).status, 101);
    // A frame over the limit: 1009. The peer reads the close frame and the FIN after it, and
    // then neither answers nor closes.
    silent
        .write_all(&client_frame(0x1, true, &[b'x'; 200]))
        .unwrap();
    let mut got = Vec::new();
    silent.read_to_end(&mut got).unwrap();
    assert_eq!(got[..4], [0x88, got[1], 0x03, 0xF1], "a 1009 close frame");
    // The session ends once the linger time is over, not at the idle limit (three pings).
    let ended = wait_for_log(since, &[&me, "closed 1009"]);
    let seconds: f64 = ended
        .rsplit_once(" after ")
        .and_then(|(_, s)| s.trim_end().strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {ended:?}"));
    assert!((1.5..5.0).contains(&seconds), "{ended}");
    drop(silent);
}
