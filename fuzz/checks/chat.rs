//! The chat as its members hear it: the server's text frames decoded into events (strictly:
//! one JSON object, no duplicate keys, only the server's types and fields), the rules an
//! accepted name must keep, and the `chat_input` target, which models the room and predicts
//! every frame each member receives.

use std::collections::VecDeque;
use std::sync::Arc;

use wschat::internals::chat_protocol::{clean_name, name_key, Event};
use wschat::internals::frame;
use wschat::internals::outbox::{Outbox, QueueLimits, When};
use wschat::internals::room::{Membership, Room};
use wschat::internals::transport::MemoryTransport;

use super::frames::{parse_server_output, WsMessage};
use super::json::{parse_json, Json};
use super::memory_outbox::{memory_outbox, wait_idle};

/// One chat event as a member should receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// `{"type":"welcome","room":..,"name":..,"members":[..]}`
    Welcome {
        /// The room joined.
        room: String,
        /// The accepted name.
        name: String,
        /// The others present.
        members: Vec<String>,
    },
    /// `{"type":"name-refused","reason":..}`
    NameRefused {
        /// Why.
        reason: String,
    },
    /// `{"type":"message","from":..,"text":..[,"backlog":true]}`
    Message {
        /// Sender.
        from: String,
        /// Text.
        text: String,
        /// Replayed to a newcomer.
        backlog: bool,
    },
    /// `{"type":"join","name":..}`
    Join {
        /// Who.
        name: String,
    },
    /// `{"type":"leave","name":..}`
    Leave {
        /// Who.
        name: String,
    },
    /// `{"type":"presence","joined":[..],"left":[..]}`: joins and leaves merged.
    Presence {
        /// Who joined.
        joined: Vec<String>,
        /// Who left.
        left: Vec<String>,
    },
    /// `{"type":"members","members":[..]}`: everyone present.
    Members {
        /// Everyone.
        members: Vec<String>,
    },
    /// `{"type":"not-sent","text":..,"reason":..}`
    NotSent {
        /// The message refused.
        text: String,
        /// Why.
        reason: String,
    },
}

/// Decodes one text frame the chat server sent: exactly one JSON object, no duplicate keys,
/// a `type` the server sends, and exactly that type's fields.
pub fn decode_chat_frame(text: &str) -> Result<ChatEvent, String> {
    let json = parse_json(text)?;
    let kind = json.str("type").ok_or("no string \"type\"")?;
    let keys = json.keys();
    let string = |key: &str| {
        json.str(key)
            .map(str::to_string)
            .ok_or_else(|| format!("{kind}: no string {key:?}"))
    };
    let expect_keys = |expected: &[&str]| {
        if keys == expected {
            Ok(())
        } else {
            Err(format!("{kind}: keys {keys:?}, expected {expected:?}"))
        }
    };
    let names = |key: &str| -> Result<Vec<String>, String> {
        let Some(Json::Array(items)) = json.get(key) else {
            return Err(format!("{kind}: {key} is not an array"));
        };
        items
            .iter()
            .map(|m| match m {
                Json::String(s) => Ok(s.clone()),
                _ => Err(format!("{kind}: an item of {key} is not a string")),
            })
            .collect()
    };
    match kind {
        "welcome" => {
            expect_keys(&["type", "room", "name", "members"])?;
            Ok(ChatEvent::Welcome {
                room: string("room")?,
                name: string("name")?,
                members: names("members")?,
            })
        }
        "presence" => {
            expect_keys(&["type", "joined", "left"])?;
            Ok(ChatEvent::Presence {
                joined: names("joined")?,
                left: names("left")?,
            })
        }
        "members" => {
            expect_keys(&["type", "members"])?;
            Ok(ChatEvent::Members {
                members: names("members")?,
            })
        }
        "not-sent" => {
            expect_keys(&["type", "text", "reason"])?;
            Ok(ChatEvent::NotSent {
                text: string("text")?,
                reason: string("reason")?,
            })
        }
        "name-refused" => {
            expect_keys(&["type", "reason"])?;
            Ok(ChatEvent::NameRefused {
                reason: string("reason")?,
            })
        }
        "message" => {
            let backlog = match json.get("backlog") {
                None => {
                    expect_keys(&["type", "from", "text"])?;
                    false
                }
                Some(Json::Bool(true)) => {
                    expect_keys(&["type", "from", "text", "backlog"])?;
                    true
                }
                Some(other) => return Err(format!("message: backlog is {other:?}")),
            };
            Ok(ChatEvent::Message {
                from: string("from")?,
                text: string("text")?,
                backlog,
            })
        }
        "join" | "leave" => {
            expect_keys(&["type", "name"])?;
            let name = string("name")?;
            Ok(if kind == "join" {
                ChatEvent::Join { name }
            } else {
                ChatEvent::Leave { name }
            })
        }
        other => Err(format!("a type the server never sends: {other:?}")),
    }
}

