//! The outgoing side of one WebSocket connection: a bounded queue of encoded frames and the
//! pool of threads that writes them.
//!
//! A tungstenite `WebSocket` must have a single owner (tungstenite issues 311 and 323), and a
//! blocking socket can only wait for one thing at a time. So each connection's own thread owns
//! the protocol state and *reads*; everything that must be *sent* - a broadcast from another
//! member's thread, a heartbeat ping, tungstenite's own pong and close replies - is encoded to
//! bytes and put on this connection's [`Outbox`]. A queue is written by at most one thread at a
//! time, in order, so frames never interleave.
//!
//! Who writes: whoever makes a queue go from idle to non-empty gets the [`WriteTurn`]. A
//! broadcaster uses it after letting go of the room lock to write what the socket takes *now*,
//! without waiting (`MSG_DONTWAIT`), which is how most deliveries go out: no thread hand-off,
//! no context switch. Only a socket whose buffer is full is handed to the [`WriterPool`],
//! which grows a thread when none is free and lets threads exit after a while idle. A member
//! that stops reading therefore ties up at most one writer thread, for at most the write
//! timeout, and never the sender. An idle connection has no writer thread at all, so it costs
//! one thread, not two.
//!
//! Limits: a queue holds at most so many frames and bytes. A member whose queue overflows has
//! fallen hopelessly behind; it is closed with 1008 instead of buffering without bound
//! (ws-rs RUSTSEC-2020-0043).

use crate::log;
use crate::sync::lock;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::Bytes;

/// A connection's byte stream, shared between its reading thread and its writer. A TCP socket
/// in the server; an in-memory stream in the fuzzer ([`crate::memory`]).
pub trait Transport: Send + Sync + Debug {
    /// Reads like [`Read::read`].
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes like [`Write::write`].
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes what fits without waiting; [`io::ErrorKind::WouldBlock`] when nothing does.
    fn write_without_waiting(&self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts down one or both directions, like [`TcpStream::shutdown`]; errors are ignored
    /// because the peer may already be gone.
    fn shutdown(&self, how: Shutdown);
}

impl Transport for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }

    fn write_without_waiting(&self, buf: &[u8]) -> io::Result<usize> {
        // A per-call flag: the socket itself stays blocking for its reading thread, which
        // `set_nonblocking` would change too (it is a property of the shared file).
        socket2::SockRef::from(self).send_with_flags(buf, libc::MSG_DONTWAIT)
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }
}

/// How much may wait in one connection's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most frames waiting.
    pub messages: usize,
    /// Most bytes waiting.
    pub bytes: usize,
}

/// Encodes a final text frame as a server sends it (unmasked). Encoding once and sharing the
/// bytes is what makes a broadcast to a hundred members cheap.
pub fn text_frame(text: &str) -> Bytes {
    encode(Frame::message(
        text.to_owned(),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// Encodes a close frame with `code` and `reason`. The reason is cut to 123 bytes on a
/// character boundary, the most a control frame's 125-byte payload leaves after the code.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_owned().into(),
    })))
}

/// Encodes a ping frame.
pub fn ping_frame() -> Bytes {
    encode(Frame::ping(Bytes::new()))
}

fn encode(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    // Formatting into a Vec cannot fail.
    frame
        .format(&mut out)
        .expect("writing a frame to memory cannot fail");
    Bytes::from(out)
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// A thread is writing (or is about to): nobody else may.
    writing: bool,
    /// Broadcasts are no longer wanted (the peer started or the server queued a close).
    refuse_broadcasts: bool,
    /// Our close frame is queued or sent: nothing may follow it (RFC 6455 section 5.5.1).
    close_queued: bool,
    /// The close code we sent, for the log.
    close_code: Option<u16>,
    /// The reading side is done; once the queue is written, the socket is shut.
    finished: bool,
    /// A write failed or the connection was killed: drop everything.
    dead: bool,
}

