//! The `session` target: the bytes after a valid upgrade, through `session::run`.

use std::sync::Arc;
use wschat::internals::outbox::{QueueLimits, When};
use wschat::internals::rooms::Rooms;
use wschat::internals::session::{self, Endpoint, SessionConfig};

use super::chat::{chat_transcript, check_accepted_name, ChatEvent};
use super::frames::{check_echoed, parse_server_output, WsMessage};
use super::hex;
use super::memory_outbox::{memory_outbox, wait_idle};

/// What the observer member says before the fuzzed member arrives (it is in the backlog).
pub const BOB_SAYS: &str = "hi <all> & \"you\"\u{2028}";

/// Outgoing queue limits far above what one input can queue: nothing is ever dropped.
const ROOMY: QueueLimits = QueueLimits {
    messages: None,
    bytes: 1 << 26,
};

/// The room the chat sessions join.
const ROOM: &str = "lobby";

/// The limits of a session run, chosen by the first input byte.
#[derive(Debug, Clone)]
pub struct SessionSetup {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// Largest message.
    pub max_message: usize,
    /// Messages per 10 s on the chat (0: unlimited).
    pub rate_limit: u32,
    /// Outgoing queue limits.
    pub limits: QueueLimits,
    /// Bytes of the stream given to `run` as already read (the `leftover` after the head).
    pub leftover: usize,
}

impl SessionSetup {
    /// Bit 0: chat (1) or echo (0). Bit 1: echo limit 1 KiB instead of 64 KiB. Bit 2: tight
    /// outgoing queue (8 messages, 1 KiB). Bit 3: chat rate limit of 5 per 10 s. Bits 4-7 times
    /// 7: how many stream bytes arrive as leftover.
    pub fn from_byte(selector: u8) -> Self {
        let endpoint = if selector & 1 == 1 {
            Endpoint::Chat(ROOM.into())
        } else {
            Endpoint::Echo
        };
        SessionSetup {
            max_message: match (&endpoint, selector & 2 != 0) {
                (Endpoint::Chat(_), _) => 4096,
                (Endpoint::Echo | Endpoint::Inspect, false) => 64 * 1024,
                (Endpoint::Echo | Endpoint::Inspect, true) => 1024,
            },
            rate_limit: if selector & 8 != 0 { 5 } else { 0 },
            limits: if selector & 4 != 0 {
                QueueLimits {
                    messages: Some(8),
                    bytes: 1024,
                }
            } else {
                ROOMY
            },
            leftover: usize::from(selector >> 4) * 7,
            endpoint,
        }
    }

    /// Whether the outgoing queue is the tight one, which may overflow and drop frames.
    pub fn tight_queue(&self) -> bool {
        self.limits.messages.is_some()
    }
}

/// Runs the bytes after an upgrade through `session::run`, as `/echo` or `/chat` (first input
/// byte, see [`SessionSetup::from_byte`]), with an observer `bob` in the room. Checks: no panic
/// or hang; what the server wrote parses as valid server frames ending at most in one close;
/// output is bounded by a multiple of the input; the echo returns the client's messages in
/// order; on the chat every text frame is one JSON event of the server's, and bob hears the
/// newcomer join, speak and leave under exactly the name it was welcomed with.
pub fn check_session(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let setup = SessionSetup::from_byte(selector);
    let split = setup.leftover.min(stream.len());
    let (leftover, rest) = stream.split_at(split);

    let rooms = Arc::new(Rooms::new(1, 50));
    let room = rooms.get_or_create(ROOM).expect("the one room");
    let (bob_outbox, bob_transport) = memory_outbox(Vec::new(), ROOMY);
    let (bob, joined) = room
        .join("bob", &bob_outbox)
        .expect("bob joins an empty room");
    joined.write();
    bob.say(BOB_SAYS, When::Now).write();

    let (outbox, transport) = memory_outbox(rest.to_vec(), setup.limits);
    let config = SessionConfig {
        max_message: setup.max_message,
        rate_limit: setup.rate_limit,
    };
    let outcome = session::run(
        &outbox,
        leftover.to_vec(),
        setup.endpoint.clone(),
        &config,
        &rooms,
    );
    wait_idle(&outbox);
    assert_eq!(room.members(), ["bob"], "the session left the room");
    drop(bob);
    wait_idle(&bob_outbox);

    let output = transport.output();
    let messages = parse_server_output(&output)
        .unwrap_or_else(|e| panic!("invalid server output ({e}): {}", hex(&output)));
    let limit = match setup.endpoint {
        Endpoint::Echo | Endpoint::Inspect => 2 * stream.len() + 512,
        Endpoint::Chat(_) => 16 * stream.len() + 1024,
    };
    assert!(
        output.len() <= limit,
        "{} bytes out for {} in",
        output.len(),
        stream.len()
    );
    // A session that ends for a reason of the server's tells the client that reason, also
    // when its queue overflowed: the outcome is the close actually sent.
    let code = u16::from(outcome.code);
    if !matches!(code, 1000 | 1006) {
        assert!(
            matches!(messages.last(), Some(WsMessage::Close(Some((sent, _)))) if *sent == code),
            "outcome {outcome:?} but the last frame sent is {:?}",
            messages.last()
        );
    }

    match setup.endpoint {
        Endpoint::Echo | Endpoint::Inspect => {
            check_echoed(stream, setup.max_message, &messages, true)
        }
        Endpoint::Chat(_) => {
            check_chat_session(&output, &bob_transport.output(), setup.tight_queue())
        }
    }
}