/// Everything a chat connection was sent, as events; `Err` on any frame that is not a valid
/// server frame or not a valid chat event. The close frame, if any, is returned apart.
pub(super) fn chat_transcript(
    output: &[u8],
) -> Result<(Vec<ChatEvent>, Option<WsMessage>), String> {
    let mut events = Vec::new();
    let mut close = None;
    for message in parse_server_output(output)? {
        match message {
            WsMessage::Text(text) => {
                events.push(decode_chat_frame(&text).map_err(|e| format!("{e}: {text}"))?)
            }
            close_frame @ WsMessage::Close(_) => close = Some(close_frame),
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            WsMessage::Binary(_) => return Err("the chat server sent a binary message".into()),
        }
    }
    Ok((events, close))
}

/// An accepted name, checked against the rules without the library's own functions where
/// that is easy: trimmed, 1 to 32 characters, no control or zero-width/bidi characters (but
/// a joiner inside an emoji sequence), and not equal ignoring case to anyone present.
pub(super) fn check_accepted_name(name: &str, present: &[&str]) {
    assert_eq!(name, name.trim(), "untrimmed name {name:?}");
    let chars = name.chars().count();
    assert!((1..=32).contains(&chars), "name of {chars} characters");
    assert!(
        !name.chars().any(|c| c.is_control()
            || matches!(
                c,
                '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'
                    ..='\u{202E}' | '\u{2060}' | '\u{FEFF}'
            )),
        "name with invisible characters {name:?}"
    );
    // A zero-width joiner only between two symbols that are no ASCII, no letter or digit of
    // an alphabet (below U+2000), no space and no joiner or selector themselves; the emoji
    // presentation selector only after one (or in a keycap: `1`, U+FE0F, U+20E3).
    let chars: Vec<char> = name.chars().collect();
    let symbol = |c: Option<&char>| {
        c.is_some_and(|&c| {
            !(c.is_ascii()
                || (c < '\u{2000}' && c.is_alphanumeric())
                || c.is_whitespace()
                || matches!(c, '\u{200D}' | '\u{FE0F}'))
        })
    };
    for (i, c) in chars.iter().enumerate() {
        let (before, after) = (
            i.checked_sub(1).and_then(|j| chars.get(j)),
            chars.get(i + 1),
        );
        match c {
            '\u{200D}' => assert!(
                (symbol(before) || before == Some(&'\u{FE0F}')) && symbol(after),
                "joiner outside an emoji sequence in {name:?}"
            ),
            '\u{FE0F}' => assert!(
                symbol(before)
                    || (before.is_some_and(|c| c.is_ascii_digit() || matches!(c, '#' | '*'))
                        && after == Some(&'\u{20E3}')),
                "presentation selector outside an emoji in {name:?}"
            ),
            _ => {}
        }
    }
    for other in present {
        assert!(
            name.to_lowercase() != other.to_lowercase(),
            "{name:?} accepted while {other:?} is present"
        );
        assert_ne!(
            name_key(name),
            name_key(other),
            "{name:?} looks like {other:?}"
        );
    }
}

/// Characters that make names collide, escape, or hide: what kind-3 records are made of.
const CHAT_ALPHABET: &[char] = &[
    'a',
    'A',
    '\u{430}',
    '\u{FF41}',
    '\u{3B1}',
    'b',
    'o',
    '\u{3BF}',
    'l',
    'i',
    '\u{131}',
    'I',
    ' ',
    '\u{3000}',
    '\u{A0}',
    '\t',
    '\n',
    '\u{200B}',
    '\u{202E}',
    '\u{FEFF}',
    '"',
    '\\',
    '<',
    '>',
    '&',
    '\u{2028}',
    '\u{1}',
    '\u{7F}',
    '\u{85}',
    'é',
    '😀',
    '\u{10FFFF}',
    '{',
    '}',
    ':',
    ',',
];

