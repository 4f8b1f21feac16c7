//! Fuzz target `cli`: cli::parse on arguments split at NUL bytes. The properties are in
//! `fuzz/checks/cli.rs` (`check_cli`), shared with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_cli(data));
