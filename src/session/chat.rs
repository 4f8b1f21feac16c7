//! The chat endpoint's side of one connection: the first message is the name, every later one
//! goes to the room, at most so many per 10 seconds.

use crate::chat_protocol::Event;
use crate::frame::{self, CloseCode};
use crate::outbox::{Outbox, When};
use crate::room::Membership;
use crate::rooms::Rooms;
use std::sync::Arc;
use std::time::Instant;

/// The window of `--rate-limit`, in seconds.
pub const RATE_WINDOW_SECS: u32 = 10;

/// What the connection should do after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Read the next one.
    Continue,
    /// Close with this code and reason.
    Close(CloseCode, String),
}

/// A token bucket: `limit` messages per [`RATE_WINDOW_SECS`], refilled continuously.
struct RateLimiter {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(limit: u32) -> Option<Self> {
        (limit > 0).then(|| RateLimiter {
            per_second: f64::from(limit) / f64::from(RATE_WINDOW_SECS),
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

/// One connection's part in the chat. Dropping it leaves the room.
pub struct ChatMember {
    rooms: Arc<Rooms>,
    room: String,
    membership: Option<Membership>,
    limiter: Option<RateLimiter>,
}

impl ChatMember {
    /// A connection to room `room` that has not chosen its name yet; `rate_limit` messages
    /// per [`RATE_WINDOW_SECS`] (0: no limit).
    pub fn new(rooms: &Arc<Rooms>, room: String, rate_limit: u32) -> Self {
        ChatMember {
            rooms: Arc::clone(rooms),
            room,
            membership: None,
            limiter: RateLimiter::new(rate_limit),
        }
    }

    /// Handles one text message from the member's own thread, which owns `outbox`. `when`
    /// says how the deliveries to others are written: at once, or by the pool when more
    /// messages are waiting to be read.
    pub fn on_text(&mut self, text: &str, outbox: &Arc<Outbox>, when: When) -> Next {
        let Some(member) = &self.membership else {
            // The room is made by its first join, so a connection that never names itself
            // makes none.
            let room = match self.rooms.get_or_create(&self.room) {
                Ok(room) => room,
                Err(full) => return Next::Close(CloseCode::Policy, full.reason()),
            };
            match room.join(text, outbox) {
                Ok((membership, deliveries)) => {
                    self.membership = Some(membership);
                    deliveries.write();
                }
                Err(refused) => {
                    let event = Event::NameRefused {
                        reason: &refused.reason(),
                    };
                    outbox
                        .enqueue(frame::text(&event.to_json()), When::Waiting)
                        .write();
                }
            }
            return Next::Continue;
        };
        if let Some(limiter) = &mut self.limiter {
            if !limiter.allow() {
                outbox.metrics().rate_limited();
                return Next::Close(CloseCode::Policy, "sending too fast".into());
            }
        }
        if !text.trim().is_empty() {
            member.say(text, when).write();
        }
        Next::Continue
    }
}