/// History kept by the room in this target: small, so the backlog wraps.
const CHAT_HISTORY: usize = 3;

struct Slot {
    outbox: Arc<Outbox>,
    transport: Arc<MemoryTransport>,
    membership: Option<Membership>,
    expected: Vec<ChatEvent>,
}

impl Slot {
    fn new() -> Self {
        let (outbox, transport) = memory_outbox(
            Vec::new(),
            QueueLimits {
                messages: None,
                bytes: 1 << 30,
            },
        );
        Slot {
            outbox,
            transport,
            membership: None,
            expected: Vec::new(),
        }
    }
}

/// Every present member but `who` expects `event`.
fn tell_others(slots: &mut [Slot], present: &[(usize, String)], who: usize, event: &ChatEvent) {
    for (slot, _) in present.iter().filter(|(slot, _)| *slot != who) {
        slots[*slot].expected.push(event.clone());
    }
}

/// Member `who` leaves if it is in the room, and the others expect to hear it. True if it was.
fn leave(slots: &mut [Slot], present: &mut Vec<(usize, String)>, who: usize) -> bool {
    let Some(membership) = slots[who].membership.take() else {
        return false;
    };
    let name = membership.name().to_string();
    drop(membership);
    present.retain(|(slot, _)| *slot != who);
    tell_others(slots, present, who, &ChatEvent::Leave { name });
    true
}

/// A script of up to four members: each record is `op, len, len bytes`. `op & 3` is the
/// member; `op >> 2 & 3` is 0 or 1: send the bytes as text (a name until accepted, then a
/// message), 2: leave, 3: send text made of [`CHAT_ALPHABET`] characters. Every frame each
/// member receives must be exactly the event the room's rules predict: the right welcome
/// with the others present, the backlog, joins and leaves of names that really joined and
/// left, and messages whose `from` is the member who said them.
pub fn check_chat_input(data: &[u8]) {
    let room = Room::new("lobby", CHAT_HISTORY);
    let mut slots: Vec<Slot> = (0..4).map(|_| Slot::new()).collect();
    let mut retired: Vec<Slot> = Vec::new();
    // Present members, in joining order: (slot, name).
    let mut present: Vec<(usize, String)> = Vec::new();
    let mut backlog: VecDeque<(String, String)> = VecDeque::new();

    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let take = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let who = usize::from(op & 3);
        let text: String = match (op >> 2) & 3 {
            2 => {
                if leave(&mut slots, &mut present, who) {
                    slots[who].outbox.finish();
                    let done = std::mem::replace(&mut slots[who], Slot::new());
                    retired.push(done);
                }
                continue;
            }
            3 => bytes
                .iter()
                .map(|b| CHAT_ALPHABET[*b as usize % CHAT_ALPHABET.len()])
                .collect(),
            _ => String::from_utf8_lossy(bytes).into_owned(),
        };
        match &slots[who].membership {
            Some(membership) => {
                let from = membership.name().to_string();
                membership.say(&text, When::Now).write();
                let message = ChatEvent::Message {
                    from: from.clone(),
                    text: text.clone(),
                    backlog: false,
                };
                tell_others(&mut slots, &present, who, &message);
                if backlog.len() == CHAT_HISTORY {
                    backlog.pop_front();
                }
                backlog.push_back((from, text));
            }
            None => {
                let others: Vec<&str> = present.iter().map(|(_, n)| n.as_str()).collect();
                let predicted = clean_name(&text).and_then(|name| {
                    if others.iter().any(|o| name_key(o) == name_key(name)) {
                        Err(wschat::internals::chat_protocol::NameError::Taken)
                    } else {
                        Ok(name)
                    }
                });
                let outbox = Arc::clone(&slots[who].outbox);
                match room.join(&text, &outbox) {
                    Ok((membership, joined)) => {
                        joined.write();
                        let name = membership.name().to_string();
                        assert_eq!(predicted, Ok(name.as_str()), "accepted {text:?}");
                        check_accepted_name(&name, &others);
                        let others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
                        slots[who].expected.push(ChatEvent::Welcome {
                            room: "lobby".into(),
                            name: name.clone(),
                            members: others,
                        });
                        for (from, said) in &backlog {
                            slots[who].expected.push(ChatEvent::Message {
                                from: from.clone(),
                                text: said.clone(),
                                backlog: true,
                            });
                        }
                        let join = ChatEvent::Join { name: name.clone() };
                        tell_others(&mut slots, &present, who, &join);
                        present.push((who, name));
                        slots[who].membership = Some(membership);
                    }
                    Err(refused) => {
                        assert_eq!(predicted, Err(refused), "refused {text:?}");
                        // As the session does.
                        let reason = refused.reason();
                        outbox
                            .enqueue(
                                frame::text(&Event::NameRefused { reason: &reason }.to_json()),
                                When::Waiting,
                            )
                            .write();
                        slots[who].expected.push(ChatEvent::NameRefused {
                            reason: reason.into(),
                        });
                    }
                }
            }
        }
        let names: Vec<String> = present.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(room.members(), names, "room members");
    }
    // Everyone leaves, in slot order.
    for who in 0..slots.len() {
        leave(&mut slots, &mut present, who);
    }
    assert!(room.members().is_empty());
    for slot in retired.iter().chain(&slots) {
        wait_idle(&slot.outbox);
        let output = slot.transport.output();
        let (events, close) = chat_transcript(&output).unwrap_or_else(|e| panic!("{e}"));
        assert!(close.is_none(), "a close frame in the chat: {close:?}");
        same_transcript(&events, &slot.expected)
            .unwrap_or_else(|e| panic!("a member's transcript: {e}"));
    }
}

