//! The JSON the inspector sends its page: one object per text message, built by hand like the
//! chat's events (every string through [`push_json_string`]).
//!
//! Every report starts with the connection's marker, `{"inspect":"<nonce>"`, where the nonce
//! is random per connection: the page learns it from the first message (always the handshake
//! report) and tells reports from the echoes of its own messages by it, and the tap leaves
//! frames that start with it out of the frame reports.

use super::dissect::{opcode_name, FrameRecord};
use crate::chat_protocol::push_json_string;
use crate::handshake::{self, Rejection, GUID};
use crate::http::{parse_head, Parsed, Request};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::fmt::Write;

/// Request headers a proxy adds. When one is present, the page says that it shows what the
/// proxy forwarded, not what the browser sent.
const PROXY_HEADERS: &[&str] = &[
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// The checks of [`handshake::check_upgrade`], in the order it makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Method,
    Host,
    Upgrade,
    Connection,
    Key,
    Version,
    Origin,
    NoBody,
}

impl Check {
    /// The check that failed, for each rejection. An exhaustive match: a new rejection must
    /// be placed here.
    fn of(rejection: Rejection) -> Check {
        match rejection {
            Rejection::NotGet | Rejection::HttpTooOld => Check::Method,
            Rejection::MissingHost => Check::Host,
            Rejection::NotWebSocketUpgrade => Check::Upgrade,
            Rejection::ConnectionNotUpgrade => Check::Connection,
            Rejection::BadKey | Rejection::DuplicateKey => Check::Key,
            Rejection::MissingVersion | Rejection::UnsupportedVersion => Check::Version,
            Rejection::OriginNotAllowed => Check::Origin,
            Rejection::BodyOnUpgrade => Check::NoBody,
        }
    }

    /// What `check_upgrade`'s verdict says about this check: it checks in order and stops at
    /// the first failure.
    fn status(self, verdict: Result<(), Rejection>) -> (&'static str, &'static str) {
        match verdict {
            Ok(()) => ("passed", ""),
            Err(rejection) => match Check::of(rejection).cmp(&self) {
                std::cmp::Ordering::Equal => ("failed", rejection.reason()),
                std::cmp::Ordering::Greater => ("passed", ""),
                std::cmp::Ordering::Less => ("unchecked", "an earlier check failed"),
            },
        }
    }
}

/// What RFC 6455 section 4.2.1 says about one line of the request, and how it fared.
struct LineVerdict {
    /// The item of the list in 4.2.1 ("1" to "10"), or "" for the server's own rule.
    item: &'static str,
    /// The requirement, quoted or summed up.
    rule: &'static str,
    /// passed, failed, unchecked, optional, declined, or "" for a line nothing checks.
    status: &'static str,
    note: &'static str,
}

