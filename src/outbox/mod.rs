//! The outgoing queue of one connection.
//!
//! A tungstenite `WebSocket` must have a single owner (tungstenite issues 311 and 323), and a
//! blocking socket can wait for one thing at a time. So a connection's own thread owns the
//! protocol state and *reads*; everything to be *sent* (a broadcast from another member's
//! thread, a heartbeat ping, tungstenite's own pong and close replies) is an encoded frame put
//! on this connection's [`Outbox`]. One thread at a time writes a queue, in order, so frames
//! never interleave.
//!
//! There is one verb, [`Outbox::enqueue`], and it says when the frame should be written
//! ([`When`]). It never writes: it returns a [`Queued`] that the caller acts on with
//! [`Queued::write`] once it holds no lock, so a caller holding the room's lock only queues.
//! Whoever makes a queue go from idle to non-empty holds the turn to write it:
//! - [`When::Now`]: the caller writes what the socket takes without waiting, and the pool
//!   ([`crate::writer_pool`]) writes the rest: no thread hand-off when sockets have room.
//! - [`When::Later`]: the pool writes it; frames that pile up meanwhile go out in one write.
//! - [`When::Waiting`]: the connection's own thread writes and waits, and waits for the queue
//!   to drain when someone else holds the turn: its peer's pace is its back-pressure.
//! - [`When::Soon`]: within [`SOON`] (25 ms), in one round for every queue that asked in that
//!   time: joins and leaves, so that a storm of them costs each member one write per moment.
//!
//! Limits: frames from others (broadcasts, pings) are refused past the byte bound, which closes
//! the connection with 1008 (ws-rs RUSTSEC-2020-0043): a member that reads is never closed for
//! a burst that fits, one that stopped reading is. The connection's own frames count for
//! nothing against the bound: their writer waits, so there is one at a time. A write that
//! makes no progress for the socket's write timeout drops the connection.
//!
//! Closing: after our close frame is written the write side is shut (FIN) and the connection
//! lingers, reading and discarding, until the peer closes or [`Writers`]' linger time passes
//! (RFC 6455 sections 5.5.1 and 7.1.1). Shutting the socket at once would make the kernel
//! answer the peer's late bytes with a reset, which destroys the close frame in its buffer.

use crate::client_addr::Client;
use crate::frame::{self, CloseCode};
use crate::metrics::Metrics;
use crate::presence::PresenceMark;
use crate::sync::lock;
use crate::transport::Transport;
use std::collections::VecDeque;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;
use tungstenite::Bytes;

mod item;
mod turn;
mod writers;

use item::{Batch, Item, Outgoing};
use turn::Overflow;
pub use turn::{Deliveries, Queued};
pub use writers::{QueueLimits, When, Writers, SOON};

/// Where a connection is in its life; each phase says what may still be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Anything may be queued.
    Open,
    /// The peer's close frame arrived: only the connection's own replies may follow (the
    /// close reply tungstenite writes), nothing from others.
    PeerClosing,
    /// Our close frame is queued: nothing may follow it (RFC 6455 section 5.5.1).
    Closing(CloseCode),
    /// Our close frame is written and our side shut: waiting for the peer to close, at most
    /// the linger time.
    Lingering(CloseCode),
    /// The reading side is done: once the queue is written, the socket is shut.
    Finished,
    /// Dropped (a write failed, the peer is dead, the linger time ran out): nothing more is
    /// written. Remembers the close code sent before, if any, for the log.
    Dead(Option<CloseCode>),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    queue: VecDeque<Item>,
    /// What the items in `queue` count for (see [`Item::cost`]), plus a batch taken out and
    /// not yet written.
    bytes: usize,
    /// A thread holds the turn to write: nobody else may.
    writing: bool,
    /// How many times the queue was written empty: a waiting owner's frame is out once this
    /// moves past the value it saw when queueing.
    emptied: u64,
}

/// The outgoing queue of one connection. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    stream: Arc<dyn Transport>,
    /// Who is at the other end, for logs.
    peer: Client,
    writers: Arc<Writers>,
    state: Mutex<State>,
    /// Signalled whenever the queue is written empty or the connection dies.
    drained: Condvar,
    /// Set when anything arrives from the peer, cleared by each heartbeat.
    heard_from: AtomicBool,
}

/// What the turn holder does once the queue is empty, decided under the lock, done after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    Nothing,
    /// Our close frame is out: send FIN and start lingering.
    ShutWrite,
    /// The connection is done: shut both directions.
    ShutBoth,
}

