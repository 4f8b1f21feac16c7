//! Writing a queue: the value [`Outbox::enqueue`] returns ([`Queued`]), and what the holder of
//! the turn does with it, as [`When`] asks.

use super::{Batch, Item, Outbox, Outgoing, Phase, When};
use crate::log;
use crate::sync::lock;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};

/// Why a frame made the queue overflow, for the log line written after any lock is let go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Overflow {
    pub(super) frames: usize,
    pub(super) bytes: usize,
}

/// A frame that [`Outbox::enqueue`] took (or refused). [`Queued::write`] writes it as asked,
/// and is to be called once the caller holds no lock.
#[derive(Debug)]
#[must_use = "call write() once no lock is held, or the queue stalls until a pool thread takes it"]
pub struct Queued {
    pub(super) outbox: Option<Arc<Outbox>>,
    pub(super) when: When,
    /// The caller made the queue non-empty and holds the turn to write it.
    pub(super) turn: bool,
    pub(super) emptied: u64,
    pub(super) overflow: Option<Overflow>,
}

impl Queued {
    /// True when this frame made the queue overflow: the connection is being closed with
    /// 1008 and takes nothing more from others.
    pub fn overflowed(&self) -> bool {
        self.overflow.is_some()
    }

    pub(super) fn refused(when: When) -> Self {
        Queued {
            outbox: None,
            when,
            turn: false,
            emptied: 0,
            overflow: None,
        }
    }
}

impl Outbox {
    /// Writes what the socket takes without waiting. Returns false when the socket's buffer
    /// filled up: the unwritten rest is back at the front of the queue and the turn is still
    /// the caller's, to hand to a thread that can wait.
    pub(super) fn write_without_waiting(self: &Arc<Self>) -> bool {
        let mut done = 0;
        // Added to the metrics once, when the turn ends or is handed on.
        let (mut messages, mut bytes) = (0, 0);
        loop {
            let batch = match self.take_queue(done) {
                Ok(batch) => batch,
                Err(release) => {
                    self.writers.metrics.sent(messages, bytes);
                    self.release(release);
                    return true;
                }
            };
            done = batch.cost;
            messages += batch.messages;
            for (i, frame) in batch.frames.iter().enumerate() {
                match send_until_blocked(&frame.bytes, |buf| self.stream.try_write(buf)) {
                    Ok(n) if n == frame.bytes.len() => bytes += n as u64,
                    Ok(n) => {
                        let partial = Outgoing {
                            bytes: frame.bytes.slice(n..),
                            own: frame.own,
                        };
                        self.put_back(batch.cost, partial, &batch.frames[i + 1..]);
                        self.writers.metrics.sent(messages, bytes + n as u64);
                        return false;
                    }
                    Err(e) => {
                        self.write_failed(&e);
                        break;
                    }
                }
            }
        }
    }

    /// Puts what a full socket did not take back in front of anything newer, unless the
    /// connection died meanwhile. `cost` is what the whole batch counted for. Its frames were
    /// counted as sent when the batch was taken, so they go back as [`Item::Rest`].
    fn put_back(&self, cost: usize, partial: Outgoing, rest: &[Outgoing]) {
        let mut st = lock(&self.state);
        st.bytes = st.bytes.saturating_sub(cost);
        if matches!(st.phase, Phase::Dead(_)) {
            return;
        }
        for frame in rest.iter().rev().chain([&partial]) {
            st.bytes += frame.cost();
            st.queue.push_front(Item::Rest(frame.clone()));
        }
    }

    /// Writes the queue until it is empty, waiting on the socket as long as its write timeout
    /// allows. Only the turn holder calls this.
    fn drain(self: &Arc<Self>) {
        let mut batch: Vec<u8> = Vec::new();
        let mut done = 0;
        loop {
            let Batch {
                frames,
                cost,
                messages,
            } = match self.take_queue(done) {
                Ok(batch) => batch,
                Err(release) => return self.release(release),
            };
            done = cost;
            // Small frames are gathered into one write (one system call, fewer TCP segments);
            // large ones are written straight from their shared buffer.
            let mut result = Ok(());
            let mut sent = 0;
            for Outgoing { bytes: frame, .. } in frames {
                if frame.len() >= 16 * 1024 {
                    result = result
                        .and_then(|()| self.write_all(&batch, &mut sent))
                        .and_then(|()| self.write_all(&frame, &mut sent));
                    batch.clear();
                } else {
                    batch.extend_from_slice(&frame);
                    if batch.len() >= 64 * 1024 {
                        result = result.and_then(|()| self.write_all(&batch, &mut sent));
                        batch.clear();
                    }
                }
            }
            result = result.and_then(|()| self.write_all(&batch, &mut sent));
            batch.clear();
            self.writers.metrics.sent(messages, sent);
            if let Err(e) = result {
                self.write_failed(&e);
            }
        }
    }