fn verdict_for(
    line: &[u8],
    first: bool,
    verdict: Result<(), Rejection>,
    origins_checked: bool,
) -> LineVerdict {
    let checked = |item, rule, check: Check| {
        let (status, note) = check.status(verdict);
        LineVerdict {
            item,
            rule,
            status,
            note,
        }
    };
    if first {
        return checked(
            "1",
            "An HTTP/1.1 or higher GET request, including a Request-URI",
            Check::Method,
        );
    }
    let name = match line.iter().position(|&b| b == b':') {
        Some(colon) => String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
        None => String::new(),
    };
    match name.as_str() {
        "host" => checked(
            "2",
            "A Host header field containing the server's authority",
            Check::Host,
        ),
        "upgrade" => checked(
            "3",
            "An Upgrade header field containing the value \"websocket\" (any case)",
            Check::Upgrade,
        ),
        "connection" => checked(
            "4",
            "A Connection header field that includes the token \"Upgrade\" (any case)",
            Check::Connection,
        ),
        "sec-websocket-key" => checked(
            "5",
            "A Sec-WebSocket-Key header field with a base64-encoded value that, when decoded, is 16 bytes in length",
            Check::Key,
        ),
        "sec-websocket-version" => checked(
            "6",
            "A Sec-WebSocket-Version header field, with a value of 13",
            Check::Version,
        ),
        "origin" if origins_checked => checked(
            "7",
            "Optionally, an Origin header field; wschat checks it against --allowed-origin",
            Check::Origin,
        ),
        "origin" => LineVerdict {
            item: "7",
            rule: "Optionally, an Origin header field",
            status: "optional",
            note: "not checked: no --allowed-origin list is set",
        },
        "sec-websocket-protocol" => LineVerdict {
            item: "8",
            rule: "Optionally, a Sec-WebSocket-Protocol header field",
            status: "declined",
            note: "the reply names no subprotocol, which declines them (4.2.2)",
        },
        "sec-websocket-extensions" => LineVerdict {
            item: "9",
            rule: "Optionally, a Sec-WebSocket-Extensions header field",
            status: "declined",
            note: "the reply names no extension, which declines them (4.2.2)",
        },
        "content-length" | "transfer-encoding" => checked(
            "",
            "wschat's own rule: no body, since the bytes after the head are frames",
            Check::NoBody,
        ),
        "" => LineVerdict {
            item: "",
            rule: "",
            status: "",
            note: "",
        },
        _ => LineVerdict {
            item: "10",
            rule: "Optionally, other header fields",
            status: "",
            note: "",
        },
    }
}

/// Starts a report: `{"inspect":"<nonce>","type":"<kind>"`.
fn open(marker: &str, kind: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(marker);
    out.push_str(",\"type\":");
    push_json_string(&mut out, kind);
    out
}

/// The start every report of a connection shares.
pub fn marker(nonce: &str) -> String {
    let mut out = String::from("{\"inspect\":");
    push_json_string(&mut out, nonce);
    out
}

/// Lowercase hex, two digits a byte, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn field_str(out: &mut String, name: &str, value: &str) {
    out.push(',');
    push_json_string(out, name);
    out.push(':');
    push_json_string(out, value);
}

fn field_raw(out: &mut String, name: &str, value: impl std::fmt::Display) {
    out.push(',');
    push_json_string(out, name);
    let _ = write!(out, ":{value}");
}

/// The handshake report: the request head line by line (each with the 4.2.1 item it answers
/// and whether it passed), the accept computation step by step, and the reply as sent.
///
/// `head` is the request head as received (through its blank line); `reply` the reply head as
/// written. `allowed_origins` is `--allowed-origin`, which decides whether `Origin` is checked.
pub fn handshake(marker: &str, head: &[u8], reply: &str, allowed_origins: &[String]) -> String {
    let request: Option<Request> = match parse_head(head) {
        Ok(Parsed::Complete { request, .. }) => Some(request),
        _ => None,
    };
    let verdict = match &request {
        Some(request) => handshake::check_upgrade(request, allowed_origins).map(drop),
        // Not reached for a real session, which exists only after a good upgrade.
        None => Err(Rejection::NotGet),
    };
    let mut out = open(marker, "handshake");
    field_raw(&mut out, "bytes", head.len());
    out.push_str(",\"lines\":[");
    let mut proxy = Vec::new();
    let mut rest = head;
    let mut first = true;
    let mut seen_request_line = false;
    while !rest.is_empty() {
        let (line, ending, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) if nl > 0 && rest[nl - 1] == b'\r' => (&rest[..nl - 1], "\r\n", nl + 1),
            Some(nl) => (&rest[..nl], "\n", nl + 1),
            None => (rest, "", rest.len()),
        };
        rest = &rest[after..];
        let text = String::from_utf8_lossy(line);
        // Empty lines before the request line are allowed (RFC 9112 section 2.2).
        let request_line = !seen_request_line && !line.is_empty();
        let verdict = verdict_for(line, request_line, verdict, !allowed_origins.is_empty());
        if seen_request_line {
            let name = text.split(':').next().unwrap_or("").to_ascii_lowercase();
            if PROXY_HEADERS.contains(&name.as_str()) {
                proxy.push(text.clone().into_owned());
            }
        }
        seen_request_line |= request_line;
        if !first {
            out.push(',');
        }
        first = false;
        out.push('{');
        push_json_string(&mut out, "text");
        out.push(':');
        push_json_string(&mut out, &text);
        field_str(&mut out, "end", ending);
        field_str(&mut out, "item", verdict.item);
        field_str(&mut out, "rule", verdict.rule);
        field_str(&mut out, "status", verdict.status);
        field_str(&mut out, "note", verdict.note);
        out.push('}');
    }
    out.push(']');
    out.push_str(",\"forwarded\":[");
    for (i, line) in proxy.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, line);
    }
    out.push(']');
    let key = request
        .as_ref()
        .and_then(|r| r.single_header("sec-websocket-key").ok().flatten())
        .unwrap_or_default();
    // The steps of section 4.2.2 item 5.4, each kept so the page can show it; the last must
    // equal what handshake::accept_key put in the reply.
    let key_guid = [key, GUID.as_bytes()].concat();
    let sha1 = Sha1::digest(&key_guid);
    let accept = BASE64.encode(sha1);
    debug_assert!(key.is_empty() || accept == handshake::accept_key(key));
    field_str(&mut out, "key", &String::from_utf8_lossy(key));
    field_str(&mut out, "guid", GUID);
    field_str(&mut out, "keyGuid", &String::from_utf8_lossy(&key_guid));
    field_str(&mut out, "sha1", &hex(&sha1));
    field_str(&mut out, "accept", &accept);
    field_str(&mut out, "reply", reply);
    out.push('}');
    out
}