impl Outbox {
    /// A new, empty outbox writing to `stream`.
    pub fn new(stream: Arc<dyn Transport>, peer: impl Into<Client>, writers: Arc<Writers>) -> Self {
        Outbox {
            stream,
            peer: peer.into(),
            writers,
            state: Mutex::new(State {
                phase: Phase::Open,
                queue: VecDeque::new(),
                bytes: 0,
                writing: false,
                emptied: 0,
            }),
            drained: Condvar::new(),
            heard_from: AtomicBool::new(true),
        }
    }

    /// The connection, for its owner to read from.
    pub fn transport(&self) -> &dyn Transport {
        &*self.stream
    }

    /// True when nothing is queued or being written.
    pub fn is_idle(&self) -> bool {
        let st = lock(&self.state);
        !st.writing && st.queue.is_empty()
    }

    /// Who is at the other end, for logs.
    pub fn peer(&self) -> Client {
        self.peer
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.writers.metrics
    }

    /// Queues `frame`, to be written as `when` says once the caller calls [`Queued::write`].
    /// A frame from others ([`When::Now`], [`When::Later`]) is refused once the connection is
    /// closing, and one that would take the queue past its bounds closes it with 1008
    /// instead. The connection's own frames ([`When::Waiting`]) are bounded by their writer
    /// waiting, and are taken until our close frame is queued.
    pub fn enqueue(self: &Arc<Self>, frame: Bytes, when: When) -> Queued {
        self.enqueue_item(Item::frame(frame, when), when)
    }

    /// Queues joins and leaves from others like [`Outbox::enqueue`]. When the last item waiting
    /// is a mark that this one continues, the two merge: the member gets one notice for both,
    /// and the queue grows by nothing.
    pub fn enqueue_presence(self: &Arc<Self>, mark: PresenceMark, when: When) -> Queued {
        {
            let mut st = lock(&self.state);
            if st.phase == Phase::Open {
                if let Some(Item::Presence(last)) = st.queue.back_mut() {
                    if last.absorb(&mark) {
                        // Something waits, so someone holds the turn to write it.
                        return Queued::refused(when);
                    }
                }
            }
        }
        self.enqueue_item(Item::Presence(mark), when)
    }

    fn enqueue_item(self: &Arc<Self>, item: Item, when: When) -> Queued {
        let mut st = lock(&self.state);
        let accepts = match st.phase {
            Phase::Open => true,
            Phase::PeerClosing => when == When::Waiting,
            _ => false,
        };
        if !accepts {
            return Queued::refused(when);
        }
        if when != When::Waiting && self.over_limits(&st, item.cost()) {
            let overflow = Overflow {
                frames: st.queue.len(),
                bytes: st.bytes,
            };
            // What waits is dropped; a batch being written completes, so the close frame
            // still lands on a frame boundary.
            st.queue.clear();
            st.bytes = 0;
            self.writers.metrics.queue_overflowed();
            let close = frame::close(
                CloseCode::Policy,
                "outgoing queue full: you are not reading fast enough",
            );
            let mut queued = self.push_close(st, close, CloseCode::Policy, when);
            queued.overflow = Some(overflow);
            return queued;
        }
        self.push_item(st, item, when)
    }

    fn over_limits(&self, st: &State, cost: usize) -> bool {
        let limits = self.writers.limits;
        st.bytes + cost > limits.bytes || limits.messages.is_some_and(|n| st.queue.len() >= n)
    }

    /// Queues our close frame, unless one is queued or the connection is past sending one.
    /// Nothing is queued after it.
    pub fn close(self: &Arc<Self>, code: CloseCode, reason: &str, when: When) -> Queued {
        let st = lock(&self.state);
        if st.phase != Phase::Open {
            return Queued::refused(when);
        }
        self.push_close(st, frame::close(code, reason), code, when)
    }

    /// Queues a close frame and moves to [`Phase::Closing`].
    fn push_close(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State>,
        close: Bytes,
        code: CloseCode,
        when: When,
    ) -> Queued {
        st.phase = Phase::Closing(code);
        self.push_item(st, Item::frame(close, when), when)
    }

    fn push_item(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State>,
        item: Item,
        when: When,
    ) -> Queued {
        st.bytes += item.cost();
        st.queue.push_back(item);
        let turn = !st.writing;
        st.writing = true;
        Queued {
            outbox: Some(Arc::clone(self)),
            when,
            turn,
            emptied: st.emptied,
            overflow: None,
        }
    }

