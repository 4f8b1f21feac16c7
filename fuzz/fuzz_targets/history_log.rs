//! Fuzz target `history_log`: arbitrary bytes as a room's history file, through the same
//! `history::log::scan` that opens every log at start-up. The properties are in
//! `fuzz/checks/history.rs` (`check_history_log`), shared with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_history_log(data));
