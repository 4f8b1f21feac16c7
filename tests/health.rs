//! `GET /healthz` over real sockets: healthy, full, the methods, and no log line per poll.

mod support;

use std::io::Write;
use support::*;

#[test]
fn a_healthy_server_answers_200_ok_and_keeps_the_connection() {
    let server = TestServer::start();
    let mut stream = server.connect();
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let r = read_response(&mut stream, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok\n");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("connection"), None);
    }
    stream
        .write_all(b"HEAD /healthz?probe=1 HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, true).status, 200);
    let post = raw_request(&server, b"POST /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn a_full_server_says_so() {
    let server = TestServer::with(|c| c.max_connections = 2);
    let _idle = server.connect();
    // This connection is the second of two: the server takes no more.
    let r = get(&server, "/healthz", "");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        "unhealthy: capacity: 2 of 2 connections open (--max-connections)\n"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn passing_polls_are_not_logged_and_failures_are() {
    let mut wschat = Binary::start(&["--max-connections", "2"]);
    let mut stream = wschat.connect();
    for target in ["/healthz", "/healthz", "/?after-health"] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_response(&mut stream, false).status, 200);
    }
    wschat.wait_for_log(&["GET /?after-health 200"]);
    assert!(
        !wschat.seen.iter().any(|l| l.contains("/healthz")),
        "{:#?}",
        wschat.seen
    );
    // Now full (this connection and the next): the failing answer is logged.
    let mut second = wschat.connect();
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut second, false).status, 503);
    wschat.wait_for_log(&["GET /healthz 503"]);
}
