//! The `--metrics-addr` listener: `GET /metrics` and nothing else, on a thread of its own.
//!
//! Kept apart from the chat on purpose: a scrape never waits for a connection thread, and the
//! chat never waits for a scrape. One connection is served at a time, one request each
//! (`Connection: close`), with the same head size limit and timeouts as the main server, so
//! a client of this port can at worst hold up other scrapes for `--head-timeout` plus
//! `--write-timeout`, and costs the chat nothing. The port is meant to stay private: loopback,
//! or a network only the monitoring system reaches.
//!
//! Scrapes come every few seconds, so answered ones are not logged; refusals are.

use super::text::CONTENT_TYPE;
use super::Gauges;
use crate::http::{self, Body, Request, Response};
use crate::log;
use crate::server::Shared;
use crate::sync::lock;
use std::borrow::Cow;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The path metrics are served at.
pub const PATH: &str = "/metrics";

/// Serves `listener` on a new thread until the server stops (the shutdown wakes it with a
/// connection of its own).
pub fn start(shared: Arc<Shared>, listener: TcpListener) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for incoming in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
                match incoming {
                    Ok(stream) => answer(&stream, &shared),
                    Err(e) => {
                        log!("metrics: accept failed: {e}");
                        // Out of descriptors, say: wait for some to be freed rather than spin.
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
}

/// What the server's tables say right now.
fn gauges(shared: &Shared) -> Gauges {
    let (connections, websockets) = {
        let live = lock(&shared.live);
        let upgraded = live.values().filter(|c| c.outbox.is_some()).count();
        (live.len(), upgraded)
    };
    Gauges {
        connections,
        websockets,
        rooms: shared.rooms.count(),
        members: shared.rooms.member_count(),
        failing_rooms: shared.rooms.failing().len(),
        cluster: shared.rooms.cluster_stats(),
        writer_threads: shared.writers.writer_threads(),
    }
}

/// Reads one request and answers it.
fn answer(stream: &TcpStream, shared: &Shared) {
    let config = &shared.config;
    let Ok(peer) = stream.peer_addr() else {
        return; // already gone
    };
    let _ = stream.set_write_timeout(Some(config.write_timeout));
    let mut buf = Vec::new();
    let deadline = Instant::now() + config.head_timeout;
    let request = match http::read_request(stream, &mut buf, deadline, &mut None) {
        Ok((request, _)) => request,
        Err(error) => {
            if let Some(reply) = error.response() {
                log!("metrics: {peer} - - {} ({error:?})", reply.status);
                let _ = reply.write_to(stream, false);
            }
            return;
        }
    };
    let reply = respond(&request, || shared.metrics.render(&gauges(shared)));
    if reply.status != 200 {
        log!(
            "metrics: {peer} {} {} {}",
            request.method,
            request.target,
            reply.status
        );
    }
    let _ = reply.write_to(stream, request.method == "HEAD");
}

/// The reply to `request`; `render` makes the exposition, only when it is asked for.
pub fn respond(request: &Request, render: impl FnOnce() -> String) -> Response {
    if request.path() != PATH {
        return Response::error(404, &format!("not found: metrics are served at {PATH}"));
    }
    if request.announces_body() {
        return Response::error(400, "request bodies are not accepted");
    }
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Response::error(405, "only GET and HEAD are served").header("Allow", "GET, HEAD");
    }
    Response::new(200)
        .header("Content-Type", CONTENT_TYPE)
        .header("Cache-Control", "no-store")
        .header("Connection", "close")
        .with_body(Body::Bytes(Cow::Owned(render().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Parsed};

    fn request(head: &str) -> Request {
        match parse_head(head.as_bytes()).unwrap() {
            Parsed::Complete { request, .. } => request,
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn only_get_and_head_of_the_metrics_path() {
        let ok = respond(&request("GET /metrics HTTP/1.1\r\n\r\n"), || "x 1\n".into());
        assert_eq!(ok.status, 200);
        assert!(ok
            .head()
            .contains(&format!("\r\nContent-Type: {CONTENT_TYPE}\r\n")));
        assert!(ok.closes_connection());
        let head = respond(&request("HEAD /metrics?a=b HTTP/1.1\r\n\r\n"), String::new);
        assert_eq!(head.status, 200);
        let never = || -> String { panic!("rendered for a refused request") };
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", 404),
            ("GET /metrics/ HTTP/1.1\r\n\r\n", 404),
            ("POST /metrics HTTP/1.1\r\n\r\n", 405),
            ("GET /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 400),
        ];
        for (head, status) in cases {
            let reply = respond(&request(head), never);
            assert_eq!(reply.status, status, "{head:?}");
            assert!(reply.closes_connection());
        }
    }
}
