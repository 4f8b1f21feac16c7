//! Fuzz target `http_head`: wschat::internals::http::parse_head on arbitrary bytes. The properties are in
//! `fuzz/checks/http.rs` (`check_http_head`), shared with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_http_head(data));
