//! One upgraded connection, from the first frame to the close.
//!
//! The connection's thread owns tungstenite's protocol state (a `WebSocketContext`) and reads
//! with it. tungstenite answers pings and close frames by writing to the stream it is given;
//! here that stream's write half is the connection's [`Outbox`], so those replies are queued
//! in order with everything else the connection is sent.
//!
//! Where tungstenite only returns an error, this module sends the close code the RFC asks for
//! (section 7.4.1): 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a message over
//! the limit. Autobahn checks exactly that.

use crate::chat_protocol::Event;
use crate::outbox::text_frame;
use crate::outbox::Outbox;
use crate::room::{Flush, Membership, Room};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;
use tungstenite::error::{CapacityError, Error, ProtocolError};
use tungstenite::protocol::{Message, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Bytes;

/// The WebSocket endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/echo`: every message comes back unchanged.
    Echo,
    /// `/chat`: the chat room.
    Chat,
    /// `/inspect/ws`: echoes like `/echo`, on a connection watched by the inspector's tap.
    Inspect,
}

impl Endpoint {
    /// The path it is served at.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Echo => "/echo",
            Endpoint::Chat => "/chat",
            Endpoint::Inspect => crate::inspect::SOCKET,
        }
    }
}

/// Settings a session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest message accepted on this endpoint.
    pub max_message: usize,
    /// Chat messages allowed per 10 seconds (0: no limit).
    pub rate_limit: u32,
}

/// tungstenite's own read buffer, allocated for every connection. Small, because a chat has
/// thousands of mostly idle members (tungstenite's default of 128 KiB made 5,000 of them cost
/// 800 MB): [`SessionIo`] does the reading from the socket and hands tungstenite bytes from
/// memory, so the size of tungstenite's reads costs no system calls.
const READ_BUFFER: usize = 128;

/// What [`SessionIo`] reads into while the peer sends little: the buffer an idle connection
/// waits with.
const READ_IDLE: usize = 256;

/// What [`SessionIo`] reads into once a read has filled [`READ_IDLE`]: a burst, such as a
/// 4 KiB message or many small ones, then costs one system call per 16 KiB.
const READ_AHEAD: usize = 16 * 1024;

/// Reads from the socket, writes into the outbox: the stream tungstenite sees.
struct SessionIo<'a> {
    outbox: &'a Arc<Outbox>,
    /// Bytes read from the socket; tungstenite has taken those before `ahead_pos`.
    ahead: Vec<u8>,
    ahead_pos: usize,
    /// The last read filled its buffer: more is probably waiting.
    bursting: bool,
}

impl<'a> SessionIo<'a> {
    fn new(outbox: &'a Arc<Outbox>) -> Self {
        SessionIo {
            outbox,
            ahead: Vec::new(),
            ahead_pos: 0,
            bursting: false,
        }
    }

    /// Reads from the socket into `ahead`, which tungstenite has emptied. The buffer is sized
    /// for what is coming: small while the peer sends little, since the connection then
    /// waits in this read holding it, large while reads come back full. A burst buffer is
    /// given back before the next small read.
    fn refill(&mut self) -> io::Result<()> {
        let size = if self.bursting { READ_AHEAD } else { READ_IDLE };
        if self.ahead.capacity() > size {
            self.ahead = Vec::new();
        }
        self.ahead.clear();
        self.ahead_pos = 0;
        self.ahead.resize(size, 0);
        let read = self.outbox.transport().read(&mut self.ahead);
        let n = *read.as_ref().unwrap_or(&0);
        self.ahead.truncate(n);
        self.bursting = n == size;
        read.map(drop)
    }

    /// True when more of the peer's bytes are already here or probably waiting: another
    /// message is likely right behind the one just read.
    fn more_waiting(&self) -> bool {
        self.ahead_pos < self.ahead.len() || self.bursting
    }
}

