//! The opening handshake of RFC 6455, done by hand.
//!
//! A WebSocket starts life as an ordinary HTTP/1.1 `GET` carrying a few special headers. The
//! server checks them (section 4.2.1), proves it understood by hashing the client's key with a
//! fixed GUID (section 4.2.2), and answers `101 Switching Protocols`. From the byte after that
//! reply on, both sides speak WebSocket frames.
//!
//! [`check_upgrade`] is that checklist, one named check per requirement, in the order the RFC
//! lists them. A failed check is a [`Rejection`], which knows its status code and reason, so
//! every refused upgrade gets a real HTTP reply rather than a dropped socket (tungstenite issue
//! 443 was about exactly that).

use crate::http::{Request, Response};
use crate::origin;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID every WebSocket server appends to the client's key (RFC 6455 section 1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this server (and every browser today) speaks.
pub const VERSION: &str = "13";

/// Computes `Sec-WebSocket-Accept` from `Sec-WebSocket-Key` (RFC 6455 section 4.2.2, item 5.4):
/// "concatenate [the key] with the string 258EAFA5-...; take the SHA-1 hash of this
/// concatenated value to obtain a 20-byte value and base64-encode it".
///
/// The key is used exactly as sent (still base64 text): it is never decoded for hashing.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Why an upgrade request was refused. Each variant is one requirement of RFC 6455
/// section 4.2.1 (or, for the last three, of this server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 4.2.1 item 1: "An HTTP/1.1 or higher GET request". Anything but GET: 405.
    NotGet,
    /// 4.2.1 item 1 again: HTTP/1.0 has no `Upgrade` mechanism: 400.
    HttpTooOld,
    /// 4.2.1 item 2: "A |Host| header field containing the server's authority": 400.
    MissingHost,
    /// 4.2.1 item 3: "An |Upgrade| header field containing the value 'websocket'". Without it
    /// the request is a plain GET to a WebSocket-only endpoint: 426 (RFC 9110 section 15.5.22).
    NotWebSocketUpgrade,
    /// 4.2.1 item 4: "A |Connection| header field that includes the token 'Upgrade'": 400.
    ConnectionNotUpgrade,
    /// 4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that,
    /// when decoded, is 16 bytes in length": 400 when absent or malformed.
    BadKey,
    /// Item 5 names one key; two keys leave the accept value ambiguous: 400.
    DuplicateKey,
    /// 4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13": 400 when
    /// absent or repeated.
    MissingVersion,
    /// Item 6 with another value: 426 plus `Sec-WebSocket-Version: 13`, as section 4.4 asks,
    /// so the client can retry with a version we speak.
    UnsupportedVersion,
    /// 4.2.1 item 7 leaves `Origin` to the server (section 10.2): an `Origin` that is neither
    /// this server's own (same host and port as `Host`) nor on the `--allowed-origin` list,
    /// or two `Origin` headers: 403.
    OriginNotAllowed,
    /// A body or `Transfer-Encoding` on the upgrade: the bytes after the head would be taken
    /// for WebSocket frames, so the request is ambiguous (request smuggling): 400.
    BodyOnUpgrade,
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(self) -> u16 {
        match self {
            Rejection::NotGet => 405,
            Rejection::NotWebSocketUpgrade | Rejection::UnsupportedVersion => 426,
            Rejection::OriginNotAllowed => 403,
            Rejection::HttpTooOld
            | Rejection::MissingHost
            | Rejection::ConnectionNotUpgrade
            | Rejection::BadKey
            | Rejection::DuplicateKey
            | Rejection::MissingVersion
            | Rejection::BodyOnUpgrade => 400,
        }
    }

    /// A short reason for the response body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::NotGet => "a WebSocket upgrade must be a GET request",
            Rejection::HttpTooOld => "a WebSocket upgrade needs HTTP/1.1 or later",
            Rejection::MissingHost => "missing or repeated Host header",
            Rejection::NotWebSocketUpgrade => {
                "this endpoint speaks WebSocket: send Upgrade: websocket"
            }
            Rejection::ConnectionNotUpgrade => {
                "the Connection header must include the token Upgrade"
            }
            Rejection::BadKey => "Sec-WebSocket-Key must be the base64 encoding of 16 bytes",
            Rejection::DuplicateKey => "more than one Sec-WebSocket-Key header",
            Rejection::MissingVersion => "missing or repeated Sec-WebSocket-Version header",
            Rejection::UnsupportedVersion => "unsupported WebSocket version: this server speaks 13",
            Rejection::OriginNotAllowed => {
                "cross-origin upgrade refused: the Origin does not match the Host (see --allowed-origin)"
            }
            Rejection::BodyOnUpgrade => "an upgrade request must not have a body",
        }
    }

    /// The full HTTP reply: status, reason, `Connection: close`, and the extra header some
    /// statuses require.
    pub fn response(self) -> Response {
        let response = Response::error(self.status(), self.reason());
        match self {
            // RFC 9110 section 15.6.6: a 405 "MUST generate an Allow header field".
            Rejection::NotGet => response.header("Allow", "GET"),
            // RFC 9110 section 15.5.22: a 426 "MUST send an Upgrade header field".
            Rejection::NotWebSocketUpgrade => response.header("Upgrade", "websocket"),
            // RFC 6455 section 4.4: name the versions we do speak.
            Rejection::UnsupportedVersion => response.header("Sec-WebSocket-Version", VERSION),
            _ => response,
        }
    }
}

