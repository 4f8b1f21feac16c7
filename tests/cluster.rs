//! Several nodes sharing their rooms through Redis Streams (issue 16), on a real
//! `redis-server` per test. Skipped (with a message) when redis-server is missing, unless `CI`
//! is set: then it fails.
#![cfg(feature = "redis")]

mod support;

use std::collections::{HashMap, HashSet};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::redis::{Redis, Stop};
use support::*;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

fn node(redis: &Redis) -> TestServer {
    let url = redis.url();
    TestServer::with(move |c| {
        c.redis = Some(url);
        // Senders here send hundreds of messages in seconds.
        c.rate_limit = 0;
        c.metrics_addr = Some("127.0.0.1:0".into());
    })
}

/// The value of the unlabelled sample `name` in the node's `/metrics`.
fn metric(server: &TestServer, name: &str) -> String {
    use std::io::{Read, Write};
    let addr = server.metrics.expect("the node serves metrics");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .to_string()
}

fn say(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

/// Connects to `path` on `server` and sends `name`; returns the socket and the first reply.
fn join(server: &TestServer, path: &str, name: &str) -> (Ws, String) {
    let mut ws = server.ws(path);
    say(&mut ws, name);
    let first = next_text(&mut ws);
    (ws, first)
}

/// Joins and insists on being welcomed.
fn member(server: &TestServer, name: &str) -> (Ws, String) {
    let (ws, welcome) = join(server, "/chat", name);
    assert!(welcome.starts_with(r#"{"type":"welcome""#), "{welcome}");
    (ws, welcome)
}

/// Reads texts until one contains `wanted`, within `patience`; returns those read before it.
fn until(ws: &mut Ws, wanted: &str, patience: Duration) -> Vec<String> {
    ws.get_mut().set_read_timeout(Some(patience)).unwrap();
    let deadline = Instant::now() + patience;
    let mut before = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no {wanted:?} within {patience:?}; got {before:#?}"
        );
        let text = next_text(ws);
        if text.contains(wanted) {
            ws.get_mut().set_read_timeout(Some(PATIENCE)).unwrap();
            return before;
        }
        before.push(text);
    }
}

/// The `text` of a message event, if it is one (and not from the backlog).
fn message_text(event: &str) -> Option<String> {
    let rest = event.strip_prefix(r#"{"type":"message","from":""#)?;
    let (_, rest) = rest.split_once(r#"","text":""#)?;
    let text = rest.strip_suffix(r#""}"#)?;
    Some(text.to_string())
}

#[test]
fn members_on_three_nodes_chat_in_one_order_and_see_each_other() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let (a, b, c) = (node(&redis), node(&redis), node(&redis));
    let (mut alice, welcome) = member(&a, "alice");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"lobby","name":"alice","members":[]}"#
    );
    let (mut bob, welcome) = member(&b, "bob");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"lobby","name":"bob","members":["alice"]}"#
    );
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"bob"}"#);
    // The welcome on the third node lists the members of the other two.
    let (mut carol, welcome) = member(&c, "carol");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"lobby","name":"carol","members":["alice","bob"]}"#
    );
    for ws in [&mut alice, &mut bob] {
        assert_eq!(next_text(ws), r#"{"type":"join","name":"carol"}"#);
    }
    // A name held on one node is refused on another, look-alikes included.
    let (mut copy, refused) = join(&c, "/chat", "ALICE");
    assert!(refused.contains(r#""type":"name-refused""#), "{refused}");
    say(&mut copy, "alice2");
    assert!(next_text(&mut copy).contains("welcome"));
    drop(copy);
    for ws in [&mut alice, &mut bob, &mut carol] {
        until(ws, r#"{"type":"leave","name":"alice2"}"#, PATIENCE);
    }

    // All three send at once; every member sees the others' messages, none of its own, and
    // any two members see the messages they both got in the same order.
    const EACH: usize = 60;
    let members: Vec<(String, Ws)> = vec![
        ("alice".into(), alice),
        ("bob".into(), bob),
        ("carol".into(), carol),
    ];
    let barrier = Arc::new(Barrier::new(members.len()));
    let threads: Vec<_> = members
        .into_iter()
        .map(|(name, mut ws)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    say(&mut ws, &format!("{name}-{i}"));
                }
                let mut got = Vec::new();
                while got.len() < 2 * EACH {
                    let text = next_text(&mut ws);
                    if let Some(said) = message_text(&text) {
                        assert!(!said.starts_with(&format!("{name}-")), "{name} got {said}");
                        got.push(said);
                    }
                }
                (name, got)
            })
        })
        .collect();
    let seen: Vec<(String, Vec<String>)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (name, got) in &seen {
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{name} got a message twice");
        // Each sender's messages in the order sent.
        for sender in ["alice", "bob", "carol"] {
            let theirs: Vec<&String> = got
                .iter()
                .filter(|m| m.starts_with(&format!("{sender}-")))
                .collect();
            let sent: Vec<String> = (0..theirs.len()).map(|i| format!("{sender}-{i}")).collect();
            assert!(
                theirs.iter().zip(&sent).all(|(a, b)| *a == b),
                "{name} got {sender}'s out of order"
            );
        }
    }
    for (i, (x, got_x)) in seen.iter().enumerate() {
        for (y, got_y) in &seen[i + 1..] {
            let common = |got: &Vec<String>, other: &Vec<String>| -> Vec<String> {
                got.iter().filter(|m| other.contains(m)).cloned().collect()
            };
            assert_eq!(
                common(got_x, got_y),
                common(got_y, got_x),
                "{x} and {y} saw different orders"
            );
        }
    }
    // A newcomer's backlog is the stream's tail, the same on every node.
    let backlog = |server: &TestServer| {
        let (mut ws, _) = join(server, "/chat", &format!("late{}", server.addr.port()));
        (0..50).map(|_| next_text(&mut ws)).collect::<Vec<_>>()
    };
    let from_a = backlog(&a);
    assert_eq!(from_a, backlog(&b));
    assert!(from_a.iter().all(|m| m.ends_with(r#","backlog":true}"#)));
}

#[test]
fn two_nodes_racing_for_one_name_have_one_winner() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let (a, b) = (node(&redis), node(&redis));
    for round in 0..25 {
        let name = format!("racer{round}");
        let barrier = Arc::new(Barrier::new(2));
        let sockets: Vec<Ws> = [&a, &b].iter().map(|s| s.ws("/chat")).collect();
        let threads: Vec<_> = sockets
            .into_iter()
            .map(|mut ws| {
                let barrier = Arc::clone(&barrier);
                let name = name.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    say(&mut ws, &name);
                    (next_text(&mut ws), ws)
                })
            })
            .collect();
        let replies: Vec<(String, Ws)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let welcomed = replies
            .iter()
            .filter(|(r, _)| r.contains(r#""type":"welcome""#))
            .count();
        let refused = replies
            .iter()
            .filter(|(r, _)| r.contains(r#""type":"name-refused""#))
            .count();
        assert_eq!((welcomed, refused), (1, 1), "round {round}: {replies:?}");
    }
}

#[test]
fn a_killed_nodes_members_leave_everyone_elses_list_within_the_bound() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let observer = node(&redis);
    let (mut watcher, _) = member(&observer, "watcher");
    let mut doomed = Binary::start(&["--redis", &redis.url()]);
    let mut ghosts = Vec::new();
    for name in ["ghost1", "ghost2"] {
        let stream = doomed.connect();
        let url = format!("ws://{}/chat", doomed.addr);
        let (mut ws, _) = tungstenite::client(url.as_str(), stream).expect("upgrade");
        say(&mut ws, name);
        assert!(next_text(&mut ws).contains("welcome"));
        until(
            &mut watcher,
            &format!(r#"{{"type":"join","name":"{name}"}}"#),
            PATIENCE,
        );
        ghosts.push(ws);
    }
    doomed.wait_for_log(&["rooms shared through Redis"]);
    let killed = Instant::now();
    drop(doomed); // SIGKILL
    drop(ghosts);
    // The documented bound: --node-timeout (15 s) plus a third of it.
    let bound = Duration::from_secs(20);
    let mut left = HashSet::new();
    while left.len() < 2 {
        let patience = (bound + Duration::from_secs(2)).saturating_sub(killed.elapsed());
        let before = until(&mut watcher, r#""type":"leave""#, patience);
        assert!(before.is_empty(), "{before:?}");
        left.insert(killed.elapsed());
    }
    let slowest = left.iter().max().copied().unwrap_or_default();
    assert!(slowest <= bound + Duration::from_secs(1), "{slowest:?}");
    eprintln!("the killed node's members left after {slowest:?}");
    // And they are gone from a newcomer's list, on any node.
    let (_, welcome) = member(&observer, "newcomer");
    assert!(welcome.ends_with(r#""members":["watcher"]}"#), "{welcome}");
    // Their names are free again.
    let (_, welcome) = member(&observer, "ghost1");
    assert!(welcome.contains("welcome"));
}

/// Redis stopped and started again, with its data or without.
fn redis_restart(stop: Stop, keep_data: bool) {
    let Some(mut redis) = Redis::start(keep_data) else {
        return;
    };
    let (a, b) = (node(&redis), node(&redis));
    let (mut sender, _) = member(&a, "sender");
    let (mut on_a, _) = member(&a, "on-a");
    let (mut on_b, _) = member(&b, "on-b");
    until(&mut sender, r#""name":"on-b""#, PATIENCE);
    until(&mut on_a, r#""name":"on-b""#, PATIENCE);
    // Messages that Redis took before the outage reach everyone once.
    for i in 0..20 {
        say(&mut sender, &format!("before-{i}"));
    }
    for ws in [&mut on_a, &mut on_b] {
        until(ws, "before-19", PATIENCE);
    }

    // A sender that keeps sending while Redis goes away and comes back.
    let sending = std::thread::spawn(move || {
        let mut refused = HashSet::new();
        let mut events = Vec::new();
        for i in 0..400 {
            say(&mut sender, &format!("during-{i}"));
            std::thread::sleep(Duration::from_millis(5));
        }
        say(&mut sender, "after");
        let deadline = Instant::now() + Duration::from_secs(3);
        sender
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while Instant::now() < deadline {
            match sender.read() {
                Ok(Message::Text(t)) => {
                    if t.contains(r#""type":"not-sent""#) {
                        let text = t.split(r#""text":""#).nth(1).unwrap_or("");
                        refused.insert(text.split('"').next().unwrap_or("").to_string());
                    }
                    events.push(t.to_string());
                }
                Ok(_) => {}
                Err(_) => {}
            }
        }
        (refused, events, sender)
    });
    std::thread::sleep(Duration::from_millis(300));
    let before_outage = wschat::internals::log::capture::mark();
    redis.stop(stop);
    let down = Instant::now();
    // Both nodes' members are told; /healthz says why.
    let mut got: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, ws) in [("on-a", &mut on_a), ("on-b", &mut on_b)] {
        let before = until(ws, r#""type":"degraded""#, PATIENCE);
        got.insert(
            name,
            before.iter().filter_map(|e| message_text(e)).collect(),
        );
    }
    let health = get(&a, "/healthz", "");
    assert_eq!(health.status, 503);
    assert_eq!(metric(&a, "wschat_redis_up"), "0");
    assert!(
        health.text().contains("redis: cannot reach Redis"),
        "{}",
        health.text()
    );
    std::thread::sleep(Duration::from_millis(500));
    redis.restart(keep_data);
    eprintln!("Redis was down for {:?}", down.elapsed());
    for (name, ws) in [("on-a", &mut on_a), ("on-b", &mut on_b)] {
        let before = until(
            ws,
            r#"{"type":"message","from":"sender","text":"after"}"#,
            PATIENCE,
        );
        assert!(
            before.iter().any(|e| e == r#"{"type":"restored"}"#),
            "{name}: {before:#?}"
        );
        let said = got.entry(name).or_default();
        said.extend(before.iter().filter_map(|e| message_text(e)));
    }
    let (refused, sender_events, _sender) = sending.join().unwrap();
    assert!(
        !refused.is_empty(),
        "no message was refused during the outage: {sender_events:#?}"
    );
    assert!(sender_events
        .iter()
        .any(|e| e.contains(r#""type":"degraded""#)));
    // Nobody saw a message twice, and both nodes delivered the same messages in one order.
    for said in got.values() {
        let unique: HashSet<&String> = said.iter().collect();
        assert_eq!(unique.len(), said.len(), "a message delivered twice");
    }
    assert_eq!(
        got["on-a"], got["on-b"],
        "the nodes delivered different messages"
    );
    let delivered: HashSet<&String> = got["on-a"].iter().collect();
    let mut lost = Vec::new();
    for i in 0..400 {
        let text = format!("during-{i}");
        if !delivered.contains(&text) && !refused.contains(&text) {
            lost.push(text);
        }
    }
    if keep_data {
        // Everything Redis took was kept (an append-only file synced at every write).
        assert!(lost.is_empty(), "taken but never delivered: {lost:?}");
        let (mut late, _) = member(&b, "late");
        let backlog: Vec<String> = (0..50).map(|_| next_text(&mut late)).collect();
        assert!(backlog
            .last()
            .is_some_and(|m| m.contains(r#""text":"after""#)));
    } else {
        // Redis lost the room: the nodes noticed and started it again; members re-claimed
        // their names, so a newcomer sees everyone.
        wait_for_log(before_outage, &["Redis no longer has this room"]);
        let (_, welcome) = member(&b, "late");
        for name in ["sender", "on-a", "on-b"] {
            assert!(welcome.contains(&format!("\"{name}\"")), "{welcome}");
        }
    }
    assert_eq!(get(&a, "/healthz", "").status, 200);
    assert_eq!(metric(&a, "wschat_redis_up"), "1");
    let reconnects: u64 = metric(&a, "wschat_redis_reconnects_total").parse().unwrap();
    assert!(reconnects >= 1, "{reconnects} reconnects counted");
    let lag: f64 = metric(&a, "wschat_redis_reader_lag_seconds")
        .parse()
        .unwrap();
    assert!((0.0..60.0).contains(&lag), "a reader lag of {lag} s");
}

#[test]
fn redis_killed_and_restarted_with_its_data_loses_nothing_it_took() {
    redis_restart(Stop::Kill, true);
}

#[test]
fn redis_stopped_and_restarted_without_its_data_starts_the_room_again() {
    redis_restart(Stop::Term, false);
}

#[test]
fn without_redis_the_node_serves_pages_and_echo_and_refuses_names() {
    let Some(mut redis) = Redis::start(false) else {
        return;
    };
    redis.stop(Stop::Kill);
    let server = node(&redis);
    assert_eq!(get(&server, "/", "").status, 200);
    let mut echo = server.ws("/echo");
    say(&mut echo, "still here");
    assert_eq!(next_text(&mut echo), "still here");
    let (_, refused) = join(&server, "/chat", "alice");
    assert!(
        refused.contains(r#""type":"name-refused""#) && refused.contains("shared store"),
        "{refused}"
    );
    // Once Redis is there, the chat works.
    redis.restart(false);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (_, reply) = join(&server, "/chat", "alice");
        if reply.contains("welcome") {
            break;
        }
        assert!(Instant::now() < deadline, "{reply}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
