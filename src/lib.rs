//! # wschat
//!
//! A small WebSocket chat and echo server built on blocking `std::net` sockets, one thread per
//! connection. It is meant to be read: the HTTP upgrade of RFC 6455 is done by hand in
//! [`handshake`], and only the framing after the `101 Switching Protocols` reply is handed to
//! `tungstenite`.
//!
//! ## Why blocking
//! A chat room for a handful to a few thousand people does not need an async runtime. A thread
//! per connection keeps every step of a connection's life in one straight-line function that a
//! newcomer can read top to bottom, and the kernel does the scheduling. The one thing threads
//! cannot do is wait on two things at once, so writing is decoupled from reading by a bounded
//! per-connection [`outbox`], drained by a small on-demand pool of writer threads.
//!
//! ## Reading order
//! 1. [`server`]: binds, accepts, enforces the connection cap and hands each connection to a
//!    thread; routes a request to a static file or to an upgrade.
//! 2. [`http`]: reads one request head with a size limit and a deadline and parses it with
//!    `httparse`; writes responses.
//! 3. [`handshake`]: the RFC 6455 section 4.2.1 checks, each tied to its sentence in the RFC,
//!    and the `Sec-WebSocket-Accept` computation.
//! 4. [`static_files`]: maps a request target to a file inside the web root, or refuses it.
//! 5. [`session`]: one upgraded connection: reads frames through tungstenite, turns errors into
//!    close codes, and feeds messages to the echo endpoint or the [`room`].
//! 6. [`outbox`]: the bounded outgoing queue of one connection and the pool that writes it.
//! 7. [`room`] and [`chat_protocol`]: who is in the room, names, backlog, and the JSON the
//!    server sends.
//! 8. [`inspect`]: the `/inspect` page's endpoint, a transport that reports the bytes of its
//!    own connection to its page.
//!
//! Several nodes sharing their rooms through Redis (`--redis`): [`cluster`].
//!
//! Deployment pieces, each on its own: [`client_addr`] (the client behind a trusted proxy),
//! [`per_ip`] (connections per client address), [`origin`] (which pages may upgrade),
//! [`health`] (`/healthz`) and [`metrics`] (counters, served on `--metrics-addr`).
//!
//! Data flows one way: accept -> read request -> static file, or upgrade -> session -> room.

pub mod chat_protocol;
pub mod cli;
pub mod client_addr;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod frame;
pub mod handshake;
pub mod health;
pub mod history;
pub mod http;
pub mod httpdate;
pub mod inspect;
pub mod log;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod per_ip;
pub mod presence;
pub mod room;
pub mod rooms;
pub mod server;
pub mod session;
pub mod static_files;
pub mod sync;
pub mod timer;
pub mod transport;
pub mod writer_pool;

pub use config::Config;
pub use server::{Server, ShutdownHandle};
