//! Fuzz check `inspect`: the inspector's frame dissector, and a whole inspector session, on
//! arbitrary bytes. A child module of `checks.rs` (it uses its frame parser, JSON parser and
//! in-memory outboxes); kept in its own file.
//!
//! The first input byte picks the mode. Even: the bytes go to `Dissector` as client bytes and
//! as server bytes, whole and in pieces, and every record is checked against tungstenite's
//! own header parser (an independent implementation of RFC 6455 section 5.2) and against the
//! bytes themselves. Odd: the bytes are what a client sends after upgrading to `/inspect/ws`,
//! through `inspect::Tap` and `session::run` over a `MemoryTransport`, and the server's output
//! must be valid frames whose reports describe exactly the other frames, in order.

use std::io::Cursor;
use std::sync::Arc;

use tungstenite::error::{Error as WsError, ProtocolError};
use tungstenite::protocol::frame::FrameHeader;
use wschat::internals::http::Response;
use wschat::internals::inspect::dissect::{Direction, Dissector, FrameRecord, SHOWN};
use wschat::internals::inspect::{stash, Tap};
use wschat::internals::outbox::{Outbox, QueueLimits};
use wschat::internals::rooms::Rooms;
use wschat::internals::session::{self, Endpoint, SessionConfig};
use wschat::internals::transport::{MemoryTransport, Transport};

use super::frames::{parse_server_output, WsMessage};
use super::hex;
use super::json::{parse_json, Json};
use super::memory_outbox::{peer, wait_idle, writers};

/// Checks one input; see the module docs.
pub fn check_inspect(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        check_dissector(selector >> 1, rest);
    } else {
        check_tap(selector >> 1, rest);
    }
}

// ---------------------------------------------------------------------------------------------
// The dissector alone
// ---------------------------------------------------------------------------------------------

fn dissect(direction: Direction, bytes: &[u8], piece: usize) -> Vec<FrameRecord> {
    let mut dissector = Dissector::new(direction);
    let mut done = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        dissector.feed(chunk, &mut done);
    }
    done
}

/// The frames of `bytes` read with tungstenite's header parser: (start, header length, header
/// fields, payload length) of every complete frame, in order. A reserved opcode is an error to
/// tungstenite only after it has read the whole header, so the header is read again without
/// the opcode to learn its length.
fn oracle_frames(bytes: &[u8]) -> Vec<(usize, usize, Option<FrameHeader>, u64)> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let mut cursor = Cursor::new(&bytes[pos..]);
        let (header, length, header_len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some((header, length))) => (Some(header), length, cursor.position() as usize),
            Ok(None) => break,
            Err(WsError::Protocol(ProtocolError::InvalidOpcode(_))) => {
                let mut patched = bytes[pos..].to_vec();
                patched[0] &= 0xf0; // opcode 0, everything else as sent
                let mut cursor = Cursor::new(&patched[..]);
                match FrameHeader::parse(&mut cursor) {
                    Ok(Some((_, length))) => (None, length, cursor.position() as usize),
                    other => panic!("tungstenite read a header only with its opcode: {other:?}"),
                }
            }
            Err(e) => panic!("tungstenite's header parser failed: {e}"),
        };
        let end = match usize::try_from(length)
            .ok()
            .and_then(|l| (pos + header_len).checked_add(l))
        {
            Some(end) if end <= bytes.len() => end,
            _ => break,
        };
        frames.push((pos, header_len, header, length));
        pos = end;
    }
    frames
}

