//! Properties checked on every parser of peer bytes, one `check_*` function per fuzz target.
//!
//! This one file is shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, through
//! `#[path]`) and by the seed replay test of the main crate (`tests/fuzz_seeds.rs`), so a crash
//! found by libFuzzer and saved under `fuzz/regressions/TARGET/` is replayed by `cargo test`
//! with exactly the same assertions. It may use only `std`, `wschat`, `sha1` and `base64`:
//! what both the fuzz crate and the main crate's tests can see. No `unsafe` (the main crate
//! forbids it in every target).
//!
//! Each check takes the raw input and panics when a property fails. The oracles are written
//! independently of the code under test where that is cheap (the accept key, the frame
//! format, JSON, the expected chat transcript), so a bug in the library is not mirrored here.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wschat::chat_protocol::{clean_name, name_key, Event};
use wschat::http::{parse_head, Body, HttpError, Parsed, Request, MAX_HEADERS, MAX_HEAD_BYTES};
use wschat::memory::MemoryTransport;
use wschat::outbox::{text_frame, Outbox, QueueLimits, Transport, WriterPool};
use wschat::room::{Flush, Membership, Room};
use wschat::session::{self, Endpoint, SessionConfig};
use wschat::static_files::{parse_target, BadTarget, Lookup, Site, TargetPath};

// The inspector's check lives in its own file.
#[path = "checks/inspect.rs"]
pub mod inspect;

/// A target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/seeds/` and `fuzz/regressions/`) and its
/// check.
pub const TARGETS: &[(&str, Check)] = &[
    ("http_head", check_http_head),
    ("upgrade", check_upgrade),
    ("static_path", check_static_path),
    ("static_request", check_static_request),
    ("session", check_session),
    ("chat_input", check_chat_input),
    ("httpdate", check_httpdate),
    ("cli", check_cli),
    ("server", check_server),
    ("inspect", inspect::check_inspect),
];

/// The check for `target`, if there is such a target.
pub fn check_for(target: &str) -> Option<Check> {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
}

// ---------------------------------------------------------------------------------------------
// http_head: wschat::http::parse_head on arbitrary bytes
// ---------------------------------------------------------------------------------------------

/// `parse_head` never panics, respects its limits, and is incremental: every prefix of a
/// complete head is `Partial` (the server parses a growing buffer, so a head that arrives in
/// pieces must parse like one that arrives whole).
pub fn check_http_head(data: &[u8]) {
    match parse_head(data) {
        Ok(Parsed::Partial) => {
            assert!(
                data.len() < MAX_HEAD_BYTES,
                "Partial for {} bytes",
                data.len()
            );
        }
        Ok(Parsed::Complete { request, head_len }) => {
            assert!(
                head_len > 0 && head_len <= data.len(),
                "head_len {head_len}"
            );
            assert!(
                head_len <= MAX_HEAD_BYTES,
                "head_len {head_len} over the limit"
            );
            assert!(request.headers.len() <= MAX_HEADERS);
            assert!(
                data[..head_len].ends_with(b"\n"),
                "a head ends with a blank line"
            );
            assert!(request.version <= 1, "HTTP/1.{}", request.version);
            check_request_shape(&request);
            // The head alone parses to the same request: nothing after it was looked at.
            match parse_head(&data[..head_len]) {
                Ok(Parsed::Complete {
                    request: again,
                    head_len: len,
                }) => {
                    assert_eq!(len, head_len);
                    assert_eq!(again, request);
                }
                other => panic!("the head alone parsed as {other:?}"),
            }
            // Incremental: cut anywhere inside the head, it is still only Partial.
            let mut cuts = vec![head_len - 1, head_len / 2, head_len / 3, 1];
            cuts.push(data.first().map_or(0, |&b| b as usize % head_len));
            for cut in cuts.into_iter().filter(|&c| c > 0 && c < head_len) {
                let prefix = parse_head(&data[..cut]);
                assert!(
                    matches!(prefix, Ok(Parsed::Partial)),
                    "prefix of {cut} of a complete {head_len}-byte head gave {prefix:?}"
                );
            }
            exercise_request(&request);
        }
        Err(error) => {
            match &error {
                HttpError::HeadTooLarge => assert!(data.len() >= MAX_HEAD_BYTES),
                HttpError::TooManyHeaders => {
                    let lines = data.iter().filter(|&&b| b == b'\n').count();
                    assert!(lines > MAX_HEADERS, "TooManyHeaders with {lines} lines");
                }
                HttpError::Malformed(why) => assert!(!why.is_empty()),
                other => panic!("parse_head does no I/O, yet returned {other:?}"),
            }
            let response = error.response().expect("a parse error deserves a reply");
            assert!(matches!(response.status, 400 | 431), "{}", response.status);
            check_error_response_head(&response.head(), response.status);
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_request_shape(request: &Request) {
    assert!(!request.method.is_empty());
    assert!(
        request.method.bytes().all(is_tchar),
        "method {:?}",
        request.method
    );
    assert!(!request.target.is_empty());
    assert!(
        !request
            .target
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()),
        "target {:?}",
        request.target
    );
    for header in &request.headers {
        assert!(!header.name.is_empty());
        assert!(header.name.bytes().all(is_tchar), "name {:?}", header.name);
        assert!(
            !header.value.contains(&b'\r') && !header.value.contains(&b'\n'),
            "a header value holds a line break: {:?}",
            header.value
        );
        assert_eq!(
            header.value.trim_ascii(),
            &header.value[..],
            "untrimmed value"
        );
    }
}

/// Calls every accessor the server uses on a parsed request: none may panic, and the simple
/// ones agree with a direct reading of the headers.
fn exercise_request(request: &Request) {
    let path = request.path();
    assert!(request.target.starts_with(path));
    assert!(!path.contains(['?', '#']));
    for name in [
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "origin",
    ] {
        let direct: Vec<&[u8]> = values(request, name);
        assert_eq!(request.headers_named(name).collect::<Vec<_>>(), direct);
        match request.single_header(name) {
            Ok(None) => assert!(direct.is_empty()),
            Ok(Some(v)) => assert_eq!(direct, [v]),
            Err(()) => assert!(direct.len() > 1),
        }
        let _ = request.header_str(name);
    }
    assert_eq!(
        request.has_token("connection", "upgrade"),
        token_listed(&values(request, "connection"), b"upgrade")
    );
    assert_eq!(
        request.wants_close(),
        request.version == 0 || token_listed(&values(request, "connection"), b"close")
    );
    assert_eq!(request.announces_body(), announces_body(request));
}

/// The values of every header called `name`, read straight off the header list.
fn values<'a>(request: &'a Request, name: &str) -> Vec<&'a [u8]> {
    request
        .headers
        .iter()
        .filter(|h| h.name.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| &h.value[..])
        .collect()
}

/// True when `token` is an item of the comma-separated lists in `values`.
fn token_listed(values: &[&[u8]], token: &[u8]) -> bool {
    values.iter().any(|v| {
        v.split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
    })
}

fn announces_body(request: &Request) -> bool {
    !values(request, "transfer-encoding").is_empty()
        || values(request, "content-length")
            .iter()
            .any(|v| v.trim_ascii() != b"0")
}

/// A refusal's head: the right status line, `Connection: close`, a length, no stray line breaks.
fn check_error_response_head(head: &str, status: u16) {
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: "), "{head}");
    assert_eq!(head.matches("\r\n\r\n").count(), 1, "{head}");
    assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head}");
}

