//! Everything that can be tuned, in one plain struct.

use crate::client_addr::Cidr;
use std::path::PathBuf;
use std::time::Duration;

/// The server's settings. [`Config::default`] is what `wschat` runs with when given no flags;
/// each field's doc names its default and the flag that sets it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on, `HOST:PORT`; port 0 picks a free port.
    /// Default `127.0.0.1:8080` (`--addr`).
    pub addr: String,
    /// Directory to serve instead of the page built into the binary. Default none (`--root`).
    pub root: Option<PathBuf>,
    /// Origins allowed to upgrade besides the server's own (same origin: the `Origin`'s host
    /// and port are the `Host`'s; see `origin.rs`); `*` allows any. Others get 403.
    /// Default empty: same origin only (`--allowed-origin`, repeatable).
    pub allowed_origins: Vec<String>,
    /// Print every upgrade request head and the reply head to stderr.
    /// Default off (`--trace-handshake`).
    pub trace_handshake: bool,
    /// How many past chat messages a newcomer receives. Default 50 (`--history`).
    pub history: usize,
    /// Where history is kept. Default none: `$STATE_DIRECTORY`, else
    /// `$XDG_STATE_HOME/wschat`, else `~/.local/state/wschat` (`--data`).
    pub data: Option<PathBuf>,
    /// Keep history in memory only, losing it with the process. Default off (`--ephemeral`).
    pub ephemeral: bool,
    /// Each message reaches the disk (`fdatasync`) before anyone receives it, so it survives
    /// a power loss too. Default off (`--fsync`).
    pub fsync: bool,
    /// Messages kept on disk per room; older ones are dropped by compaction. Default 10,000
    /// (`--history-keep`).
    pub history_keep: usize,
    /// Largest chat message in bytes; a larger one closes the connection with 1009.
    /// Default 4096 (`--max-message`).
    pub max_chat_message: usize,
    /// Largest message on `/echo` in bytes. Default 16 MiB (`--max-echo-message`).
    pub max_echo_message: usize,
    /// Most connections (HTTP and WebSocket) served at once; past it new connections get 503.
    /// Default 10,000 (`--max-connections`).
    pub max_connections: usize,
    /// Time between heartbeat pings; a peer that has not answered by the next ping is closed.
    /// Zero turns heartbeats off. Default 30 s (`--ping-interval`).
    pub ping_interval: Duration,
    /// An optional bound on the messages waiting to be written to one connection; past it the
    /// connection is closed with 1008. Default 0: no count bound, [`Config::queue_bytes`]
    /// decides, so a member that reads is never closed for a burst of small messages
    /// (`--queue-messages`).
    pub queue_messages: usize,
    /// Most bytes waiting to be written to one connection; past it the connection is closed
    /// with 1008. Default 1 MiB (`--queue-bytes`).
    pub queue_bytes: usize,
    /// Time allowed for a whole request head to arrive. Default 10 s (`--head-timeout`).
    pub head_timeout: Duration,
    /// A socket write that makes no progress for this long closes the connection.
    /// Default 10 s (`--write-timeout`).
    pub write_timeout: Duration,
    /// How long an idle keep-alive HTTP connection is kept open. Default 5 s (`--keep-alive`).
    pub keep_alive_timeout: Duration,
    /// Most HTTP requests served on one keep-alive connection (nginx's default too).
    /// Default 1000.
    pub max_requests_per_connection: usize,
    /// Chat messages one member may send per 10 seconds before being closed with 1008.
    /// Default 100 (`--rate-limit`); zero turns the limit off.
    pub rate_limit: u32,
    /// Most chat rooms; past it, a join to a new room is refused. Default 1,000
    /// (`--max-rooms`).
    pub max_rooms: usize,
    /// Stack size of each connection's thread. Only the pages touched cost memory (two for an
    /// idle connection); the rest is reserved address space. Default 256 KiB, ample for the
    /// read path. A thread that cannot be started gets its connection refused with 503.
    pub connection_stack: usize,
    /// Peers whose `X-Forwarded-For` or `Forwarded` header names the real client (see
    /// `client_addr/`). Default none: those headers are ignored (`--trusted-proxy`,
    /// repeatable).
    pub trusted_proxies: Vec<Cidr>,
    /// Most connections open at once from one client address (an IPv6 /64); past it, 429.
    /// Default 64, for people behind one NAT (`--max-connections-per-ip`).
    pub max_connections_per_ip: usize,
    /// Where to serve Prometheus metrics (`GET /metrics`), `HOST:PORT`, on a listener of its
    /// own. Default none: no metrics port is opened (`--metrics-addr`).
    pub metrics_addr: Option<String>,
    /// Share the rooms with other nodes through this Redis, `redis://HOST:PORT[/DB]` (see
    /// `cluster/`); the stream is then each room's order and history, and `data`,
    /// `ephemeral`, `fsync` and `history_keep`'s files do not apply to chat messages.
    /// Default none: one node alone (`--redis`).
    pub redis: Option<String>,
    /// With `redis`: a node that has not refreshed its liveness this long (killed, or cut off
    /// from Redis) has its members removed by the others; each node refreshes it every third
    /// of this. Default 15 s (`--node-timeout`).
    pub node_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:8080".to_string(),
            root: None,
            allowed_origins: Vec::new(),
            trace_handshake: false,
            history: 50,
            data: None,
            ephemeral: false,
            fsync: false,
            history_keep: 10_000,
            max_chat_message: 4096,
            max_echo_message: 16 << 20,
            max_connections: 10_000,
            ping_interval: Duration::from_secs(30),
            queue_messages: 0,
            queue_bytes: 1 << 20,
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_requests_per_connection: 1000,
            rate_limit: 100,
            max_rooms: 1000,
            connection_stack: 256 * 1024,
            trusted_proxies: Vec::new(),
            max_connections_per_ip: 64,
            metrics_addr: None,
            redis: None,
            node_timeout: Duration::from_secs(15),
        }
    }
}
