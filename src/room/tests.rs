use super::*;
use crate::outbox::{QueueLimits, Writers};
use crate::transport::MemoryTransport;
use std::time::Duration;

fn writers(bytes: usize) -> Arc<Writers> {
    let limits = QueueLimits {
        bytes,
        messages: None,
    };
    Writers::new(limits, Duration::from_secs(2))
}

fn outbox(writers: &Arc<Writers>) -> (Arc<Outbox>, Arc<MemoryTransport>) {
    let transport = Arc::new(MemoryTransport::new(Vec::new()));
    let outbox = Outbox::new(
        transport.clone(),
        "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
        Arc::clone(writers),
    );
    (Arc::new(outbox), transport)
}

fn join(room: &Arc<Room>, name: &str, outbox: &Arc<Outbox>) -> Membership {
    let (membership, deliveries) = room.join(name, outbox).expect("name accepted");
    deliveries.write();
    membership
}

/// Waits, bounded, until everything queued on `outbox` is written (joins and leaves go through
/// the writer pool).
fn settle(outbox: &Outbox) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !outbox.is_idle() {
        assert!(std::time::Instant::now() < deadline, "never written");
        std::thread::yield_now();
    }
}

/// The text frames in `output`, as strings (server frames: unmasked, short or 16-bit length).
fn texts(output: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = output;
    while let [first, len, tail @ ..] = rest {
        let (len, tail) = match len {
            126 => (
                usize::from(u16::from_be_bytes([tail[0], tail[1]])),
                &tail[2..],
            ),
            n => (usize::from(*n), tail),
        };
        if first & 0x0F == 1 {
            out.push(String::from_utf8(tail[..len].to_vec()).unwrap());
        }
        rest = &tail[len..];
    }
    out
}

#[test]
fn a_member_whose_thread_panics_leaves_and_the_room_goes_on() {
    let writers = writers(1 << 20);
    let room = Room::new("lobby", 10);
    let thread_room = Arc::clone(&room);
    let (thread_outbox, _) = outbox(&writers);
    let result = std::thread::spawn(move || {
        let member = join(&thread_room, "doomed", &thread_outbox);
        member.say("last words", When::Now).write();
        panic!("a bug in one connection");
    })
    .join();
    assert!(result.is_err());
    assert!(
        room.members().is_empty(),
        "the panicking member was not removed"
    );
    let (alice_outbox, _) = outbox(&writers);
    let alice = join(&room, "doomed", &alice_outbox);
    alice.say("hello", When::Now).write();
    assert_eq!(room.members(), ["doomed"]);
}

/// The memory transport panics when written or shut down while the room lock is held
/// (see `sync::assert_io_allowed`), so this runs every path that queues under the lock,
/// including an overflow that closes a member, with the writes that follow it.
#[test]
fn nothing_is_written_or_shut_down_under_the_room_lock() {
    let writers = writers(200);
    let room = Room::new("lobby", 3);
    let (a, a_out) = outbox(&writers);
    let (b, b_out) = outbox(&writers);
    let alice = join(&room, "alice", &a);
    let bob = join(&room, "bob", &b);
    bob.say("hello", When::Now).write();
    // Over bob's 200-byte bound: queued under the lock as a 1008 close, written after. Bob
    // leaves at once, and alice hears it.
    alice.say(&"x".repeat(300), When::Now).write();
    assert_eq!(room.members(), ["alice"]);
    drop(bob);
    drop(alice);
    settle(&a);
    settle(&b);
    assert!(room.members().is_empty());
    let close = frame::close(
        frame::CloseCode::Policy,
        "outgoing queue full: you are not reading fast enough",
    );
    assert!(
        b_out.output().ends_with(&close),
        "bob was not closed with 1008"
    );
    let alice_got = texts(&a_out.output());
    assert_eq!(
        alice_got[1..],
        [
            r#"{"type":"join","name":"bob"}"#,
            r#"{"type":"message","from":"bob","text":"hello"}"#,
            r#"{"type":"leave","name":"bob"}"#,
        ]
    );
}

#[test]
fn a_member_that_keeps_up_sees_each_join_and_leave() {
    let writers = writers(1 << 20);
    let room = Room::new("lobby", 0);
    let (a, a_out) = outbox(&writers);
    let _alice = join(&room, "alice", &a);
    for name in ["bob", "carol"] {
        let (o, _) = outbox(&writers);
        drop(join(&room, name, &o));
        settle(&a);
    }
    assert_eq!(
        texts(&a_out.output()),
        [
            r#"{"type":"welcome","room":"lobby","name":"alice","members":[]}"#,
            r#"{"type":"join","name":"bob"}"#,
            r#"{"type":"leave","name":"bob"}"#,
            r#"{"type":"join","name":"carol"}"#,
            r#"{"type":"leave","name":"carol"}"#,
        ]
    );
}

