//! The `server` target: one connection's bytes to a real wschat server on loopback.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use wschat::internals::http::{parse_head, Parsed, Request, MAX_HEAD_BYTES};

use super::chat::{chat_transcript, check_accepted_name, ChatEvent};
use super::frames::{check_echoed, parse_server_output};
use super::hex;
use super::http::check_response_head;
use super::static_files::static_root;
use super::upgrade::ALLOWED_ORIGIN;

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
            ephemeral: true,
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
    use std::io::{ErrorKind, Read, Write};
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
        match (&stream).read(&mut chunk) {
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

impl Expected {
    /// A refusal with `status`, after which the server closes the connection.
    fn refusal(status: u16) -> Self {
        Expected {
            status,
            head_only: false,
            closes: true,
        }
    }
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
    use wschat::internals::handshake::check_upgrade;
    use wschat::internals::static_files::respond;
    let server = test_server();
    let site = static_root();
    let (output, reset) = exchange(server.addr, data);
    let mut out = &output[..];
    // Takes the reply the server owes next, returning its head; None when the output ended
    // early (only a reset may do that).
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
                expect(&mut out, &Expected::refusal(400));
                break;
            }
            Err(error) => {
                let status = error.response().expect("a reply").status;
                expect(&mut out, &Expected::refusal(status));
                break;
            }
        };
        served += 1;
        if names_a_room(request.path()) == Some(false) {
            expect(&mut out, &Expected::refusal(404));
            break;
        }
        if request.path() == "/echo" || names_a_room(request.path()) == Some(true) {
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
                    expect(&mut out, &Expected::refusal(rejection.status()));
                    break;
                }
            }
        }
        let mut reply = if request.announces_body() {
            wschat::internals::http::Response::error(400, "request bodies are not accepted")
        } else if request.path() == "/healthz" {
            // The fuzz server is neither stopping nor full: healthy.
            match request.method.as_str() {
                "GET" | "HEAD" => wschat::internals::http::Response::new(200),
                _ => wschat::internals::http::Response::error(405, "only GET and HEAD are served"),
            }
        } else if matches!(request.method.as_str(), "GET" | "HEAD") {
            respond(&site.site, &request)
        } else {
            wschat::internals::http::Response::error(405, "only GET and HEAD are served")
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

/// The room a chat path joins, read off the path by the rules of the README: `/chat` is
/// `lobby`, `/chat/NAME` is NAME in lower case.
fn expected_room(path: &str) -> String {
    match path.strip_prefix("/chat/") {
        Some(name) => name.to_ascii_lowercase(),
        None => "lobby".to_string(),
    }
}

/// Whether a path is a chat room's: `/chat`, or `/chat/` and 1 to 32 of `a-z`, `A-Z`, `0-9`,
/// `-`, `_`. `None` for paths outside `/chat/`.
fn names_a_room(path: &str) -> Option<bool> {
    if path == "/chat" {
        return Some(true);
    }
    let name = path.strip_prefix("/chat/")?;
    Some(
        (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
    )
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
        check_echoed(client, server.max_echo, &messages, !reset);
    } else {
        // Alone in a room without history: refusals, then at most a welcome to an empty room.
        let room = expected_room(request.path());
        let (events, _) = chat_transcript(frames).unwrap_or_else(|e| panic!("chat: {e}"));
        let mut present: Vec<String> = Vec::new();
        let mut welcomed = false;
        for event in &events {
            match event {
                ChatEvent::NameRefused { reason } if !welcomed => assert!(!reason.is_empty()),
                ChatEvent::Welcome {
                    room: joined,
                    name,
                    members,
                } if !welcomed => {
                    welcomed = true;
                    assert_eq!(joined, &room, "welcome room");
                    // The server is shared by every input, and a previous input's member leaves
                    // when the server has finished with its connection, which may be a moment
                    // after that client saw the connection end (a reset, say). So others may
                    // still be listed; each must be a name the rules accept, and not ours.
                    present = members.clone();
                    let names: Vec<&str> = present.iter().map(String::as_str).collect();
                    check_accepted_name(name, &names);
                    for member in &names {
                        check_accepted_name(member, &[]);
                    }
                }
                // ... and leave after our welcome, alone or merged, but nobody joins.
                ChatEvent::Leave { name } if welcomed && present.contains(name) => {
                    present.retain(|p| p != name);
                }
                ChatEvent::Presence { joined, left }
                    if welcomed
                        && joined.is_empty()
                        && left.iter().all(|n| present.contains(n)) =>
                {
                    present.retain(|p| !left.contains(p));
                }
                other => panic!("alone in the room, yet sent {other:?}"),
            }
        }
    }
}