/// Runs every check of RFC 6455 section 4.2.1 on `request` in order, and on success returns
/// the `Sec-WebSocket-Accept` value for the reply.
///
/// `allowed_origins` lists origins accepted besides the server's own, `*` for any (see
/// `origin.rs`). A request with no `Origin` header is let through: only browsers send `Origin`,
/// and the check exists to stop other web pages from using a visitor's browser against this
/// server (cross-site WebSocket hijacking), not to authenticate programs.
///
/// Extensions (`Sec-WebSocket-Extensions`, e.g. permessage-deflate) and subprotocols
/// (`Sec-WebSocket-Protocol`) are declined the way section 4.2.2 allows: by not naming any in
/// the reply. The upgrade still succeeds.
pub fn check_upgrade(request: &Request, allowed_origins: &[String]) -> Result<String, Rejection> {
    // 1. An HTTP/1.1 or higher GET request.
    if request.method != "GET" {
        return Err(Rejection::NotGet);
    }
    if request.version < 1 {
        return Err(Rejection::HttpTooOld);
    }
    // 2. A Host header field containing the server's authority.
    let host = match request.single_header("host") {
        Ok(Some(host)) if !host.is_empty() => host,
        _ => return Err(Rejection::MissingHost),
    };
    // 3. An Upgrade header field containing the value "websocket", treated as an ASCII
    //    case-insensitive value (Autobahn sends "WebSocket").
    if !request.has_token("upgrade", "websocket") {
        return Err(Rejection::NotWebSocketUpgrade);
    }
    // 4. A Connection header field that includes the token "Upgrade", also case-insensitive.
    //    Browsers send "keep-alive, Upgrade", hence a token list, not an equality test.
    if !request.has_token("connection", "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    // 5. A Sec-WebSocket-Key whose base64 decodes to exactly 16 bytes.
    let key = match request.single_header("sec-websocket-key") {
        Ok(Some(key)) => key,
        Ok(None) => return Err(Rejection::BadKey),
        Err(()) => return Err(Rejection::DuplicateKey),
    };
    if !matches!(BASE64.decode(key), Ok(nonce) if nonce.len() == 16) {
        return Err(Rejection::BadKey);
    }
    // 6. Sec-WebSocket-Version: 13.
    match request.single_header("sec-websocket-version") {
        Ok(Some(version)) if version == VERSION.as_bytes() => {}
        Ok(Some(_)) => return Err(Rejection::UnsupportedVersion),
        Ok(None) | Err(()) => return Err(Rejection::MissingVersion),
    }
    // 7. Origin is optional; policy is the server's (section 10.2): same origin, plus the
    //    list. Browsers send one Origin; two is not a browser, and which to trust is ambiguous.
    match request.single_header("origin") {
        Ok(None) => {}
        Ok(Some(value)) if origin::allowed(value, host, allowed_origins) => {}
        _ => return Err(Rejection::OriginNotAllowed),
    }
    // Not in the RFC's list but implied by it: after the head come frames, never a body.
    if request.announces_body() {
        return Err(Rejection::BodyOnUpgrade);
    }
    Ok(accept_key(key))
}

/// The `101 Switching Protocols` reply (section 4.2.2 item 5). It names no extension and no
/// subprotocol, which declines any the client offered.
pub fn switching_protocols(accept: &str) -> Response {
    Response::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Parsed};

    /// The worked example of RFC 6455 section 1.3.
    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn request(head: &str) -> Request {
        match parse_head(head.replace('\n', "\r\n").as_bytes()).unwrap() {
            Parsed::Complete { request, .. } => request,
            Parsed::Partial => panic!("partial head"),
        }
    }

    const GOOD: &str = "GET /chat HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n";

    fn check(head: &str) -> Result<String, Rejection> {
        check_upgrade(&request(&format!("{head}\n")), &[])
    }

    #[test]
    fn the_rfc_request_is_accepted() {
        assert_eq!(check(GOOD).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let browser = GOOD.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
        assert!(check(&browser.replace("websocket", "WebSocket")).is_ok());
    }

    #[test]
    fn each_requirement_has_its_rejection() {
        let cases = [
            (GOOD.replace("GET", "POST"), Rejection::NotGet),
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), Rejection::HttpTooOld),
            (
                GOOD.replace("Host: server.example.com\n", ""),
                Rejection::MissingHost,
            ),
            (
                GOOD.replace("Upgrade: websocket\n", ""),
                Rejection::NotWebSocketUpgrade,
            ),
            (
                GOOD.replace("Connection: Upgrade", "Connection: keep-alive"),
                Rejection::ConnectionNotUpgrade,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
                Rejection::BadKey,
            ),
            (
                format!("{GOOD}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"),
                Rejection::DuplicateKey,
            ),
            (
                GOOD.replace("Sec-WebSocket-Version: 13\n", ""),
                Rejection::MissingVersion,
            ),
            (
                GOOD.replace("Version: 13", "Version: 8"),
                Rejection::UnsupportedVersion,
            ),
            (
                format!("{GOOD}Content-Length: 5\n"),
                Rejection::BodyOnUpgrade,
            ),
        ];
        for (head, expected) in cases {
            assert_eq!(check(&head), Err(expected), "{head}");
        }
    }

    #[test]
    fn same_origin_by_default() {
        let from = |origin: &str| check(&format!("{GOOD}Origin: {origin}\n"));
        assert!(from("http://server.example.com").is_ok());
        // The scheme is not compared: a page over https through a TLS proxy.
        assert!(from("https://server.example.com").is_ok());
        assert!(from("https://SERVER.example.com:443").is_ok());
        for other in [
            "https://evil.example",
            "https://server.example.com:8443",
            "null",
            "https://server.example.com/",
        ] {
            assert_eq!(from(other), Err(Rejection::OriginNotAllowed), "{other}");
        }
        let twice = "http://server.example.com\nOrigin: http://server.example.com";
        assert_eq!(from(twice), Err(Rejection::OriginNotAllowed));
        // No Origin (not a browser): accepted.
        assert!(check(GOOD).is_ok());
    }

    #[test]
    fn origin_list() {
        let allowed = ["https://chat.example".to_string()];
        let from = |origin: &str, allowed: &[String]| {
            check_upgrade(&request(&format!("{GOOD}Origin: {origin}\n\n")), allowed)
        };
        assert!(from("https://chat.example", &allowed).is_ok());
        assert!(
            from("https://server.example.com", &allowed).is_ok(),
            "own origin too"
        );
        assert_eq!(
            from("https://evil.example", &allowed),
            Err(Rejection::OriginNotAllowed)
        );
        let twice = "https://chat.example\nOrigin: https://evil.example";
        assert_eq!(from(twice, &allowed), Err(Rejection::OriginNotAllowed));
        let any = ["*".to_string()];
        assert!(from("https://evil.example", &any).is_ok());
        assert!(from("null", &any).is_ok());
        let same_twice = "https://chat.example\nOrigin: https://chat.example";
        assert_eq!(from(same_twice, &any), Err(Rejection::OriginNotAllowed));
    }

    #[test]
    fn rejection_replies_carry_required_headers() {
        let head = Rejection::UnsupportedVersion.response().head();
        assert!(head.starts_with("HTTP/1.1 426 "));
        assert!(head.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(head.contains("Connection: close\r\n"));
        assert!(Rejection::NotGet
            .response()
            .head()
            .contains("Allow: GET\r\n"));
    }
}
