//! Behind a reverse proxy: `--trusted-proxy` and the forwarding headers, and
//! `--max-connections-per-ip`, over real sockets. The test plays the proxy: its connections
//! come from 127.0.0.1 and carry `X-Forwarded-For` or `Forwarded` as nginx or Caddy would.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;
use support::*;

/// An upgrade to `/chat` with `extra` header lines, on a new connection that is kept open
/// (so the WebSocket it may become stays open too). Returns the reply and the connection.
fn upgrade_from(addr: SocketAddr, extra: &str) -> (HttpResponse, TcpStream) {
    let mut stream = TcpStream::connect(addr).unwrap();
    upgrade_on(&mut stream, extra)
}

fn upgrade_on(stream: &mut TcpStream, extra: &str) -> (HttpResponse, TcpStream) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = upgrade_request("/chat").replace("\r\n\r\n", &format!("\r\n{extra}\r\n"));
    stream.write_all(request.as_bytes()).unwrap();
    let response = read_response(stream, false);
    (response, stream.try_clone().unwrap())
}

/// A connection from another loopback address (the whole of 127.0.0.0/8 is loopback), to
/// stand for a second client.
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&source.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Retries `attempt` until it returns true, for at most [`PATIENCE`]: for a count that drops
/// once the server's connection thread has finished, just after the client saw the close.
fn eventually(mut attempt: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if attempt() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

fn trusting_loopback(per_ip: usize) -> TestServer {
    TestServer::with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.max_connections_per_ip = per_ip;
    })
}

#[test]
fn behind_a_trusted_proxy_each_client_address_is_counted() {
    let server = trusting_loopback(2);
    let alice = "X-Forwarded-For: 203.0.113.1\r\n";
    let (r1, _a1) = upgrade_from(server.addr, alice);
    let (r2, a2) = upgrade_from(server.addr, alice);
    assert_eq!((r1.status, r2.status), (101, 101));
    // Alice's third connection is refused, with a way to come back later.
    let (r3, _) = upgrade_from(server.addr, alice);
    assert_eq!(r3.status, 429);
    assert_eq!(r3.header("retry-after"), Some("10"));
    assert_eq!(r3.header("connection"), Some("close"));
    assert!(r3.text().contains("too many connections"), "{}", r3.text());
    assert_eq!(r3.text().lines().count(), 1);
    // Bob, through the same proxy, is not affected; nor is a client whose forged entry
    // (left of what the proxy appended) names alice.
    let (bob, _b) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.2\r\n");
    assert_eq!(bob.status, 101);
    let (forged, _f) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.1, 203.0.113.3\r\n");
    assert_eq!(forged.status, 101);
    // Alice leaves one: her next connection gets in.
    drop(a2);
    assert!(
        eventually(|| upgrade_from(server.addr, alice).0.status == 101),
        "alice's slot was never freed"
    );
}

#[test]
fn forwarded_header_with_quoted_ipv6_counts_by_64() {
    let server = trusting_loopback(1);
    let (r1, _c1) = upgrade_from(server.addr, "Forwarded: for=\"[2001:db8::1]:4711\"\r\n");
    assert_eq!(r1.status, 101);
    let (r2, _) = upgrade_from(
        server.addr,
        "Forwarded: for=\"[2001:db8::2]\";proto=https\r\n",
    );
    assert_eq!(r2.status, 429, "same /64");
    let (r3, _c3) = upgrade_from(server.addr, "Forwarded: for=\"[2001:db8:0:1::1]\"\r\n");
    assert_eq!(r3.status, 101, "another /64");
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // Nothing trusted: every connection from 127.0.0.1 counts as 127.0.0.1, whatever it says.
    let server = TestServer::with(|c| c.max_connections_per_ip = 2);
    let (r1, _c1) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.1\r\n");
    let (r2, _c2) = upgrade_from(server.addr, "Forwarded: for=203.0.113.2\r\n");
    assert_eq!((r1.status, r2.status), (101, 101));
    let (r3, _) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.3\r\n");
    assert_eq!(r3.status, 429);
}

