//! A small WebSocket client (RFC 6455) over std's TcpStream: a blocking handshake,
//! then frames read and written on a non-blocking socket driven by an event loop.
//!
//! Hand-rolled rather than tungstenite because one event loop drives hundreds to
//! thousands of sockets from a single thread, and reads/writes must never block it.
//! Frames are checked strictly (no RSV bits, server frames unmasked, close codes), so a
//! server that breaks framing shows up as an error rather than as a fast result.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A complete message (or close) parsed from the receive buffer.
pub enum Frame<'a> {
    Text(&'a [u8]),
    #[allow(dead_code)] // kept for completeness; scenarios only count binary frames
    Binary(&'a [u8]),
    /// The server's close frame; `None` when it carried no code.
    Close(Option<u16>),
}

enum Parsed {
    Data { op: u8, start: usize, end: usize },
    Frag { op: u8 },
    Close(Option<u16>),
}

pub fn err(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A cheap xorshift generator: mask keys and handshake nonces.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng((seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

pub struct Conn {
    pub sock: TcpStream,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    frag: Vec<u8>,
    frag_op: u8,
    in_frag: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Close code the server sent (Some(None) = close frame without a code).
    pub close_received: Option<Option<u16>>,
    close_sent: bool,
    /// The server ended the TCP stream.
    pub eof: bool,
    /// The last read returned less than it had room for: the socket was drained.
    pub last_read_short: bool,
    /// How far a streaming peer may grow the receive buffer (one larger frame still gets
    /// room). Thousands of connections lower it to keep the generator small.
    pub rbuf_cap: usize,
    rng: Rng,
    /// Speaks socket.io (engine.io v4 over WebSocket) to a socket.io peer: our chat JSON
    /// travels as the argument of a `m` event (see [`Conn::connect_engineio`]).
    engineio: bool,
}

/// What a text message is at the engine.io / socket.io level.
enum EngineIo {
    /// An engine.io ping (`2`): answered with a pong (`3`).
    Ping,
    /// A socket.io event `42["m",ARG]`: ARG starts `prefix` bytes in and ends one before the end.
    Event { prefix: usize },
    /// Anything else (the namespace's connect ack, a noop): skipped.
    Skip,
}

const EIO_EVENT: &[u8] = br#"42["m","#;

fn engineio_kind(t: &[u8]) -> EngineIo {
    if t == b"2" {
        EngineIo::Ping
    } else if t.starts_with(EIO_EVENT) && t.ends_with(b"]") && t.len() > EIO_EVENT.len() {
        EngineIo::Event { prefix: EIO_EVENT.len() }
    } else {
        EngineIo::Skip
    }
}

/// A connection whose upgrade request is sent but whose `101` is not read yet, so many
/// upgrades can be in flight at once (`Conn::start` for each, then `finish` for each).
pub struct PendingUpgrade {
    conn: Conn,
    key: String,
    deadline: Instant,
}

impl Conn {
    /// Connects and performs the opening handshake (blocking, bounded by `timeout`).
    /// The socket is left blocking with `timeout` as its read timeout.
    pub fn connect(addr: SocketAddr, path: &str, timeout: Duration, seed: u64) -> io::Result<Conn> {
        Conn::start(addr, path, timeout, seed)?.finish()
    }

    /// Connects and sends the upgrade request without waiting for the reply.
    pub fn start(addr: SocketAddr, path: &str, timeout: Duration, seed: u64) -> io::Result<PendingUpgrade> {
        let sock = TcpStream::connect_timeout(&addr, timeout)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let mut rng = Rng::new(seed);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&rng.next().to_le_bytes());
        nonce[8..].copy_from_slice(&rng.next().to_le_bytes());
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut conn = Conn {
            sock,
            rbuf: vec![0; 4096],
            rstart: 0,
            rend: 0,
            frag: Vec::new(),
            frag_op: 0,
            in_frag: false,
            wbuf: Vec::new(),
            wpos: 0,
            close_received: None,
            close_sent: false,
            eof: false,
            last_read_short: false,
            rbuf_cap: 256 * 1024,
            rng,
            engineio: false,
        };
        conn.sock.write_all(req.as_bytes())?;
        Ok(PendingUpgrade { conn, key, deadline: Instant::now() + timeout })
    }

    /// Connects to a socket.io server (engine.io v4, WebSocket transport only): the upgrade on
    /// `/socket.io/?EIO=4&transport=websocket`, the engine.io open packet (`0{...}`), then
    /// the connect to the default namespace (`40`, answered `40{...}`). From then on, text
    /// sent is wrapped as the event `42["m","TEXT"]`, and only `m` events are handed on
    /// (their argument, the same chat JSON as wschat's); engine.io pings are answered.
    pub fn connect_engineio(addr: SocketAddr, timeout: Duration, seed: u64) -> io::Result<Conn> {
        let mut conn = Conn::connect(addr, "/socket.io/?EIO=4&transport=websocket", timeout, seed)?;
        let open = conn.recv_text_blocking()?;
        if !open.starts_with(b"0{") {
            return Err(err(format!("expected an engine.io open packet, got {:?}", String::from_utf8_lossy(&open))));
        }
        conn.queue(OP_TEXT, b"40");
        conn.flush()?;
        let ack = conn.recv_text_blocking()?;
        if !ack.starts_with(b"40") {
            return Err(err(format!("expected the namespace connect ack, got {:?}", String::from_utf8_lossy(&ack))));
        }
        conn.engineio = true;
        Ok(conn)
    }

    pub fn set_nonblocking(&mut self) -> io::Result<()> {
        self.sock.set_nonblocking(true)
    }

    /// One read() into the receive buffer. Ok(0) is EOF.
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        if self.rend == self.rbuf.len() {
            if self.rstart > 0 {
                self.rbuf.copy_within(self.rstart..self.rend, 0);
                self.rend -= self.rstart;
                self.rstart = 0;
            } else {
                let n = self.rbuf.len() * 2;
                self.rbuf.resize(n, 0);
            }
        }
        let spare = self.rbuf.len() - self.rend;
        let n = self.sock.read(&mut self.rbuf[self.rend..])?;
        if n == 0 {
            self.eof = true;
        }
        self.last_read_short = n < spare;
        self.rend += n;
        // A full read means the peer is streaming: give it a bigger buffer next time.
        if self.rend == self.rbuf.len() && self.rbuf.len() < self.rbuf_cap {
            let n = self.rbuf.len() * 2;
            self.rbuf.resize(n, 0);
        }
        Ok(n)
    }

    /// The next complete message from the buffer. Pings are answered (queued pongs),
    /// pongs dropped, fragments reassembled. Over engine.io, only event arguments come out.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame<'_>>> {
        let parsed = loop {
            let Some(parsed) = self.next_parsed()? else {
                return Ok(None);
            };
            if !self.engineio {
                break parsed;
            }
            let text = match &parsed {
                Parsed::Data { op: OP_TEXT, start, end } => &self.rbuf[*start..*end],
                Parsed::Frag { op: OP_TEXT } => &self.frag[..],
                _ => break parsed,
            };
            match (engineio_kind(text), parsed) {
                (EngineIo::Ping, _) => {
                    if !self.close_sent {
                        self.queue(OP_TEXT, b"3");
                    }
                }
                (EngineIo::Skip, _) => {}
                (EngineIo::Event { prefix }, Parsed::Data { op, start, end }) => {
                    break Parsed::Data { op, start: start + prefix, end: end - 1 };
                }
                (EngineIo::Event { prefix }, other) => {
                    self.frag.pop();
                    self.frag.drain(..prefix);
                    break other;
                }
            }
        };
        Ok(Some(match parsed {
            Parsed::Data { op: OP_TEXT, start, end } => Frame::Text(&self.rbuf[start..end]),
            Parsed::Data { start, end, .. } => Frame::Binary(&self.rbuf[start..end]),
            Parsed::Frag { op: OP_TEXT } => Frame::Text(&self.frag),
            Parsed::Frag { .. } => Frame::Binary(&self.frag),
            Parsed::Close(code) => Frame::Close(code),
        }))
    }

    /// The next complete WebSocket message, as where it lies in the buffers.
    fn next_parsed(&mut self) -> io::Result<Option<Parsed>> {
        let parsed = loop {
            let buf = &self.rbuf[self.rstart..self.rend];
            if buf.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (buf[0], buf[1]);
            if b0 & 0x70 != 0 {
                return Err(err("server frame with RSV bits set"));
            }
            if b1 & 0x80 != 0 {
                return Err(err("server frame is masked"));
            }
            let fin = b0 & 0x80 != 0;
            let op = b0 & 0x0f;
            let (len, hdr) = match b1 & 0x7f {
                126 => {
                    if buf.len() < 4 {
                        return Ok(None);
                    }
                    (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
                }
                127 => {
                    if buf.len() < 10 {
                        return Ok(None);
                    }
                    (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10)
                }
                n => (n as u64, 2),
            };
            if len > (64 << 20) {
                return Err(err("server frame larger than 64 MiB"));
            }
            let total = hdr + len as usize;
            if buf.len() < total {
                return Ok(None);
            }
            let start = self.rstart + hdr;
            let end = self.rstart + total;
            self.rstart += total;
            match op {
                OP_TEXT | OP_BINARY => {
                    if self.in_frag {
                        return Err(err("new data frame inside a fragmented message"));
                    }
                    if fin {
                        break Parsed::Data { op, start, end };
                    }
                    self.in_frag = true;
                    self.frag_op = op;
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.rbuf[start..end]);
                }
                OP_CONT => {
                    if !self.in_frag {
                        return Err(err("continuation frame without a start"));
                    }
                    self.frag.extend_from_slice(&self.rbuf[start..end]);
                    if fin {
                        self.in_frag = false;
                        break Parsed::Frag { op: self.frag_op };
                    }
                }
                OP_CLOSE | OP_PING | OP_PONG => {
                    if !fin || len > 125 {
                        return Err(err("bad control frame"));
                    }
                    match op {
                        OP_PING => {
                            let payload = self.rbuf[start..end].to_vec();
                            if !self.close_sent {
                                self.queue(OP_PONG, &payload);
                            }
                        }
                        OP_PONG => {}
                        _ => {
                            let code = if len >= 2 {
                                Some(u16::from_be_bytes([self.rbuf[start], self.rbuf[start + 1]]))
                            } else if len == 1 {
                                return Err(err("close frame with a 1-byte payload"));
                            } else {
                                None
                            };
                            self.close_received = Some(code);
                            if !self.close_sent {
                                let echo = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                                self.queue(OP_CLOSE, &echo);
                                self.close_sent = true;
                            }
                            break Parsed::Close(code);
                        }
                    }
                }
                _ => return Err(err(format!("reserved opcode {op:#x}"))),
            }
        };
        Ok(Some(parsed))
    }

    /// Appends one masked frame to the send buffer (call `flush`).
    pub fn queue(&mut self, op: u8, payload: &[u8]) {
        let w = &mut self.wbuf;
        w.push(0x80 | op);
        let len = payload.len();
        if len < 126 {
            w.push(0x80 | len as u8);
        } else if len <= 0xffff {
            w.push(0x80 | 126);
            w.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            w.push(0x80 | 127);
            w.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = (self.rng.next() as u32).to_ne_bytes();
        w.extend_from_slice(&key);
        let at = w.len();
        w.extend_from_slice(payload);
        let key8 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
        let body = &mut w[at..];
        let mut chunks = body.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = u64::from_ne_bytes(c[..].try_into().unwrap()) ^ key8;
            c.copy_from_slice(&v.to_ne_bytes());
        }
        for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
    }

    /// Queues a text message and tries to write it out now (as a socket.io `m` event over
    /// engine.io).
    pub fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.engineio {
            let mut event = Vec::with_capacity(payload.len() + 12);
            event.extend_from_slice(EIO_EVENT);
            event.push(b'"');
            for &b in payload {
                if b == b'"' || b == b'\\' {
                    event.push(b'\\');
                }
                event.push(b);
            }
            event.extend_from_slice(b"\"]");
            self.queue(OP_TEXT, &event);
        } else {
            self.queue(OP_TEXT, payload);
        }
        self.flush().map(|_| ())
    }

    /// Queues our close frame (1000, once) and tries to write it out.
    pub fn send_close(&mut self) -> io::Result<()> {
        if !self.close_sent {
            self.close_sent = true;
            self.queue(OP_CLOSE, &1000u16.to_be_bytes());
        }
        self.flush().map(|_| ())
    }

    /// Writes as much of the send buffer as the socket takes. Ok(true) when empty.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.sock.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    pub fn pending_write(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Blocking: the next text message (pings answered on the way). For the join phase.
    pub fn recv_text_blocking(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let got = match self.next_frame()? {
                Some(Frame::Text(t)) => Some(Ok(t.to_vec())),
                Some(Frame::Binary(_)) => Some(Err(err("unexpected binary message"))),
                Some(Frame::Close(code)) => Some(Err(err(format!("closed by the server with {code:?}")))),
                None => None,
            };
            if self.pending_write() {
                self.flush()?;
            }
            if let Some(r) = got {
                return r;
            }
            if self.fill()? == 0 {
                return Err(err("connection closed by the server"));
            }
        }
    }
}

