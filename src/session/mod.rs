//! One upgraded connection, from the first frame to the close.
//!
//! The connection's thread owns tungstenite's protocol state (a `WebSocketContext`) and reads
//! with it. tungstenite answers pings and close frames by writing to the stream it is given;
//! here that stream's write half is the connection's [`Outbox`], so those replies are queued
//! in order with everything else the connection is sent.
//!
//! Where tungstenite only returns an error, this module sends the close code the RFC asks for
//! (section 7.4.1): 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a message over
//! the limit. Autobahn checks exactly that. After any close of ours the connection lingers,
//! reading and discarding, until the peer closes too, so the close frame reaches a peer that is
//! still sending (RFC 6455 section 7.1.1).

mod chat;
mod io;

use crate::frame::CloseCode;
use crate::outbox::{Outbox, When};
use crate::rooms::Rooms;
use chat::{ChatMember, Next};
use io::{SessionIo, TUNGSTENITE_READ_BUFFER};
use std::sync::Arc;
use tungstenite::error::{CapacityError, Error, ProtocolError};
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};

pub use chat::RATE_WINDOW_SECS;

/// Most bytes read and discarded while lingering after our close frame. The time is bounded
/// by the outbox (its linger time); this bounds the work a peer can make us do meanwhile.
const LINGER_BYTES: usize = 64 << 20;

/// The WebSocket endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/echo`: every message comes back unchanged.
    Echo,
    /// `/chat` or `/chat/NAME`: the chat room of this name.
    Chat(String),
    /// `/inspect/ws`: echoes like `/echo`, on a connection watched by the inspector's tap.
    Inspect,
}

/// Settings a session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest message accepted on this endpoint.
    pub max_message: usize,
    /// Chat messages allowed per [`RATE_WINDOW_SECS`] (0: no limit).
    pub rate_limit: u32,
}

/// How a session ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The close code sent or received; 1006 when the connection just dropped.
    pub code: CloseCode,
    /// Why, in a few words.
    pub reason: String,
}

/// How the read loop ended.
enum End {
    /// The peer closed, or the connection dropped: nothing more to send.
    Over(Outcome),
    /// This thread closes the connection with this code and reason.
    Close(CloseCode, String),
    /// Another thread queued our close (queue overflow, heartbeat, shutdown).
    ClosedElsewhere(CloseCode),
}

