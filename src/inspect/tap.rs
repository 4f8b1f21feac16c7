//! [`Tap`]: a [`Transport`] that passes every byte through unchanged and reports the frames
//! they make to the page on the same connection.
//!
//! The tap sits under the connection's [`Outbox`], so it sees exactly the bytes that cross the
//! socket, in order: what the session reads, and what the outbox writes (echoes, pongs, pings,
//! close frames, and the reports themselves). Reports go out through [`Outbox::enqueue`] with
//! [`When::Now`], like a broadcast, which gives them three guarantees the inspector needs for
//! free:
//! - they count against the connection's queue limits, so a visitor who sends faster than they
//!   read is closed with 1008 as on `/echo`;
//! - none is queued after a close frame: the outbox takes nothing from others once its own
//!   close is queued or the peer's close has been read (set before tungstenite queues its
//!   reply);
//! - they never wait on the socket, so a report can be made from inside a write.
//!
//! A report is a text frame that starts with the connection's marker; the tap leaves such
//! frames out of what it reports, so reports never describe reports.
//!
//! The end of a connection needs one more step, because a browser drops the messages that
//! arrive once its page has called `close()`. Before closing, the page sends
//! `{"closing":"<nonce>"}`; the tap answers with a `closing` report and from then on keeps its
//! reports in the [`stash`], where the page fetches them after the close. A close frame
//! passing either way (the server may close first) switches to the stash too.

use super::dissect::{Direction, Dissector, FrameRecord};
use super::{report, stash};
use crate::frame;
use crate::outbox::{Outbox, When};
use crate::sync::lock;
use crate::transport::Transport;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};
use tungstenite::protocol::frame::Frame;
use tungstenite::Bytes;

/// Most frames described in one report message, so a burst of tiny frames makes several
/// reports of bounded size rather than one huge one.
const FRAMES_PER_REPORT: usize = 64;

/// The payload of the ping the server sends when the page asks for one.
const PING_PAYLOAD: &[u8] = b"ping asked for by the page";

/// One direction of the connection.
#[derive(Debug)]
struct Side {
    dissector: Dissector,
    /// Frames reported so far (reports themselves not counted).
    frames: u64,
    /// A close frame went this way. Nothing may follow it (RFC 6455 section 5.5.1) and the
    /// server acts on nothing that does, so later bytes are not reported: a client that keeps
    /// sending cannot fill the stash before the server's own close frame is in it.
    closed: bool,
}

impl Side {
    fn new(direction: Direction) -> Mutex<Side> {
        Mutex::new(Side {
            dissector: Dissector::new(direction),
            frames: 0,
            closed: false,
        })
    }
}

/// Records one connection's bytes and reports its frames to its own page. See the module docs.
#[derive(Debug)]
pub struct Tap {
    inner: Arc<dyn Transport>,
    nonce: String,
    /// `{"inspect":"<nonce>"`: how every report starts.
    marker: String,
    /// The text message with which the page asks for a ping (JavaScript cannot send one).
    ping_request: String,
    /// The text message with which the page says it is about to close.
    closing_request: String,
    /// Reports go to the stash rather than over the connection.
    stashing: AtomicBool,
    incoming: Mutex<Side>,
    outgoing: Mutex<Side>,
    /// The outbox that writes through this tap (a weak link: the outbox owns the tap).
    outbox: OnceLock<Weak<Outbox>>,
    /// Reports made before [`Tap::attach`]: the handshake, and frames that came with the head.
    early: Mutex<Vec<Bytes>>,
}

/// A per-connection random value, told only to that connection's page. It keeps a visitor's
/// own text, or a report copied from another visit, from being taken for a report, and keys the
/// reports kept for after the close.
fn nonce() -> String {
    // RandomState's keys come from the operating system, fresh for each thread.
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    format!("{:016x}", hasher.finish())
}

impl Tap {
    /// A tap over `inner` for a connection whose upgrade request was `head` and was answered
    /// with `reply`; `leftover` are the bytes that came after the head in the same read (they
    /// never pass through the tap, so they are taken apart here). `allowed_origins` is
    /// `--allowed-origin`. Reports wait until [`Tap::attach`].
    pub fn new(
        inner: Arc<dyn Transport>,
        head: &[u8],
        reply: &str,
        allowed_origins: &[String],
        leftover: &[u8],
    ) -> Arc<Tap> {
        let nonce = nonce();
        let marker = report::marker(&nonce);
        let handshake = report::handshake(&marker, head, reply, allowed_origins);
        let tap = Arc::new(Tap {
            inner,
            ping_request: format!("{{\"ping\":\"{nonce}\"}}"),
            closing_request: format!("{{\"closing\":\"{nonce}\"}}"),
            stashing: AtomicBool::new(false),
            nonce,
            marker,
            incoming: Side::new(Direction::FromClient),
            outgoing: Side::new(Direction::FromServer),
            outbox: OnceLock::new(),
            early: Mutex::new(vec![frame::text(&handshake)]),
        });
        tap.observe(Direction::FromClient, leftover);
        tap
    }

    /// Connects the tap to the outbox that writes through it and sends the reports made so
    /// far, the handshake first. Call it before the session starts, so the handshake report is
    /// the first message the page receives.
    pub fn attach(&self, outbox: &Arc<Outbox>) {
        let _ = self.outbox.set(Arc::downgrade(outbox));
        let early = std::mem::take(&mut *lock(&self.early));
        for frame in early {
            outbox.enqueue(frame, When::Now).write();
        }
    }

