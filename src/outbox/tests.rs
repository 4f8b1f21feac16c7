use super::*;
use crate::frame;
use crate::sync::lock;
use std::io;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A socket whose buffer takes `room` more bytes without waiting (a waiting write takes
/// everything), and that records what was written and how it was shut down.
#[derive(Debug, Default)]
struct Socket {
    room: Mutex<usize>,
    written: Mutex<Vec<u8>>,
    shut: Mutex<Vec<Shutdown>>,
}

impl Socket {
    fn with_room(room: usize) -> Arc<Self> {
        Arc::new(Socket {
            room: Mutex::new(room),
            ..Socket::default()
        })
    }

    fn written(&self) -> Vec<u8> {
        lock(&self.written).clone()
    }

    fn shut(&self) -> Vec<Shutdown> {
        lock(&self.shut).clone()
    }
}

impl Transport for Socket {
    fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.written).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut room = lock(&self.room);
        if *room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(*room);
        *room -= n;
        lock(&self.written).extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn shutdown(&self, how: Shutdown) {
        lock(&self.shut).push(how);
    }
}

fn outbox_with(socket: &Arc<Socket>, limits: QueueLimits, linger: Duration) -> Arc<Outbox> {
    Arc::new(Outbox::new(
        socket.clone(),
        "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
        Writers::new(limits, linger),
    ))
}

fn outbox(socket: &Arc<Socket>) -> Arc<Outbox> {
    let limits = QueueLimits {
        bytes: 1 << 20,
        messages: None,
    };
    outbox_with(socket, limits, Duration::from_secs(2))
}

/// Waits, bounded, until the pool has written everything.
fn wait_until_idle(outbox: &Outbox) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !outbox.is_idle() {
        assert!(Instant::now() < deadline, "the queue never drained");
        thread::yield_now();
    }
}

#[test]
fn a_socket_with_room_is_written_by_the_caller() {
    let socket = Socket::with_room(usize::MAX);
    let outbox = outbox(&socket);
    let frame = frame::text("hello");
    outbox.enqueue(frame.clone(), When::Now).write();
    // No hand-off: the bytes are out before write returns.
    assert_eq!(socket.written(), frame);
    assert!(outbox.is_idle());
}

#[test]
fn a_full_socket_leaves_the_rest_to_the_pool_in_order() {
    let socket = Socket::with_room(5);
    let outbox = outbox(&socket);
    let frames: Vec<Bytes> = (0..20)
        .map(|i| frame::text(&format!("frame {i}")))
        .collect();
    for frame in &frames {
        outbox.enqueue(frame.clone(), When::Now).write();
    }
    wait_until_idle(&outbox);
    assert_eq!(socket.written(), frames.concat());
}

#[test]
fn frames_put_back_after_a_partial_write_are_counted_once() {
    let socket = Socket::with_room(12);
    let outbox = outbox(&socket);
    let frames: Vec<Bytes> = (0..20)
        .map(|i| frame::text(&format!("frame {i}")))
        .collect();
    // All twenty in one batch: the caller writes a frame and a part, the pool the rest.
    let first = outbox.enqueue(frames[0].clone(), When::Now);
    for frame in &frames[1..] {
        outbox.enqueue(frame.clone(), When::Now).write();
    }
    first.write();
    wait_until_idle(&outbox);
    assert_eq!(socket.written(), frames.concat());
    let bytes = frames.concat().len() as u64;
    assert_eq!(outbox.metrics().sent_so_far(), (20, bytes));
}

#[test]
fn one_writer_at_a_time_and_later_is_the_pools() {
    let socket = Socket::with_room(usize::MAX);
    let outbox = outbox(&socket);
    let first = outbox.enqueue(frame::text("a"), When::Later);
    // The turn is taken: this one only queues, whatever it asks for.
    outbox.enqueue(frame::text("b"), When::Now).write();
    assert!(socket.written().is_empty());
    first.write();
    wait_until_idle(&outbox);
    assert_eq!(
        socket.written(),
        [frame::text("a"), frame::text("b")].concat()
    );
}

