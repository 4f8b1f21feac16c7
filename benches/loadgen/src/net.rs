//! One epoll loop (via mio) over many `Conn`s, all on the calling thread.

use crate::ws::{Conn, Frame};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub struct Net {
    poll: Poll,
    events: Events,
    pub conns: Vec<Conn>,
    registered: Vec<bool>,
    /// A connection whose pending write fails is handed to the caller as ready (its read
    /// then reports the end) instead of failing `wait`: for scenarios where the server may
    /// close members and the rest must go on.
    pub lenient_writes: bool,
}

/// What reading one connection to exhaustion found besides its messages.
#[derive(Default, Debug, Clone, Copy)]
pub struct ReadEnd {
    /// The server closed the TCP stream.
    pub eof: bool,
}

impl Net {
    /// Takes connections whose handshake is done; makes them non-blocking and registers them.
    pub fn new(conns: Vec<Conn>) -> io::Result<Net> {
        let poll = Poll::new()?;
        let mut net = Net {
            poll,
            events: Events::with_capacity(4096),
            registered: vec![false; conns.len()],
            conns,
            lenient_writes: false,
        };
        for i in 0..net.conns.len() {
            net.conns[i].set_nonblocking()?;
            net.register(i)?;
        }
        Ok(net)
    }

    pub fn register(&mut self, i: usize) -> io::Result<()> {
        if !self.registered[i] {
            let fd = self.conns[i].sock.as_raw_fd();
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(i), Interest::READABLE | Interest::WRITABLE)?;
            self.registered[i] = true;
        }
        Ok(())
    }

    /// Stops watching a connection (the stalled member: never read again).
    pub fn deregister(&mut self, i: usize) -> io::Result<()> {
        if self.registered[i] {
            let fd = self.conns[i].sock.as_raw_fd();
            self.poll.registry().deregister(&mut SourceFd(&fd))?;
            self.registered[i] = false;
        }
        Ok(())
    }

    /// Waits for readiness (at most `timeout`), flushes pending writes of ready connections,
    /// and fills `ready` with the indices that may have data to read.
    pub fn wait(&mut self, timeout: Duration, ready: &mut Vec<usize>) -> io::Result<()> {
        ready.clear();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            let i = ev.token().0;
            let mut write_failed = false;
            if ev.is_writable() && self.conns[i].pending_write() {
                match self.conns[i].flush() {
                    Ok(_) => {}
                    Err(_) if self.lenient_writes => write_failed = true,
                    Err(e) => return Err(e),
                }
            }
            if write_failed || ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                ready.push(i);
            }
        }
        Ok(())
    }

    /// Ends every connection with a closing handshake (so the server sees a clean 1000, not
    /// a reset), waiting at most `timeout` for the replies. Best effort: errors are ignored.
    pub fn close_all(&mut self, timeout: Duration) {
        let mut open = 0usize;
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if c.eof || c.close_received.is_some() {
                continue;
            }
            if !self.registered[i] {
                // Never read (the stalled member): its unread bytes would turn close into a reset.
                let _ = self.register(i);
            }
            if self.conns[i].send_close().is_ok() {
                open += 1;
            }
        }
        let deadline = Instant::now() + timeout;
        let mut ready = Vec::new();
        let mut sink: Vec<()> = Vec::new();
        // Registering reports data already waiting, so events cover every connection.
        while open > 0 && Instant::now() < deadline {
            if self.wait(Duration::from_millis(50), &mut ready).is_err() {
                return;
            }
            for &i in &ready {
                if self.conns[i].eof || self.conns[i].close_received.is_some() {
                    continue;
                }
                sink.clear();
                let gone = self.read_conn(i, &mut sink, |_, _| ()).map(|e| e.eof).unwrap_or(true);
                if gone || self.conns[i].eof || self.conns[i].close_received.is_some() {
                    open -= 1;
                }
            }
        }
    }

    /// Reads connection `i` until the socket would block, handing each message with the time
    /// its bytes were read to `parse`, whose results are appended to `out`. Pongs for pings
    /// and the close reply are flushed on the way.
    pub fn read_conn<T>(
        &mut self,
        i: usize,
        out: &mut Vec<T>,
        mut parse: impl FnMut(Frame<'_>, Instant) -> T,
    ) -> io::Result<ReadEnd> {
        let c = &mut self.conns[i];
        let mut end = ReadEnd::default();
        loop {
            match c.fill() {
                Ok(0) => {
                    end.eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    end.eof = true;
                    break;
                }
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            while let Some(f) = c.next_frame()? {
                out.push(parse(f, now));
            }
            // A short read emptied the socket's receive queue; new data raises a new edge,
            // so the extra read() that would only say EAGAIN is skipped.
            if c.last_read_short {
                break;
            }
        }
        let now = Instant::now();
        while let Some(f) = c.next_frame()? {
            out.push(parse(f, now));
        }
        if c.pending_write() {
            match c.flush() {
                Ok(_) => {}
                Err(_) if end.eof || c.close_received.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(end)
    }
}