fn check_dissector(pieces: u8, bytes: &[u8]) {
    for direction in [Direction::FromClient, Direction::FromServer] {
        let whole = dissect(direction, bytes, bytes.len());
        // Arriving in pieces changes nothing.
        for piece in [1, usize::from(pieces % 16) + 2, 64] {
            assert_eq!(
                dissect(direction, bytes, piece),
                whole,
                "pieces of {piece} bytes"
            );
        }
        let oracle = oracle_frames(bytes);
        assert_eq!(
            whole.len(),
            oracle.len(),
            "{} frames, tungstenite finds {}",
            whole.len(),
            oracle.len()
        );
        for (record, (start, header_len, header, length)) in whole.iter().zip(oracle) {
            let h = &record.header;
            assert_eq!(record.header_bytes, bytes[start..start + header_len]);
            assert_eq!((h.len, h.length), (header_len, length));
            match header {
                Some(theirs) => {
                    assert_eq!(theirs.is_final, h.fin);
                    assert_eq!([theirs.rsv1, theirs.rsv2, theirs.rsv3], h.rsv);
                    assert_eq!(u8::from(theirs.opcode), h.opcode);
                    assert_eq!(theirs.mask, h.mask);
                }
                None => assert!(matches!(h.opcode, 3..=7 | 11..=15), "{h:?}"),
            }
            let shown = (length as usize).min(SHOWN);
            let payload = &bytes[start + header_len..start + header_len + shown];
            assert_eq!(record.wire, payload, "the payload as sent");
            let key = h.mask.unwrap_or([0; 4]);
            let unmasked: Vec<u8> = payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(record.payload, unmasked, "the payload unmasked");
            assert_eq!(record.cut(), length > SHOWN as u64);
            if let Some(text) = record.text() {
                let shown_text = match h.opcode {
                    0x8 => &unmasked[2..],
                    _ => &unmasked[..],
                };
                assert!(shown_text.starts_with(text.as_bytes()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A whole inspector session
// ---------------------------------------------------------------------------------------------

const HEAD: &str = "GET /inspect/ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// One frame as a report describes it: (direction, number, header hex, length, payload hex).
type Reported = (String, u64, String, String, String);

fn frames_of(report: &Json) -> Vec<Reported> {
    let dir = report
        .str("dir")
        .expect("a frames report names its direction");
    let Some(Json::Array(frames)) = report.get("frames") else {
        panic!("a frames report without frames: {report:?}");
    };
    frames
        .iter()
        .map(|f| {
            let n = match f.get("n") {
                Some(Json::Number(n)) => n.parse().expect("a frame number"),
                other => panic!("frame number {other:?}"),
            };
            let field = |name: &str| {
                f.str(name)
                    .unwrap_or_else(|| panic!("no {name}"))
                    .to_string()
            };
            (
                dir.to_string(),
                n,
                field("head"),
                field("len"),
                field("payload"),
            )
        })
        .collect()
}

/// What a report should say of `record`.
fn expected(dir: &str, n: u64, record: &FrameRecord) -> Reported {
    (
        dir.to_string(),
        n,
        hex(&record.header_bytes),
        record.header.length.to_string(),
        hex(&record.payload),
    )
}

fn check_tap(setup: u8, stream: &[u8]) {
    let tight = setup & 1 == 1;
    let split = usize::from(setup >> 1).min(stream.len());
    let (leftover, rest) = stream.split_at(split);
    let limits = if tight {
        QueueLimits {
            messages: Some(8),
            bytes: 4096,
        }
    } else {
        QueueLimits {
            messages: None,
            bytes: 1 << 26,
        }
    };
    let transport = Arc::new(MemoryTransport::new(rest.to_vec()));
    let reply = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        .head();
    let inner: Arc<dyn Transport> = transport.clone();
    let tap = Tap::new(inner, HEAD.as_bytes(), &reply, &[], leftover);
    let tapped: Arc<dyn Transport> = tap.clone();
    let outbox = Arc::new(Outbox::new(tapped, peer(), writers(limits)));
    tap.attach(&outbox);
    let config = SessionConfig {
        max_message: 64 * 1024,
        rate_limit: 0,
    };
    let rooms = Arc::new(Rooms::new(1, 0));
    session::run(
        &outbox,
        leftover.to_vec(),
        Endpoint::Inspect,
        &config,
        &rooms,
    );
    wait_idle(&outbox);
    drop((tap, outbox));

    let output = transport.output();
    let messages = parse_server_output(&output)
        .unwrap_or_else(|e| panic!("invalid server output ({e}): {}", hex(&output)));
    assert!(
        output.len() <= 4096 + 512 * stream.len(),
        "{} bytes out for {} in",
        output.len(),
        stream.len()
    );
    if tight {
        return; // reports may have overflowed the queue: 1008, and some are lost
    }

    // The first message is the handshake report; it names the connection's marker.
    let Some(WsMessage::Text(first)) = messages.first() else {
        panic!("the first message is not the handshake report: {messages:?}");
    };
    let handshake = parse_json(first).expect("the handshake report is JSON");
    assert_eq!(handshake.str("type"), Some("handshake"));
    let nonce = handshake.str("inspect").expect("a nonce").to_string();
    let marker = format!("{{\"inspect\":\"{nonce}\"");
    let Some(Json::Array(lines)) = handshake.get("lines") else {
        panic!("no lines");
    };
    let head: String = lines
        .iter()
        .map(|l| format!("{}{}", l.str("text").unwrap(), l.str("end").unwrap()))
        .collect();
    assert_eq!(
        head, HEAD,
        "the request, line by line, is the head as received"
    );

    // Everything reported, over the connection and in the stash.
    let mut reported: Vec<Reported> = Vec::new();
    let stashed = stash::take(&nonce).unwrap_or_default();
    let live = messages.iter().skip(1).filter_map(|m| match m {
        WsMessage::Text(t) if t.starts_with(&marker) => Some(t.as_str()),
        _ => None,
    });
    let live_count = live.clone().count();
    // The last client frame reported over the connection rather than in the stash.
    let mut last_live_in = 0;
    for (i, text) in live.chain(stashed.iter().map(String::as_str)).enumerate() {
        let report =
            parse_json(text).unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}"));
        match report.str("type") {
            Some("frames") => {
                for frame in frames_of(&report) {
                    if i < live_count && frame.0 == "in" {
                        last_live_in = last_live_in.max(frame.1);
                    }
                    // A report may come twice (live and stashed), never with other contents.
                    match reported.iter().find(|r| (&r.0, r.1) == (&frame.0, frame.1)) {
                        Some(earlier) => assert_eq!(*earlier, frame),
                        None => reported.push(frame),
                    }
                }
            }
            Some("closing") => {}
            other => panic!("unexpected report type {other:?}"),
        }
    }

    // The server's frames that are not reports, as the tap should have seen them; and the
    // client's, read independently of the session.
    let out: Vec<Reported> = dissect(Direction::FromServer, &output, output.len())
        .into_iter()
        .filter(|r| !(r.header.opcode == 1 && r.payload.starts_with(marker.as_bytes())))
        .enumerate()
        .map(|(i, r)| expected("out", i as u64 + 1, &r))
        .collect();
    let sent: Vec<Reported> = dissect(Direction::FromClient, stream, stream.len())
        .into_iter()
        .enumerate()
        .map(|(i, r)| expected("in", i as u64 + 1, &r))
        .collect();
    let mut got_out: Vec<Reported> = reported.iter().filter(|r| r.0 == "out").cloned().collect();
    let mut got_in: Vec<Reported> = reported.iter().filter(|r| r.0 == "in").cloned().collect();
    got_out.sort_by_key(|r| r.1);
    got_in.sort_by_key(|r| r.1);
    // Every frame the server wrote is reported, reports excepted, in order.
    assert_eq!(got_out, out, "server frames and their reports");
    // The client's frames are reported in order, as far as the session read them. The stash
    // keeps at most MAX_ENTRY_BYTES of reports besides those of the close frames (a close's
    // payload is at most 125 bytes, its report under 2 KiB): past that, frames that went to
    // the stash before the client's close may have no report, and the close still has one.
    // Nothing is dropped from what goes over the connection.
    let whole = got_in
        .iter()
        .zip(&sent)
        .take_while(|(got, sent)| got == sent)
        .count();
    let kept: usize = stashed.iter().map(String::len).sum();
    assert!(
        kept <= stash::MAX_ENTRY_BYTES + 2 * 2048,
        "the stash holds {kept} bytes"
    );
    if let [close] = &got_in[whole..] {
        assert!(
            is_close(close) && sent.get(close.1 as usize - 1) == Some(close),
            "after the client's frame {whole}, only its close may be reported: {close:?}"
        );
        assert!(
            last_live_in <= whole as u64,
            "client frames past {whole} are missing, and frame {last_live_in} went live"
        );
    } else {
        assert!(
            whole == got_in.len() && got_in.len() <= sent.len(),
            "client frames {sent:?}, reported {got_in:?}"
        );
    }
}

/// True for a reported close frame (its header's opcode is 8).
fn is_close(frame: &Reported) -> bool {
    u8::from_str_radix(&frame.2[..2], 16).is_ok_and(|first| first & 0x0f == 0x8)
}

// ---------------------------------------------------------------------------------------------
// Seeds (written to fuzz/seeds/inspect/ by tests/fuzz_seeds.rs)
// ---------------------------------------------------------------------------------------------

/// The seed corpus: (name, input).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use super::frames::client_frame;
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let text = |s: &str| client_frame(true, 0x1, s.as_bytes(), MASK);
    let close = |code: u16, reason: &[u8]| {
        client_frame(true, 0x8, &[&code.to_be_bytes()[..], reason].concat(), MASK)
    };
    // Dissector mode: selector 0 (even), then the bytes.
    let dissector = |bytes: Vec<u8>| [vec![0x00], bytes].concat();
    // Session mode: selector 1 (odd, roomy queue, nothing as leftover), then the stream.
    let session = |frames: Vec<Vec<u8>>| [vec![0x01], frames.concat()].concat();
    let mut bits16 = vec![0x82, 0x7e, 0x01, 0x00];
    bits16.extend(0..=255u8);
    let mut non_minimal_64 = vec![0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 3];
    non_minimal_64.extend(b"abc");
    vec![
        // RFC 6455 section 5.7.
        (
            "rfc-hello",
            dissector(vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
        ),
        (
            "rfc-hello-masked",
            dissector(vec![
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ]),
        ),
        (
            "rfc-fragments",
            dissector(vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]),
        ),
        (
            "rfc-ping-pong",
            dissector(
                [
                    &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f][..],
                    &[
                        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
                    ],
                ]
                .concat(),
            ),
        ),
        ("rfc-256-bytes", dissector(bits16)),
        ("non-minimal-64-bit", dissector(non_minimal_64)),
        (
            "huge-length",
            dissector(vec![
                0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ]),
        ),
        (
            "rule-breakers",
            dissector(
                [
                    &[0xc1, 0x80, 0, 0, 0, 0][..],
                    &[0x83, 0x80, 0, 0, 0, 0],
                    &[0x09, 0x80, 0, 0, 0, 0],
                    &[0x80, 0x80, 0, 0, 0, 0],
                    &[0x88, 0x81, 0, 0, 0, 0, 3],
                    &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed],
                ]
                .concat(),
            ),
        ),
        (
            "cut-utf8",
            dissector(
                [
                    vec![0x81, 0x7e, 0, 129],
                    "a".repeat(127).into_bytes(),
                    "é".as_bytes().to_vec(),
                ]
                .concat(),
            ),
        ),
        (
            "session-echo",
            session(vec![text("Hello"), close(1000, b"bye")]),
        ),
        (
            "session-every-kind",
            session(vec![
                client_frame(true, 0x2, &[0, 1, 2, 0xfe, 0xff], MASK),
                client_frame(true, 0x9, b"are you there", MASK),
                client_frame(false, 0x1, b"Hel", MASK),
                client_frame(true, 0x0, b"lo", MASK),
                text(&"x".repeat(126)),
                close(4000, b"done"),
            ]),
        ),
        (
            "session-unmasked",
            session(vec![
                text("first"),
                vec![0x81, 0x02, b'n', b'o'],
                text("after"),
            ]),
        ),
        (
            "session-bad-utf8",
            session(vec![client_frame(true, 0x1, &[0xc3, 0x28], MASK)]),
        ),
        (
            "session-no-close",
            session(vec![text("one"), text("two"), text("three")]),
        ),
        (
            "session-leftover",
            // Selector 0b0001_0001: roomy queue, 8 bytes arrive with the head.
            [vec![0x21], text("early"), text("late")].concat(),
        ),
        (
            "session-tight-queue",
            [
                vec![0x03],
                (0..40)
                    .map(|i| text(&i.to_string()))
                    .collect::<Vec<_>>()
                    .concat(),
            ]
            .concat(),
        ),
        (
            "session-reports-lookalike",
            // A text that starts like a report, with a nonce the server did not choose.
            session(vec![text(
                r#"{"inspect":"0000000000000000","type":"frames"}"#,
            )]),
        ),
    ]
}
