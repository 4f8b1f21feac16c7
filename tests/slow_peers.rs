//! Peers that misbehave slowly: one that never reads, one that never answers pings, one that
//! trickles its request head, and more connections than the cap.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::*;
use tungstenite::Message;

#[test]
fn a_member_that_never_reads_is_closed_with_1008_and_the_others_get_everything() {
    // No count bound: the stalled member is closed by bytes alone.
    let server = TestServer::with(|c| {
        c.queue_bytes = 256 * 1024;
        c.rate_limit = 0;
    });
    let mut stalled = server.join("stalled");
    let mut sender = server.join("sender");
    let mut readers = vec![server.join("b"), server.join("c")];
    for _ in 0..3 {
        next_text(&mut stalled); // the joins of sender, b and c; then it stops reading
    }
    next_text(&mut sender);
    next_text(&mut sender);
    next_text(&mut readers[0]);
    let count = 3000; // 12 MB: far more than the stalled member's socket buffers hold
                      // Each reader reports its progress; the sender stays at most 16 messages ahead of the
                      // slower reader, which is how fast an honest reader is, and well inside its queue.
    let (progress, report) = std::sync::mpsc::channel::<(usize, usize)>();
    let reader_threads: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(who, mut ws)| {
            let progress = progress.clone();
            std::thread::spawn(move || {
                let mut saw_leave = false;
                for i in 0..count {
                    let mut got = next_text(&mut ws);
                    if got == r#"{"type":"leave","name":"stalled"}"# && !saw_leave {
                        saw_leave = true;
                        got = next_text(&mut ws);
                    }
                    assert!(
                        got.contains(&format!(r#""text":"{i} x"#)),
                        "reader {who}: message {i} missing"
                    );
                    progress.send((who, i + 1)).unwrap();
                }
                assert!(saw_leave || next_text(&mut ws) == r#"{"type":"leave","name":"stalled"}"#);
            })
        })
        .collect();
    let text = "x".repeat(4000);
    let mut done = [0usize; 2];
    for i in 0..count {
        while done.iter().min().unwrap() + 16 < i {
            let (who, n) = report
                .recv_timeout(PATIENCE)
                .expect("a reader stopped receiving");
            done[who] = n;
        }
        sender.send(Message::text(format!("{i} {text}"))).unwrap();
    }
    for thread in reader_threads {
        thread.join().unwrap();
    }
    // Everyone else got everything; the stalled member, once it reads, finds some messages
    // and then the close.
    assert_eq!(close_code(&mut stalled), 1008);
}

#[test]
fn a_peer_that_does_not_answer_pings_is_dropped() {
    let server = TestServer::with(|c| c.ping_interval = Duration::from_secs(1));
    let mut silent = server.connect();
    silent
        .write_all(upgrade_request("/echo").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut silent, true).status, 101);
    // A well-behaved client answers pings (tungstenite does whenever it reads) and stays
    // connected through several heartbeats.
    let mut good = server.ws("/echo");
    let good = std::thread::spawn(move || {
        let mut pings = 0;
        while pings < 3 {
            if let Message::Ping(_) = good.read().expect("the answering client was dropped") {
                pings += 1;
            }
        }
        good.send(Message::text("still here")).unwrap();
        assert_eq!(next_text(&mut good), "still here");
    });
    // The silent peer reads (so nothing backs up) but never sends anything back.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match silent.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not dropped within {PATIENCE:?}: {e}"),
        }
    }
    assert_eq!(received.first(), Some(&0x89), "the first frame is a ping");
    assert!(started.elapsed() < PATIENCE);
    good.join().unwrap();
}

#[test]
fn a_slowloris_head_is_cut_off_at_the_deadline() {
    let server = TestServer::with(|c| c.head_timeout = Duration::from_secs(1));
    let mut slow = server.connect();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-A: ")
        .unwrap();
    let started = Instant::now();
    let response = read_response(&mut slow, false);
    assert_eq!(response.status, 408);
    assert!(closed_by_server(&mut slow));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Meanwhile the server serves others.
    assert_eq!(get(&server, "/", "").status, 200);
}

#[test]
fn past_the_connection_cap_new_connections_get_503_and_the_rest_are_served() {
    let server = TestServer::with(|c| c.max_connections = 2);
    let mut first = server.connect();
    let second = server.connect();
    let refused = get(&server, "/", "");
    assert_eq!(refused.status, 503);
    assert!(refused.header("retry-after").is_some());
    // The connections already in are still served.
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut first, false).status, 200);
    // Once one leaves, a newcomer is served again. The server notices the close a moment
    // after we make it, so a bounded number of attempts is allowed.
    drop(second);
    let served = (0..200).any(|_| get(&server, "/", "").status == 200);
    assert!(served, "still refusing after a connection closed");
}

#[test]
fn a_connection_whose_thread_cannot_start_gets_503_and_the_server_goes_on() {
    // A stack larger than the whole address space (128 TiB on x86-64): every thread spawn
    // fails, as it would when memory or a process limit ran out.
    let server = TestServer::with(|c| c.connection_stack = 1 << 47);
    for _ in 0..3 {
        let refused = get(&server, "/", "");
        assert_eq!(refused.status, 503);
        assert!(refused.header("retry-after").is_some());
        assert!(
            refused.text().contains("cannot start a thread"),
            "{}",
            refused.text()
        );
    }
}