/// The outgoing queue of one connection. See the module docs.
#[derive(Debug)]
pub struct Outbox {
    stream: Arc<dyn Transport>,
    peer: SocketAddr,
    limits: QueueLimits,
    pool: Arc<WriterPool>,
    state: Mutex<State>,
    /// Set when anything arrives from the peer, cleared by each heartbeat.
    heard_from: AtomicBool,
}

impl Outbox {
    /// A new, empty outbox writing to `stream`.
    pub fn new(
        stream: Arc<dyn Transport>,
        peer: SocketAddr,
        limits: QueueLimits,
        pool: Arc<WriterPool>,
    ) -> Self {
        Outbox {
            stream,
            peer,
            limits,
            pool,
            state: Mutex::new(State::default()),
            heard_from: AtomicBool::new(true),
        }
    }

    /// The connection, for the owner to read from.
    pub fn transport(&self) -> &dyn Transport {
        &*self.stream
    }

    /// True when nothing is queued or being written.
    pub fn is_idle(&self) -> bool {
        let st = lock(&self.state);
        !st.writing && st.queue.is_empty()
    }

    /// The peer's address, for logs.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Queues a frame from any thread and writes what the socket takes without waiting; a
    /// pool thread writes the rest. Never blocks on the socket. Frames are dropped when the
    /// connection is closing or the queue overflowed.
    pub fn push(self: &Arc<Self>, frame: Bytes) {
        if let Some(turn) = self.queue(frame) {
            turn.write_now();
        }
    }

    /// Queues a frame without writing anything, for a caller holding a lock that must not be
    /// held while writing (the room). When the queue was idle, the caller gets the turn to
    /// write it: [`WriteTurn::write_now`] after letting go of the lock.
    pub fn queue(self: &Arc<Self>, frame: Bytes) -> Option<WriteTurn> {
        let st = lock(&self.state);
        if st.dead || st.refuse_broadcasts || st.close_queued {
            return None;
        }
        if st.queue.len() >= self.limits.messages
            || st.queued_bytes + frame.len() > self.limits.bytes
        {
            let (messages, bytes) = (st.queue.len(), st.queued_bytes);
            drop(st);
            log!(
                "{} outgoing queue full ({messages} messages, {bytes} bytes): closing with 1008",
                self.peer
            );
            self.overflow();
            return None;
        }
        self.enqueue(st, frame)
    }

    /// Queues bytes from the owning thread and, if nobody is writing, writes them right away on
    /// this thread. Used for echo replies and tungstenite's own pong and close replies, where
    /// waiting on our own peer is the natural back-pressure.
    pub fn push_owned(self: &Arc<Self>, frame: Bytes) {
        let st = lock(&self.state);
        if st.dead || st.close_queued {
            return;
        }
        if let Some(turn) = self.enqueue(st, frame) {
            turn.write_waiting();
        }
    }

    /// Stops accepting broadcasts: the peer has sent its close frame and tungstenite is about
    /// to answer it, after which nothing else may be sent.
    pub fn refuse_broadcasts(&self) {
        lock(&self.state).refuse_broadcasts = true;
    }

    /// Queues our close frame (if none is queued yet) and writes it like [`Outbox::push`].
    /// Callable from any thread.
    pub fn close(self: &Arc<Self>, code: u16, reason: &str) {
        let mut st = lock(&self.state);
        // A finished connection has already closed (or lost) its peer; at shutdown this avoids
        // writing 1001 into sockets the peer has just closed.
        if st.dead || st.close_queued || st.finished {
            return;
        }
        let frame = close_frame(code, reason);
        st.close_queued = true;
        st.refuse_broadcasts = true;
        st.close_code = Some(code);
        if let Some(turn) = self.enqueue(st, frame) {
            turn.write_now();
        }
    }

    /// Appends `frame`; when nobody is writing yet, the caller gets the turn.
    fn enqueue(self: &Arc<Self>, mut st: MutexGuard<'_, State>, frame: Bytes) -> Option<WriteTurn> {
        st.queued_bytes += frame.len();
        st.queue.push_back(frame);
        if st.writing {
            return None;
        }
        st.writing = true;
        Some(WriteTurn(Some(Arc::clone(self))))
    }

