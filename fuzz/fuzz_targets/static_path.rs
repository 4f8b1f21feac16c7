//! Fuzz target `static_path`: parse_target, then Site::directory(root).lookup: nothing outside the
//! root is ever served. The properties are in `fuzz/checks/static_files.rs` (`check_static_path`),
//! shared with `tests/fuzz_seeds.rs`.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_static_path(data));
