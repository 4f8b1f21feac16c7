//! The seed generator: every seed of `fuzz/seeds/`, made from readable pieces, so that a change
//! to a seed is a change to this file (`committed_seeds_match_the_generator` checks the two
//! agree; `write_seeds` writes them).

use super::checks;
use super::checks::frames::client_frame;

pub type Seed = (&'static str, String, Vec<u8>);

pub fn seeds() -> Vec<Seed> {
    let mut all = Vec::new();
    let mut add = |target: &'static str, list: Vec<(&str, Vec<u8>)>| {
        for (name, bytes) in list {
            all.push((target, name.to_string(), bytes));
        }
    };
    add("http_head", http_head_seeds());
    add("upgrade", upgrade_seeds());
    add("static_path", static_path_seeds());
    add("static_request", static_request_seeds());
    add("session", session_seeds());
    add("chat_input", chat_input_seeds());
    add("httpdate", httpdate_seeds());
    add("cli", cli_seeds());
    add("server", server_seeds());
    add("history_log", history_log_seeds());
    add("inspect", checks::inspect::seeds());
    all
}

/// A room's log: whole lines written by the server, and the damage a crash or a disk can do.
fn history_log_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use wschat::internals::history::line::{encode, Entry};
    let line = |from: &str, text: &str| {
        encode(&Entry {
            at: "2026-12-02T05:22:24.123Z".into(),
            from: from.into(),
            text: text.into(),
        })
        .into_bytes()
    };
    let lines = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| line("alice", &format!("message {i}")))
            .collect()
    };
    let mut torn = lines(3);
    torn.extend_from_slice(&line("bob", "cut short")[..40]);
    let mut damaged = lines(3);
    damaged[100] ^= 0x20;
    let mut zeros = lines(2);
    zeros.extend_from_slice(&[0; 64]);
    zeros.extend(lines(2));
    let mut foreign = lines(1);
    foreign.extend_from_slice(b"{\"at\":\"x\",\"from\":\"eve\",\"text\":\"no crc\"}\n");
    foreign.extend(lines(1));
    vec![
        ("empty", Vec::new()),
        ("one", line("alice", "hi")),
        ("many", lines(12)),
        ("torn-tail", torn),
        ("damaged-middle", damaged),
        ("zeros-between", zeros),
        ("foreign-line", foreign),
        (
            "escapes",
            line(
                "bob",
                "quote \" backslash \\ newline \n <tag> & \u{2028} 👩🏽‍⚕️ 𝄞",
            ),
        ),
        ("newlines-only", b"\n\n\n".to_vec()),
        (
            "no-newline",
            line("alice", "x")
                .into_iter()
                .filter(|&b| b != b'\n')
                .collect(),
        ),
        ("crlf", {
            let mut l = line("alice", "crlf");
            l.insert(l.len() - 1, b'\r');
            l
        }),
    ]
}

/// `\n` becomes `\r\n`.
fn crlf(head: &str) -> Vec<u8> {
    head.replace('\n', "\r\n").into_bytes()
}

/// The opening handshake of RFC 6455 section 1.3.
const RFC_UPGRADE: &str = "GET /chat HTTP/1.1\nHost: server.example.com\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n";