    /// The close code we queued, if any.
    pub fn close_code(&self) -> Option<u16> {
        lock(&self.state).close_code
    }

    fn overflow(self: &Arc<Self>) {
        {
            let mut st = lock(&self.state);
            // The frames waiting are dropped; the one being written (if any) completes, so the
            // close frame still lands on a frame boundary.
            st.queue.clear();
            st.queued_bytes = 0;
        }
        self.close(1008, "outgoing queue full: you are not reading fast enough");
        // Wake the reading thread (blocked in read) so the member leaves the room now.
        self.stream.shutdown(Shutdown::Read);
    }

    /// The reading side is done. The socket is shut once whatever is queued has been written.
    pub fn finish(&self) {
        let mut st = lock(&self.state);
        st.finished = true;
        st.refuse_broadcasts = true;
        if !st.writing {
            self.stream.shutdown(Shutdown::Both);
        }
    }

    /// Drops the connection at once, without a closing handshake (dead peer, shutdown timeout).
    pub fn kill(&self) {
        let mut st = lock(&self.state);
        st.dead = true;
        st.queue.clear();
        st.queued_bytes = 0;
        self.stream.shutdown(Shutdown::Both);
    }

    /// Records that the peer sent something: it is alive.
    pub fn heard_from_peer(&self) {
        self.heard_from.store(true, Ordering::Relaxed);
    }

    /// One heartbeat: returns false when the peer has sent nothing since the last heartbeat
    /// (the caller closes it), otherwise queues a ping.
    pub fn heartbeat(self: &Arc<Self>) -> bool {
        if !self.heard_from.swap(false, Ordering::Relaxed) {
            return false;
        }
        self.push(ping_frame());
        true
    }

    /// Takes every queued frame, or, when there are none, ends the caller's turn (shutting the
    /// socket if the connection is done). Only the holder of the turn calls this.
    fn take_queue(&self) -> Option<Vec<Bytes>> {
        let mut st = lock(&self.state);
        if st.dead || st.queue.is_empty() {
            st.writing = false;
            if st.finished || st.dead {
                self.stream.shutdown(Shutdown::Both);
            } else if st.close_queued {
                // Our close frame is out: send FIN, keep reading the peer's reply.
                self.stream.shutdown(Shutdown::Write);
            }
            return None;
        }
        st.queued_bytes = 0;
        Some(st.queue.drain(..).collect())
    }

    /// Writes what the socket takes without waiting. Returns false when the socket's buffer
    /// filled up: the unwritten rest is back at the front of the queue and the turn is still
    /// the caller's, to hand to a thread that can wait.
    fn write_without_waiting(&self) -> bool {
        while let Some(frames) = self.take_queue() {
            for (i, frame) in frames.iter().enumerate() {
                match self.send_without_waiting(frame) {
                    Ok(n) if n == frame.len() => {}
                    Ok(n) => {
                        let mut st = lock(&self.state);
                        // Unless the connection was killed meanwhile (the pool thread then
                        // just ends the turn), the rest goes back in front of anything newer.
                        if !st.dead {
                            for rest in frames[i + 1..].iter().rev().chain([&frame.slice(n..)]) {
                                st.queued_bytes += rest.len();
                                st.queue.push_front(rest.clone());
                            }
                        }
                        return false;
                    }
                    Err(e) => {
                        self.write_failed(&e);
                        break;
                    }
                }
            }
        }
        true
    }

    /// Writes as much of `bytes` as the socket takes now.
    fn send_without_waiting(&self, bytes: &[u8]) -> io::Result<usize> {
        send_until_blocked(bytes, |buf| self.stream.write_without_waiting(buf))
    }