#[test]
fn past_the_byte_bound_others_frames_close_with_1008_but_the_owners_wait() {
    let socket = Socket::with_room(0);
    let limits = QueueLimits {
        bytes: 100,
        messages: None,
    };
    let outbox = outbox_with(&socket, limits, Duration::from_secs(2));
    // The connection's own frames are not bounded by the queue: their writer waits.
    let big = frame::text(&"x".repeat(300));
    outbox.enqueue(big.clone(), When::Waiting).write();
    assert_eq!(socket.written(), big);
    // A broadcast over the bound: the connection closes instead of buffering.
    let over = outbox.enqueue(frame::text(&"y".repeat(120)), When::Later);
    assert!(over.overflowed());
    over.write();
    wait_until_idle(&outbox);
    let close = frame::close(
        CloseCode::Policy,
        "outgoing queue full: you are not reading fast enough",
    );
    assert_eq!(socket.written(), [big, close.clone()].concat());
    assert_eq!(outbox.close_code(), Some(CloseCode::Policy));
    // Nothing is taken after the close frame, from anyone.
    let after = outbox.enqueue(frame::text("late"), When::Now);
    assert!(!after.overflowed());
    after.write();
    outbox.enqueue(frame::text("own"), When::Waiting).write();
    wait_until_idle(&outbox);
    assert!(socket.written().ends_with(&close));
}

/// A socket with a reader that takes nothing until the test lets it: a blocking write
/// waits for that, a non-blocking one finds no room.
#[derive(Debug, Default)]
struct HeldSocket {
    entered: Mutex<Option<mpsc::Sender<()>>>,
    released: Mutex<bool>,
    release: Condvar,
    written: Mutex<Vec<u8>>,
}