/// The member list after `run` of joins and leaves (no merged events) from `present`.
fn after(present: &[String], run: &[ChatEvent]) -> Vec<String> {
    let mut list = present.to_vec();
    for event in run {
        match event {
            ChatEvent::Join { name } => list.push(name.clone()),
            ChatEvent::Leave { name } => list.retain(|p| p != name),
            _ => {}
        }
    }
    list
}

/// Who joined and who left over `run`, each name at most once, as the server merges them.
fn net_effect(run: &[ChatEvent]) -> (Vec<String>, Vec<String>) {
    let (mut joined, mut left): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for event in run {
        match event {
            ChatEvent::Join { name } => match left.iter().position(|n| n == name) {
                Some(i) => drop(left.remove(i)),
                None => joined.push(name.clone()),
            },
            ChatEvent::Leave { name } => match joined.iter().position(|n| n == name) {
                Some(i) => drop(joined.remove(i)),
                None => left.push(name.clone()),
            },
            _ => {}
        }
    }
    (joined, left)
}

/// A member's transcript against the model's. Every event is the one predicted, in order,
/// except that a run of more than 16 waiting joins and leaves may come merged, as one
/// `presence` event with exactly their net effect (a member whose writer was late), or as a
/// `members` list that is the list after them (one very far behind).
pub fn same_transcript(events: &[ChatEvent], expected: &[ChatEvent]) -> Result<(), String> {
    let fail = |why: String| Err(format!("{why}: {events:?}, expected {expected:?}"));
    let mut present: Vec<String> = Vec::new();
    let mut at = 0;
    for event in events {
        let merged_run = |fits: &dyn Fn(&[ChatEvent]) -> bool| {
            (17..=expected.len() - at)
                .take_while(|&k| {
                    expected[at..at + k]
                        .iter()
                        .all(|e| matches!(e, ChatEvent::Join { .. } | ChatEvent::Leave { .. }))
                })
                .find(|&k| fits(&expected[at..at + k]))
        };
        let took = match event {
            ChatEvent::Presence { joined, left } => {
                merged_run(&|run| net_effect(run) == (joined.clone(), left.clone()))
            }
            ChatEvent::Members { members } => merged_run(&|run| {
                let mut a = after(&present, run);
                let mut b = members.clone();
                a.sort();
                b.sort();
                a == b
            }),
            event => (expected.get(at) == Some(event)).then_some(1),
        };
        let Some(k) = took else {
            return fail(format!("{event:?} at {at} is not what was predicted"));
        };
        present = match &expected[at] {
            ChatEvent::Welcome { members, .. } => members.clone(),
            _ => after(&present, &expected[at..at + k]),
        };
        at += k;
    }
    if at != expected.len() {
        return fail(format!("{} predicted events missing", expected.len() - at));
    }
    Ok(())
}