/// Runs a session until it closes. `leftover` holds bytes that arrived after the request head
/// (a first frame sent in the same packet): they are the start of the frame stream.
pub fn run(
    outbox: &Arc<Outbox>,
    leftover: Vec<u8>,
    endpoint: Endpoint,
    config: &SessionConfig,
    rooms: &Arc<Rooms>,
) -> Outcome {
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(TUNGSTENITE_READ_BUFFER)
        // Every frame is handed to the outbox at once; the outbox does the batching.
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message))
        .max_frame_size(Some(config.max_message));
    let mut io = SessionIo::new(outbox, leftover.len());
    let mut ctx = WebSocketContext::from_partially_read(leftover, Role::Server, Some(ws_config));
    let mut chat = match endpoint {
        Endpoint::Chat(room) => Some(ChatMember::new(rooms, room, config.rate_limit)),
        Endpoint::Echo | Endpoint::Inspect => None,
    };

    let end = loop {
        let message = match ctx.read(&mut io) {
            Ok(message) => message,
            Err(error) => break end_of(error, outbox),
        };
        outbox.heard_from_peer();
        if message.is_text() || message.is_binary() {
            io.count_message();
        }
        let next = match (message, &mut chat) {
            (Message::Text(text), Some(member)) => {
                let when = match io.more_waiting() {
                    true => When::Later,
                    false => When::Now,
                };
                member.on_text(&text, outbox, when)
            }
            (Message::Binary(_), Some(_)) => Next::Close(
                CloseCode::Unsupported,
                "the chat accepts text messages only".into(),
            ),
            (message @ (Message::Text(_) | Message::Binary(_)), None) => match ctx
                .write(&mut io, message)
                .and_then(|()| ctx.flush(&mut io))
            {
                Ok(()) => Next::Continue,
                Err(error) => break end_of(error, outbox),
            },
            (Message::Close(_), _) => {
                // tungstenite queues the reply; nothing from others may follow it.
                outbox.peer_closing();
                Next::Continue
            }
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => Next::Continue,
        };
        if let Next::Close(code, reason) = next {
            break End::Close(code, reason);
        }
        // Stop as soon as another thread queued a close (queue overflow, shutdown): messages
        // tungstenite had already buffered are not acted on, and the log names the code the
        // peer actually receives.
        if let Some(code) = outbox.close_code() {
            break End::ClosedElsewhere(code);
        }
    };
    // Leave the room (announcing it) before our close frame goes out: once the peer sees the
    // close, it is no longer a member.
    drop(chat);
    let outcome = match end {
        End::Over(outcome) => outcome,
        End::Close(code, reason) => {
            outbox.close(code, &reason, When::Waiting).write();
            match outbox.close_code() {
                // The peer's close came first: no close of ours follows it.
                None => Outcome { code, reason },
                Some(sent) => {
                    linger(outbox);
                    // Another thread's close got there first: that is what the peer saw.
                    match sent == code {
                        true => Outcome { code, reason },
                        false => closed_by_server(sent),
                    }
                }
            }
        }
        End::ClosedElsewhere(code) => {
            linger(outbox);
            closed_by_server(code)
        }
    };
    outbox.finish();
    outcome
}

/// Reads and discards what the peer still sends after our close frame, until it closes its
/// side or the outbox's linger time ends the connection. Closing at once instead would make
/// the kernel answer the peer's late bytes with a reset, and a reset destroys our close frame
/// in the peer's receive buffer before it is read. The bytes count as received.
fn linger(outbox: &Outbox) {
    let mut scratch = vec![0u8; 4096];
    let mut read = 0;
    while read < LINGER_BYTES {
        match outbox.transport().read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    outbox.metrics().received(0, read as u64);
}

fn closed_by_server(code: CloseCode) -> Outcome {
    Outcome {
        code,
        reason: "closed by server".into(),
    }
}

/// Turns a tungstenite error into the close code it deserves.
fn end_of(error: Error, outbox: &Outbox) -> End {
    // The server may have closed this connection from another thread (shutdown, queue
    // overflow, heartbeat): that close code is the outcome.
    if let Some(code) = outbox.close_code() {
        return End::ClosedElsewhere(code);
    }
    let (code, reason) = match &error {
        Error::ConnectionClosed | Error::AlreadyClosed => {
            let reason = "closed by peer".into();
            return End::Over(Outcome {
                code: CloseCode::Normal,
                reason,
            });
        }
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) | Error::Io(_) => {
            let reason = format!("connection dropped: {error}");
            return End::Over(Outcome {
                code: CloseCode::Abnormal,
                reason,
            });
        }
        Error::Protocol(e) => (CloseCode::Protocol, e.to_string()),
        Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message".into()),
        // RFC 6455 section 5.2: in a 64-bit length "the most significant bit MUST be 0".
        // tungstenite rejects such a length only as too long; it is a protocol error.
        Error::Capacity(CapacityError::MessageTooLong { size, .. })
            if (*size as u64) >> 63 == 1 =>
        {
            (
                CloseCode::Protocol,
                "frame length with its most significant bit set".into(),
            )
        }
        Error::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            (CloseCode::Size, format!("message over {max_size} bytes"))
        }
        Error::Capacity(e) => (CloseCode::Size, e.to_string()),
        Error::AttackAttempt => (CloseCode::Policy, "attack attempt".into()),
        _ => (CloseCode::Error, "internal error".into()),
    };
    End::Close(code, reason)
}