impl Read for SessionIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ahead_pos == self.ahead.len() {
            self.refill()?;
        }
        let n = buf.len().min(self.ahead.len() - self.ahead_pos);
        buf[..n].copy_from_slice(&self.ahead[self.ahead_pos..self.ahead_pos + n]);
        self.ahead_pos += n;
        Ok(n) // 0 only at the end of the stream
    }
}

impl Write for SessionIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tungstenite hands over its whole output buffer, which holds whole frames, so one
        // queued item never splits a frame.
        self.outbox.push_owned(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a session ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The close code sent or received; 1006 when the connection just dropped.
    pub code: u16,
    /// Why, in a few words.
    pub reason: String,
}

/// What the endpoint wants after a message.
enum Next {
    Continue,
    Close(u16, &'static str),
}

/// A token bucket: `limit` messages per 10 seconds, refilled continuously.
struct RateLimiter {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(limit: u32) -> Option<Self> {
        (limit > 0).then(|| RateLimiter {
            per_second: f64::from(limit) / 10.0,
            capacity: f64::from(limit),
            tokens: f64::from(limit),
            last: Instant::now(),
        })
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The chat endpoint's state for one connection.
struct ChatMember {
    room: Arc<Room>,
    membership: Option<Membership>,
    limiter: Option<RateLimiter>,
}

impl ChatMember {
    fn on_text(&mut self, text: &str, outbox: &Arc<Outbox>, flush: Flush) -> Next {
        match &self.membership {
            None => match self.room.join(text, outbox) {
                Ok(membership) => self.membership = Some(membership),
                Err(refused) => {
                    outbox.push(text_frame(
                        &Event::NameRefused {
                            reason: refused.reason(),
                        }
                        .to_json(),
                    ));
                }
            },
            Some(member) => {
                if let Some(limiter) = &mut self.limiter {
                    if !limiter.allow() {
                        return Next::Close(1008, "sending too fast");
                    }
                }
                if !text.trim().is_empty() {
                    member.say(text, flush);
                }
            }
        }
        Next::Continue
    }
}

/// Runs a session until it closes. `leftover` holds bytes that arrived after the request head
/// (a first frame sent in the same packet): they are the start of the frame stream.
pub fn run(
    outbox: &Arc<Outbox>,
    leftover: Vec<u8>,
    endpoint: Endpoint,
    config: &SessionConfig,
    room: &Arc<Room>,
) -> Outcome {
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Every frame is handed to the outbox at once; the outbox does the batching.
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message))
        .max_frame_size(Some(config.max_message));
    let mut ctx = WebSocketContext::from_partially_read(leftover, Role::Server, Some(ws_config));
    let mut io = SessionIo::new(outbox);
    let mut chat = (endpoint == Endpoint::Chat).then(|| ChatMember {
        room: Arc::clone(room),
        membership: None,
        limiter: RateLimiter::new(config.rate_limit),
    });

