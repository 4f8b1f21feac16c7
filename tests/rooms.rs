//! Rooms (issue 13): `/chat` is the default room, `/chat/NAME` the room NAME; nothing of one
//! room reaches another; `--max-rooms` caps how many there are.

mod support;

use support::*;
use tungstenite::Message;

fn say(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

fn join_room(
    server: &TestServer,
    path: &str,
    name: &str,
) -> (tungstenite::WebSocket<std::net::TcpStream>, String) {
    let mut ws = server.ws(path);
    say(&mut ws, name);
    let welcome = next_text(&mut ws);
    (ws, welcome)
}

#[test]
fn rooms_are_kept_apart() {
    let server = TestServer::start();
    let (mut lobby, welcome) = join_room(&server, "/chat", "alice");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"lobby","name":"alice","members":[]}"#
    );
    // The same name in another room is another person; room names ignore case.
    let (mut a1, welcome) = join_room(&server, "/chat/Team-A", "alice");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"team-a","name":"alice","members":[]}"#
    );
    let (mut a2, welcome) = join_room(&server, "/chat/team-a", "bob");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","room":"team-a","name":"bob","members":["alice"]}"#
    );
    let (mut b1, _) = join_room(&server, "/chat/team_b", "carol");
    assert_eq!(next_text(&mut a1), r#"{"type":"join","name":"bob"}"#);
    say(&mut a2, "in team-a");
    say(&mut b1, "in team_b");
    say(&mut lobby, "in the lobby");
    assert_eq!(
        next_text(&mut a1),
        r#"{"type":"message","from":"bob","text":"in team-a"}"#
    );
    // Each room's members hear their own room only: the next thing each hears is a probe
    // from their own room.
    for (path, ws) in [("/chat/team_b", &mut b1), ("/chat", &mut lobby)] {
        let (mut probe, _) = join_room(&server, path, "probe");
        assert_eq!(next_text(ws), r#"{"type":"join","name":"probe"}"#);
        say(&mut probe, "same room");
        assert!(next_text(ws).contains("same room"));
    }
    // The backlog is per room too.
    let (_late, _) = join_room(&server, "/chat/team_b", "dave");
    let mut late = server.ws("/chat/team_b");
    say(&mut late, "erin");
    next_text(&mut late);
    let backlog = next_text(&mut late);
    assert_eq!(
        backlog,
        r#"{"type":"message","from":"carol","text":"in team_b","backlog":true}"#
    );
}

#[test]
fn a_path_under_chat_that_names_no_room_is_404_before_the_upgrade() {
    let server = TestServer::start();
    for path in [
        "/chat/",
        "/chat/a/b",
        "/chat/a.b",
        "/chat/%41",
        &format!("/chat/{}", "x".repeat(33)),
    ] {
        let mut stream = server.connect();
        std::io::Write::write_all(&mut stream, upgrade_request(path).as_bytes()).unwrap();
        let reply = read_response(&mut stream, false);
        assert_eq!(reply.status, 404, "{path}");
        assert!(
            reply.text().contains("a room name is 1 to 32 characters"),
            "{}",
            reply.text()
        );
    }
}

#[test]
fn past_max_rooms_a_new_room_is_refused_and_the_others_go_on() {
    let server = TestServer::with(|c| c.max_rooms = 2);
    let (_a, _) = join_room(&server, "/chat/one", "a");
    let (_b, _) = join_room(&server, "/chat/two", "b");
    let mut refused = server.ws("/chat/three");
    say(&mut refused, "c");
    match refused.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert!(
                frame.reason.contains("limit of 2 rooms"),
                "{}",
                frame.reason
            );
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // Connecting without a name creates nothing; existing rooms still take members.
    let (_c, welcome) = join_room(&server, "/chat/one", "c");
    assert!(welcome.contains(r#""members":["a"]"#), "{welcome}");
}
