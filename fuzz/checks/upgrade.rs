//! The `upgrade` target: `parse_head`, then `handshake::check_upgrade`.

use super::origin::{model_origin, model_same_origin};
use wschat::internals::http::{parse_head, Parsed, Request};

use super::http::{announces_body, check_error_response_head, token_listed, values};

/// The origin allowed in the second of the two policies every request is checked under.
pub const ALLOWED_ORIGIN: &str = "https://chat.example";

/// The GUID of RFC 6455 section 1.3, spelled out here rather than taken from the library.
const RFC_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// base64(sha1(key + GUID)), computed with the crates directly.
pub fn expected_accept(key: &[u8]) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(key);
    hasher.update(RFC_GUID);
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

/// What RFC 6455 section 4.2.1 (plus wschat's origin and body rules) says about a request,
/// read off the header list independently of `check_upgrade`.
struct UpgradeFacts<'a> {
    is_get: bool,
    http11: bool,
    host_ok: bool,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    keys: Vec<&'a [u8]>,
    key_decodes_to_16: bool,
    versions: Vec<&'a [u8]>,
    origins: Vec<&'a [u8]>,
    host: &'a [u8],
    body: bool,
}

impl<'a> UpgradeFacts<'a> {
    fn of(request: &'a Request) -> Self {
        use base64::Engine;
        let hosts = values(request, "host");
        let keys = values(request, "sec-websocket-key");
        let key_decodes_to_16 = keys.len() == 1
            && matches!(base64::engine::general_purpose::STANDARD.decode(keys[0]),
                        Ok(nonce) if nonce.len() == 16);
        UpgradeFacts {
            is_get: request.method == "GET",
            http11: request.version >= 1,
            host_ok: hosts.len() == 1 && !hosts[0].is_empty(),
            upgrade_websocket: token_listed(&values(request, "upgrade"), b"websocket"),
            connection_upgrade: token_listed(&values(request, "connection"), b"upgrade"),
            keys,
            key_decodes_to_16,
            versions: values(request, "sec-websocket-version"),
            origins: values(request, "origin"),
            host: hosts.first().copied().unwrap_or_default(),
            body: announces_body(request),
        }
    }

    /// No Origin (not a browser), or exactly one that is `*`-allowed, the Host's own (same
    /// origin) or listed.
    fn origin_ok(&self, allowed: &[String]) -> bool {
        match self.origins[..] {
            [] => true,
            [origin] => {
                allowed.iter().any(|a| a == "*")
                    || model_same_origin(origin, self.host)
                    || allowed.iter().any(|a| {
                        model_origin(a.as_bytes()).is_some_and(|a| Some(a) == model_origin(origin))
                    })
            }
            _ => false,
        }
    }

    fn acceptable(&self, allowed: &[String]) -> bool {
        self.is_get
            && self.http11
            && self.host_ok
            && self.upgrade_websocket
            && self.connection_upgrade
            && self.key_decodes_to_16
            && self.versions == [b"13"]
            && self.origin_ok(allowed)
            && !self.body
    }
}

/// Any parsed request yields either the accept value of its one key, exactly when every
/// requirement holds, or a truthful rejection (the requirement it names is really unmet)
/// answered with 400, 403, 405 or 426.
pub fn check_upgrade(data: &[u8]) {
    use wschat::internals::handshake::{check_upgrade, switching_protocols, Rejection, GUID};
    assert_eq!(GUID.as_bytes(), RFC_GUID);
    let Ok(Parsed::Complete { request, .. }) = parse_head(data) else {
        return;
    };
    let facts = UpgradeFacts::of(&request);
    let policies: [Vec<String>; 3] = [
        Vec::new(),
        vec![ALLOWED_ORIGIN.to_string()],
        vec!["*".to_string()],
    ];
    for allowed in &policies {
        match check_upgrade(&request, allowed) {
            Ok(accept) => {
                assert!(
                    facts.acceptable(allowed),
                    "accepted a request that breaks a requirement: {request:?}"
                );
                assert_eq!(accept, expected_accept(facts.keys[0]), "wrong accept value");
                let head = switching_protocols(&accept).head();
                assert!(
                    head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                    "{head}"
                );
                assert!(head.contains(&format!("\r\nSec-WebSocket-Accept: {accept}\r\n")));
                assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");
                assert!(
                    !head.contains("Content-Length"),
                    "a 101 has no length: {head}"
                );
                assert!(head.ends_with("\r\n\r\n"));
            }
            Err(rejection) => {
                assert!(
                    !facts.acceptable(allowed),
                    "refused ({rejection:?}) a request that meets every requirement: {request:?}"
                );
                let truthful = match rejection {
                    Rejection::NotGet => !facts.is_get,
                    Rejection::HttpTooOld => !facts.http11,
                    Rejection::MissingHost => !facts.host_ok,
                    Rejection::NotWebSocketUpgrade => !facts.upgrade_websocket,
                    Rejection::ConnectionNotUpgrade => !facts.connection_upgrade,
                    Rejection::BadKey => facts.keys.len() <= 1 && !facts.key_decodes_to_16,
                    Rejection::DuplicateKey => facts.keys.len() > 1,
                    Rejection::MissingVersion => facts.versions.len() != 1,
                    Rejection::UnsupportedVersion => {
                        facts.versions.len() == 1 && facts.versions[0] != b"13"
                    }
                    Rejection::OriginNotAllowed => !facts.origin_ok(allowed),
                    Rejection::BodyOnUpgrade => facts.body,
                };
                assert!(
                    truthful,
                    "{rejection:?} names a requirement the request meets"
                );
                let status = rejection.status();
                assert!(matches!(status, 400 | 403 | 405 | 426), "status {status}");
                let response = rejection.response();
                assert_eq!(response.status, status);
                let head = response.head();
                check_error_response_head(&head, status);
                match rejection {
                    Rejection::NotGet => assert!(head.contains("\r\nAllow: GET\r\n")),
                    Rejection::NotWebSocketUpgrade => {
                        assert!(head.contains("\r\nUpgrade: websocket\r\n"))
                    }
                    Rejection::UnsupportedVersion => {
                        assert!(head.contains("\r\nSec-WebSocket-Version: 13\r\n"))
                    }
                    _ => {}
                }
            }
        }
    }
}
