//! An in-memory [`Transport`], so the session code that serves real sockets can be driven by
//! the fuzzer and by unit tests without a network.

use crate::outbox::Transport;
use crate::sync::lock;
use std::io;
use std::net::Shutdown;
use std::sync::Mutex;

/// Reads come from a fixed input; writes are collected. After the input is exhausted, reads
/// return end-of-stream, as a peer that closed its side would.
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
        lock(&self.output).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_without_waiting(&self, buf: &[u8]) -> io::Result<usize> {
        self.write(buf)
    }

    fn shutdown(&self, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            let mut input = lock(&self.input);
            input.1 = input.0.len();
        }
    }
}