/// The answer to the page's notice that it is about to close: every report before this one
/// has been sent; the rest wait in the stash.
pub fn closing(marker: &str) -> String {
    let mut out = open(marker, "closing");
    out.push('}');
    out
}

/// A report of frames that went one way: `dir` is "in" (browser to server) or "out". `first`
/// is the number of the first frame in `frames`, counted per direction from 1.
pub fn frames(marker: &str, dir: &str, first: u64, frames: &[FrameRecord]) -> String {
    let mut out = open(marker, "frames");
    field_str(&mut out, "dir", dir);
    out.push_str(",\"frames\":[");
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_frame(&mut out, first + i as u64, frame);
    }
    out.push_str("]}");
    out
}

fn push_frame(out: &mut String, number: u64, frame: &FrameRecord) {
    let h = &frame.header;
    out.push('{');
    let _ = write!(out, "\"n\":{number}");
    field_str(out, "head", &hex(&frame.header_bytes));
    field_raw(out, "fin", h.fin);
    field_raw(out, "rsv1", h.rsv[0]);
    field_raw(out, "rsv2", h.rsv[1]);
    field_raw(out, "rsv3", h.rsv[2]);
    field_raw(out, "opcode", h.opcode);
    field_str(out, "op", opcode_name(h.opcode));
    if let Some(message) = frame.message_opcode.filter(|_| h.opcode == 0) {
        field_str(out, "message", opcode_name(message));
    }
    field_raw(out, "masked", h.mask.is_some());
    field_str(out, "mask", &h.mask.map(|k| hex(&k)).unwrap_or_default());
    // As a string: JavaScript numbers lose precision past 2^53.
    field_str(out, "len", &h.length.to_string());
    field_raw(out, "lenBits", h.encoding.bits());
    field_str(out, "total", &frame.total_len().to_string());
    field_str(out, "wire", &hex(&frame.wire));
    field_str(out, "payload", &hex(&frame.payload));
    field_raw(out, "cut", frame.cut());
    match frame.text() {
        Some(text) => field_str(out, "text", text),
        None => field_raw(out, "text", "null"),
    }
    if let Some(code) = frame.close_code() {
        field_raw(out, "closeCode", code);
    }
    out.push_str(",\"notes\":[");
    for (i, note) in frame.notes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, note.text());
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests;
