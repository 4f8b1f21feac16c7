//! Fuzz target `server`: one connection's bytes to a real wschat server on loopback (started once
//! per process), through the same accept/read_request/route/upgrade/session code as in production.
//! The properties are in `fuzz/checks/server.rs` (`check_server`), shared with
//! `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_server(data));