fn http_head_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut many = String::from("GET / HTTP/1.1\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: y\n"));
    }
    let mut hundred = String::from("GET / HTTP/1.1\n");
    for i in 0..100 {
        hundred.push_str(&format!("X-{i}: y\n"));
    }
    let mut large = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    large.resize(8300, b'a');
    // A complete head of exactly MAX_HEAD_BYTES.
    let mut at_limit = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    at_limit.resize(8192 - 4, b'b');
    at_limit.extend_from_slice(b"\r\n\r\n");
    vec![
        ("get-root", crlf("GET / HTTP/1.1\nHost: localhost\n\n")),
        ("upgrade-rfc", crlf(&format!("{RFC_UPGRADE}\n"))),
        (
            "upgrade-browser",
            crlf("GET /chat HTTP/1.1\nHost: 127.0.0.1:8080\nConnection: keep-alive, Upgrade\nPragma: no-cache\nCache-Control: no-cache\nUser-Agent: Mozilla/5.0\nUpgrade: websocket\nOrigin: http://127.0.0.1:8080\nSec-WebSocket-Version: 13\nAccept-Encoding: gzip, deflate, br\nAccept-Language: en-US,en;q=0.9\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\n\n"),
        ),
        ("head-method", crlf("HEAD /index.html HTTP/1.1\nHost: x\n\n")),
        ("post-with-body", crlf("POST /echo HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello")),
        ("pipelined", crlf("GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\nHost: x\n\n")),
        ("leading-crlf", crlf("\n\nGET / HTTP/1.1\nHost: x\n\n")),
        ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n".to_vec()),
        ("http10", crlf("GET / HTTP/1.0\n\n")),
        ("http2-version", crlf("GET / HTTP/2.0\n\n")),
        ("space-before-method", crlf(" GET / HTTP/1.1\n\n")),
        ("partial", crlf("GET / HTTP/1.1\nHost: x\n")),
        ("too-many-headers", crlf(&format!("{many}\n"))),
        ("max-headers", crlf(&format!("{hundred}\n"))),
        ("head-too-large", large),
        ("head-at-limit", at_limit),
        ("obs-fold", crlf("GET / HTTP/1.1\nX: a\n b\n\n")),
        ("header-without-colon", crlf("GET / HTTP/1.1\nHost\n\n")),
        ("nul-in-value", crlf("GET / HTTP/1.1\nX: a\0b\n\n")),
        ("non-utf8-value", b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec()),
        ("absolute-form", crlf("GET http://example.com/ HTTP/1.1\nHost: example.com\n\n")),
        ("asterisk", crlf("OPTIONS * HTTP/1.1\nHost: x\n\n")),
        ("tab-in-value", crlf("GET / HTTP/1.1\nX:\ta b\t\n\n")),
        ("empty-value", crlf("GET / HTTP/1.1\nX:\n\n")),
        ("duplicate-host", crlf("GET / HTTP/1.1\nHost: a\nHost: b\n\n")),
        ("transfer-encoding", crlf("GET / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n")),
        ("connection-close", crlf("GET / HTTP/1.1\nHost: x\nConnection: keep-alive, close\n\n")),
        ("space-in-target", crlf("GET /a b HTTP/1.1\nHost: x\n\n")),
        ("lowercase-version", crlf("GET / http/1.1\nHost: x\n\n")),
        ("space-before-colon", crlf("GET / HTTP/1.1\nHost : x\n\n")),
        ("empty", Vec::new()),
        ("crlf-only", b"\r\n".to_vec()),
    ]
}