impl PendingUpgrade {
    /// Reads and verifies the `101` (blocking, bounded by the timeout given to `start`).
    pub fn finish(self) -> io::Result<Conn> {
        let PendingUpgrade { mut conn, key, deadline } = self;
        let head_end = loop {
            if let Some(p) = memchr::memmem::find(&conn.rbuf[..conn.rend], b"\r\n\r\n") {
                break p + 4;
            }
            if conn.rend > 16 * 1024 || Instant::now() > deadline {
                return Err(err("no complete response head to the upgrade"));
            }
            if conn.fill()? == 0 {
                return Err(err(format!(
                    "connection closed during the handshake: {:?}",
                    String::from_utf8_lossy(&conn.rbuf[..conn.rend])
                )));
            }
        };
        let head = String::from_utf8_lossy(&conn.rbuf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("");
        if !status.starts_with("HTTP/1.1 101") {
            return Err(err(format!("upgrade refused: {status:?}")));
        }
        let mut sha = Sha1::new();
        sha.update(key.as_bytes());
        sha.update(GUID.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
        let mut accept_ok = false;
        let (mut upgrade_ok, mut connection_ok) = (false, false);
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "sec-websocket-accept" => accept_ok = v == want,
                    "upgrade" => upgrade_ok = v.eq_ignore_ascii_case("websocket"),
                    "connection" => {
                        connection_ok = v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                    }
                    "sec-websocket-extensions" => return Err(err("server chose an extension we did not offer")),
                    _ => {}
                }
            }
        }
        if !(accept_ok && upgrade_ok && connection_ok) {
            return Err(err(format!("bad 101 response: {head:?}")));
        }
        conn.rstart = head_end;
        Ok(conn)
    }
}