    /// The peer's close frame arrived: frames from others are no longer queued.
    pub fn peer_closing(&self) {
        let mut st = lock(&self.state);
        if st.phase == Phase::Open {
            st.phase = Phase::PeerClosing;
        }
    }

    /// The close code we sent or queued, if any.
    pub fn close_code(&self) -> Option<CloseCode> {
        match lock(&self.state).phase {
            Phase::Closing(code) | Phase::Lingering(code) | Phase::Dead(Some(code)) => Some(code),
            _ => None,
        }
    }

    /// The reading side is done. The socket is shut once whatever is queued is written.
    pub fn finish(&self) {
        let mut st = lock(&self.state);
        if !matches!(st.phase, Phase::Dead(_)) {
            st.phase = Phase::Finished;
        }
        let idle = !st.writing;
        drop(st);
        if idle {
            self.stream.shutdown(Shutdown::Both);
        }
    }

    /// Drops the connection at once, without a closing handshake (a dead peer, a failed write,
    /// the end of the linger time or of the shutdown grace). Its reading thread wakes up.
    pub fn kill(&self) {
        let mut st = lock(&self.state);
        let sent = match st.phase {
            Phase::Closing(code) | Phase::Lingering(code) | Phase::Dead(Some(code)) => Some(code),
            _ => None,
        };
        st.phase = Phase::Dead(sent);
        st.queue.clear();
        st.bytes = 0;
        drop(st);
        self.drained.notify_all();
        self.stream.shutdown(Shutdown::Both);
    }

    /// Records that the peer sent something: it is alive.
    pub fn heard_from_peer(&self) {
        self.heard_from.store(true, Ordering::Relaxed);
    }

    /// One heartbeat: false when the peer has sent nothing since the last one (the caller
    /// drops it); otherwise a ping is queued and written.
    pub fn heartbeat(self: &Arc<Self>) -> bool {
        if !self.heard_from.swap(false, Ordering::Relaxed) {
            return false;
        }
        self.enqueue(frame::ping(), When::Now).write();
        true
    }

    /// Takes everything queued, after the previous batch (which counted `done`) went out, and
    /// makes it frames; when nothing is queued, ends the caller's turn and says what to do
    /// with the socket. Only the turn holder calls this.
    fn take_queue(self: &Arc<Self>, done: usize) -> Result<Batch, Release> {
        let mut st = lock(&self.state);
        st.bytes = st.bytes.saturating_sub(done);
        let dead = matches!(st.phase, Phase::Dead(_));
        if !dead && !st.queue.is_empty() {
            let items: Vec<Item> = st.queue.drain(..).collect();
            drop(st);
            // Made outside the lock: a merged notice can list many names.
            let cost = items.iter().map(Item::cost).sum();
            let mut messages = 0;
            let frames = items
                .into_iter()
                .filter_map(Item::into_outgoing)
                .map(|(frame, data)| {
                    messages += data;
                    frame
                })
                .collect();
            return Ok(Batch {
                frames,
                cost,
                messages,
            });
        }
        st.writing = false;
        st.emptied += 1;
        let release = match st.phase {
            Phase::Finished | Phase::Dead(_) => Release::ShutBoth,
            Phase::Closing(code) => {
                st.phase = Phase::Lingering(code);
                Release::ShutWrite
            }
            Phase::Open | Phase::PeerClosing | Phase::Lingering(_) => Release::Nothing,
        };
        drop(st);
        self.drained.notify_all();
        Err(release)
    }

    /// Acts on the end of a turn.
    fn release(self: &Arc<Self>, release: Release) {
        match release {
            Release::Nothing => {}
            Release::ShutBoth => self.stream.shutdown(Shutdown::Both),
            Release::ShutWrite => {
                self.stream.shutdown(Shutdown::Write);
                let outbox = Arc::downgrade(self);
                let at = Instant::now() + self.writers.linger;
                self.writers
                    .timer
                    .at(at, Box::new(move || linger_over(&outbox)));
            }
        }
    }
}

/// The linger time of a close ran out: if the peer has still not closed, drop it.
fn linger_over(outbox: &Weak<Outbox>) {
    let Some(outbox) = outbox.upgrade() else {
        return;
    };
    let lingering = matches!(lock(&outbox.state).phase, Phase::Lingering(_));
    if lingering {
        outbox.kill();
    }
}

#[cfg(test)]
mod tests;
