//! What the server has done, counted for Prometheus: `--metrics-addr` serves it at `/metrics`
//! in the text exposition format ([`text`]), on a listener of its own ([`endpoint`]).
//!
//! One [`Metrics`] per server, shared by everything that counts (the server keeps it in its
//! shared state; the outboxes reach it through their [`crate::outbox::Writers`]). Counting
//! stays off the hot path's critical costs: every counter is a relaxed atomic add, never a
//! lock or an allocation, and the busy counters are added to once per batch rather than per
//! message: a connection's reads once per `read(2)`, an outbox's writes once per batch of
//! frames. Those four counters sit on cache lines of their own, so reading threads and writing
//! threads do not contend for one line. Gauges (open connections, rooms, members) are not
//! counted at all: they are read from the server's own tables when scraped.
//!
//! Labels are a small fixed set of values (a close code, a refusal reason), never an address,
//! a name or a room, so the number of series cannot grow with traffic.

pub mod endpoint;
pub mod text;

use crate::frame::CloseCode;
use crate::handshake::Rejection;
use crate::http::HttpError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Why a request for an upgrade (or any request whose head could not be read) was refused:
/// the `reason` label of `wschat_handshake_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// One of the RFC 6455 checks failed ([`Rejection`]).
    Rejected(Rejection),
    /// A path under `/chat/` that names no room (404).
    NoSuchRoom,
    /// The request head was over the size limit (431).
    HeadTooLarge,
    /// The request head had too many header lines (431).
    TooManyHeaders,
    /// The bytes were no HTTP request head (400).
    MalformedRequest,
    /// The request head did not arrive in time (408).
    HeadTimeout,
}

impl HandshakeFailure {
    /// Every value, in the order they are shown.
    pub const ALL: [HandshakeFailure; 16] = [
        HandshakeFailure::Rejected(Rejection::NotGet),
        HandshakeFailure::Rejected(Rejection::HttpTooOld),
        HandshakeFailure::Rejected(Rejection::MissingHost),
        HandshakeFailure::Rejected(Rejection::NotWebSocketUpgrade),
        HandshakeFailure::Rejected(Rejection::ConnectionNotUpgrade),
        HandshakeFailure::Rejected(Rejection::BadKey),
        HandshakeFailure::Rejected(Rejection::DuplicateKey),
        HandshakeFailure::Rejected(Rejection::MissingVersion),
        HandshakeFailure::Rejected(Rejection::UnsupportedVersion),
        HandshakeFailure::Rejected(Rejection::OriginNotAllowed),
        HandshakeFailure::Rejected(Rejection::BodyOnUpgrade),
        HandshakeFailure::NoSuchRoom,
        HandshakeFailure::HeadTooLarge,
        HandshakeFailure::TooManyHeaders,
        HandshakeFailure::MalformedRequest,
        HandshakeFailure::HeadTimeout,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::Rejected(rejection) => match rejection {
                Rejection::NotGet => "not_get",
                Rejection::HttpTooOld => "http_too_old",
                Rejection::MissingHost => "missing_host",
                Rejection::NotWebSocketUpgrade => "not_websocket_upgrade",
                Rejection::ConnectionNotUpgrade => "connection_not_upgrade",
                Rejection::BadKey => "bad_key",
                Rejection::DuplicateKey => "duplicate_key",
                Rejection::MissingVersion => "missing_version",
                Rejection::UnsupportedVersion => "unsupported_version",
                Rejection::OriginNotAllowed => "origin_not_allowed",
                Rejection::BodyOnUpgrade => "body_on_upgrade",
            },
            HandshakeFailure::NoSuchRoom => "no_such_room",
            HandshakeFailure::HeadTooLarge => "head_too_large",
            HandshakeFailure::TooManyHeaders => "too_many_headers",
            HandshakeFailure::MalformedRequest => "malformed_request",
            HandshakeFailure::HeadTimeout => "head_timeout",
        }
    }

    /// The failure a request head error stands for; `None` for a connection that closed or
    /// failed, which got no reply.
    pub fn of_http(error: &HttpError) -> Option<Self> {
        match error {
            HttpError::HeadTooLarge => Some(HandshakeFailure::HeadTooLarge),
            HttpError::TooManyHeaders => Some(HandshakeFailure::TooManyHeaders),
            HttpError::Malformed(_) => Some(HandshakeFailure::MalformedRequest),
            HttpError::Timeout => Some(HandshakeFailure::HeadTimeout),
            HttpError::Closed | HttpError::Io(_) => None,
        }
    }

    fn index(self) -> usize {
        // Rare events: a scan of sixteen values costs nothing that matters.
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Why a connection was refused before any request was read (or, behind a trusted proxy,
/// a request for its client): the `reason` label of `wschat_refused_connections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` were open (503).
    MaxConnections,
    /// `--max-connections-per-ip` were open from the client's address (429).
    MaxConnectionsPerIp,
    /// No thread could be started for it (503).
    NoThread,
    /// The process had no file descriptor left (503).
    OutOfDescriptors,
}

impl Refusal {
    /// Every value, in the order they are shown.
    pub const ALL: [Refusal; 4] = [
        Refusal::MaxConnections,
        Refusal::MaxConnectionsPerIp,
        Refusal::NoThread,
        Refusal::OutOfDescriptors,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::NoThread => "no_thread",
            Refusal::OutOfDescriptors => "out_of_descriptors",
        }
    }
}

