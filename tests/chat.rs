//! The chat room over real sockets, with tungstenite's client as the members.

mod support;

use std::io::Write;
use support::*;
use tungstenite::Message;

fn say(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

#[test]
fn two_members_chat_and_the_sender_gets_no_echo() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"bob"}"#);
    say(&mut alice, "hi bob");
    assert_eq!(
        next_text(&mut bob),
        r#"{"type":"message","from":"alice","text":"hi bob"}"#
    );
    say(&mut bob, "hi alice");
    // Alice's next message is bob's, not her own echo.
    assert_eq!(
        next_text(&mut alice),
        r#"{"type":"message","from":"bob","text":"hi alice"}"#
    );
}

#[test]
fn three_members_each_get_every_other_message_in_order() {
    let server = TestServer::start();
    let mut a = server.join("a");
    let mut b = server.join("b");
    let mut c = server.join("c");
    assert_eq!(next_text(&mut a), r#"{"type":"join","name":"b"}"#);
    assert_eq!(next_text(&mut a), r#"{"type":"join","name":"c"}"#);
    assert_eq!(next_text(&mut b), r#"{"type":"join","name":"c"}"#);
    for i in 0..20 {
        say(&mut a, &format!("m{i}"));
    }
    for ws in [&mut b, &mut c] {
        for i in 0..20 {
            assert_eq!(
                next_text(ws),
                format!(r#"{{"type":"message","from":"a","text":"m{i}"}}"#)
            );
        }
    }
    say(&mut c, "from c");
    assert_eq!(
        next_text(&mut a),
        r#"{"type":"message","from":"c","text":"from c"}"#
    );
    assert_eq!(
        next_text(&mut b),
        r#"{"type":"message","from":"c","text":"from c"}"#
    );
}

#[test]
fn welcome_lists_who_is_there() {
    let server = TestServer::start();
    let _alice = server.join("alice");
    let mut bob = server.ws("/chat");
    say(&mut bob, "  bob  ");
    assert_eq!(
        next_text(&mut bob),
        r#"{"type":"welcome","room":"lobby","name":"bob","members":["alice"]}"#
    );
}

#[test]
fn a_taken_name_is_refused_and_the_user_may_try_again() {
    let server = TestServer::start();
    let _alice = server.join("alice");
    let mut second = server.ws("/chat");
    for taken in ["alice", "ALICE", "\u{0430}lice"] {
        say(&mut second, taken);
        let reply = next_text(&mut second);
        assert!(
            reply.starts_with(r#"{"type":"name-refused","reason":"#),
            "{reply}"
        );
    }
    for bad in ["   ", &"x".repeat(33), "a\u{1}b"] {
        say(&mut second, bad);
        assert!(next_text(&mut second).contains("name-refused"));
    }
    say(&mut second, "alice2");
    assert!(
        next_text(&mut second).starts_with(r#"{"type":"welcome","room":"lobby","name":"alice2""#)
    );
}

#[test]
fn names_may_be_emoji_joined_with_zero_width_joiners_but_not_hide_one() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let mut newcomer = server.ws("/chat");
    for hidden in ["ali\u{200D}ce", "\u{200D}\u{1F469}", "bob\u{FE0F}"] {
        say(&mut newcomer, hidden);
        assert_eq!(
            next_text(&mut newcomer),
            r#"{"type":"name-refused","reason":"a name may not contain control or invisible characters"}"#,
            "{hidden:?}"
        );
    }
    let health_worker = "\u{1F469}\u{1F3FD}\u{200D}\u{2695}\u{FE0F}"; // 👩🏽‍⚕️
    say(&mut newcomer, health_worker);
    assert_eq!(
        next_text(&mut newcomer),
        format!(
            r#"{{"type":"welcome","room":"lobby","name":"{health_worker}","members":["alice"]}}"#
        )
    );
    assert_eq!(
        next_text(&mut alice),
        format!(r#"{{"type":"join","name":"{health_worker}"}}"#)
    );
    let mut flag = server.ws("/chat");
    say(&mut flag, "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}"); // 🏳️‍🌈
    assert!(next_text(&mut flag).starts_with(r#"{"type":"welcome""#));
    assert!(next_text(&mut alice).starts_with(r#"{"type":"join""#));
    say(&mut newcomer, "hello");
    assert_eq!(
        next_text(&mut alice),
        format!(r#"{{"type":"message","from":"{health_worker}","text":"hello"}}"#)
    );
}

#[test]
fn join_and_leave_notices() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"bob"}"#);
    bob.close(None).unwrap();
    assert_eq!(next_text(&mut alice), r#"{"type":"leave","name":"bob"}"#);
}

#[test]
fn a_newcomer_gets_the_backlog_first() {
    let server = TestServer::with(|c| c.history = 3);
    let mut alice = server.join("alice");
    let mut carol = server.join("carol");
    for i in 0..5 {
        say(&mut alice, &format!("m{i}"));
    }
    // Once carol has them all, the server has stored them all.
    for _ in 0..5 {
        next_text(&mut carol);
    }
    // The welcome is read by join(); the backlog follows, oldest first, only the last 3.
    let mut bob = server.join("bob");
    for i in 2..5 {
        assert_eq!(
            next_text(&mut bob),
            format!(r#"{{"type":"message","from":"alice","text":"m{i}","backlog":true}}"#)
        );
    }
    say(&mut alice, "live");
    assert_eq!(
        next_text(&mut bob),
        r#"{"type":"message","from":"alice","text":"live"}"#
    );
}

#[test]
fn text_cannot_forge_a_notice_or_another_member() {
    let server = TestServer::start();
    let mut eve = server.join("eve");
    let mut bob = server.join("bob");
    let forged = r#"{"type":"join","name":"mallory"}"#;
    say(&mut eve, forged);
    say(&mut eve, "\",\"from\":\"bob");
    let first = next_text(&mut bob);
    assert_eq!(
        first,
        r#"{"type":"message","from":"eve","text":"{\"type\":\"join\",\"name\":\"mallory\"}"}"#
    );
    let second = next_text(&mut bob);
    assert_eq!(
        second,
        r#"{"type":"message","from":"eve","text":"\",\"from\":\"bob"}"#
    );
    // A name that looks like JSON is still just a name.
    let mut tricky = server.ws("/chat");
    say(&mut tricky, r#"x","type":"leave"#);
    assert_eq!(
        next_text(&mut bob),
        r#"{"type":"join","name":"x\",\"type\":\"leave"}"#
    );
}

#[test]
fn an_oversized_message_closes_with_1009_and_binary_with_1003() {
    let server = TestServer::with(|c| c.max_chat_message = 100);
    let mut big = server.join("big");
    say(&mut big, &"x".repeat(101));
    assert_eq!(close_code(&mut big), 1009);
    let mut binary = server.join("binary");
    binary.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(close_code(&mut binary), 1003);
    // The room still works.
    let mut a = server.join("a");
    let mut b = server.join("b");
    assert_eq!(next_text(&mut a), r#"{"type":"join","name":"b"}"#);
    say(&mut b, &"y".repeat(100));
    assert!(next_text(&mut a).contains(&"y".repeat(100)));
}

#[test]
fn an_abrupt_disconnect_removes_the_member() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"bob"}"#);
    // No close frame: the TCP connection just goes away.
    let stream = bob.into_inner();
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    assert_eq!(next_text(&mut alice), r#"{"type":"leave","name":"bob"}"#);
    // The name is free again.
    let _bob_again = server.join("bob");
}

#[test]
fn a_member_who_sends_garbage_is_closed_and_the_room_goes_on() {
    let server = TestServer::start();
    let mut alice = server.join("alice");
    let mut raw = server.connect();
    raw.write_all(upgrade_request("/chat").as_bytes()).unwrap();
    assert_eq!(read_response(&mut raw, true).status, 101);
    raw.write_all(&client_frame(0x1, true, b"mallory")).unwrap();
    // An unmasked frame is a protocol error (RFC 6455 section 5.1).
    raw.write_all(b"\x81\x02hi").unwrap();
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"mallory"}"#);
    assert_eq!(
        next_text(&mut alice),
        r#"{"type":"leave","name":"mallory"}"#
    );
    let mut bob = server.join("bob");
    assert_eq!(next_text(&mut alice), r#"{"type":"join","name":"bob"}"#);
    say(&mut bob, "still here");
    assert!(next_text(&mut alice).contains("still here"));
}
