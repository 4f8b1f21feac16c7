use super::*;
use crate::inspect::dissect::{Direction, Dissector};

const RFC_HEAD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The (text, item, status) of every line, read back from the verdicts.
fn verdicts(head: &str, origins: &[String]) -> Vec<(String, &'static str, &'static str)> {
    let request = match parse_head(head.as_bytes()).unwrap() {
        Parsed::Complete { request, .. } => request,
        Parsed::Partial => panic!("partial"),
    };
    let verdict = handshake::check_upgrade(&request, origins).map(drop);
    head.split("\r\n")
        .take_while(|line| !line.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v = verdict_for(line.as_bytes(), i == 0, verdict, !origins.is_empty());
            (line.to_string(), v.item, v.status)
        })
        .collect()
}

#[test]
fn the_rfc_request_passes_item_by_item() {
    let got = verdicts(RFC_HEAD, &[]);
    let items: Vec<(&str, &str)> = got.iter().map(|(_, i, s)| (*i, *s)).collect();
    assert_eq!(
        items,
        [
            ("1", "passed"),
            ("2", "passed"),
            ("3", "passed"),
            ("4", "passed"),
            ("5", "passed"),
            ("7", "optional"),
            ("8", "declined"),
            ("6", "passed"),
        ]
    );
    let allowed = ["http://example.com".to_string()];
    assert!(verdicts(RFC_HEAD, &allowed).contains(&(
        "Origin: http://example.com".into(),
        "7",
        "passed"
    )));
}

#[test]
fn a_failed_check_marks_its_line_and_leaves_the_later_ones_unchecked() {
    let head = RFC_HEAD.replace("Connection: Upgrade", "Connection: keep-alive");
    let got = verdicts(&head, &[]);
    let status = |prefix: &str| {
        got.iter()
            .find(|(l, _, _)| l.starts_with(prefix))
            .unwrap()
            .2
    };
    assert_eq!(status("GET"), "passed");
    assert_eq!(status("Upgrade:"), "passed");
    assert_eq!(status("Connection:"), "failed");
    assert_eq!(status("Sec-WebSocket-Key:"), "unchecked");
    assert_eq!(status("Sec-WebSocket-Version:"), "unchecked");

    let head = RFC_HEAD.replace("Version: 13", "Version: 8");
    let got = verdicts(&head, &[]);
    assert!(got.contains(&("Sec-WebSocket-Version: 8".into(), "6", "failed")));
    assert!(got.contains(&(
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".into(),
        "5",
        "passed"
    )));

    let allowed = ["https://chat.example".to_string()];
    let got = verdicts(RFC_HEAD, &allowed);
    assert!(got.contains(&("Origin: http://example.com".into(), "7", "failed")));
}

#[test]
fn every_rejection_has_its_check() {
    use Rejection::*;
    let all = [
        NotGet,
        HttpTooOld,
        MissingHost,
        NotWebSocketUpgrade,
        ConnectionNotUpgrade,
        BadKey,
        DuplicateKey,
        MissingVersion,
        UnsupportedVersion,
        OriginNotAllowed,
        BodyOnUpgrade,
    ];
    // check_upgrade's order, which the statuses rely on.
    let checks: Vec<Check> = all.iter().map(|r| Check::of(*r)).collect();
    assert!(checks.windows(2).all(|w| w[0] <= w[1]), "{checks:?}");
}

#[test]
fn the_handshake_report_shows_each_step_of_the_accept_value() {
    let reply = handshake::switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=").head();
    let json = handshake(&marker("n0"), RFC_HEAD.as_bytes(), &reply, &[]);
    assert!(json.starts_with(r#"{"inspect":"n0","type":"handshake","bytes":230,"lines":[{"text":"GET /chat HTTP/1.1","end":"\r\n","item":"1""#), "{json}");
    for part in [
        r#""key":"dGhlIHNhbXBsZSBub25jZQ==""#,
        r#""keyGuid":"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11""#,
        // RFC 6455 section 1.3 and the README.
        r#""sha1":"b37a4f2cc0624f1690f64606cf385945b2bec4ea""#,
        r#""accept":"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=""#,
        r#""reply":"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n""#,
        r#"{"text":"","end":"\r\n","item":"","rule":"","status":"","note":""}]"#,
        r#""forwarded":[]"#,
    ] {
        assert!(json.contains(part), "{part} missing from {json}");
    }
}

#[test]
fn proxy_headers_are_listed_and_lines_keep_their_case_and_endings() {
    let head = RFC_HEAD.replace(
        "Host: server.example.com\r\n",
        "hOsT: server.example.com\nX-Forwarded-For: 203.0.113.7\r\nVia: 1.1 proxy\r\n",
    );
    let json = handshake(&marker("n"), head.as_bytes(), "", &[]);
    assert!(
        json.contains(r#"{"text":"hOsT: server.example.com","end":"\n","item":"2""#),
        "{json}"
    );
    assert!(
        json.contains(r#""forwarded":["X-Forwarded-For: 203.0.113.7","Via: 1.1 proxy"]"#),
        "{json}"
    );
}

#[test]
fn a_frame_report_carries_every_field() {
    let mut done = Vec::new();
    Dissector::new(Direction::FromClient).feed(
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        &mut done,
    );
    assert_eq!(
        frames(&marker("n"), "in", 3, &done),
        concat!(
            r#"{"inspect":"n","type":"frames","dir":"in","frames":[{"n":3,"head":"818537fa213d","#,
            r#""fin":true,"rsv1":false,"rsv2":false,"rsv3":false,"opcode":1,"op":"text","masked":true,"#,
            r#""mask":"37fa213d","len":"5","lenBits":7,"total":"11","wire":"7f9f4d5158","#,
            r#""payload":"48656c6c6f","cut":false,"text":"Hello","notes":[]}]}"#
        )
    );
    let mut done = Vec::new();
    let close = [0x88, 0x05, 0x03, 0xe8, b'<', b'&', b'>'];
    Dissector::new(Direction::FromClient).feed(&close, &mut done);
    let json = frames(&marker("n"), "in", 1, &done);
    assert!(json.contains(r#""text":"\u003c\u0026\u003e","closeCode":1000,"notes":["not masked: a client MUST mask every frame (5.1)"]"#), "{json}");
}
