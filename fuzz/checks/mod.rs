//! Properties checked on every parser of peer bytes, one `check_*` function per fuzz target.
//!
//! This folder is shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, through
//! `#[path]`) and by the seed replay test of the main crate (`tests/fuzz_seeds.rs`), so a crash
//! found by libFuzzer and saved under `fuzz/regressions/TARGET/` is replayed by `cargo test`
//! with exactly the same assertions. It may use only `std`, `wschat`, `sha1` and `base64`:
//! what both the fuzz crate and the main crate's tests can see. No `unsafe` (the main crate
//! forbids it in every target).
//!
//! Each check takes the raw input and panics when a property fails. The oracles are written
//! independently of the code under test where that is cheap (the accept key, the frame
//! format, JSON, the expected chat transcript), so a bug in the library is not mirrored here.
//!
//! One file per thing checked: [`http`] (request heads, and what the HTTP checks share),
//! [`upgrade`] (RFC 6455 4.2.1) with [`origin`] (same-origin and listed origins), [`static_files`] (the web root), [`frames`] (WebSocket
//! frames both ways), [`json`] (the parser behind [`chat`]), [`chat`] (chat events and the
//! room model), [`memory_outbox`] (outboxes without sockets), [`session`], [`server`] (a real
//! server on loopback), [`httpdate`], [`cli`], [`history`] (a room's log file) and [`inspect`] (the inspector).
#![allow(dead_code)]

pub mod chat;
pub mod cli;
pub mod frames;
pub mod history;
pub mod http;
pub mod httpdate;
pub mod inspect;
pub mod json;
pub mod memory_outbox;
pub mod origin;
pub mod server;
pub mod session;
pub mod static_files;
pub mod upgrade;

pub use chat::check_chat_input;
pub use cli::check_cli;
pub use history::check_history_log;
pub use http::check_http_head;
pub use httpdate::check_httpdate;
pub use inspect::check_inspect;
pub use server::check_server;
pub use session::check_session;
pub use static_files::{check_static_path, check_static_request};
pub use upgrade::check_upgrade;

/// A target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/seeds/` and `fuzz/regressions/`) and its
/// check.
pub const TARGETS: &[(&str, Check)] = &[
    ("http_head", check_http_head),
    ("upgrade", check_upgrade),
    ("static_path", check_static_path),
    ("static_request", check_static_request),
    ("session", check_session),
    ("chat_input", check_chat_input),
    ("httpdate", check_httpdate),
    ("cli", check_cli),
    ("server", check_server),
    ("history_log", check_history_log),
    ("inspect", check_inspect),
];

/// The check for `target`, if there is such a target.
pub fn check_for(target: &str) -> Option<Check> {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
}

/// Bytes as lowercase hex, for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