// ---------------------------------------------------------------------------------------------
// upgrade: parse_head, then handshake::check_upgrade
// ---------------------------------------------------------------------------------------------

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
            body: announces_body(request),
        }
    }

    /// With an allow-list: no Origin (not a browser), or exactly one that is listed.
    fn origin_ok(&self, allowed: &[String]) -> bool {
        allowed.is_empty()
            || match self.origins[..] {
                [] => true,
                [origin] => allowed.iter().any(|a| a.as_bytes() == origin),
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
    use wschat::handshake::{check_upgrade, switching_protocols, Rejection, GUID};
    assert_eq!(GUID.as_bytes(), RFC_GUID);
    let Ok(Parsed::Complete { request, .. }) = parse_head(data) else {
        return;
    };
    let facts = UpgradeFacts::of(&request);
    let policies: [Vec<String>; 2] = [Vec::new(), vec![ALLOWED_ORIGIN.to_string()]];
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

// ---------------------------------------------------------------------------------------------
// static_path: parse_target, then Site::directory(root).lookup
// ---------------------------------------------------------------------------------------------

/// Contents of the files a lookup must never serve.
const SECRETS: &[&[u8]] = &[b"SECRET-ISOLATED", b"SECRET-OUTSIDE", b"SECRET-DOTFILE"];

/// The web root built once per process.
struct StaticRoot {
    site: Site,
    root: PathBuf,
    embedded: Site,
    /// (path under the root, (dev, ino)) of every file that may be served.
    servable: Vec<(&'static str, (u64, u64))>,
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Builds, in a fresh temporary directory:
///
/// ```text
/// base/outside.txt                      SECRET-OUTSIDE
/// base/root-isolated/{secret.txt,index.html}   SECRET-ISOLATED (a sibling whose name
///                                       starts with the root's: a string-prefix check fails)
/// base/root/                            the web root: servable files, dotfiles, and
///                                       symlinks out of it, absolute and relative
/// ```
fn static_root() -> &'static StaticRoot {
    static ROOT: OnceLock<StaticRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        use std::fs;
        use std::os::unix::fs::symlink;
        // Integration tests get a scratch directory under target/; the fuzz targets use the
        // system's (scripts/fuzz points TMPDIR into fuzz/target/).
        let scratch = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let base = scratch.join(format!(
            "wschat-fuzz-static-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        let isolated = base.join("root-isolated");
        for dir in [
            root.join("sub/deeper"),
            root.join("sub/.hidden-dir"),
            root.join(".git"),
            root.join("noindex-link"),
            isolated.clone(),
        ] {
            fs::create_dir_all(dir).expect("create the fuzz web root");
        }
        let servable_files: [(&str, &str); 8] = [
            ("index.html", "<h1>root index</h1>"),
            ("a.txt", "a"),
            ("a b.txt", "a b"),
            ("café.txt", "cafe"),
            ("%41.txt", "percent 41"),
            ("sub/index.html", "<h1>sub index</h1>"),
            ("sub/b.css", "b {}"),
            ("sub/deeper/c.js", "c()"),
        ];
        let write = |path: PathBuf, text: &[u8]| fs::write(path, text).expect("write fuzz file");
        for (path, text) in servable_files {
            write(root.join(path), text.as_bytes());
        }
        write(base.join("outside.txt"), b"SECRET-OUTSIDE");
        write(isolated.join("secret.txt"), b"SECRET-ISOLATED");
        write(isolated.join("index.html"), b"SECRET-ISOLATED");
        write(root.join(".env"), b"SECRET-DOTFILE");
        write(root.join(".git/config"), b"SECRET-DOTFILE");
        write(root.join("sub/.hidden.txt"), b"SECRET-DOTFILE");
        write(root.join("sub/.hidden-dir/x.txt"), b"SECRET-DOTFILE");
        let links: [(&str, PathBuf); 7] = [
            ("link-in", PathBuf::from("a.txt")),
            ("link-out", PathBuf::from("../root-isolated/secret.txt")),
            ("link-dir-out", PathBuf::from("../root-isolated")),
            ("link-abs", base.join("outside.txt")),
            ("link-dot", PathBuf::from(".env")),
            ("sub/link-up", PathBuf::from("../../outside.txt")),
            (
                "noindex-link/index.html",
                PathBuf::from("../../root-isolated/secret.txt"),
            ),
        ];
        for (link, to) in links {
            symlink(to, root.join(link)).expect("create fuzz symlink");
        }
        let servable = servable_files
            .iter()
            .map(|(path, _)| {
                let meta = fs::metadata(root.join(path)).expect("stat fuzz file");
                (*path, file_id(&meta))
            })
            .collect();
        StaticRoot {
            site: Site::directory(&root).expect("Site::directory on the fuzz root"),
            root: fs::canonicalize(&root).expect("canonical root"),
            embedded: Site::embedded(),
            servable,
        }
    })
}

/// For any request target: the file served is one of the servable files (by device and
/// inode, whatever path led there), never a secret; a redirect stays on the site
/// (`/x/`, never `//host`) and points at a directory of the root; refusals are 400 or 404.
pub fn check_static_path(data: &[u8]) {
    let target = String::from_utf8_lossy(data);
    let parsed = match parse_target(&target) {
        Ok(parsed) => parsed,
        Err(bad) => {
            if !target.starts_with('/') {
                assert_eq!(bad, BadTarget::NotOriginForm);
            }
            let status = bad.response().status;
            assert!(matches!(status, 400 | 404), "{bad:?} answered {status}");
            return;
        }
    };
    assert!(
        target.starts_with('/'),
        "accepted a target not starting with /"
    );
    for segment in &parsed.segments {
        assert!(!segment.is_empty(), "empty segment");
        assert!(
            segment != "." && segment != "..",
            "traversal segment {segment:?}"
        );
        assert!(!segment.contains(['/', '\\', '\0']), "segment {segment:?}");
        assert!(!segment.starts_with('.'), "dotfile segment {segment:?}");
    }
    // The canonical URL leads back to the same segments: what a redirect names is what the
    // request meant.
    let url = parsed.url(parsed.trailing_slash);
    check_site_local(&url);
    assert_eq!(
        parse_target(&url).as_ref(),
        Ok(&parsed),
        "url() round trip: {url}"
    );

    let site = static_root();
    check_lookup_on_disk(site, &parsed);
    match site.embedded.lookup(&parsed) {
        Lookup::Found(asset) => assert!(matches!(asset.body, Body::Bytes(_))),
        Lookup::Redirect(location) => check_redirect(&location, &parsed),
        Lookup::NotFound => {}
    }
}

fn check_site_local(location: &str) {
    assert!(location.starts_with('/'), "location {location:?}");
    assert!(
        !location.starts_with("//"),
        "location {location:?} leaves the site"
    );
    assert!(!location.contains(['\\', '\r', '\n', '\0']), "{location:?}");
}

fn check_redirect(location: &str, parsed: &TargetPath) {
    check_site_local(location);
    assert!(
        location.ends_with('/'),
        "a directory redirect ends in /: {location}"
    );
    assert!(
        !parsed.trailing_slash,
        "redirected a target that had its slash"
    );
    let again = parse_target(location).expect("a redirect location parses");
    assert_eq!(again.segments, parsed.segments, "redirect to another path");
}

/// The file a directory site serves is one of the servable files (by device and inode, so
/// whatever path led to it), and holds no secret. Returns its path under the root.
fn check_served_file(site: &StaticRoot, body: &Body, relative: &str) -> &'static str {
    let Body::File(file, len) = body else {
        panic!("a directory site served {body:?}");
    };
    let meta = file.metadata().expect("fstat the served file");
    assert!(meta.is_file());
    assert_eq!(*len, meta.len());
    let id = file_id(&meta);
    let Some((path, _)) = site.servable.iter().find(|(_, sid)| *sid == id) else {
        panic!("/{relative} served a file that is not servable: {id:?}");
    };
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut content).expect("read served file");
    for secret in SECRETS {
        assert!(!content.starts_with(secret), "/{relative} served a secret");
    }
    path
}

fn check_lookup_on_disk(site: &StaticRoot, parsed: &TargetPath) {
    let relative = parsed.segments.join("/");
    let named = site.servable.iter().find(|(path, _)| {
        *path == relative
            || (parsed.trailing_slash
                && ((relative.is_empty() && *path == "index.html")
                    || *path == format!("{relative}/index.html")))
    });
    match site.site.lookup(parsed) {
        Lookup::Found(asset) => {
            let path = check_served_file(site, &asset.body, &relative);
            if let Some((expected, _)) = named {
                assert_eq!(path, *expected, "/{relative} served another file");
            }
        }
        Lookup::Redirect(location) => {
            check_redirect(&location, parsed);
            let dir = std::fs::canonicalize(site.root.join(&relative)).expect("redirect target");
            assert!(
                dir.is_dir() && dir.starts_with(&site.root),
                "redirect to {dir:?}"
            );
        }
        Lookup::NotFound => {
            // A servable file named directly, with no detour, must be found.
            if let Some((path, _)) = named {
                panic!("/{relative} names {path} but was not found");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// static_request: a whole GET or HEAD through static_files::respond
// ---------------------------------------------------------------------------------------------

/// A request head through `static_files::respond`, on the fuzz web root and on the built-in
/// page: the response head is well-formed whatever the request held (no header injection),
/// its status is one the handler gives, a redirect stays on the site, a 200 from disk is a
/// servable file, a 304 answers a conditional request, and `If-None-Match: *` is never
/// answered with the whole file.
pub fn check_static_request(data: &[u8]) {
    use wschat::static_files::respond;
    let Ok(Parsed::Complete { request, .. }) = parse_head(data) else {
        return;
    };
    // The server hands only GET and HEAD without a body to the static handler.
    if !matches!(request.method.as_str(), "GET" | "HEAD") || request.announces_body() {
        return;
    }
    let site = static_root();
    let star = token_listed(&values(&request, "if-none-match"), b"*");
    let conditional = !values(&request, "if-none-match").is_empty()
        || !values(&request, "if-modified-since").is_empty();
    for (which, s) in [("disk", &site.site), ("embedded", &site.embedded)] {
        let response = respond(s, &request);
        let status = response.status;
        assert!(
            matches!(status, 200 | 301 | 304 | 400 | 404),
            "{which}: status {status}"
        );
        let head = response.head();
        check_response_head(&head, status);
        match status {
            200 => {
                assert!(!star, "{which}: 200 for If-None-Match: *");
                if which == "disk" {
                    check_served_file(site, &response.body, &request.target);
                }
            }
            301 => {
                let location = head
                    .split("\r\n")
                    .find_map(|line| line.strip_prefix("Location: "))
                    .expect("a 301 has a Location");
                check_site_local(location);
                assert!(location.ends_with('/'), "{location}");
            }
            304 => assert!(conditional, "{which}: 304 for an unconditional request"),
            _ => {}
        }
    }
}

/// A response head: the status line, `Name: value` lines with token names and values free of
/// control characters, one blank line at the end, and a length unless 1xx or 304.
fn check_response_head(head: &str, status: u16) {
    let Some((lines, rest)) = head.split_once("\r\n\r\n") else {
        panic!("no blank line: {head:?}");
    };
    assert!(rest.is_empty(), "bytes after the head: {head:?}");
    let mut lines = lines.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    assert!(
        status_line.starts_with(&format!("HTTP/1.1 {status} ")),
        "{status_line:?}"
    );
    let mut length = false;
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {name:?}"
        );
        assert!(
            !value.chars().any(|c| c.is_control() && c != '\t'),
            "{line:?}"
        );
        length |= name.eq_ignore_ascii_case("content-length");
    }
    assert_eq!(
        length,
        status >= 200 && status != 304,
        "Content-Length in {head:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// WebSocket frames: a strict parser of what the server sends, a lenient one of what clients
// send, and an encoder for tests.
// ---------------------------------------------------------------------------------------------

/// One message the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (possibly reassembled from fragments).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// A close frame: its code and reason, if it had a payload.
    Close(Option<(u16, String)>),
}

/// True for a close code a peer may put on the wire (RFC 6455 section 7.4: the codes defined
/// in 7.4.1, the IANA-registered 1012-1014, and the 3000-4999 ranges of 7.4.2). Never 1004,
/// 1005, 1006 or 1015, nothing below 1000, no unassigned 1016-2999, nothing from 5000.
pub fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One frame's header, read from `buf`; `None` when `buf` ends inside it.
struct FrameHead {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    /// Whether the length used the fewest bytes possible (RFC 6455 section 5.2).
    minimal: bool,
    header_len: usize,
}

fn read_frame_head(buf: &[u8]) -> Option<FrameHead> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let mut pos = 2;
    let (len, minimal) = match b1 & 0x7f {
        126 => {
            let l = u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as u64;
            pos = 4;
            (l, l >= 126)
        }
        127 => {
            let l = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            pos = 10;
            (l, l > 0xffff && l >> 63 == 0)
        }
        l => (l as u64, true),
    };
    let mask = if b1 & 0x80 != 0 {
        let m: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(m)
    } else {
        None
    };
    Some(FrameHead {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        mask,
        len,
        minimal,
        header_len: pos,
    })
}

/// Parses everything the server wrote as RFC 6455 server frames, strictly: FIN and opcode
/// valid, no RSV bits (no extension is ever negotiated), unmasked, lengths minimal, control
/// frames unfragmented and at most 125 bytes, close payloads a valid code and UTF-8 reason,
/// text messages UTF-8, fragments in order, nothing after a close frame, no partial frame.
pub fn parse_server_output(out: &[u8]) -> Result<Vec<WsMessage>, String> {
    let mut messages = Vec::new();
    let mut pos = 0;
    let mut fragmented: Option<(u8, Vec<u8>)> = None;
    let mut closed = false;
    while pos < out.len() {
        if closed {
            return Err(format!("{} bytes after the close frame", out.len() - pos));
        }
        let head = read_frame_head(&out[pos..]).ok_or("output ends inside a frame header")?;
        let at = format!("frame at byte {pos}");
        if head.rsv != 0 {
            return Err(format!("{at}: RSV bits {:#x} set", head.rsv));
        }
        if head.mask.is_some() {
            return Err(format!("{at}: a server frame is masked"));
        }
        if !head.minimal {
            return Err(format!("{at}: length {} not minimally encoded", head.len));
        }
        let start = pos + head.header_len;
        let end = usize::try_from(head.len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= out.len())
            .ok_or_else(|| format!("{at}: output ends inside the payload"))?;
        let payload = out[start..end].to_vec();
        pos = end;
        match head.opcode {
            0x8..=0xa => {
                if !head.fin {
                    return Err(format!("{at}: fragmented control frame"));
                }
                if payload.len() > 125 {
                    return Err(format!("{at}: control frame of {} bytes", payload.len()));
                }
                messages.push(match head.opcode {
                    0x8 => {
                        closed = true;
                        WsMessage::Close(
                            parse_close_payload(&payload).map_err(|e| format!("{at}: {e}"))?,
                        )
                    }
                    0x9 => WsMessage::Ping(payload),
                    _ => WsMessage::Pong(payload),
                });
            }
            0x1 | 0x2 => {
                if fragmented.is_some() {
                    return Err(format!("{at}: new message inside a fragmented one"));
                }
                if head.fin {
                    messages.push(
                        data_message(head.opcode, payload).map_err(|e| format!("{at}: {e}"))?,
                    );
                } else {
                    fragmented = Some((head.opcode, payload));
                }
            }
            0x0 => {
                let Some((opcode, mut data)) = fragmented.take() else {
                    return Err(format!("{at}: continuation with no message to continue"));
                };
                data.extend_from_slice(&payload);
                if head.fin {
                    messages.push(data_message(opcode, data).map_err(|e| format!("{at}: {e}"))?);
                } else {
                    fragmented = Some((opcode, data));
                }
            }
            op => return Err(format!("{at}: reserved opcode {op:#x}")),
        }
    }
    if fragmented.is_some() {
        return Err("output ends inside a fragmented message".into());
    }
    Ok(messages)
}

fn data_message(opcode: u8, data: Vec<u8>) -> Result<WsMessage, String> {
    if opcode == 0x1 {
        String::from_utf8(data)
            .map(WsMessage::Text)
            .map_err(|_| "text message is not UTF-8".to_string())
    } else {
        Ok(WsMessage::Binary(data))
    }
}

fn parse_close_payload(payload: &[u8]) -> Result<Option<(u16, String)>, String> {
    match payload {
        [] => Ok(None),
        [_] => Err("close payload of one byte".into()),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(format!("close code {code} may not be sent"));
            }
            let reason = String::from_utf8(reason.to_vec())
                .map_err(|_| format!("close {code} reason is not UTF-8"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// Encodes one frame as a client sends it (masked with `mask`). For building seeds and tests.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The data messages a well-behaved client sent, read until the first thing that is not
/// plainly valid (a close, an unmasked or oversized frame, RSV bits, a reserved opcode, a
/// non-minimal length, bad UTF-8, a broken fragment sequence, or the end of the input). Every
/// message returned is one the echo endpoint must send back, in this order.
fn clean_client_messages(stream: &[u8], max_message: usize) -> Vec<WsMessage> {
    let mut messages = Vec::new();
    let mut pos = 0;
    let mut fragmented: Option<(u8, Vec<u8>)> = None;
    while let Some(head) = read_frame_head(&stream[pos..]) {
        let Some(mask) = head.mask else { break };
        if head.rsv != 0 || !head.minimal || head.len > max_message as u64 {
            break;
        }
        let start = pos + head.header_len;
        let end = start + head.len as usize;
        if end > stream.len() {
            break;
        }
        let payload: Vec<u8> = stream[start..end]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        pos = end;
        let finished = match (head.opcode, fragmented.take()) {
            (0x9 | 0xa, frag) if head.fin && payload.len() <= 125 => {
                fragmented = frag;
                None
            }
            (0x1 | 0x2, None) => Some((head.opcode, payload)),
            (0x0, Some((opcode, mut data))) => {
                data.extend_from_slice(&payload);
                Some((opcode, data))
            }
            _ => break,
        };
        if let Some((opcode, data)) = finished {
            if data.len() > max_message {
                break;
            }
            if head.fin {
                match data_message(opcode, data) {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            } else {
                fragmented = Some((opcode, data));
            }
        }
    }
    messages
}

// ---------------------------------------------------------------------------------------------
// A small JSON parser, for the chat's text frames.
// ---------------------------------------------------------------------------------------------

/// A JSON value. Objects keep their keys in order, and duplicates are refused at parse time.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, kept as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of member `key`.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Parses `text` as exactly one JSON value (RFC 8259), with nothing but whitespace around it.
pub fn parse_json(text: &str) -> Result<Json, String> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(format!("trailing bytes at {}", parser.pos));
    }
    Ok(value)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl JsonParser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", b as char, self.pos))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_ws();
        self.depth += 1;
        if self.depth > 64 {
            return Err("nested too deep".into());
        }
        let value = match self.bytes.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut members: Vec<(String, Json)> = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.skip_ws();
                        let key = self.string()?;
                        if members.iter().any(|(k, _)| *k == key) {
                            return Err(format!("duplicate key {key:?}"));
                        }
                        self.skip_ws();
                        self.eat(b':')?;
                        let value = self.value()?;
                        members.push((key, value));
                        self.skip_ws();
                        if self.bytes.get(self.pos) == Some(&b',') {
                            self.pos += 1;
                        } else {
                            self.eat(b'}')?;
                            break;
                        }
                    }
                }
                Json::Object(members)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.skip_ws();
                        if self.bytes.get(self.pos) == Some(&b',') {
                            self.pos += 1;
                        } else {
                            self.eat(b']')?;
                            break;
                        }
                    }
                }
                Json::Array(items)
            }
            Some(b'"') => Json::String(self.string()?),
            Some(b't') => self.literal("true", Json::Bool(true))?,
            Some(b'f') => self.literal("false", Json::Bool(false))?,
            Some(b'n') => self.literal("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(format!("unexpected byte at {}", self.pos)),
        };
        self.depth -= 1;
        Ok(value)
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at {}", self.pos))
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while matches!(p.bytes.get(p.pos), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos > s
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        if self.bytes.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return Err(format!("bad number at {start}"));
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?;
        Ok(Json::Number(text.to_string()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or("short \\u escape")?;
        let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("bad \\u escape".into());
        }
        self.pos += 4;
        u32::from_str_radix(hex, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and we stopped at an ASCII byte: a char boundary.
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?,
            );
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = *self.bytes.get(self.pos).ok_or("unfinished escape")?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let c = match unit {
                                0xd800..=0xdbff => {
                                    self.eat(b'\\')?;
                                    self.eat(b'u')?;
                                    let low = self.hex4()?;
                                    if !(0xdc00..=0xdfff).contains(&low) {
                                        return Err("unpaired high surrogate".into());
                                    }
                                    0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                                }
                                0xdc00..=0xdfff => return Err("unpaired low surrogate".into()),
                                unit => unit,
                            };
                            out.push(char::from_u32(c).ok_or("bad code point")?);
                        }
                        _ => return Err(format!("bad escape at {}", self.pos - 1)),
                    }
                }
                Some(_) => {
                    return Err(format!("raw control character in a string at {}", self.pos))
                }
                None => return Err("unterminated string".into()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the chat server says, decoded.
// ---------------------------------------------------------------------------------------------

/// One chat event as a member should receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// `{"type":"welcome","name":..,"members":[..]}`
    Welcome {
        /// The accepted name.
        name: String,
        /// The others present.
        members: Vec<String>,
    },
    /// `{"type":"name-refused","reason":..}`
    NameRefused {
        /// Why.
        reason: String,
    },
    /// `{"type":"message","from":..,"text":..[,"backlog":true]}`
    Message {
        /// Sender.
        from: String,
        /// Text.
        text: String,
        /// Replayed to a newcomer.
        backlog: bool,
    },
    /// `{"type":"join","name":..}`
    Join {
        /// Who.
        name: String,
    },
    /// `{"type":"leave","name":..}`
    Leave {
        /// Who.
        name: String,
    },
}

