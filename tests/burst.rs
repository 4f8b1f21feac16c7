//! A burst within the rate limit: every member sends at once, and every member, reading as
//! fast as it can, gets everyone else's messages in one global order. None is closed.

mod support;

use std::sync::{Arc, Barrier};
use support::*;
use tungstenite::Message;

const MEMBERS: usize = 50;
/// Each member's share of the burst: far under the default `--rate-limit` of 100 per 10 s.
const EACH: usize = 20;

/// One burst on a server with the default limits; returns what each member received, as
/// message texts in arrival order.
fn burst() -> Vec<Vec<String>> {
    let server = TestServer::start();
    let members: Vec<_> = (0..MEMBERS)
        .map(|who| server.join(&format!("m{who}")))
        .collect();
    let ready = Arc::new(Barrier::new(MEMBERS));
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(who, mut ws)| {
            let ready = Arc::clone(&ready);
            std::thread::spawn(move || {
                ready.wait();
                for i in 0..EACH {
                    ws.send(Message::text(format!("{who}-{i}"))).unwrap();
                }
                let mut got = Vec::new();
                while got.len() < (MEMBERS - 1) * EACH {
                    let text = match ws.read() {
                        Ok(Message::Text(text)) => text.to_string(),
                        Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                        Ok(other) => panic!("m{who} got {other:?} after {} messages", got.len()),
                        Err(e) => panic!("m{who}: {e} after {} messages", got.len()),
                    };
                    if text.starts_with(r#"{"type":"join""#) {
                        continue; // those who joined after this member
                    }
                    let said = text
                        .strip_prefix(r#"{"type":"message","from":"m"#)
                        .and_then(|rest| rest.split_once(r#"","text":""#))
                        .and_then(|(_, rest)| rest.strip_suffix(r#""}"#))
                        .unwrap_or_else(|| panic!("m{who} got {text}"));
                    got.push(said.to_string());
                }
                // A clean close, so the server's log shows no failed writes.
                ws.close(None).unwrap();
                while ws.read().is_ok() {}
                got
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_burst_closes_no_reading_member_and_all_see_one_order() {
    for run in 0..5 {
        let received = burst();
        let from = |text: &String| text.split('-').next().unwrap().parse::<usize>().unwrap();
        for (who, got) in received.iter().enumerate() {
            assert!(
                got.iter().all(|text| from(text) != who),
                "m{who} got its own"
            );
            // Each sender's messages arrive in the order they were sent.
            for sender in (0..MEMBERS).filter(|&s| s != who) {
                let theirs: Vec<_> = got.iter().filter(|t| from(t) == sender).collect();
                let sent: Vec<_> = (0..EACH).map(|i| format!("{sender}-{i}")).collect();
                assert_eq!(theirs, sent.iter().collect::<Vec<_>>(), "run {run}, m{who}");
            }
        }
        // One global order: any two members agree on the order of what both received.
        for (who, got) in received.iter().enumerate().skip(1) {
            let common = |list: &Vec<String>| -> Vec<String> {
                list.iter()
                    .filter(|t| from(t) != 0 && from(t) != who)
                    .cloned()
                    .collect()
            };
            assert_eq!(
                common(got),
                common(&received[0]),
                "run {run}: m0 and m{who}"
            );
        }
    }
}
