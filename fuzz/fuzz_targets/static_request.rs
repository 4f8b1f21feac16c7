//! Fuzz target `static_request`: a whole request head through `static_files::respond` (the
//! conditional-GET headers, the redirect, the response head built from the request). The properties
//! are in `fuzz/checks/static_files.rs` (`check_static_request`), shared with
//! `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_static_request(data));