/// Decodes one text frame the chat server sent: exactly one JSON object, no duplicate keys,
/// a `type` the server sends, and exactly that type's fields.
pub fn decode_chat_frame(text: &str) -> Result<ChatEvent, String> {
    let json = parse_json(text)?;
    let kind = json.str("type").ok_or("no string \"type\"")?;
    let keys = json.keys();
    let string = |key: &str| {
        json.str(key)
            .map(str::to_string)
            .ok_or_else(|| format!("{kind}: no string {key:?}"))
    };
    let expect_keys = |expected: &[&str]| {
        if keys == expected {
            Ok(())
        } else {
            Err(format!("{kind}: keys {keys:?}, expected {expected:?}"))
        }
    };
    match kind {
        "welcome" => {
            expect_keys(&["type", "name", "members"])?;
            let Some(Json::Array(items)) = json.get("members") else {
                return Err("welcome: members is not an array".into());
            };
            let members = items
                .iter()
                .map(|m| match m {
                    Json::String(s) => Ok(s.clone()),
                    _ => Err("welcome: a member is not a string".to_string()),
                })
                .collect::<Result<_, _>>()?;
            Ok(ChatEvent::Welcome {
                name: string("name")?,
                members,
            })
        }
        "name-refused" => {
            expect_keys(&["type", "reason"])?;
            Ok(ChatEvent::NameRefused {
                reason: string("reason")?,
            })
        }
        "message" => {
            let backlog = match json.get("backlog") {
                None => {
                    expect_keys(&["type", "from", "text"])?;
                    false
                }
                Some(Json::Bool(true)) => {
                    expect_keys(&["type", "from", "text", "backlog"])?;
                    true
                }
                Some(other) => return Err(format!("message: backlog is {other:?}")),
            };
            Ok(ChatEvent::Message {
                from: string("from")?,
                text: string("text")?,
                backlog,
            })
        }
        "join" | "leave" => {
            expect_keys(&["type", "name"])?;
            let name = string("name")?;
            Ok(if kind == "join" {
                ChatEvent::Join { name }
            } else {
                ChatEvent::Leave { name }
            })
        }
        other => Err(format!("a type the server never sends: {other:?}")),
    }
}