    // The loop ends with the outcome and whether our close frame still has to be sent.
    let (outcome, send_close) = loop {
        let message = match ctx.read(&mut io) {
            Ok(message) => message,
            Err(error) => break outcome_of(error, outbox),
        };
        outbox.heard_from_peer();
        let next = match (message, &mut chat) {
            (Message::Text(text), Some(member)) => {
                let flush = match io.more_waiting() {
                    true => Flush::Later,
                    false => Flush::Now,
                };
                member.on_text(&text, outbox, flush)
            }
            (Message::Binary(_), Some(_)) => {
                Next::Close(1003, "the chat accepts text messages only")
            }
            (message @ (Message::Text(_) | Message::Binary(_)), None) => match ctx
                .write(&mut io, message)
                .and_then(|()| ctx.flush(&mut io))
            {
                Ok(()) => Next::Continue,
                Err(error) => break outcome_of(error, outbox),
            },
            (Message::Close(_), _) => {
                // tungstenite queues the reply; nothing else may be sent after it.
                outbox.refuse_broadcasts();
                Next::Continue
            }
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => Next::Continue,
        };
        if let Next::Close(code, reason) = next {
            let reason = reason.to_string();
            break (Outcome { code, reason }, true);
        }
        // Stop as soon as another thread queued a close (queue overflow, shutdown): messages
        // tungstenite had already buffered are not acted on, and the log names the code the
        // peer actually receives.
        if let Some(code) = outbox.close_code() {
            break (closed_by_server(code), false);
        }
    };
    // Leave the room (announcing it) before our close frame goes out and the socket is shut:
    // once the peer sees the close, it is no longer a member.
    drop(chat);
    if send_close {
        outbox.close(outcome.code, &outcome.reason);
    }
    outbox.finish();
    outcome
}

fn closed_by_server(code: u16) -> Outcome {
    Outcome {
        code,
        reason: "closed by server".into(),
    }
}

/// Turns a tungstenite error into the close code it deserves, and says whether our close frame
/// should be sent (when the peer can still receive one).
fn outcome_of(error: Error, outbox: &Outbox) -> (Outcome, bool) {
    // The server may have closed this connection from another thread (shutdown, queue
    // overflow, heartbeat): that close code is the outcome.
    if let Some(code) = outbox.close_code() {
        return (closed_by_server(code), false);
    }
    let (code, reason): (u16, String) = match &error {
        Error::ConnectionClosed | Error::AlreadyClosed => {
            let reason = "closed by peer".into();
            return (Outcome { code: 1000, reason }, false);
        }
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) | Error::Io(_) => {
            let reason = format!("connection dropped: {error}");
            return (Outcome { code: 1006, reason }, false);
        }
        Error::Protocol(e) => (1002, e.to_string()),
        Error::Utf8(_) => (1007, "invalid UTF-8 in a text message".into()),
        // RFC 6455 section 5.2: in a 64-bit length "the most significant bit MUST be 0".
        // tungstenite rejects such a length only as too long; it is a protocol error.
        Error::Capacity(CapacityError::MessageTooLong { size, .. })
            if (*size as u64) >> 63 == 1 =>
        {
            (
                1002,
                "frame length with its most significant bit set".into(),
            )
        }
        Error::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            (1009, format!("message over {max_size} bytes"))
        }
        Error::Capacity(e) => (1009, e.to_string()),
        Error::AttackAttempt => (1008, "attack attempt".into()),
        _ => (1011, "internal error".into()),
    };
    (Outcome { code, reason }, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryTransport;
    use crate::outbox::{QueueLimits, WriterPool};
    use std::time::Duration;

    #[test]
    fn reads_small_while_idle_large_in_a_burst_and_gives_the_burst_buffer_back() {
        let input: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let outbox = Arc::new(Outbox::new(
            Arc::new(MemoryTransport::new(input.clone())),
            "127.0.0.1:1".parse().unwrap(),
            QueueLimits {
                messages: 1,
                bytes: 1,
            },
            WriterPool::new(Duration::from_secs(1)),
        ));
        let mut io = SessionIo::new(&outbox);
        let mut got = Vec::new();
        let mut buf = [0u8; READ_BUFFER];
        let mut read = |io: &mut SessionIo, got: &mut Vec<u8>| {
            let n = io.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            n
        };
        // The first read from the socket is a small one...
        read(&mut io, &mut got);
        assert_eq!(io.ahead.len(), READ_IDLE);
        // ...which came back full, so the next one takes READ_AHEAD at once.
        while io.ahead.len() == READ_IDLE {
            read(&mut io, &mut got);
        }
        assert_eq!(io.ahead.len(), READ_AHEAD);
        while read(&mut io, &mut got) > 0 {}
        assert_eq!(got, input);
        // The input ended with a short read: the next wait would use a small buffer again.
        assert!(!io.bursting);
        assert!(io.read(&mut buf).unwrap() == 0 && io.ahead.capacity() <= READ_IDLE);
    }
}