#[test]
fn a_trusted_range_does_not_trust_everyone() {
    // 127.0.0.2 is trusted, the test's 127.0.0.1 is not.
    let server = TestServer::with(|c| {
        c.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()];
        c.max_connections_per_ip = 1;
    });
    let (r1, _c1) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.1\r\n");
    assert_eq!(r1.status, 101);
    let (r2, _) = upgrade_from(server.addr, "X-Forwarded-For: 203.0.113.2\r\n");
    assert_eq!(
        r2.status, 429,
        "127.0.0.1 is not a proxy: its header is ignored"
    );
    let mut via_proxy = connect_from("127.0.0.2", server.addr);
    let (r3, _c3) = upgrade_on(&mut via_proxy, "X-Forwarded-For: 203.0.113.2\r\n");
    assert_eq!(r3.status, 101);
}

#[test]
fn a_malformed_header_from_a_trusted_proxy_falls_back_to_the_proxy() {
    let server = trusting_loopback(1);
    for (round, bad) in [
        "X-Forwarded-For: not-an-address\r\n",
        "X-Forwarded-For: 203.0.113.1, \r\n",
        "X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-For: [::1\r\n",
        "Forwarded: for=\"[2001:db8::1\"\r\n",
        "Forwarded: for=unknown\r\n",
        "Forwarded: proto=https\r\n",
        "Forwarded: for=\"unterminated\r\n",
    ]
    .into_iter()
    .enumerate()
    {
        // Counted as 127.0.0.1 (the previous round's connection may still be closing).
        let mut held = None;
        assert!(
            eventually(|| {
                let (reply, stream) = upgrade_from(server.addr, bad);
                held = Some(stream);
                reply.status == 101
            }),
            "{bad:?}"
        );
        let (second, _) = upgrade_from(server.addr, "X-Forwarded-For: junk\r\n");
        assert_eq!(second.status, 429, "{bad:?}: counted as the proxy");
        // A good header is counted as its own client, and the server keeps serving.
        let header = format!("X-Forwarded-For: 203.0.113.{}\r\n", 10 + round);
        let (good, _good) = upgrade_from(server.addr, &header);
        assert_eq!(good.status, 101, "{bad:?}");
    }
}

#[test]
fn direct_connections_past_the_cap_get_429_and_other_addresses_do_not() {
    let server = TestServer::with(|c| c.max_connections_per_ip = 3);
    // Three idle connections from 127.0.0.1 (no request sent yet: they hold their place).
    let held: Vec<TcpStream> = (0..3).map(|_| server.connect()).collect();
    let mut fourth = server.connect();
    fourth
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let refused = read_response(&mut fourth, false);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert!(closed_by_server(&mut fourth));
    // Another address is served as usual.
    let mut other = connect_from("127.0.0.2", server.addr);
    other
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut other, false).status, 200);
    // The held connections are still served.
    for mut stream in held {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut stream, false).status, 200);
    }
    // They have closed now (dropped above): 127.0.0.1 gets in again.
    assert!(eventually(|| get(&server, "/", "").status == 200));
}

#[test]
fn the_log_names_the_client_and_its_proxy_and_a_bad_header_once() {
    let mut wschat = Binary::start(&["--trusted-proxy", "127.0.0.0/8"]);
    // A WebSocket through the "proxy": its closing line names the client via the proxy.
    let (reply, stream) = upgrade_from(
        wschat.addr,
        "X-Forwarded-For: 198.51.100.4, 203.0.113.7\r\n",
    );
    assert_eq!(reply.status, 101);
    let proxy = stream.local_addr().unwrap();
    drop(stream);
    let line = wschat.wait_for_log(&["GET /chat 101 closed"]);
    assert!(
        line.contains(&format!(" 203.0.113.7 via {proxy} GET /chat 101 closed")),
        "{line}"
    );
    // Two requests with a malformed header on one kept-alive connection: one warning.
    let mut stream = wschat.connect();
    let proxy = stream.local_addr().unwrap();
    for path in ["/?first", "/?second"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: junk\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_response(&mut stream, false).status, 200);
    }
    let second = wschat.wait_for_log(&["GET /?second 200"]);
    assert!(
        second.contains(&format!(" {proxy} GET /?second")),
        "{second}"
    );
    let warnings: Vec<&String> = wschat
        .seen
        .iter()
        .filter(|l| l.contains(&proxy.to_string()) && l.contains("malformed forwarding header"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", wschat.seen);
    assert!(warnings[0].contains("X-Forwarded-For"), "{}", warnings[0]);
}

#[test]
fn the_flags_are_checked() {
    use std::process::Command;
    for args in [
        &["--trusted-proxy", "localhost"][..],
        &["--trusted-proxy", "10.0.0.0/33"],
        &["--max-connections-per-ip", "0"],
        &["--allowed-origin", "chat.example"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wschat"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
