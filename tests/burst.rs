//! A burst within the rate limit reaches every member that reads, in one order (issue 11,
//! fault 1): only bytes waiting, or no progress for the write timeout, close a member.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;
use support::*;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const MEMBERS: usize = 50;
const EACH: usize = 20;
const RUNS: usize = 10;

/// A chat message of the burst: who sent it and its number among theirs.
type Said = (usize, usize);

/// What one member received: every chat message in order, and whether anything else than
/// join notices and messages (a close, an error) came.
struct Received {
    messages: Vec<Said>,
    trouble: Option<String>,
}

/// One member: joins (and says so on `joined`), waits for everyone, then writes its burst from
/// one thread while another thread blocks reading, as a browser does.
fn member(
    server: &TestServer,
    me: usize,
    joined: std::sync::mpsc::Sender<()>,
    all_in: Arc<Barrier>,
    all_done: Arc<Barrier>,
) -> Received {
    let mut reader = server.join(&format!("m{me}"));
    joined.send(()).unwrap();
    let stream = reader.get_ref().try_clone().unwrap();
    let mut writer = WebSocket::from_raw_socket(stream, Role::Client, None);
    all_in.wait();
    let sending = thread::spawn(move || {
        for i in 0..EACH {
            writer.send(Message::text(format!("{me}:{i}"))).unwrap();
        }
        writer
    });
    let expected = (MEMBERS - 1) * EACH;
    let mut received = Received {
        messages: Vec::with_capacity(expected),
        trouble: None,
    };
    while received.messages.len() < expected {
        match reader.read() {
            Ok(Message::Text(text)) => match parse_said(&text) {
                Some(said) => received.messages.push(said),
                // The joins of those who came after us, one by one or merged when several
                // came at once; never a leave (a member closed during the burst).
                None if text.starts_with(r#"{"type":"join""#)
                    || (text.starts_with(r#"{"type":"presence""#)
                        && text.ends_with(r#""left":[]}"#)) => {}
                None => {
                    received.trouble = Some(format!("unexpected event {text}"));
                    break;
                }
            },
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => {
                received.trouble = Some(format!("{other:?}"));
                break;
            }
            Err(e) => {
                received.trouble = Some(format!("read failed: {e}"));
                break;
            }
        }
    }
    let _writer = sending.join().unwrap();
    // Nobody leaves before everyone has read everything: a leave during the burst means a
    // member was closed.
    all_done.wait();
    let _ = reader.close(None);
    while reader.read().is_ok() {}
    received
}

/// `{"type":"message","from":"m3","text":"3:17"}` -> (3, 17).
fn parse_said(event: &str) -> Option<Said> {
    let text = event
        .strip_prefix(r#"{"type":"message","from":"m"#)?
        .split_once(r#"","text":""#)?
        .1
        .strip_suffix(r#""}"#)?;
    let (who, i) = text.split_once(':')?;
    Some((who.parse().ok()?, i.parse().ok()?))
}

/// True when the members' orders agree on one global order: each member's sequence is a chain
/// of "came before" edges, and together they must have no cycle (a topological sort of every
/// message succeeds).
fn one_global_order(orders: &[Vec<Said>]) -> bool {
    let mut after: HashMap<Said, Vec<Said>> = HashMap::new();
    let mut before_count: HashMap<Said, usize> = HashMap::new();
    for order in orders {
        for pair in order.windows(2) {
            after.entry(pair[0]).or_default().push(pair[1]);
            *before_count.entry(pair[1]).or_default() += 1;
            before_count.entry(pair[0]).or_default();
        }
    }
    let mut ready: Vec<Said> = before_count
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(s, _)| *s)
        .collect();
    let mut sorted = 0;
    while let Some(said) = ready.pop() {
        sorted += 1;
        for next in after.get(&said).into_iter().flatten() {
            let n = before_count.get_mut(next).unwrap();
            *n -= 1;
            if *n == 0 {
                ready.push(*next);
            }
        }
    }
    sorted == before_count.len()
}

#[test]
fn fifty_members_sending_twenty_each_at_once_all_receive_everything_in_one_order() {
    for run in 0..RUNS {
        // The defaults: 1 MiB of bytes per queue, 100 messages per 10 s, no count bound.
        let server = TestServer::start();
        let all_in = Arc::new(Barrier::new(MEMBERS));
        let all_done = Arc::new(Barrier::new(MEMBERS));
        let received: Vec<Received> = thread::scope(|scope| {
            let mut handles = Vec::new();
            for me in 0..MEMBERS {
                let (joined, has_joined) = std::sync::mpsc::channel();
                let (all_in, all_done) = (Arc::clone(&all_in), Arc::clone(&all_done));
                let server = &server;
                handles.push(scope.spawn(move || member(server, me, joined, all_in, all_done)));
                // One at a time, so that everyone is in the room before anyone sends.
                has_joined
                    .recv_timeout(PATIENCE)
                    .expect("a member could not join");
            }
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (me, got) in received.iter().enumerate() {
            assert!(
                got.trouble.is_none(),
                "run {run}: member {me}: {:?}",
                got.trouble
            );
            let mut from_each = vec![0; MEMBERS];
            for &(who, i) in &got.messages {
                assert_ne!(who, me, "run {run}: member {me} got its own message");
                assert_eq!(
                    i, from_each[who],
                    "run {run}: {me} got {who}'s out of order"
                );
                from_each[who] += 1;
            }
        }
        let orders: Vec<Vec<Said>> = received.into_iter().map(|r| r.messages).collect();
        assert!(
            one_global_order(&orders),
            "run {run}: members disagree on the order"
        );
    }
}