    /// Writes all of `bytes`, waiting as long as the write timeout allows (after which the
    /// socket reports `WouldBlock`, an error here).
    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        send_until_blocked(bytes, |buf| self.stream.write(buf)).and_then(|n| {
            match n == bytes.len() {
                true => Ok(()),
                false => Err(io::ErrorKind::TimedOut.into()),
            }
        })
    }

    /// Writes the queue until it is empty, waiting on the socket as long as its write timeout
    /// allows. Only the holder of the turn calls this.
    fn drain(&self) {
        let mut batch: Vec<u8> = Vec::new();
        while let Some(frames) = self.take_queue() {
            // Small frames are gathered into one write (one syscall, fewer TCP segments);
            // large ones are written straight from their shared buffer.
            let mut result = Ok(());
            for frame in frames {
                if frame.len() >= 16 * 1024 {
                    result = result
                        .and_then(|()| self.write_all(&batch))
                        .and_then(|()| self.write_all(&frame));
                    batch.clear();
                } else {
                    batch.extend_from_slice(&frame);
                    if batch.len() >= 64 * 1024 {
                        result = result.and_then(|()| self.write_all(&batch));
                        batch.clear();
                    }
                }
            }
            result = result.and_then(|()| self.write_all(&batch));
            batch.clear();
            if let Err(e) = result {
                self.write_failed(&e);
            }
        }
    }

    fn write_failed(&self, e: &io::Error) {
        // A write timeout (the socket's SO_SNDTIMEO) means no progress for that long.
        log!("{} write failed ({e}): dropping the connection", self.peer);
        self.kill();
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

/// The turn to write a queue that was idle: its holder is the queue's one writer. Dropping
/// it unused hands the queue to the writer pool, so a turn can never be lost.
#[derive(Debug)]
#[must_use = "dropping a turn hands the queue to a pool thread; write_now is usually cheaper"]
pub struct WriteTurn(Option<Arc<Outbox>>);

impl WriteTurn {
    /// Writes what the socket takes without waiting and hands the rest to the writer pool.
    pub fn write_now(mut self) {
        if let Some(outbox) = self.0.take() {
            if !outbox.write_without_waiting() {
                Arc::clone(&outbox.pool).submit(outbox);
            }
        }
    }

    /// Leaves the writing to a pool thread.
    pub fn hand_to_pool(self) {
        drop(self);
    }

    /// Writes everything, waiting on the socket: for the connection's own thread, for which
    /// its peer's pace is the natural back-pressure.
    fn write_waiting(mut self) {
        if let Some(outbox) = self.0.take() {
            outbox.drain();
        }
    }
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        if let Some(outbox) = self.0.take() {
            Arc::clone(&outbox.pool).submit(outbox);
        }
    }
}

/// Writer threads shared by all connections; see the module docs.
#[derive(Debug)]
pub struct WriterPool {
    state: Mutex<PoolState>,
    work: Condvar,
    idle_timeout: Duration,
}

#[derive(Debug, Default)]
struct PoolState {
    jobs: VecDeque<Arc<Outbox>>,
    idle: usize,
    threads: usize,
}

/// Stack size of writer threads: they only copy bytes to sockets.
const WRITER_STACK: usize = 64 * 1024;