    /// Writes all of `bytes`, waiting as long as the write timeout allows (after which the
    /// socket reports `WouldBlock`, an error here). Adds what was written to `sent`.
    fn write_all(&self, bytes: &[u8], sent: &mut u64) -> io::Result<()> {
        let n = send_until_blocked(bytes, |buf| self.stream.write(buf))?;
        *sent += n as u64;
        match n == bytes.len() {
            true => Ok(()),
            false => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    fn write_failed(&self, e: &io::Error) {
        log!("{} write failed ({e}): dropping the connection", self.peer);
        self.kill();
    }

    /// Leaves the turn to a pool thread, which writes, waiting.
    pub(super) fn hand_to_pool(self: Arc<Self>) {
        let pool = Arc::clone(&self.writers.pool);
        pool.run(Box::new(move || {
            if panic::catch_unwind(AssertUnwindSafe(|| self.drain())).is_err() {
                log!("{} writing panicked: dropping the connection", self.peer);
                self.kill();
                let _ = self.take_queue(0);
            }
        }));
    }

    /// Waits until the queue has been written empty since `emptied`, or the connection died.
    fn wait_drained(&self, emptied: u64) {
        let st = lock(&self.state);
        let _st = self
            .drained
            .wait_while(st, |st| {
                st.emptied == emptied && !matches!(st.phase, Phase::Dead(_))
            })
            .unwrap_or_else(PoisonError::into_inner);
    }
}

impl Queued {
    /// Writes the frame as its [`When`] says (see the module docs). Call it holding no lock.
    pub fn write(mut self) {
        let Some(outbox) = self.outbox.take() else {
            return;
        };
        if let Some(Overflow { frames, bytes }) = self.overflow {
            log!(
                "{} outgoing queue full ({frames} frames, {bytes} bytes): closing with 1008",
                outbox.peer
            );
        }
        let turn = std::mem::take(&mut self.turn);
        match (self.when, turn) {
            (When::Now, true) => {
                if !outbox.write_without_waiting() {
                    outbox.hand_to_pool();
                }
            }
            (When::Later, true) => outbox.hand_to_pool(),
            (When::Soon, true) => Arc::clone(&outbox.writers).write_soon(outbox),
            (When::Waiting, true) => outbox.drain(),
            (When::Waiting, false) => outbox.wait_drained(self.emptied),
            (When::Now | When::Later | When::Soon, false) => {}
        }
    }
}

impl Drop for Queued {
    /// Only reached with the turn when a panic unwound between queueing and writing: the pool
    /// takes the turn, so the queue is never stranded.
    fn drop(&mut self) {
        if let (Some(outbox), true) = (self.outbox.take(), self.turn) {
            outbox.hand_to_pool();
        }
    }
}

/// What an event decided under a lock: the frames it queued for several members, and lines
/// for the server's log, all written together once the lock is let go.
#[derive(Debug, Default)]
#[must_use = "call write() once no lock is held"]
pub struct Deliveries {
    queued: Vec<Queued>,
    notes: Vec<String>,
}

impl Deliveries {
    /// Adds one member's frame.
    pub fn push(&mut self, queued: Queued) {
        self.queued.push(queued);
    }

    /// Adds a line for the server's log.
    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    /// Adds another event's frames and lines, to be written after these.
    pub fn extend(&mut self, more: Deliveries) {
        self.queued.extend(more.queued);
        self.notes.extend(more.notes);
    }

    /// Writes every frame. While another broadcast is being written by its sender, frames
    /// asked for [`When::Now`] go to the pool instead (see [`Writers`](super::Writers)).
    pub fn write(self) {
        for line in &self.notes {
            log!("{line}");
        }
        let Some(writers) = self
            .queued
            .iter()
            .find_map(|q| q.outbox.as_ref().map(|o| Arc::clone(&o.writers)))
        else {
            return;
        };
        let broadcasting = Broadcasting::start(&writers.broadcasting);
        let busy = broadcasting.others > 0;
        for mut queued in self.queued {
            if busy && queued.when == When::Now {
                queued.when = When::Later;
            }
            queued.write();
        }
    }
}

/// Counts a broadcast being written for as long as it lives, panic or not.
struct Broadcasting<'a> {
    count: &'a AtomicUsize,
    /// Broadcasts that were being written when this one started.
    others: usize,
}

impl<'a> Broadcasting<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        let others = count.fetch_add(1, Ordering::Relaxed);
        Broadcasting { count, others }
    }
}

impl Drop for Broadcasting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Calls `write` until `bytes` are written or it reports `WouldBlock`.
fn send_until_blocked(
    bytes: &[u8],
    write: impl Fn(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