impl Transport for HeldSocket {
    fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if let Some(entered) = lock(&self.entered).take() {
            let _ = entered.send(());
        }
        let released = lock(&self.released);
        drop(self.release.wait_while(released, |r| !*r).unwrap());
        lock(&self.written).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn try_write(&self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn shutdown(&self, _: Shutdown) {}
}

#[test]
fn a_heartbeat_ping_is_not_refused_while_a_large_frame_of_the_owner_is_written() {
    // Autobahn 9.3.6: a 4 MiB echo was being written when the heartbeat came, and its ping
    // took the queue past the byte bound: the peer, reading all along, got 1008.
    let (entered, in_write) = mpsc::channel();
    let socket = Arc::new(HeldSocket {
        entered: Mutex::new(Some(entered)),
        ..HeldSocket::default()
    });
    let limits = QueueLimits {
        bytes: 100,
        messages: None,
    };
    let outbox = Arc::new(Outbox::new(
        socket.clone(),
        "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
        Writers::new(limits, Duration::from_secs(2)),
    ));
    let echo = frame::text(&"x".repeat(300));
    let owner = {
        let (outbox, echo) = (Arc::clone(&outbox), echo.clone());
        thread::spawn(move || outbox.enqueue(echo, When::Waiting).write())
    };
    in_write.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(outbox.heartbeat());
    assert_eq!(outbox.close_code(), None);
    *lock(&socket.released) = true;
    socket.release.notify_all();
    owner.join().unwrap();
    wait_until_idle(&outbox);
    assert_eq!(*lock(&socket.written), [echo, frame::ping()].concat());
    // A broadcast that does not fit is still refused.
    assert!(outbox
        .enqueue(frame::text(&"y".repeat(120)), When::Later)
        .overflowed());
}

#[test]
fn an_optional_count_bound_closes_too() {
    let socket = Socket::with_room(0);
    let limits = QueueLimits {
        bytes: 1 << 20,
        messages: Some(3),
    };
    let outbox = outbox_with(&socket, limits, Duration::from_secs(2));
    let held = outbox.enqueue(frame::text("0"), When::Later);
    let overflowed: Vec<bool> = (1..5)
        .map(|i| {
            let queued = outbox.enqueue(frame::text(&i.to_string()), When::Later);
            let overflowed = queued.overflowed();
            queued.write();
            overflowed
        })
        .collect();
    assert_eq!(overflowed, [false, false, true, false]);
    held.write();
    wait_until_idle(&outbox);
}

#[test]
fn the_owner_waits_until_the_pool_has_written_its_frame() {
    let socket = Socket::with_room(usize::MAX);
    let outbox = outbox(&socket);
    // Someone else holds the turn and has not written yet.
    let held = outbox.enqueue(frame::text("theirs"), When::Later);
    let (done, finished) = mpsc::channel();
    let owner = Arc::clone(&outbox);
    let waiter = thread::spawn(move || {
        owner.enqueue(frame::text("mine"), When::Waiting).write();
        done.send(()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_millis(50)).is_err(),
        "the owner did not wait for its frame to be written"
    );
    held.write();
    finished.recv_timeout(Duration::from_secs(10)).unwrap();
    waiter.join().unwrap();
    assert_eq!(
        socket.written(),
        [frame::text("theirs"), frame::text("mine")].concat()
    );
}

#[test]
fn after_our_close_the_write_side_is_shut_and_a_silent_peer_dropped_after_the_linger() {
    let socket = Socket::with_room(usize::MAX);
    let limits = QueueLimits {
        bytes: 1 << 20,
        messages: None,
    };
    let outbox = outbox_with(&socket, limits, Duration::from_millis(30));
    outbox
        .close(CloseCode::Size, "too big", When::Waiting)
        .write();
    assert_eq!(socket.shut(), [Shutdown::Write]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while socket.shut().len() < 2 {
        assert!(Instant::now() < deadline, "the linger time never ended");
        thread::yield_now();
    }
    assert_eq!(socket.shut(), [Shutdown::Write, Shutdown::Both]);
    assert_eq!(outbox.close_code(), Some(CloseCode::Size));
}

#[test]
fn a_peer_that_closes_in_time_is_not_dropped() {
    let socket = Socket::with_room(usize::MAX);
    let limits = QueueLimits {
        bytes: 1 << 20,
        messages: None,
    };
    let outbox = outbox_with(&socket, limits, Duration::from_millis(30));
    outbox.close(CloseCode::Away, "bye", When::Waiting).write();
    // The reading thread saw the peer close and is done before the linger time is over.
    outbox.finish();
    let shut_at_finish = socket.shut();
    assert_eq!(shut_at_finish, [Shutdown::Write, Shutdown::Both]);
    // The timer fires later and finds nothing to do.
    let (fired, wait) = mpsc::channel();
    outbox.writers.timer.at(
        Instant::now() + Duration::from_millis(60),
        Box::new(move || fired.send(()).unwrap()),
    );
    wait.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(socket.shut(), shut_at_finish);
}

#[test]
fn after_the_peers_close_only_the_owners_reply_is_taken() {
    let socket = Socket::with_room(usize::MAX);
    let outbox = outbox(&socket);
    outbox.peer_closing();
    outbox.enqueue(frame::text("broadcast"), When::Now).write();
    let reply = frame::close(CloseCode::Normal, "");
    outbox.enqueue(reply.clone(), When::Waiting).write();
    // And no close of ours after the reply.
    outbox.close(CloseCode::Away, "bye", When::Now).write();
    assert_eq!(socket.written(), reply);
}

#[test]
fn soon_waits_a_moment_and_writes_every_queue_that_asked_in_one_round() {
    let sockets: Vec<Arc<Socket>> = (0..3).map(|_| Socket::with_room(usize::MAX)).collect();
    let limits = QueueLimits {
        bytes: 1 << 20,
        messages: None,
    };
    let writers = Writers::new(limits, Duration::from_secs(2));
    let outboxes: Vec<Arc<Outbox>> = sockets
        .iter()
        .map(|socket| {
            Arc::new(Outbox::new(
                socket.clone(),
                "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
                Arc::clone(&writers),
            ))
        })
        .collect();
    let started = Instant::now();
    for (i, outbox) in outboxes.iter().enumerate() {
        outbox
            .enqueue(frame::text(&format!("a{i}")), When::Soon)
            .write();
        // A second frame joins the first in the same round.
        outbox
            .enqueue(frame::text(&format!("b{i}")), When::Soon)
            .write();
    }
    assert!(
        sockets.iter().all(|s| s.written().is_empty()),
        "written at once"
    );
    for outbox in &outboxes {
        wait_until_idle(outbox);
    }
    // Not written at once: the round waited.
    assert!(started.elapsed() >= SOON);
    for (i, socket) in sockets.iter().enumerate() {
        let expected = [frame::text(&format!("a{i}")), frame::text(&format!("b{i}"))].concat();
        assert_eq!(socket.written(), expected);
    }
}
