//! Joins and leaves at scale (issue 13): a reconnect storm, where every member connects and
//! names itself before any of them reads, ends with everyone in the room and nobody closed,
//! because a member that has fallen behind gets joins merged instead of one frame each.

mod support;

use std::collections::BTreeSet;
use std::net::TcpStream;
use support::*;
use tungstenite::{Message, WebSocket};

const STORM: usize = 500;

/// The names in a JSON array of plain `s<number>` names, such as `["s1","s2"]`.
fn names_in(array: &str) -> Vec<String> {
    array
        .split('"')
        .filter(|part| part.starts_with('s') && part[1..].bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// Reads `ws` until the member's view of who is present (its welcome, then every join, leave,
/// merged presence and member list) holds `everyone`; panics on a close or anything else.
fn read_until_everyone_is_in(ws: &mut WebSocket<TcpStream>, me: &str, everyone: &BTreeSet<String>) {
    let mut view: BTreeSet<String> = BTreeSet::new();
    while &view != everyone {
        let text = match ws.read() {
            Ok(Message::Text(text)) => text.to_string(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            other => panic!(
                "{me}: {other:?} with {} of {} in view",
                view.len(),
                everyone.len()
            ),
        };
        if let Some(rest) = text.strip_prefix(r#"{"type":"welcome","room":"lobby","name":"#) {
            let (_, members) = rest.split_once(r#""members":"#).unwrap();
            view.extend(names_in(members));
            view.insert(me.to_string());
        } else if let Some(rest) = text.strip_prefix(r#"{"type":"presence","joined":"#) {
            let (joined, left) = rest.split_once(r#""left":"#).unwrap();
            for name in names_in(joined) {
                assert!(view.insert(name), "{me}: joined twice in {text}");
            }
            for name in names_in(left) {
                assert!(view.remove(&name), "{me}: left without joining in {text}");
            }
        } else if let Some(rest) = text.strip_prefix(r#"{"type":"members","members":"#) {
            view = names_in(rest).into_iter().collect();
        } else if text.starts_with(r#"{"type":"join""#) {
            let name = names_in(&text).pop().unwrap();
            assert!(view.insert(name), "{me}: joined twice: {text}");
        } else {
            panic!("{me}: unexpected {text}");
        }
    }
}

#[test]
fn a_reconnect_storm_ends_with_everyone_in_and_nobody_closed() {
    // Everyone comes from 127.0.0.1 here.
    let server = TestServer::with(|c| c.max_connections_per_ip = STORM + 1);
    let everyone: BTreeSet<String> = (0..STORM).map(|i| format!("s{i}")).collect();
    // Everyone connects and names itself; nobody reads yet, as browsers reconnecting after a
    // restart each send their name before the page gets to read.
    let mut members: Vec<(String, WebSocket<TcpStream>)> = (0..STORM)
        .map(|i| {
            let mut ws = server.ws("/chat");
            ws.send(Message::text(format!("s{i}"))).unwrap();
            (format!("s{i}"), ws)
        })
        .collect();
    for (name, ws) in &mut members {
        read_until_everyone_is_in(ws, name, &everyone);
    }
    for (_, mut ws) in members {
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
    }
}
