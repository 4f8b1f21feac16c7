//! The stream tungstenite sees for one connection: reads come from the socket through a
//! buffer sized for what is coming, writes go to the connection's outbox. What is read is
//! counted here too, and added to the server's metrics once per read from the socket.

use crate::outbox::{Outbox, When};
use std::io::{self, Read, Write};
use std::sync::Arc;
use tungstenite::Bytes;

/// tungstenite's own read buffer, allocated for every connection. Small, because a chat has
/// thousands of mostly idle members: [`SessionIo`] does the reading from the socket and hands
/// tungstenite bytes from memory, so the size of tungstenite's reads costs no system calls.
pub const TUNGSTENITE_READ_BUFFER: usize = 128;

/// What [`SessionIo`] reads into while the peer sends little: the buffer an idle connection
/// waits with.
const READ_IDLE: usize = 256;

/// What [`SessionIo`] reads into once a read has filled [`READ_IDLE`]: a burst then costs one
/// system call per 16 KiB.
const READ_AHEAD: usize = 16 * 1024;

/// Reads from the socket, writes into the outbox.
pub struct SessionIo<'a> {
    outbox: &'a Arc<Outbox>,
    /// Bytes read from the socket; tungstenite has taken those before `ahead_pos`.
    ahead: Vec<u8>,
    ahead_pos: usize,
    /// The last read filled its buffer: more is probably waiting.
    bursting: bool,
    /// Data messages and bytes read but not yet added to the metrics: they are added before
    /// each wait for the peer and at the end, one add per read rather than per message.
    uncounted: (u64, u64),
}

impl<'a> SessionIo<'a> {
    /// A stream over `outbox`'s connection, which has already read `already_read` bytes of
    /// WebSocket frames (those that came with the request head).
    pub fn new(outbox: &'a Arc<Outbox>, already_read: usize) -> Self {
        SessionIo {
            outbox,
            ahead: Vec::new(),
            ahead_pos: 0,
            bursting: false,
            uncounted: (0, already_read as u64),
        }
    }

    /// Counts a data message read.
    pub fn count_message(&mut self) {
        self.uncounted.0 += 1;
    }

    /// Adds what was counted to the server's metrics.
    fn publish(&mut self) {
        let (messages, bytes) = std::mem::take(&mut self.uncounted);
        self.outbox.metrics().received(messages, bytes);
    }

    /// Reads from the socket into `ahead`, which tungstenite has emptied. The buffer is small
    /// while the peer sends little, since the connection then waits in this read holding it,
    /// and large while reads come back full. A burst buffer is given back before the next
    /// small read.
    fn refill(&mut self) -> io::Result<()> {
        let size = if self.bursting { READ_AHEAD } else { READ_IDLE };
        if self.ahead.capacity() > size {
            self.ahead = Vec::new();
        }
        self.ahead.clear();
        self.ahead_pos = 0;
        self.ahead.resize(size, 0);
        // This read may wait for a long time: what came before is counted first.
        self.publish();
        let read = loop {
            match self.outbox.transport().read(&mut self.ahead) {
                // A signal the process handles (SIGTERM, SIGXFSZ) may land on this thread, and
                // a read with a timeout is not restarted after it (signal(7)): read again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => break read,
            }
        };
        let n = *read.as_ref().unwrap_or(&0);
        self.uncounted.1 += n as u64;
        self.ahead.truncate(n);
        self.bursting = n == size;
        read.map(drop)
    }

    /// True when more of the peer's bytes are already here or probably waiting: another
    /// message is likely right behind the one just read.
    pub fn more_waiting(&self) -> bool {
        self.ahead_pos < self.ahead.len() || self.bursting
    }
}

impl Drop for SessionIo<'_> {
    fn drop(&mut self) {
        self.publish();
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
        // queued item never splits a frame. The connection's own replies wait for its peer.
        self.outbox
            .enqueue(Bytes::copy_from_slice(buf), When::Waiting)
            .write();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{QueueLimits, Writers};
    use crate::transport::MemoryTransport;
    use std::time::Duration;

    #[test]
    fn reads_small_while_idle_large_in_a_burst_and_gives_the_burst_buffer_back() {
        let input: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let limits = QueueLimits {
            bytes: 1,
            messages: None,
        };
        let outbox = Arc::new(Outbox::new(
            Arc::new(MemoryTransport::new(input.clone())),
            "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
            Writers::new(limits, Duration::from_secs(1)),
        ));
        let mut io = SessionIo::new(&outbox, 0);
        let mut got = Vec::new();
        let mut buf = [0u8; TUNGSTENITE_READ_BUFFER];
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