#[test]
fn a_member_that_fell_behind_gets_the_joins_and_leaves_merged() {
    let writers = writers(1 << 20);
    let room = Room::new("lobby", 0);
    let (a, a_out) = outbox(&writers);
    let alice = join(&room, "alice", &a);
    // Bob's message to alice waits unwritten: alice is behind.
    let (b, _) = outbox(&writers);
    let bob = join(&room, "bob", &b);
    settle(&a);
    let held = bob.say("are you there?", When::Later);
    let mut others = Vec::new();
    for i in 0..100 {
        let (o, _) = outbox(&writers);
        others.push(join(&room, &format!("m{i}"), &o));
    }
    others.truncate(98); // m98 and m99 leave again
    drop(bob);
    held.write();
    // The pool writes it; the leaves below must not merge into the same notice.
    settle(&a);
    drop(others);
    drop(alice);
    let got = texts(&a_out.output());
    let joined: Vec<String> = (0..98).map(|i| format!("\"m{i}\"")).collect();
    assert_eq!(
        got[1..4],
        [
            r#"{"type":"join","name":"bob"}"#.to_string(),
            r#"{"type":"message","from":"bob","text":"are you there?"}"#.to_string(),
            format!(
                r#"{{"type":"presence","joined":[{}],"left":["bob"]}}"#,
                joined.join(",")
            ),
        ]
    );
}

/// A room following a stream (`--redis`), fed entries by hand: what the reader would apply.
/// (The room is made local and then set following, so no cluster is needed to apply.)
#[test]
fn applied_entries_are_delivered_once_in_order_and_not_to_their_sender() {
    use crate::cluster::entry::{Entry, EntryId};
    use crate::cluster::Snapshot;
    let writers = writers(1 << 20);
    let room = Room::new("lobby", 10);
    let (a, a_out) = outbox(&writers);
    let alice = join(&room, "alice", &a);
    room.start_following(Snapshot {
        epoch: "e1".into(),
        last: EntryId { ms: 10, seq: 0 },
        backlog: vec![("old".into(), "before".into())],
        members: vec!["alice".into(), "remote".into()],
    });
    let id = |ms| EntryId { ms, seq: 0 };
    let message = |from: &str, text: &str, node: &str, member| {
        Ok(Entry::Message {
            from: from.into(),
            text: text.into(),
            node: node.into(),
            member,
        })
    };
    let entries = vec![
        // Not after the snapshot: already part of it.
        (id(10), message("remote", "stale", "n2", 0)),
        (id(11), message("remote", "one", "n2", 0)),
        // Alice's own, coming back from the stream: not sent back to her.
        (id(12), message("alice", "mine", "n1", 0)),
        (id(13), Err("no \"kind\" field".to_string())),
        (
            id(14),
            Ok(Entry::Join {
                name: "bob".into(),
                node: "n2".into(),
                member: 1,
            }),
        ),
        // A join of someone already in the view changes nothing.
        (
            id(15),
            Ok(Entry::Join {
                name: "remote".into(),
                node: "n2".into(),
                member: 0,
            }),
        ),
        (
            id(16),
            Ok(Entry::Leave {
                name: "remote".into(),
                node: "n2".into(),
                member: 0,
            }),
        ),
    ];
    let applied = room.apply("n1", entries.clone());
    assert!(!applied.reclaim);
    applied.deliveries.write();
    // The same entries again (a reader that read them twice): nothing new.
    room.apply("n1", entries).deliveries.write();
    room.apply("n1", vec![(id(17), message("bob", "two", "n2", 1))])
        .deliveries
        .write();
    assert_eq!(room.position().map(|(last, _)| last), Some(id(17)));
    // A leave of alice herself, appended by a node that took hers for dead: she must claim
    // her name again.
    let leave = Entry::Leave {
        name: "alice".into(),
        node: "n1".into(),
        member: 0,
    };
    let applied = room.apply("n1", vec![(id(18), Ok(leave))]);
    assert!(applied.reclaim);
    applied.deliveries.write();
    // A batch is written by the pool: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !a.is_idle() {
        assert!(std::time::Instant::now() < deadline, "never written");
        std::thread::yield_now();
    }
    drop(alice);
    assert_eq!(
        texts(&a_out.output())[1..],
        [
            r#"{"type":"message","from":"remote","text":"one"}"#,
            r#"{"type":"join","name":"bob"}"#,
            r#"{"type":"leave","name":"remote"}"#,
            r#"{"type":"message","from":"bob","text":"two"}"#,
            // Until she claims it again, the room's view (and so she) has her gone.
            r#"{"type":"leave","name":"alice"}"#,
        ]
    );
    // A newcomer's backlog is what was applied, after the snapshot's.
    let (c, c_out) = outbox(&writers);
    let _carol = join(&room, "carol", &c);
    let got = texts(&c_out.output());
    assert!(got[1].contains(r#""text":"before""#), "{got:?}");
    assert!(got.last().unwrap().contains(r#""text":"two""#), "{got:?}");
}