fn upgrade_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let good = RFC_UPGRADE;
    let with = |extra: &str| crlf(&format!("{good}{extra}\n"));
    let replaced = |from: &str, to: &str| crlf(&format!("{}\n", good.replace(from, to)));
    let mut followed = with("");
    followed.extend_from_slice(&client_frame(true, 1, b"Hello", [0x37, 0xfa, 0x21, 0x3d]));
    vec![
        ("rfc", with("")),
        ("browser", replaced("Connection: Upgrade", "Connection: keep-alive, Upgrade")),
        ("mixed-case", replaced("Upgrade: websocket", "Upgrade: WebSocket")),
        (
            "lowercase-names",
            crlf(&format!("{}\n", good.to_lowercase().replace("get /chat http/1.1", "GET /chat HTTP/1.1").replace("dghlihnhbxbszsbub25jzq==", "dGhlIHNhbXBsZSBub25jZQ=="))),
        ),
        ("token-list", replaced("Connection: Upgrade", "Connection: keep-alive,Upgrade")),
        ("upgrade-list", replaced("Upgrade: websocket", "Upgrade: foo/1, websocket")),
        ("extensions", with("Sec-WebSocket-Extensions: permessage-deflate\nSec-WebSocket-Protocol: chat, superchat\n")),
        ("origin-allowed", with("Origin: https://chat.example\n")),
        ("origin-other", with("Origin: https://evil.example\n")),
        ("origin-twice", with("Origin: https://chat.example\nOrigin: https://evil.example\n")),
        ("origin-same-host", with("Origin: http://server.example.com\n")),
        ("origin-same-host-https", with("Origin: https://SERVER.example.com:443\n")),
        ("origin-same-host-other-port", with("Origin: http://server.example.com:8080\n")),
        ("origin-null", with("Origin: null\n")),
        (
            "origin-ipv6",
            crlf(&format!("{}Origin: http://[::1]:8080\n\n", good.replace("Host: server.example.com", "Host: [::1]:8080"))),
        ),
        ("content-length-zero", with("Content-Length: 0\n")),
        ("followed-by-frame", followed),
        ("reject-post", replaced("GET", "POST")),
        ("reject-http10", replaced("HTTP/1.1", "HTTP/1.0")),
        ("reject-no-host", replaced("Host: server.example.com\n", "")),
        ("reject-empty-host", replaced("Host: server.example.com", "Host:")),
        ("reject-two-hosts", with("Host: other.example\n")),
        ("reject-no-upgrade", replaced("Upgrade: websocket\n", "")),
        ("reject-upgrade-h2c", replaced("Upgrade: websocket", "Upgrade: h2c")),
        ("reject-upgrade-substring", replaced("Upgrade: websocket", "Upgrade: websockets")),
        ("reject-connection-keep-alive", replaced("Connection: Upgrade", "Connection: keep-alive")),
        ("reject-connection-substring", replaced("Connection: Upgrade", "Connection: Upgraded")),
        ("reject-no-key", replaced("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n", "")),
        ("reject-short-key", replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==")),
        ("reject-bad-base64-key", replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ!!")),
        ("reject-unpadded-key", replaced("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ")),
        ("reject-duplicate-key", with("Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\n")),
        ("reject-no-version", replaced("Sec-WebSocket-Version: 13\n", "")),
        ("reject-version-8", replaced("Version: 13", "Version: 8")),
        ("reject-version-list", replaced("Version: 13", "Version: 13, 8")),
        ("reject-two-versions", with("Sec-WebSocket-Version: 13\n")),
        ("reject-content-length", with("Content-Length: 5\n")),
        ("reject-transfer-encoding", with("Transfer-Encoding: chunked\n")),
        ("partial", crlf(good)),
    ]
}

fn static_path_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let targets: &[(&str, &str)] = &[
        ("root", "/"),
        ("index", "/index.html"),
        ("file", "/a.txt"),
        ("dir-no-slash", "/sub"),
        ("dir-slash", "/sub/"),
        ("file-in-dir", "/sub/b.css"),
        ("dir-without-index", "/sub/deeper/"),
        ("dir-without-index-no-slash", "/sub/deeper"),
        ("utf8-name", "/caf%C3%A9.txt"),
        ("space-name", "/a%20b.txt"),
        ("percent-name", "/%2541.txt"),
        ("query-and-fragment", "/sub/?x=1#y"),
        ("double-slash", "/sub//b.css"),
        ("file-with-slash", "/a.txt/"),
        ("symlink-inside", "/link-in"),
        ("symlink-out", "/link-out"),
        ("symlink-dir-out", "/link-dir-out/secret.txt"),
        ("symlink-dir-out-index", "/link-dir-out/"),
        ("symlink-absolute", "/link-abs"),
        ("symlink-to-dotfile", "/link-dot"),
        ("symlink-up", "/sub/link-up"),
        ("index-symlink-out", "/noindex-link/"),
        ("dotfile", "/.env"),
        ("dotdir", "/.git/config"),
        ("hidden-in-sub", "/sub/.hidden.txt"),
        ("dotdot", "/../root-isolated/secret.txt"),
        ("dotdot-encoded", "/%2e%2e/root-isolated/secret.txt"),
        ("dotdot-in-middle", "/sub/../a.txt"),
        ("dot", "/./a.txt"),
        ("encoded-slash", "/..%2froot-isolated%2fsecret.txt"),
        ("backslash", "/a%5c..%5cb"),
        ("raw-backslash", "/..\\root-isolated\\secret.txt"),
        ("double-encoded", "/%252e%252e/"),
        ("nul", "/a.txt%00.html"),
        ("bad-percent", "/%zz"),
        ("truncated-percent", "/a%2"),
        ("not-utf8", "/%ff"),
        ("overlong-utf8", "/%c0%ae%c0%ae/secret.txt"),
        ("protocol-relative", "//evil.example"),
        ("protocol-relative-dir", "//evil.example/"),
        ("backslash-host", "/\\evil.example"),
        ("absolute-form", "http://x/a"),
        ("asterisk", "*"),
        ("empty", ""),
        ("sibling-prefix", "/root-isolated/secret.txt"),
        ("bidi", "/%E2%80%AEtxt.a"),
    ];
    targets
        .iter()
        .map(|(name, target)| (*name, target.as_bytes().to_vec()))
        .collect()
}

fn static_request_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let get =
        |target: &str, extra: &str| crlf(&format!("GET {target} HTTP/1.1\nHost: x\n{extra}\n"));
    vec![
        ("root", get("/", "")),
        ("file", get("/a.txt", "")),
        ("head", crlf("HEAD /sub/b.css HTTP/1.1\nHost: x\n\n")),
        ("redirect", get("/sub", "")),
        ("redirect-with-query", get("/sub?a=b", "")),
        ("redirect-encoded", get("/caf%C3%A9", "")),
        ("protocol-relative", get("//evil.example", "")),
        ("dotfile", get("/.env", "")),
        ("traversal", get("/../root-isolated/secret.txt", "")),
        ("bad-percent", get("/%zz", "")),
        ("symlink-out", get("/link-out", "")),
        ("if-none-match-star", get("/a.txt", "If-None-Match: *\n")),
        (
            "if-none-match-list",
            get("/a.txt", "If-None-Match: \"x\", W/\"1-0\" , *\n"),
        ),
        (
            "if-none-match-weak",
            get("/index.html", "If-None-Match: W/\"abc\"\n"),
        ),
        ("if-none-match-empty", get("/", "If-None-Match:\n")),
        (
            "if-modified-since-future",
            get(
                "/a.txt",
                "If-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT\n",
            ),
        ),
        (
            "if-modified-since-past",
            get(
                "/a.txt",
                "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\n",
            ),
        ),
        (
            "if-modified-since-bad",
            get("/a.txt", "If-Modified-Since: yesterday\n"),
        ),
        (
            "both-conditionals",
            get(
                "/a.txt",
                "If-None-Match: \"nope\"\nIf-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT\n",
            ),
        ),
        ("embedded-app", get("/app.js", "")),
        (
            "embedded-style",
            get("/style.css", "If-None-Match: \"0000000000000000\"\n"),
        ),
        ("http10", crlf("GET /a.txt HTTP/1.0\n\n")),
        ("connection-close", get("/a.txt", "Connection: close\n")),
    ]
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn text(s: &str) -> Vec<u8> {
    client_frame(true, 0x1, s.as_bytes(), MASK)
}

fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    client_frame(true, 0x8, &payload, MASK)
}

/// A frame header declaring `len` payload bytes and carrying none (or few) of them.
fn declared(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MASK);
    out
}

fn session(selector: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![selector];
    for frame in frames {
        out.extend_from_slice(frame);
    }
    out
}

fn session_seeds() -> Vec<(&'static str, Vec<u8>)> {
    const ECHO: u8 = 0;
    const ECHO_SMALL: u8 = 2;
    const CHAT: u8 = 1;
    let f = |fin: bool, op: u8, payload: &[u8]| client_frame(fin, op, payload, MASK);
    let mut unmasked = vec![0x81, 0x05];
    unmasked.extend_from_slice(b"Hello");
    let mut rsv1 = text("Hello");
    rsv1[0] |= 0x40;
    let mut non_minimal = vec![0x81, 0x80 | 126, 0, 5];
    non_minimal.extend_from_slice(&MASK);
    non_minimal.extend(b"Hello".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    let mut msb = vec![0x82, 0x80 | 127];
    msb.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
    msb.extend_from_slice(&MASK);
    let mut truncated = text("Hello, world");
    truncated.truncate(9);
    let pings: Vec<Vec<u8>> = (0..20u8).map(|i| f(true, 0x9, &[i])).collect();
    let names_to_overflow: Vec<Vec<u8>> = (0..40).map(|_| text("")).collect();
    let chatter: Vec<Vec<u8>> = std::iter::once(text("alice"))
        .chain((0..8).map(|i| text(&format!("message {i}"))))
        .collect();
    vec![
        ("echo-text", session(ECHO, &[text("Hello")])),
        (
            "echo-binary",
            session(ECHO, &[f(true, 0x2, &[0, 1, 2, 0xff])]),
        ),
        ("echo-empty", session(ECHO, &[text(""), f(true, 0x2, b"")])),
        (
            "echo-medium",
            session(ECHO, &[text(&"x".repeat(300)), f(true, 0x2, &[7; 5000])]),
        ),
        (
            "echo-fragmented",
            session(
                ECHO,
                &[
                    f(false, 0x1, b"Hel"),
                    f(false, 0x0, b"lo"),
                    f(true, 0x0, b"!"),
                ],
            ),
        ),
        (
            "echo-fragmented-ping",
            session(
                ECHO,
                &[
                    f(false, 0x2, b"ab"),
                    f(true, 0x9, b"mid"),
                    f(true, 0x0, b"cd"),
                ],
            ),
        ),
        (
            "echo-ping",
            session(ECHO, &[f(true, 0x9, b"ping!"), text("after")]),
        ),
        (
            "echo-pong",
            session(ECHO, &[f(true, 0xa, b"unsolicited"), text("after")]),
        ),
        ("echo-many-pings", session(ECHO, &pings)),
        (
            "echo-close-1000",
            session(ECHO, &[text("a"), close(1000, b"bye"), text("after close")]),
        ),
        ("echo-close-empty", session(ECHO, &[f(true, 0x8, b"")])),
        ("echo-close-one-byte", session(ECHO, &[f(true, 0x8, &[3])])),
        ("echo-close-999", session(ECHO, &[close(999, b"")])),
        ("echo-close-1004", session(ECHO, &[close(1004, b"")])),
        ("echo-close-1005", session(ECHO, &[close(1005, b"")])),
        ("echo-close-1006", session(ECHO, &[close(1006, b"")])),
        ("echo-close-1010", session(ECHO, &[close(1010, b"ext")])),
        ("echo-close-1012", session(ECHO, &[close(1012, b"")])),
        ("echo-close-1014", session(ECHO, &[close(1014, b"")])),
        ("echo-close-1015", session(ECHO, &[close(1015, b"")])),
        ("echo-close-1016", session(ECHO, &[close(1016, b"")])),
        ("echo-close-2999", session(ECHO, &[close(2999, b"")])),
        ("echo-close-3000", session(ECHO, &[close(3000, b"app")])),
        ("echo-close-4999", session(ECHO, &[close(4999, b"")])),
        ("echo-close-5000", session(ECHO, &[close(5000, b"")])),
        (
            "echo-close-bad-utf8",
            session(ECHO, &[close(1000, b"\xff\xfe")]),
        ),
        (
            "echo-close-long-reason",
            session(ECHO, &[close(1000, &[b'r'; 123])]),
        ),
        (
            "echo-close-then-garbage",
            session(ECHO, &[close(1000, b""), vec![0xff, 0xff, 0xff]]),
        ),
        (
            "echo-close-then-ping",
            session(ECHO, &[close(1001, b""), f(true, 0x9, b"p")]),
        ),
        ("echo-unmasked", session(ECHO, &[unmasked])),
        ("echo-rsv1", session(ECHO, &[rsv1])),
        ("echo-opcode-3", session(ECHO, &[f(true, 0x3, b"x")])),
        ("echo-opcode-b", session(ECHO, &[f(true, 0xb, b"x")])),
        (
            "echo-ping-126",
            session(ECHO, &[f(true, 0x9, &[b'p'; 126])]),
        ),
        (
            "echo-ping-fragmented",
            session(ECHO, &[f(false, 0x9, b"p")]),
        ),
        (
            "echo-continuation-first",
            session(ECHO, &[f(true, 0x0, b"orphan")]),
        ),
        (
            "echo-text-inside-fragments",
            session(ECHO, &[f(false, 0x1, b"a"), text("b")]),
        ),
        ("echo-bad-utf8", session(ECHO, &[f(true, 0x1, b"\xff\xfe")])),
        (
            "echo-utf8-split",
            session(ECHO, &[f(false, 0x1, b"caf\xc3"), f(true, 0x0, b"\xa9")]),
        ),
        (
            "echo-bad-utf8-fragment",
            session(
                ECHO,
                &[
                    f(false, 0x1, b"\xce\xba\xe1\xbd\xb9"),
                    f(false, 0x0, b"\xed\xa0\x80"),
                    f(true, 0x0, b"x"),
                ],
            ),
        ),
        (
            "echo-too-big-declared",
            session(ECHO, &[declared(0x2, 65_537)]),
        ),
        (
            "echo-small-limit-too-big",
            session(ECHO_SMALL, &[f(true, 0x2, &[1; 2000])]),
        ),
        (
            "echo-small-limit-fragments",
            session(
                ECHO_SMALL,
                &[f(false, 0x2, &[1; 600]), f(true, 0x0, &[2; 600])],
            ),
        ),
        (
            "echo-small-limit-exact",
            session(ECHO_SMALL, &[f(true, 0x2, &[3; 1024])]),
        ),
        ("echo-length-msb", session(ECHO, &[msb])),
        ("echo-non-minimal-length", session(ECHO, &[non_minimal])),
        (
            "echo-truncated-frame",
            session(ECHO, &[text("a"), truncated]),
        ),
        (
            "echo-leftover",
            session(0x30, &[text("Hello"), f(true, 0x2, &[9; 40])]),
        ),
        (
            "echo-leftover-all",
            session(0xf0, &[text("in the leftover")]),
        ),
        (
            "chat-alice",
            session(CHAT, &[text("alice"), text("hello"), close(1000, b"")]),
        ),
        (
            "chat-taken-names",
            session(
                CHAT,
                &[
                    text("bob"),
                    text("BOB"),
                    text("\u{ff42}\u{ff4f}\u{ff42}"),
                    text(" b\u{3bf}b "),
                    text("alice"),
                ],
            ),
        ),
        (
            "chat-empty-names",
            session(
                CHAT,
                &[text(""), text("   "), text("\t\u{3000}"), text("carol")],
            ),
        ),
        (
            "chat-long-name",
            session(CHAT, &[text(&"x".repeat(33)), text(&"\u{e9}".repeat(32))]),
        ),
        (
            "chat-control-name",
            session(
                CHAT,
                &[
                    text("a\u{7}b"),
                    text("ali\u{200b}ce"),
                    text("\u{202e}ecila"),
                    text("dave"),
                ],
            ),
        ),
        (
            "chat-forgery",
            session(
                CHAT,
                &[
                    text("mallory"),
                    text(r#"hi","type":"join","name":"eve"#),
                    text(r#"{"type":"leave","name":"bob"}"#),
                    text("</script><script>alert(1)</script>"),
                    text("line\u{2028}sep\n\"\\"),
                ],
            ),
        ),
        (
            "chat-forged-name",
            session(CHAT, &[text(r#"x","type":"join"#), text("ok")]),
        ),
        (
            "chat-whitespace-message",
            session(CHAT, &[text("erin"), text("   "), text("\n")]),
        ),
        (
            "chat-binary",
            session(CHAT, &[text("frank"), f(true, 0x2, b"\x00\x01")]),
        ),
        ("chat-binary-name", session(CHAT, &[f(true, 0x2, b"frank")])),
        (
            "chat-too-big",
            session(CHAT, &[text("gina"), declared(0x1, 5000)]),
        ),
        (
            "chat-fragmented",
            session(
                CHAT,
                &[
                    f(false, 0x1, b"ha"),
                    f(true, 0x0, b"l"),
                    f(false, 0x1, b"hel"),
                    f(true, 0x9, b""),
                    f(true, 0x0, b"lo"),
                ],
            ),
        ),
        (
            "chat-bad-utf8-name",
            session(CHAT, &[f(true, 0x1, b"\xc3\x28")]),
        ),
        ("chat-rate-limit", session(CHAT | 8, &chatter)),
        ("chat-tight-queue", session(CHAT | 4, &names_to_overflow)),
        ("chat-tight-queue-joined", session(CHAT | 4, &chatter)),
        ("chat-leftover", session(0x71, &[text("ivan"), text("hi")])),
        (
            "chat-close-reason",
            session(CHAT, &[text("judy"), close(4000, "caf\u{e9}".as_bytes())]),
        ),
        (
            "chat-eof-mid-frame",
            session(CHAT, &[text("kim"), vec![0x81, 0x85, 1, 2]]),
        ),
    ]
}

fn server_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let get = |target: &str| format!("GET {target} HTTP/1.1\nHost: x\n\n");
    let upgrade =
        |path: &str, extra: &str| crlf(&format!("{}{extra}\n", RFC_UPGRADE.replace("/chat", path)));
    let with_frames =
        |head: Vec<u8>, frames: &[Vec<u8>]| [vec![head], frames.to_vec()].concat().concat();
    let hundred_and_one = crlf(&get("/a.txt").repeat(101));
    vec![
        ("get", crlf(&get("/"))),
        (
            "keep-alive",
            crlf(&format!(
                "{}{}{}",
                get("/a.txt"),
                get("/sub/"),
                get("/index.html")
            )),
        ),
        (
            "head-then-get",
            crlf(&format!(
                "HEAD /a.txt HTTP/1.1\nHost: x\n\n{}",
                get("/a.txt")
            )),
        ),
        (
            "close-then-more",
            crlf(&format!(
                "GET /a.txt HTTP/1.1\nConnection: close\n\n{}",
                get("/")
            )),
        ),
        (
            "http10",
            crlf(&format!("GET /a.txt HTTP/1.0\n\n{}", get("/"))),
        ),
        (
            "redirect-then-dir",
            crlf(&format!("{}{}", get("/sub"), get("/sub/"))),
        ),
        (
            "not-found-closes",
            crlf(&format!("{}{}", get("/nope"), get("/"))),
        ),
        ("traversal", crlf(&get("/../root-isolated/secret.txt"))),
        (
            "conditional",
            crlf(&format!(
                "GET /a.txt HTTP/1.1\nIf-None-Match: *\n\n{}",
                get("/a.txt")
            )),
        ),
        (
            "post-with-body",
            crlf("POST / HTTP/1.1\nContent-Length: 5\n\nhello"),
        ),
        ("put", crlf("PUT /a.txt HTTP/1.1\nHost: x\n\n")),
        ("partial-head", crlf("GET / HTTP/1.1\nHost: x\n")),
        (
            "head-too-large",
            [crlf("GET / HTTP/1.1\nX: "), vec![b'a'; 9000]].concat(),
        ),
        ("malformed", crlf(" GET / HTTP/1.1\n\n")),
        ("max-requests", hundred_and_one),
        (
            "echo",
            with_frames(
                upgrade("/echo", ""),
                &[
                    text("Hello"),
                    client_frame(true, 0x9, b"p", MASK),
                    close(1000, b"bye"),
                ],
            ),
        ),
        (
            "echo-fragments",
            with_frames(
                upgrade("/echo", ""),
                &[
                    client_frame(false, 0x1, b"Hel", MASK),
                    client_frame(true, 0x0, b"lo", MASK),
                ],
            ),
        ),
        (
            "echo-protocol-error",
            with_frames(
                upgrade("/echo", ""),
                &[client_frame(true, 0x3, b"x", MASK), text("after")],
            ),
        ),
        (
            "echo-pipelined-get",
            [upgrade("/echo", ""), crlf(&get("/"))].concat(),
        ),
        (
            "chat",
            with_frames(
                upgrade("/chat", ""),
                &[text(""), text("alice"), text("hello"), close(1000, b"")],
            ),
        ),
        (
            "chat-binary",
            with_frames(
                upgrade("/chat", ""),
                &[text("bob"), client_frame(true, 0x2, b"x", MASK)],
            ),
        ),
        (
            "upgrade-refused",
            with_frames(
                upgrade("/chat", "Origin: https://evil.example\n"),
                &[text("x")],
            ),
        ),
        (
            "upgrade-no-key",
            crlf(&format!(
                "{}\n",
                RFC_UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n", "")
            )),
        ),
        ("upgrade-plain-get", crlf(&get("/chat"))),
        (
            "healthz",
            [
                crlf(&get("/healthz")),
                crlf("HEAD /healthz HTTP/1.1\nHost: x\n\n"),
                crlf("POST /healthz HTTP/1.1\nHost: x\n\n"),
            ]
            .concat(),
        ),
        (
            "forwarded-headers",
            with_frames(
                upgrade(
                    "/echo",
                    "X-Forwarded-For: 203.0.113.7, junk\nForwarded: for=\"[2001:db8::1]:4711\"\n",
                ),
                &[text("hi"), close(1000, b"")],
            ),
        ),
        ("upgrade-with-body", upgrade("/echo", "Content-Length: 3\n")),
        (
            "get-then-upgrade",
            [crlf(&get("/a.txt")), upgrade("/echo", ""), text("hi")].concat(),
        ),
        ("empty", Vec::new()),
    ]
}

/// One chat_input record: member `slot`, kind (0 text, 2 leave, 3 alphabet text), bytes.
fn rec(slot: u8, kind: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![slot | kind << 2, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

fn say(slot: u8, s: &str) -> Vec<u8> {
    rec(slot, 0, s.as_bytes())
}

fn leave(slot: u8) -> Vec<u8> {
    rec(slot, 2, b"")
}

fn chat_input_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let script = |records: Vec<Vec<u8>>| records.concat();
    vec![
        (
            "two-members",
            script(vec![
                say(0, "alice"),
                say(1, "bob"),
                say(0, "hi bob"),
                say(1, "hi alice"),
            ]),
        ),
        (
            "join-leave-rejoin",
            script(vec![
                say(0, "alice"),
                say(1, "bob"),
                leave(0),
                say(0, "alice"),
                say(0, "back"),
                leave(1),
            ]),
        ),
        (
            "newcomer-gets-backlog",
            script(vec![
                say(0, "alice"),
                say(1, "bob"),
                say(0, "1"),
                say(1, "2"),
                say(0, "3"),
                say(1, "4"),
                say(2, "carol"),
                say(2, "hello"),
            ]),
        ),
        (
            "lookalike-names",
            script(vec![
                say(0, "alice"),
                say(1, "ALICE"),
                say(1, "\u{410}lice"),
                say(1, "\u{ff21}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}"),
                say(1, " alice "),
                say(1, "al\u{131}ce"),
                say(1, "bob"),
            ]),
        ),
        (
            "bad-names",
            script(vec![
                say(0, ""),
                say(0, "   "),
                say(0, &"x".repeat(33)),
                say(0, "a\u{7}b"),
                say(0, "\u{200b}"),
                say(0, "\u{202e}x"),
                say(0, &"\u{e9}".repeat(32)),
            ]),
        ),
        (
            "forgery-texts",
            script(vec![
                say(0, "mallory"),
                say(1, "bob"),
                say(0, r#"hi","type":"join","name":"eve"#),
                say(0, r#"{"type":"leave","name":"bob"}"#),
                say(0, "\"\\\n\r\t\u{0}\u{1f}\u{2028}\u{2029}<>&"),
                say(0, "}{"),
            ]),
        ),
        (
            "forged-name",
            script(vec![
                say(0, r#"eve","type":"join"#),
                say(1, "x"),
                say(0, "hi"),
            ]),
        ),
        (
            "four-members",
            script(vec![
                say(0, "a"),
                say(1, "b"),
                say(2, "c"),
                say(3, "d"),
                say(0, "1"),
                say(1, "2"),
                say(2, "3"),
                say(3, "4"),
                leave(2),
                say(3, "5"),
            ]),
        ),
        (
            "invalid-utf8",
            script(vec![
                rec(0, 0, b"\xff\xfename"),
                rec(1, 0, b"bob"),
                rec(0, 0, b"\xc3\x28"),
            ]),
        ),
        (
            "alphabet",
            script(vec![
                rec(0, 3, &[0, 1, 2]),
                rec(1, 3, &[1, 0, 2]),
                rec(1, 3, &[5, 6, 5]),
                rec(2, 3, &[5, 7, 5]),
                rec(0, 3, &[16, 20, 21, 22, 23, 24, 25]),
            ]),
        ),
        (
            "whitespace-names",
            script(vec![
                say(0, "a b"),
                say(1, "a  b"),
                say(1, "a\u{3000}b"),
                say(1, "a\tb"),
                say(2, "\u{a0}c\u{a0}"),
            ]),
        ),
        (
            "leave-unjoined",
            script(vec![leave(0), leave(3), say(3, "dora"), leave(3), leave(3)]),
        ),
        (
            "emoji",
            script(vec![
                say(0, "\u{1f600}"),
                say(1, "\u{10ffff}"),
                say(0, "\u{1f600}\u{1f600}"),
            ]),
        ),
    ]
}

fn httpdate_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dates: &[(&str, &str)] = &[
        ("rfc-example", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("leap-day", "Thu, 29 Feb 2024 23:59:59 GMT"),
        ("epoch", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("year-9999", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("feb-30", "Thu, 30 Feb 2023 10:00:00 GMT"),
        ("leap-second", "Sat, 31 Dec 2016 23:59:60 GMT"),
        ("lowercase-month", "Sun, 06 nov 1994 08:49:37 GMT"),
        ("rfc850", "Sunday, 06-Nov-94 08:49:37 GMT"),
        ("asctime", "Sun Nov  6 08:49:37 1994"),
        ("utc", "Sun, 06 Nov 1994 08:49:37 UTC"),
        ("surrounding-space", "  Sun, 06 Nov 1994 08:49:37 GMT  "),
        ("before-epoch", "Wed, 31 Dec 1969 23:59:59 GMT"),
        ("wrong-day-name", "Xyz, 06 Nov 1994 08:49:37 GMT"),
        ("day-zero", "Sun, 00 Nov 1994 08:49:37 GMT"),
        ("hour-24", "Sun, 06 Nov 1994 24:00:00 GMT"),
        ("plus-sign", "Sun, +6 Nov 1994 08:49:37 GMT"),
        ("non-ascii-day", "\u{e9}a, 06 Nov 1994 08:49:37 GMT"),
    ];
    let mut seeds: Vec<(&str, Vec<u8>)> = dates
        .iter()
        .map(|(name, date)| (*name, date.as_bytes().to_vec()))
        .collect();
    seeds.push(("seconds-max", vec![0xff; 8]));
    seeds.push(("seconds-zero", vec![0; 8]));
    seeds
}

fn cli_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let args: &[(&str, &[&str])] = &[
        ("none", &[]),
        ("addr", &["--addr", "127.0.0.1:0"]),
        ("addr-inline", &["--addr=127.0.0.1:0"]),
        ("addr-ipv6", &["--addr", "[::1]:8080"]),
        ("addr-no-host", &["--addr", ":80"]),
        ("addr-bad-port", &["--addr", "localhost:99999"]),
        ("addr-empty", &["--addr="]),
        ("help", &["--help"]),
        ("version", &["-V"]),
        ("unknown", &["--bogus"]),
        ("missing-value", &["--history"]),
        ("negative", &["--history", "-1"]),
        ("zero-max-message", &["--max-message", "0"]),
        ("zero-timeout", &["--head-timeout", "0"]),
        ("ping-off", &["--ping-interval", "0"]),
        ("flag-with-value", &["--trace-handshake=yes"]),
        (
            "proxy-flags",
            &[
                "--trusted-proxy",
                "10.0.0.0/8",
                "--trusted-proxy=::1",
                "--max-connections-per-ip",
                "5",
                "--allowed-origin",
                "*",
            ],
        ),
        ("trusted-proxy-bad", &["--trusted-proxy", "10.0.0.0/33"]),
        (
            "allowed-origin-bad",
            &["--allowed-origin", "https://chat.example/"],
        ),
        (
            "origins",
            &[
                "--allowed-origin",
                "http://a",
                "--allowed-origin=http://b",
                "--root",
                "/tmp",
            ],
        ),
        (
            "all-numbers",
            &[
                "--history",
                "7",
                "--max-message",
                "10",
                "--max-echo-message",
                "20",
                "--max-connections",
                "3",
                "--queue-messages",
                "4",
                "--queue-bytes",
                "5",
                "--rate-limit",
                "0",
                "--write-timeout",
                "1",
                "--keep-alive",
                "2",
            ],
        ),
        ("huge-number", &["--queue-bytes", "184467440737095516160"]),
        ("equals-only", &["=", "--=x", "-"]),
        ("unicode", &["--root", "caf\u{e9}", "--addr", "h\u{f4}te:1"]),
    ];
    args.iter()
        .map(|(name, args)| (*name, args.join("\0").into_bytes()))
        .collect()
}