/// Everything a chat connection was sent, as events; `Err` on any frame that is not a valid
/// server frame or not a valid chat event. The close frame, if any, is returned apart.
fn chat_transcript(output: &[u8]) -> Result<(Vec<ChatEvent>, Option<WsMessage>), String> {
    let mut events = Vec::new();
    let mut close = None;
    for message in parse_server_output(output)? {
        match message {
            WsMessage::Text(text) => {
                events.push(decode_chat_frame(&text).map_err(|e| format!("{e}: {text}"))?)
            }
            close_frame @ WsMessage::Close(_) => close = Some(close_frame),
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            WsMessage::Binary(_) => return Err("the chat server sent a binary message".into()),
        }
    }
    Ok((events, close))
}

// ---------------------------------------------------------------------------------------------
// Outboxes over memory
// ---------------------------------------------------------------------------------------------

/// One writer pool per process, as in the server.
fn writer_pool() -> Arc<WriterPool> {
    static POOL: OnceLock<Arc<WriterPool>> = OnceLock::new();
    Arc::clone(POOL.get_or_init(|| WriterPool::new(Duration::from_secs(30))))
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

/// An outbox over an in-memory transport that receives `input`.
fn memory_outbox(input: Vec<u8>, limits: QueueLimits) -> (Arc<Outbox>, Arc<MemoryTransport>) {
    let transport = Arc::new(MemoryTransport::new(input));
    let dyn_transport: Arc<dyn Transport> = transport.clone();
    let outbox = Arc::new(Outbox::new(dyn_transport, peer(), limits, writer_pool()));
    (outbox, transport)
}

/// Waits (yielding, bounded) until the writer pool has written everything queued on `outbox`.
/// Ten seconds without getting there is a hang, reported as a failure.
fn wait_idle(outbox: &Outbox) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut spins = 0u32;
    while !outbox.is_idle() {
        assert!(Instant::now() < deadline, "outbox still busy after 10 s");
        spins += 1;
        if spins < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// session: the bytes after a valid upgrade, through session::run
// ---------------------------------------------------------------------------------------------

/// What the observer member says before the fuzzed member arrives (it is in the backlog).
pub const BOB_SAYS: &str = "hi <all> & \"you\"\u{2028}";

/// The limits of a session run, chosen by the first input byte.
#[derive(Debug, Clone, Copy)]
pub struct SessionSetup {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// Largest message.
    pub max_message: usize,
    /// Messages per 10 s on the chat (0: unlimited).
    pub rate_limit: u32,
    /// Outgoing queue limits.
    pub limits: QueueLimits,
    /// Bytes of the stream given to `run` as already read (the `leftover` after the head).
    pub leftover: usize,
}

impl SessionSetup {
    /// Bit 0: chat (1) or echo (0). Bit 1: echo limit 1 KiB instead of 64 KiB. Bit 2: tight
    /// outgoing queue (8 messages, 1 KiB). Bit 3: chat rate limit of 5 per 10 s. Bits 4-7 times
    /// 7: how many stream bytes arrive as leftover.
    pub fn from_byte(selector: u8) -> Self {
        let endpoint = if selector & 1 == 1 {
            Endpoint::Chat
        } else {
            Endpoint::Echo
        };
        SessionSetup {
            endpoint,
            max_message: match (endpoint, selector & 2 != 0) {
                (Endpoint::Chat, _) => 4096,
                (Endpoint::Echo | Endpoint::Inspect, false) => 64 * 1024,
                (Endpoint::Echo | Endpoint::Inspect, true) => 1024,
            },
            rate_limit: if selector & 8 != 0 { 5 } else { 0 },
            limits: if selector & 4 != 0 {
                QueueLimits {
                    messages: 8,
                    bytes: 1024,
                }
            } else {
                QueueLimits {
                    messages: 1 << 16,
                    bytes: 1 << 26,
                }
            },
            leftover: usize::from(selector >> 4) * 7,
        }
    }
}

/// Runs the bytes after an upgrade through `session::run`, as `/echo` or `/chat` (first input
/// byte, see [`SessionSetup::from_byte`]), with an observer `bob` in the room. Checks: no panic
/// or hang; what the server wrote parses as valid server frames ending at most in one close;
/// output is bounded by a multiple of the input; the echo returns the client's messages in
/// order; on the chat every text frame is one JSON event of the server's, and bob hears the
/// newcomer join, speak and leave under exactly the name it was welcomed with.
pub fn check_session(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let setup = SessionSetup::from_byte(selector);
    let split = setup.leftover.min(stream.len());
    let (leftover, rest) = stream.split_at(split);

    let room = Room::new(50);
    let roomy = QueueLimits {
        messages: 1 << 16,
        bytes: 1 << 26,
    };
    let (bob_outbox, bob_transport) = memory_outbox(Vec::new(), roomy);
    let bob = room
        .join("bob", &bob_outbox)
        .expect("bob joins an empty room");
    bob.say(BOB_SAYS, Flush::Now);

    let (outbox, transport) = memory_outbox(rest.to_vec(), setup.limits);
    let config = SessionConfig {
        max_message: setup.max_message,
        rate_limit: setup.rate_limit,
    };
    let outcome = session::run(&outbox, leftover.to_vec(), setup.endpoint, &config, &room);
    wait_idle(&outbox);
    assert_eq!(room.members(), ["bob"], "the session left the room");
    drop(bob);
    wait_idle(&bob_outbox);

    let output = transport.output();
    let messages = parse_server_output(&output)
        .unwrap_or_else(|e| panic!("invalid server output ({e}): {}", hex(&output)));
    let limit = match setup.endpoint {
        Endpoint::Echo | Endpoint::Inspect => 2 * stream.len() + 512,
        Endpoint::Chat => 16 * stream.len() + 1024,
    };
    assert!(
        output.len() <= limit,
        "{} bytes out for {} in",
        output.len(),
        stream.len()
    );
    // A session that ends for a reason of the server's tells the client that reason. Not
    // checked when the queue may have overflowed: then the 1008 goes out, but the session
    // still handles the frames tungstenite had already buffered, and the outcome it logs can
    // be a later reason whose close frame was never sent (reported; timing-dependent).
    if !matches!(outcome.code, 1000 | 1006) && setup.limits.messages >= 1 << 16 {
        assert!(
            matches!(messages.last(), Some(WsMessage::Close(Some((code, _)))) if *code == outcome.code),
            "outcome {outcome:?} but the last frame sent is {:?}",
            messages.last()
        );
    }

    match setup.endpoint {
        Endpoint::Echo | Endpoint::Inspect => {
            let sent = clean_client_messages(stream, setup.max_message);
            let echoed: Vec<&WsMessage> = messages
                .iter()
                .filter(|m| matches!(m, WsMessage::Text(_) | WsMessage::Binary(_)))
                .collect();
            assert!(
                echoed.len() >= sent.len(),
                "{} clean messages sent, {} echoed",
                sent.len(),
                echoed.len()
            );
            for (i, (echo, original)) in echoed.iter().zip(&sent).enumerate() {
                assert_eq!(*echo, original, "echo of message {i} differs");
            }
        }
        Endpoint::Chat => check_chat_session(
            &output,
            &bob_transport.output(),
            setup.limits.messages < 1 << 16,
        ),
    }
}

/// `tight`: the newcomer's queue may have overflowed, dropping some of its frames.
fn check_chat_session(output: &[u8], bob_output: &[u8], tight: bool) {
    let (events, _) = chat_transcript(output).unwrap_or_else(|e| panic!("newcomer: {e}"));
    let (bob_events, bob_close) =
        chat_transcript(bob_output).unwrap_or_else(|e| panic!("bob: {e}"));
    assert!(bob_close.is_none(), "bob was closed");

    // Bob hears exactly: his welcome, then possibly the newcomer's join under some name X,
    // messages from X and nobody else, and X's leave.
    let bob_welcome = ChatEvent::Welcome {
        name: "bob".into(),
        members: vec![],
    };
    assert_eq!(bob_events.first(), Some(&bob_welcome), "bob's welcome");
    let joined = match bob_events.get(1) {
        None => None,
        Some(ChatEvent::Join { name }) => Some(name.clone()),
        Some(other) => panic!("bob heard {other:?} before any join"),
    };
    if let Some(name) = &joined {
        check_accepted_name(name, &["bob"]);
        let (last, middle) = bob_events[2..]
            .split_last()
            .unwrap_or_else(|| panic!("bob never heard {name:?} leave"));
        assert_eq!(
            last,
            &ChatEvent::Leave { name: name.clone() },
            "bob's last event"
        );
        for event in middle {
            assert!(
                matches!(event, ChatEvent::Message { from, backlog: false, .. } if from == name),
                "bob heard {event:?} while only {name:?} could speak"
            );
        }
    }

    // The newcomer: refusals, then at most one welcome (under the name bob heard join)
    // followed by bob's backlog line.
    let welcome_at = events
        .iter()
        .position(|e| matches!(e, ChatEvent::Welcome { .. }));
    for event in &events[..welcome_at.unwrap_or(events.len())] {
        assert!(
            matches!(event, ChatEvent::NameRefused { reason } if !reason.is_empty()),
            "before the welcome: {event:?}"
        );
    }
    match welcome_at {
        Some(at) => {
            let ChatEvent::Welcome { name, members } = &events[at] else {
                unreachable!()
            };
            assert_eq!(
                Some(name),
                joined.as_ref(),
                "welcomed as {name:?}, bob heard"
            );
            assert_eq!(members, &["bob"], "welcome members");
            let backlog = [ChatEvent::Message {
                from: "bob".into(),
                text: BOB_SAYS.into(),
                backlog: true,
            }];
            let after = &events[at + 1..];
            if tight {
                assert!(backlog.starts_with(after), "after the welcome: {after:?}");
            } else {
                assert_eq!(after, &backlog, "after the welcome");
            }
        }
        None => assert!(
            tight || joined.is_none(),
            "bob heard {joined:?} join, but the newcomer was never welcomed"
        ),
    }
}

/// An accepted name, checked against the rules without the library's own functions where
/// that is easy: trimmed, 1 to 32 characters, no control or zero-width/bidi characters, and
/// not equal ignoring case to anyone present.
fn check_accepted_name(name: &str, present: &[&str]) {
    assert_eq!(name, name.trim(), "untrimmed name {name:?}");
    let chars = name.chars().count();
    assert!((1..=32).contains(&chars), "name of {chars} characters");
    assert!(
        !name.chars().any(|c| c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}' | '\u{FEFF}')),
        "name with invisible characters {name:?}"
    );
    for other in present {
        assert!(
            name.to_lowercase() != other.to_lowercase(),
            "{name:?} accepted while {other:?} is present"
        );
        assert_ne!(
            name_key(name),
            name_key(other),
            "{name:?} looks like {other:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// chat_input: names and messages through Room::join and Membership::say
// ---------------------------------------------------------------------------------------------

/// Characters that make names collide, escape, or hide: what kind-3 records are made of.
const CHAT_ALPHABET: &[char] = &[
    'a',
    'A',
    '\u{430}',
    '\u{FF41}',
    '\u{3B1}',
    'b',
    'o',
    '\u{3BF}',
    'l',
    'i',
    '\u{131}',
    'I',
    ' ',
    '\u{3000}',
    '\u{A0}',
    '\t',
    '\n',
    '\u{200B}',
    '\u{202E}',
    '\u{FEFF}',
    '"',
    '\\',
    '<',
    '>',
    '&',
    '\u{2028}',
    '\u{1}',
    '\u{7F}',
    '\u{85}',
    'é',
    '😀',
    '\u{10FFFF}',
    '{',
    '}',
    ':',
    ',',
];

/// History kept by the room in this target: small, so the backlog wraps.
const CHAT_HISTORY: usize = 3;

struct Slot {
    outbox: Arc<Outbox>,
    transport: Arc<MemoryTransport>,
    membership: Option<Membership>,
    expected: Vec<ChatEvent>,
}

impl Slot {
    fn new() -> Self {
        let (outbox, transport) = memory_outbox(
            Vec::new(),
            QueueLimits {
                messages: 1 << 20,
                bytes: 1 << 30,
            },
        );
        Slot {
            outbox,
            transport,
            membership: None,
            expected: Vec::new(),
        }
    }
}

/// A script of up to four members: each record is `op, len, len bytes`. `op & 3` is the
/// member; `op >> 2 & 3` is 0 or 1: send the bytes as text (a name until accepted, then a
/// message), 2: leave, 3: send text made of [`CHAT_ALPHABET`] characters. Every frame each
/// member receives must be exactly the event the room's rules predict: the right welcome
/// with the others present, the backlog, joins and leaves of names that really joined and
/// left, and messages whose `from` is the member who said them.
pub fn check_chat_input(data: &[u8]) {
    let room = Room::new(CHAT_HISTORY);
    let mut slots: Vec<Slot> = (0..4).map(|_| Slot::new()).collect();
    let mut retired: Vec<Slot> = Vec::new();
    // Present members, in joining order: (slot, name).
    let mut present: Vec<(usize, String)> = Vec::new();
    let mut backlog: VecDeque<(String, String)> = VecDeque::new();

    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let take = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let who = usize::from(op & 3);
        let text: String = match (op >> 2) & 3 {
            2 => {
                if let Some(membership) = slots[who].membership.take() {
                    let name = membership.name().to_string();
                    drop(membership);
                    present.retain(|(slot, _)| *slot != who);
                    for (slot, _) in &present {
                        slots[*slot]
                            .expected
                            .push(ChatEvent::Leave { name: name.clone() });
                    }
                    slots[who].outbox.finish();
                    let done = std::mem::replace(&mut slots[who], Slot::new());
                    retired.push(done);
                }
                continue;
            }
            3 => bytes
                .iter()
                .map(|b| CHAT_ALPHABET[*b as usize % CHAT_ALPHABET.len()])
                .collect(),
            _ => String::from_utf8_lossy(bytes).into_owned(),
        };
        match &slots[who].membership {
            Some(membership) => {
                let from = membership.name().to_string();
                membership.say(&text, Flush::Now);
                for (slot, _) in present.iter().filter(|(slot, _)| *slot != who) {
                    slots[*slot].expected.push(ChatEvent::Message {
                        from: from.clone(),
                        text: text.clone(),
                        backlog: false,
                    });
                }
                if backlog.len() == CHAT_HISTORY {
                    backlog.pop_front();
                }
                backlog.push_back((from, text));
            }
            None => {
                let others: Vec<&str> = present.iter().map(|(_, n)| n.as_str()).collect();
                let predicted = clean_name(&text).and_then(|name| {
                    if others.iter().any(|o| name_key(o) == name_key(name)) {
                        Err(wschat::chat_protocol::NameError::Taken)
                    } else {
                        Ok(name)
                    }
                });
                let outbox = Arc::clone(&slots[who].outbox);
                match room.join(&text, &outbox) {
                    Ok(membership) => {
                        let name = membership.name().to_string();
                        assert_eq!(predicted, Ok(name.as_str()), "accepted {text:?}");
                        check_accepted_name(&name, &others);
                        let others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
                        slots[who].expected.push(ChatEvent::Welcome {
                            name: name.clone(),
                            members: others,
                        });
                        for (from, said) in &backlog {
                            slots[who].expected.push(ChatEvent::Message {
                                from: from.clone(),
                                text: said.clone(),
                                backlog: true,
                            });
                        }
                        for (slot, _) in &present {
                            slots[*slot]
                                .expected
                                .push(ChatEvent::Join { name: name.clone() });
                        }
                        present.push((who, name));
                        slots[who].membership = Some(membership);
                    }
                    Err(refused) => {
                        assert_eq!(predicted, Err(refused), "refused {text:?}");
                        // As the session does.
                        let reason = refused.reason();
                        outbox.push(text_frame(&Event::NameRefused { reason }.to_json()));
                        slots[who].expected.push(ChatEvent::NameRefused {
                            reason: reason.into(),
                        });
                    }
                }
            }
        }
        let names: Vec<String> = present.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(room.members(), names, "room members");
    }
    // Everyone leaves, in slot order.
    for who in 0..slots.len() {
        if let Some(membership) = slots[who].membership.take() {
            let name = membership.name().to_string();
            drop(membership);
            present.retain(|(slot, _)| *slot != who);
            for (slot, _) in &present {
                slots[*slot]
                    .expected
                    .push(ChatEvent::Leave { name: name.clone() });
            }
        }
    }
    assert!(room.members().is_empty());
    for slot in retired.iter().chain(&slots) {
        wait_idle(&slot.outbox);
        let output = slot.transport.output();
        let (events, close) = chat_transcript(&output).unwrap_or_else(|e| panic!("{e}"));
        assert!(close.is_none(), "a close frame in the chat: {close:?}");
        assert_eq!(events, slot.expected, "a member's transcript");
    }
}

// ---------------------------------------------------------------------------------------------
// httpdate: parse and format
// ---------------------------------------------------------------------------------------------

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `parse` never panics; whatever it accepts formats back to a date it parses to the same
/// instant, and a real calendar date comes back exactly as written (after the day name, which
/// `parse` ignores). `format` of any time up to year 9999 round-trips.
pub fn check_httpdate(data: &[u8]) {
    use wschat::httpdate::{format, parse};
    let text = String::from_utf8_lossy(data);
    // IMF-fixdate has four-digit years; parse can step past 9999 (31 Dec 9999 23:59:60).
    let end_of_9999 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    if let Some(time) = parse(&text).filter(|t| *t < end_of_9999) {
        let formatted = format(time);
        assert_eq!(formatted.len(), 29, "{formatted}");
        assert_eq!(
            parse(&formatted),
            Some(time),
            "{formatted} does not parse back"
        );
        let b = text.trim().as_bytes();
        let field = |r: std::ops::Range<usize>| -> u64 {
            std::str::from_utf8(&b[r])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        const MONTHS: [&[u8]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        let month = MONTHS
            .iter()
            .position(|m| *m == &b[8..11])
            .expect("a month") as u64
            + 1;
        let (day, year, second) = (field(5..7), field(12..16), field(23..25));
        if day <= days_in_month(year, month) && second <= 59 {
            assert_eq!(&formatted.as_bytes()[5..], &b[5..], "{formatted} vs {text}");
        }
    }
    // Any second from 1970 to the end of 9999.
    if data.len() >= 8 {
        let secs = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) % 253_402_300_800;
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        let formatted = format(time);
        assert_eq!(parse(&formatted), Some(time), "{formatted} ({secs} s)");
    }
}

// ---------------------------------------------------------------------------------------------
// cli: the command line
// ---------------------------------------------------------------------------------------------

/// Arguments are the input split at NUL bytes. `cli::parse` never panics; an error is one
/// non-empty line; an accepted configuration keeps every documented bound.
pub fn check_cli(data: &[u8]) {
    use wschat::cli::{parse, Command};
    let args: Vec<String> = data
        .split(|&b| b == 0)
        .take(64)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match parse(args.clone()) {
        Err(message) => {
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
        Ok(Command::Run(config)) => {
            let (host, port) = config.addr.rsplit_once(':').expect("HOST:PORT");
            assert!(
                !host.is_empty() && port.parse::<u16>().is_ok(),
                "{}",
                config.addr
            );
            for (what, value) in [
                ("max chat message", config.max_chat_message),
                ("max echo message", config.max_echo_message),
                ("max connections", config.max_connections),
                ("queue messages", config.queue_messages),
                ("queue bytes", config.queue_bytes),
            ] {
                assert!(value >= 1, "{what} is 0 from {args:?}");
            }
            for timeout in [
                config.head_timeout,
                config.write_timeout,
                config.keep_alive_timeout,
            ] {
                assert!(!timeout.is_zero(), "a zero timeout from {args:?}");
            }
        }
        Ok(Command::Help | Command::Version) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// server: one connection's bytes to a real wschat server on loopback
// ---------------------------------------------------------------------------------------------

/// The server every `server` input talks to: started once per process, serving the fuzz web
/// root, with no chat history (so every input sees the same room: empty).
struct TestServer {
    addr: SocketAddr,
    allowed: Vec<String>,
    max_echo: usize,
}

/// Requests per keep-alive connection on the `server` target's server.
const SERVER_MAX_REQUESTS: usize = 100;

fn test_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let config = wschat::Config {
            addr: "127.0.0.1:0".into(),
            root: Some(static_root().root.clone()),
            allowed_origins: vec![ALLOWED_ORIGIN.to_string()],
            history: 0,
            max_chat_message: 4096,
            max_echo_message: 64 * 1024,
            ping_interval: Duration::ZERO,
            rate_limit: 0,
            head_timeout: Duration::from_secs(5),
            keep_alive_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            // Low enough that the max-requests seed reaches it.
            max_requests_per_connection: SERVER_MAX_REQUESTS,
            ..wschat::Config::default()
        };
        let max_echo = config.max_echo_message;
        let server = wschat::Server::bind(config).expect("start the fuzz server");
        let addr = server.local_addr().expect("the fuzz server's address");
        std::thread::Builder::new()
            .name("fuzz-server".into())
            .spawn(move || server.run())
            .expect("start the fuzz server thread");
        TestServer {
            addr,
            allowed: vec![ALLOWED_ORIGIN.to_string()],
            max_echo,
        }
    })
}

/// Sends `data` on a new connection (then half-closes), reads until the server closes.
/// Returns what was read and whether the connection ended in a reset (which may have
/// discarded the end of what the server sent).
fn exchange(addr: SocketAddr, data: &[u8]) -> (Vec<u8>, bool) {
    use std::io::{ErrorKind, Write};
    use std::net::{Shutdown, TcpStream};
    let stream = TcpStream::connect(addr).expect("connect to the fuzz server");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("set a read timeout");
    let writer = stream.try_clone().expect("clone the client socket");
    let input = data.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = (&writer).write_all(&input);
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut output = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut reset = false;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => output.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the server neither finished nor closed the connection: {e}"),
        }
    }
    sender.join().expect("the sending thread");
    (output, reset)
}

/// What the server must answer to one request.
#[derive(Debug)]
struct Expected {
    status: u16,
    /// A HEAD: the length is announced, no body follows.
    head_only: bool,
    /// The connection ends after this reply.
    closes: bool,
}

/// Takes one HTTP response off the front of `out`. `None` when `out` ends inside it.
fn take_response<'a>(out: &mut &'a [u8], head_only: bool) -> Option<(u16, &'a str)> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&out[..end]).expect("a response head is ASCII");
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    check_response_head(head, status);
    let length: usize = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(0, |len| len.parse().expect("a numeric Content-Length"));
    let body = if head_only { 0 } else { length };
    if out.len() < end + body {
        return None;
    }
    *out = &out[end + body..];
    Some((status, head))
}

/// One connection's bytes, whatever they are, to a real server: the replies are exactly what
/// the library's own functions say each request deserves, in order, on a connection that is
/// kept alive or closed as promised; a 101 carries the right accept value and is followed by
/// valid frames only (the echo returns the client's messages; the chat sends one JSON event
/// per frame). A reset connection may have lost its tail, nothing else.
pub fn check_server(data: &[u8]) {
    use wschat::handshake::check_upgrade;
    use wschat::static_files::respond;
    let server = test_server();
    let site = static_root();
    let (output, reset) = exchange(server.addr, data);
    let mut out = &output[..];
    // Takes the reply the server owes next; false when the output ended early (only a reset
    // may do that).
    let expect = |out: &mut &[u8], expected: &Expected| -> Option<String> {
        match take_response(out, expected.head_only) {
            Some((status, head)) => {
                assert_eq!(status, expected.status, "reply to request: {head}");
                assert_eq!(
                    head.contains("\r\nConnection: close\r\n"),
                    expected.closes,
                    "Connection: close in {head}"
                );
                Some(head.to_string())
            }
            None => {
                assert!(
                    reset,
                    "output ends inside a reply: {:?}",
                    String::from_utf8_lossy(out)
                );
                None
            }
        }
    };
    let mut pos = 0;
    let mut served = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        // The server never reads more than the head limit: at exactly MAX_HEAD_BYTES of an
        // unfinished head it answers 431, so a byte after that can never make it a 400.
        let window = &rest[..rest.len().min(MAX_HEAD_BYTES)];
        let (request, head_len) = match parse_head(window) {
            Ok(Parsed::Complete { request, head_len }) => (request, head_len),
            Ok(Parsed::Partial) => {
                // The peer closed inside a head: 400.
                let closing = Expected {
                    status: 400,
                    head_only: false,
                    closes: true,
                };
                expect(&mut out, &closing);
                break;
            }
            Err(error) => {
                let status = error.response().expect("a reply").status;
                expect(
                    &mut out,
                    &Expected {
                        status,
                        head_only: false,
                        closes: true,
                    },
                );
                break;
            }
        };
        served += 1;
        if matches!(request.path(), "/chat" | "/echo") {
            match check_upgrade(&request, &server.allowed) {
                Ok(accept) => {
                    let Some(head) = expect(
                        &mut out,
                        &Expected {
                            status: 101,
                            head_only: false,
                            closes: false,
                        },
                    ) else {
                        break;
                    };
                    assert!(head.contains(&format!("\r\nSec-WebSocket-Accept: {accept}\r\n")));
                    check_server_session(&request, &rest[head_len..], out, reset, server);
                    return;
                }
                Err(rejection) => {
                    let refusal = Expected {
                        status: rejection.status(),
                        head_only: false,
                        closes: true,
                    };
                    expect(&mut out, &refusal);
                    break;
                }
            }
        }
        let mut reply = if request.announces_body() {
            wschat::http::Response::error(400, "request bodies are not accepted")
        } else if matches!(request.method.as_str(), "GET" | "HEAD") {
            respond(&site.site, &request)
        } else {
            wschat::http::Response::error(405, "only GET and HEAD are served")
        };
        if request.wants_close() || served >= SERVER_MAX_REQUESTS {
            reply = reply.header("Connection", "close");
        }
        let expected = Expected {
            status: reply.status,
            head_only: request.method == "HEAD",
            closes: reply.closes_connection(),
        };
        if expect(&mut out, &expected).is_none() || expected.closes {
            break;
        }
        pos += head_len;
    }
    assert!(
        out.is_empty() || reset,
        "{} bytes after the last reply: {:?}",
        out.len(),
        String::from_utf8_lossy(&out[..out.len().min(200)])
    );
}

/// After a 101: the frames the server sent on /echo or /chat, given what the client sent.
fn check_server_session(
    request: &Request,
    client: &[u8],
    frames: &[u8],
    reset: bool,
    server: &TestServer,
) {
    let messages = match parse_server_output(frames) {
        Ok(messages) => messages,
        // A reset may cut the last frame short; everything before it must still be valid.
        Err(e) if reset && e.contains("ends inside") => return,
        Err(e) => panic!("invalid frames after a 101 ({e}): {}", hex(frames)),
    };
    if request.path() == "/echo" {
        let sent = clean_client_messages(client, server.max_echo);
        let echoed: Vec<&WsMessage> = messages
            .iter()
            .filter(|m| matches!(m, WsMessage::Text(_) | WsMessage::Binary(_)))
            .collect();
        if !reset {
            assert!(
                echoed.len() >= sent.len(),
                "{} sent, {} echoed",
                sent.len(),
                echoed.len()
            );
        }
        for (i, (echo, original)) in echoed.iter().zip(&sent).enumerate() {
            assert_eq!(*echo, original, "echo of message {i} differs");
        }
    } else {
        // Alone in a room without history: refusals, then at most a welcome to an empty room.
        let (events, _) = chat_transcript(frames).unwrap_or_else(|e| panic!("chat: {e}"));
        for (i, event) in events.iter().enumerate() {
            match event {
                ChatEvent::NameRefused { reason } => assert!(!reason.is_empty()),
                ChatEvent::Welcome { name, members } if i + 1 == events.len() => {
                    // The server is shared by every input, and a previous input's member leaves
                    // when the server has finished with its connection, which may be a moment
                    // after that client saw the connection end (a reset, say). So others may
                    // still be listed; each must be a name the rules accept, and not ours.
                    let present: Vec<&str> = members.iter().map(String::as_str).collect();
                    check_accepted_name(name, &present);
                    for member in &present {
                        check_accepted_name(member, &[]);
                    }
                }
                other => panic!("alone in the room, yet sent {other:?}"),
            }
        }
    }
}

/// Bytes as lowercase hex, for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
