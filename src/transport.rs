//! A connection's byte stream as the outgoing path sees it: a TCP socket in the server, an
//! in-memory double in unit tests and the fuzzer.
//!
//! One connection has two users at once: its own thread, blocked reading, and whichever thread
//! holds the turn to write its queue (see [`crate::outbox`]). So every method takes `&self`.

use std::fmt::Debug;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A byte stream shared by a connection's reading thread and its writer.
pub trait Transport: Send + Sync + Debug {
    /// Reads like [`Read::read`], waiting for bytes.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes like [`Write::write`], waiting for room up to the socket's write timeout.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes what fits right now; [`io::ErrorKind::WouldBlock`] when nothing does.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts down one or both directions, like [`TcpStream::shutdown`]. Errors are ignored:
    /// the peer may already be gone, and there is nothing left to do about it.
    fn shutdown(&self, how: Shutdown);
}

impl Transport for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(debug_assertions)]
        crate::sync::assert_io_allowed("a socket write");
        Write::write(&mut &*self, buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(debug_assertions)]
        crate::sync::assert_io_allowed("a socket write");
        // A per-call flag: the socket stays blocking for its reading thread, which
        // `set_nonblocking` would change too (it is a property of the shared open file).
        socket2::SockRef::from(self).send_with_flags(buf, libc::MSG_DONTWAIT)
    }

    fn shutdown(&self, how: Shutdown) {
        #[cfg(debug_assertions)]
        crate::sync::assert_io_allowed("a socket shutdown");
        let _ = TcpStream::shutdown(self, how);
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryTransport;

#[cfg(any(test, feature = "test-support"))]
mod memory {
    use super::Transport;
    use crate::sync::{assert_io_allowed, lock};
    use std::io;
    use std::net::Shutdown;
    use std::sync::Mutex;

    /// A peer that sends a fixed input and then closes its side; everything written to it is
    /// kept. Writing or shutting it down while the current thread may only queue (holds the
    /// room lock) panics, so tests and the fuzzer prove that rule.
    #[derive(Debug, Default)]
    pub struct MemoryTransport {
        input: Mutex<(Vec<u8>, usize)>,
        output: Mutex<Vec<u8>>,
    }

    impl MemoryTransport {
        /// A transport whose peer sends `input` and then closes.
        pub fn new(input: Vec<u8>) -> Self {
            MemoryTransport {
                input: Mutex::new((input, 0)),
                output: Mutex::new(Vec::new()),
            }
        }

        /// Everything written so far.
        pub fn output(&self) -> Vec<u8> {
            lock(&self.output).clone()
        }
    }

    impl Transport for MemoryTransport {
        fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
            let mut input = lock(&self.input);
            let (data, pos) = &mut *input;
            let n = buf.len().min(data.len() - *pos);
            buf[..n].copy_from_slice(&data[*pos..*pos + n]);
            *pos += n;
            Ok(n)
        }

        fn write(&self, buf: &[u8]) -> io::Result<usize> {
            assert_io_allowed("a socket write");
            lock(&self.output).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.write(buf)
        }

        fn shutdown(&self, how: Shutdown) {
            assert_io_allowed("a socket shutdown");
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                let mut input = lock(&self.input);
                input.1 = input.0.len();
            }
        }
    }
}