impl WriterPool {
    /// A pool with no threads yet; threads idle for `idle_timeout` exit.
    pub fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(WriterPool {
            state: Mutex::new(PoolState::default()),
            work: Condvar::new(),
            idle_timeout,
        })
    }

    fn submit(self: &Arc<Self>, outbox: Arc<Outbox>) {
        let mut st = lock(&self.state);
        st.jobs.push_back(outbox);
        if st.idle >= st.jobs.len() {
            self.work.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let pool = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("writer".into())
            .stack_size(WRITER_STACK)
            .spawn(move || pool.work());
        if let Err(e) = spawned {
            let mut st = lock(&self.state);
            st.threads -= 1;
            if st.threads == 0 {
                // No thread to write anything: these connections cannot be served.
                let stranded: Vec<_> = st.jobs.drain(..).collect();
                drop(st);
                log!(
                    "cannot start a writer thread ({e}): dropping {} connection(s)",
                    stranded.len()
                );
                for outbox in stranded {
                    outbox.kill();
                    lock(&outbox.state).writing = false;
                }
            }
            // Otherwise a running writer picks the job up when it is free.
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            let job = {
                let mut st = lock(&self.state);
                loop {
                    if let Some(job) = st.jobs.pop_front() {
                        break Some(job);
                    }
                    st.idle += 1;
                    let (guard, wait) = self
                        .work
                        .wait_timeout(st, self.idle_timeout)
                        .unwrap_or_else(PoisonError::into_inner);
                    st = guard;
                    st.idle -= 1;
                    if wait.timed_out() && st.jobs.is_empty() {
                        st.threads -= 1;
                        break None;
                    }
                }
            };
            let Some(outbox) = job else { return };
            if panic::catch_unwind(AssertUnwindSafe(|| outbox.drain())).is_err() {
                log!("{} writer panicked: dropping the connection", outbox.peer);
                outbox.kill();
                lock(&outbox.state).writing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryTransport;

    /// A transport whose socket buffer has room for `room` bytes: writing without waiting
    /// takes at most that much, a waiting write takes everything.
    #[derive(Debug)]
    struct SmallBuffer {
        room: Mutex<usize>,
        written: MemoryTransport,
    }

    impl Transport for SmallBuffer {
        fn read(&self, _: &mut [u8]) -> io::Result<usize> {
            Ok(0)
        }

        fn write(&self, buf: &[u8]) -> io::Result<usize> {
            self.written.write(buf)
        }

        fn write_without_waiting(&self, buf: &[u8]) -> io::Result<usize> {
            let mut room = lock(&self.room);
            if *room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(*room);
            *room -= n;
            self.written.write(&buf[..n])
        }

        fn shutdown(&self, _: Shutdown) {}
    }

    fn outbox(stream: Arc<dyn Transport>) -> Arc<Outbox> {
        let limits = QueueLimits {
            messages: 64,
            bytes: 1 << 20,
        };
        Arc::new(Outbox::new(
            stream,
            "127.0.0.1:1".parse().unwrap(),
            limits,
            WriterPool::new(Duration::from_secs(1)),
        ))
    }

    fn wait_until_idle(outbox: &Outbox) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !outbox.is_idle() {
            assert!(
                std::time::Instant::now() < deadline,
                "the queue never drained"
            );
            thread::yield_now();
        }
    }

    #[test]
    fn a_socket_with_room_is_written_by_the_pushing_thread() {
        let stream = Arc::new(MemoryTransport::new(Vec::new()));
        let outbox = outbox(stream.clone());
        let frame = text_frame("hello");
        outbox.push(frame.clone());
        // No hand-off: the bytes are out before push returns.
        assert_eq!(stream.output(), frame);
        assert!(outbox.is_idle());
    }

    #[test]
    fn a_full_socket_leaves_the_rest_to_the_pool_in_order() {
        let stream = Arc::new(SmallBuffer {
            room: Mutex::new(5),
            written: MemoryTransport::default(),
        });
        let outbox = outbox(stream.clone());
        let frames: Vec<Bytes> = (0..20).map(|i| text_frame(&format!("frame {i}"))).collect();
        for frame in &frames {
            outbox.push(frame.clone());
        }
        wait_until_idle(&outbox);
        assert_eq!(stream.written.output(), frames.concat());
    }

    #[test]
    fn a_dropped_turn_is_written_by_the_pool() {
        let stream = Arc::new(MemoryTransport::new(Vec::new()));
        let outbox = outbox(stream.clone());
        let turn = outbox
            .queue(text_frame("a"))
            .expect("an idle queue gives a turn");
        assert!(
            outbox.queue(text_frame("b")).is_none(),
            "one writer at a time"
        );
        turn.hand_to_pool();
        wait_until_idle(&outbox);
        assert_eq!(stream.output(), [text_frame("a"), text_frame("b")].concat());
    }
}