/// `tight`: the newcomer's queue may have overflowed, dropping some of its frames.
fn check_chat_session(output: &[u8], bob_output: &[u8], tight: bool) {
    let (events, _) = chat_transcript(output).unwrap_or_else(|e| panic!("newcomer: {e}"));
    let (bob_events, bob_close) =
        chat_transcript(bob_output).unwrap_or_else(|e| panic!("bob: {e}"));
    assert!(bob_close.is_none(), "bob was closed");

    // Bob hears exactly: his welcome, then possibly the newcomer's join under some name X,
    // messages from X and nobody else, and X's leave.
    let bob_welcome = ChatEvent::Welcome {
        room: ROOM.into(),
        name: "bob".into(),
        members: vec![],
    };
    assert_eq!(bob_events.first(), Some(&bob_welcome), "bob's welcome");
    let joined = match bob_events.get(1) {
        None => None,
        Some(ChatEvent::Join { name }) => Some(name.clone()),
        Some(other) => panic!("bob heard {other:?} before any join"),
    };
    if let Some(name) = &joined {
        check_accepted_name(name, &["bob"]);
        let (last, middle) = bob_events[2..]
            .split_last()
            .unwrap_or_else(|| panic!("bob never heard {name:?} leave"));
        assert_eq!(
            last,
            &ChatEvent::Leave { name: name.clone() },
            "bob's last event"
        );
        for event in middle {
            assert!(
                matches!(event, ChatEvent::Message { from, backlog: false, .. } if from == name),
                "bob heard {event:?} while only {name:?} could speak"
            );
        }
    }

    // The newcomer: refusals, then at most one welcome (under the name bob heard join)
    // followed by bob's backlog line.
    let welcome_at = events
        .iter()
        .position(|e| matches!(e, ChatEvent::Welcome { .. }));
    for event in &events[..welcome_at.unwrap_or(events.len())] {
        assert!(
            matches!(event, ChatEvent::NameRefused { reason } if !reason.is_empty()),
            "before the welcome: {event:?}"
        );
    }
    match welcome_at {
        Some(at) => {
            let ChatEvent::Welcome {
                room,
                name,
                members,
            } = &events[at]
            else {
                unreachable!()
            };
            assert_eq!(
                Some(name),
                joined.as_ref(),
                "welcomed as {name:?}, bob heard"
            );
            assert_eq!(members, &["bob"], "welcome members");
            assert_eq!(room, ROOM, "welcome room");
            let backlog = [ChatEvent::Message {
                from: "bob".into(),
                text: BOB_SAYS.into(),
                backlog: true,
            }];
            let after = &events[at + 1..];
            if tight {
                assert!(backlog.starts_with(after), "after the welcome: {after:?}");
            } else {
                assert_eq!(after, &backlog, "after the welcome");
            }
        }
        None => assert!(
            tight || joined.is_none(),
            "bob heard {joined:?} join, but the newcomer was never welcomed"
        ),
    }
}
