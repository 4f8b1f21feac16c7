//! # wschat
//!
//! A small WebSocket chat and echo server built on blocking `std::net` sockets, one thread per
//! connection. It is meant to be read: the HTTP upgrade of RFC 6455 is done by hand
//! (`handshake.rs`), and only the framing after the `101 Switching Protocols` reply is handed
//! to `tungstenite`.
//!
//! The crate's face is small: a [`Config`], a [`Server`] bound with it and run, a
//! [`ShutdownHandle`] to stop it, and [`cli`], the command line that makes a `Config`. The
//! modules below are private; `internals` re-exports what wschat's own tests and fuzz targets
//! drive directly, and is not an API.
//!
//! ## Why blocking
//! A chat room for a handful to a few thousand people does not need an async runtime. A thread
//! per connection keeps every step of a connection's life in one straight-line function that a
//! newcomer can read top to bottom, and the kernel does the scheduling. The one thing threads
//! cannot do is wait on two things at once, so writing is decoupled from reading by a bounded
//! per-connection outbox, written by whoever holds its turn.
//!
//! ## Reading order (files under `src/`)
//! 1. `server.rs`: binds, accepts, enforces the connection caps and hands each connection to a
//!    thread; `connection.rs` serves it: HTTP requests, then maybe the upgrade.
//! 2. `http/`: reads one request head with a size limit and a deadline (parsed with
//!    `httparse`) and writes responses.
//! 3. `handshake.rs`: the RFC 6455 section 4.2.1 checks, each tied to its sentence in the RFC,
//!    and the `Sec-WebSocket-Accept` computation; `origin.rs` is its origin rule.
//! 4. `static_files.rs`: maps a request target to a file inside the web root, or refuses it.
//! 5. `session/`: one upgraded connection: reads frames through tungstenite, turns errors into
//!    close codes, lingers after its close, and feeds messages to the echo or the chat.
//! 6. `outbox/`: the bounded outgoing queue of one connection (`frame.rs` encodes what goes in
//!    it, `transport.rs` is the socket under it), written by the caller or by `writer_pool.rs`;
//!    `timer.rs` bounds a lingering close.
//! 7. `rooms.rs`, `room/` and `presence.rs`: the rooms, who is in them, fan-out, merged joins
//!    and leaves; `chat_protocol/` is the JSON the server sends and the rules for names;
//!    `history/` keeps each room's messages on disk; `cluster/` shares rooms through Redis.
//! 8. `inspect/`: the `/inspect` page's endpoint, a transport that reports the bytes of its
//!    own connection to its page.
//!
//! Deployment pieces, each on its own: `client_addr/` (the client behind a trusted proxy),
//! `per_ip.rs` (connections per client address), `health.rs` (`/healthz`) and `metrics/`
//! (counters, served on `--metrics-addr`). `sync.rs` holds the lock helpers and the rule that
//! the room's lock is only for queueing; `log.rs` writes the log lines.
//!
//! Data flows one way: accept -> read request -> static file, or upgrade -> session -> room.

mod chat_protocol;
pub mod cli;
mod client_addr;
mod cluster;
mod config;
mod connection;
mod frame;
mod handshake;
mod health;
mod history;
mod http;
mod httpdate;
mod inspect;
mod log;
mod metrics;
mod origin;
mod outbox;
mod per_ip;
mod presence;
mod room;
mod rooms;
mod server;
mod session;
mod static_files;
mod sync;
mod timer;
mod transport;
mod writer_pool;

pub use config::Config;
pub use server::{Server, ShutdownHandle};

/// What wschat's own integration tests, seed replay and fuzz targets reach into: the parsers
/// and pieces they drive directly. Not an API; it changes with the code.
#[doc(hidden)]
pub mod internals {
    #[allow(missing_docs)]
    pub mod chat_protocol {
        pub use crate::chat_protocol::*;
    }
    #[allow(missing_docs)]
    pub mod frame {
        pub use crate::frame::*;
    }
    #[allow(missing_docs)]
    pub mod handshake {
        pub use crate::handshake::*;
    }
    #[allow(missing_docs)]
    pub mod history {
        pub use crate::history::*;
    }
    #[allow(missing_docs)]
    pub mod http {
        pub use crate::http::*;
    }
    #[allow(missing_docs)]
    pub mod httpdate {
        pub use crate::httpdate::*;
    }
    #[allow(missing_docs)]
    pub mod inspect {
        pub use crate::inspect::*;
    }
    #[allow(missing_docs)]
    pub mod log {
        pub use crate::log::*;
    }
    #[allow(missing_docs)]
    pub mod outbox {
        pub use crate::outbox::*;
    }
    #[allow(missing_docs)]
    pub mod room {
        pub use crate::room::*;
    }
    #[allow(missing_docs)]
    pub mod rooms {
        pub use crate::rooms::*;
    }
    #[allow(missing_docs)]
    pub mod session {
        pub use crate::session::*;
    }
    #[allow(missing_docs)]
    pub mod static_files {
        pub use crate::static_files::*;
    }
    #[allow(missing_docs)]
    pub mod transport {
        pub use crate::transport::*;
    }
}
