//! Fuzz target `httpdate`: httpdate::parse and httpdate::format round trips. The properties are in
//! `fuzz/checks/httpdate.rs` (`check_httpdate`), shared with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_httpdate(data));