    /// Takes apart the bytes that just went one way and reports the frames they completed.
    fn observe(&self, direction: Direction, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let (side, dir) = match direction {
            Direction::FromClient => (&self.incoming, "in"),
            Direction::FromServer => (&self.outgoing, "out"),
        };
        let mut done = Vec::new();
        let first = {
            let mut side = lock(side);
            if side.closed {
                return;
            }
            side.dissector.feed(bytes, &mut done);
            done.retain(|frame| !self.is_report(frame));
            if let Some(close) = done.iter().position(|f| f.header.opcode == 0x8) {
                done.truncate(close + 1);
                side.closed = true;
            }
            let first = side.frames + 1;
            side.frames += done.len() as u64;
            first
        };
        if done.is_empty() {
            return;
        }
        // The locks are released: pushing may write, and writing comes back through the tap.
        // Frames up to the page's "closing" message go over the connection, then its answer;
        // a close frame and everything after it go to the stash.
        let close = done.iter().position(|f| f.header.opcode == 0x8);
        let closing = done
            .iter()
            .position(|f| self.asks_to_close(f))
            .map(|i| i + 1);
        let live = close.into_iter().chain(closing).min().unwrap_or(done.len());
        let (now, later) = done.split_at(live);
        self.send(self.reports(dir, first, now));
        if direction == Direction::FromClient && now.iter().any(|f| self.asks_for_ping(f)) {
            self.push(ping_frame());
        }
        if live < done.len() || now.last().is_some_and(|f| self.asks_to_close(f)) {
            self.stashing.store(true, Ordering::SeqCst);
            if now.last().is_some_and(|f| self.asks_to_close(f)) {
                self.push(frame::text(&report::closing(&self.marker)));
            }
        }
        // A close frame ends `done`; its report is kept even when the stash is full.
        let (later, close) = match later.split_last() {
            Some((last, rest)) if last.header.opcode == 0x8 => (rest, Some(last)),
            _ => (later, None),
        };
        let reports = self.reports(dir, first + live as u64, later);
        if !reports.is_empty() {
            stash::add(&self.nonce, reports, false);
        }
        if let Some(close) = close {
            let number = first + done.len() as u64 - 1;
            let report = report::frames(&self.marker, dir, number, std::slice::from_ref(close));
            stash::add(&self.nonce, vec![report], true);
        }
    }

    /// The reports of `frames`, numbered from `first`, a bounded number of frames each.
    fn reports(&self, dir: &str, first: u64, frames: &[FrameRecord]) -> Vec<String> {
        frames
            .chunks(FRAMES_PER_REPORT)
            .enumerate()
            .map(|(i, chunk)| {
                let number = first + (i * FRAMES_PER_REPORT) as u64;
                report::frames(&self.marker, dir, number, chunk)
            })
            .collect()
    }

    /// Sends reports over the connection, or into the stash once the page is closing. A
    /// report that may not have reached the page is stashed as well (the page skips frames it
    /// already shows): one pushed while another thread switched to the stash (it may have been
    /// queued after the `closing` answer, which the browser then drops), and one the outbox
    /// refused because the server's close frame was already queued (the tap switches to the
    /// stash only once that frame is written).
    fn send(&self, reports: Vec<String>) {
        if reports.is_empty() {
            return;
        }
        if !self.stashing.load(Ordering::SeqCst) {
            for report in &reports {
                self.push(frame::text(report));
            }
            if !self.stashing.load(Ordering::SeqCst) && !self.server_closed() {
                return;
            }
        }
        stash::add(&self.nonce, reports, false);
    }

    /// True once the server has queued its close frame: the outbox takes nothing more.
    fn server_closed(&self) -> bool {
        let outbox = self.outbox.get().and_then(Weak::upgrade);
        outbox.is_some_and(|outbox| outbox.close_code().is_some())
    }

    /// Queues a frame on the connection; before [`Tap::attach`], keeps it for then.
    fn push(&self, frame: Bytes) {
        match self.outbox.get() {
            Some(outbox) => {
                if let Some(outbox) = outbox.upgrade() {
                    outbox.enqueue(frame, When::Now).write();
                }
            }
            None => lock(&self.early).push(frame),
        }
    }

    /// True for a frame that is one of this connection's reports.
    fn is_report(&self, frame: &FrameRecord) -> bool {
        frame.header.opcode == 0x1
            && frame.header.fin
            && frame.payload.starts_with(self.marker.as_bytes())
    }

    /// True for a whole text message that is exactly the page's notice that it will close.
    fn asks_to_close(&self, frame: &FrameRecord) -> bool {
        frame.header.opcode == 0x1
            && frame.header.fin
            && !frame.cut()
            && frame.payload == self.closing_request.as_bytes()
    }

    /// True for a whole text message that is exactly the page's request for a ping.
    fn asks_for_ping(&self, frame: &FrameRecord) -> bool {
        frame.header.opcode == 0x1
            && frame.header.fin
            && !frame.cut()
            && frame.payload == self.ping_request.as_bytes()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // The connection is over: a page waiting for its last reports can have them.
        stash::finish(&self.nonce);
    }
}

fn ping_frame() -> Bytes {
    let frame = Frame::ping(Bytes::from_static(PING_PAYLOAD));
    let mut out = Vec::with_capacity(frame.len());
    // Formatting into a Vec cannot fail.
    frame
        .format(&mut out)
        .expect("writing a frame to memory cannot fail");
    Bytes::from(out)
}

impl Transport for Tap {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(Direction::FromClient, &buf[..n]);
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.observe(Direction::FromServer, &buf[..n]);
        Ok(n)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.try_write(buf)?;
        self.observe(Direction::FromServer, &buf[..n]);
        Ok(n)
    }

    fn shutdown(&self, how: Shutdown) {
        self.inner.shutdown(how);
    }
}