/// The close codes a session can end with, each a value of the `code` label of
/// `wschat_disconnects_total`; any other code is counted as `other`.
pub const CLOSE_CODES: [u16; 9] = [1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011];

/// Messages and bytes in one direction.
#[derive(Debug, Default)]
struct Flow {
    messages: AtomicU64,
    bytes: AtomicU64,
}

/// A value alone on its cache line (two lines, for CPUs that fetch lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct CacheLine<T>(T);

/// The server's counters. See the module docs.
#[derive(Debug)]
pub struct Metrics {
    /// Data messages read from WebSockets, and every byte read from them after the upgrade.
    received: CacheLine<Flow>,
    /// Data frames handed to WebSocket sockets, and every byte written to them.
    sent: CacheLine<Flow>,
    started: SystemTime,
    connections: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    handshake_failures: [AtomicU64; HandshakeFailure::ALL.len()],
    /// One per [`CLOSE_CODES`] entry, then `other`.
    disconnects: [AtomicU64; CLOSE_CODES.len() + 1],
    queue_overflows: AtomicU64,
    rate_limited: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            received: CacheLine::default(),
            sent: CacheLine::default(),
            started: SystemTime::now(),
            connections: AtomicU64::new(0),
            refused: Default::default(),
            handshake_failures: Default::default(),
            disconnects: Default::default(),
            queue_overflows: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }
}

/// What is read from the server's tables at each scrape, not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open TCP connections (HTTP and WebSocket).
    pub connections: usize,
    /// Of those, the upgraded ones.
    pub websockets: usize,
    /// Chat rooms.
    pub rooms: usize,
    /// Members in all rooms together.
    pub members: usize,
    /// Rooms whose history cannot be written right now (their messages are refused).
    pub failing_rooms: usize,
    /// With `--redis`: the cluster's numbers.
    pub cluster: Option<crate::cluster::Stats>,
    /// Threads of the writer pool.
    pub writer_threads: usize,
}

fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Zeroed counters; the start time is now.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// A TCP connection was accepted (whether or not it was then refused).
    pub fn connection_accepted(&self) {
        add(&self.connections, 1);
    }

    /// A connection (or a proxied client's request) was refused.
    pub fn refused(&self, why: Refusal) {
        add(&self.refused[why as usize], 1);
    }

    /// An upgrade, or a request whose head could not be read, was refused.
    pub fn handshake_failed(&self, why: HandshakeFailure) {
        add(&self.handshake_failures[why.index()], 1);
    }

    /// A WebSocket session ended with `code` (the code logged for it).
    pub fn session_ended(&self, code: CloseCode) {
        let code = u16::from(code);
        let index = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len());
        add(&self.disconnects[index], 1);
    }

    /// `messages` data messages and `bytes` bytes were read from WebSockets.
    pub fn received(&self, messages: u64, bytes: u64) {
        add(&self.received.0.messages, messages);
        add(&self.received.0.bytes, bytes);
    }

    /// `messages` data frames and `bytes` bytes were written to WebSockets.
    pub fn sent(&self, messages: u64, bytes: u64) {
        add(&self.sent.0.messages, messages);
        add(&self.sent.0.bytes, bytes);
    }

    /// A connection's outgoing queue overflowed (it is closed with 1008).
    pub fn queue_overflowed(&self) {
        add(&self.queue_overflows, 1);
    }

    /// A member sent too fast (it is closed with 1008).
    pub fn rate_limited(&self) {
        add(&self.rate_limited, 1);
    }

    /// Data frames and bytes written so far.
    #[cfg(test)]
    pub(crate) fn sent_so_far(&self) -> (u64, u64) {
        (get(&self.sent.0.messages), get(&self.sent.0.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_distinct_and_every_value_has_its_own_counter() {
        let mut labels: Vec<&str> = HandshakeFailure::ALL.iter().map(|f| f.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), HandshakeFailure::ALL.len());
        for (i, failure) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(failure.index(), i);
        }
        for (i, refusal) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*refusal as usize, i);
        }
    }

    #[test]
    fn disconnects_are_counted_by_code_and_unknown_codes_as_other() {
        let metrics = Metrics::new();
        metrics.session_ended(CloseCode::Normal);
        metrics.session_ended(CloseCode::Normal);
        metrics.session_ended(CloseCode::Size);
        metrics.session_ended(CloseCode::Library(4000));
        let count = |code: u16| {
            get(&metrics.disconnects[CLOSE_CODES.iter().position(|&c| c == code).unwrap()])
        };
        assert_eq!((count(1000), count(1009), count(1001)), (2, 1, 0));
        assert_eq!(get(&metrics.disconnects[CLOSE_CODES.len()]), 1);
    }
}
