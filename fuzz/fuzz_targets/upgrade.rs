//! Fuzz target `upgrade`: parse_head, then handshake::check_upgrade against an independent
//! accept-key computation. The properties are in `fuzz/checks/upgrade.rs` (`check_upgrade`), shared
//! with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_upgrade(data));
