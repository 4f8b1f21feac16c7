//! Fuzz target `session`: the bytes a client sends after a valid upgrade, through the same
//! `session::run` that serves /echo and /chat (first byte picks the endpoint and limits), over an
//! in-memory transport. The properties are in `fuzz/checks/session.rs` (`check_session`), shared
//! with `tests/fuzz_seeds.rs`; this file adds the memory bound, which needs the counting allocator.
#![no_main]

#[path = "../support/alloc_probe.rs"]
mod alloc_probe;
#[path = "../checks/mod.rs"]
mod checks;

#[global_allocator]
static ALLOC: alloc_probe::Counting = alloc_probe::Counting;

/// Most bytes one input may make the process hold beyond what it held before: the harness's
/// copies of the input and output plus tungstenite's buffers (messages are at most 64 KiB).
fn memory_bound(input: usize) -> usize {
    (2 << 20) + 64 * input
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = alloc_probe::reset();
    checks::check_session(data);
    let used = alloc_probe::peak().saturating_sub(base);
    assert!(
        used <= memory_bound(data.len()),
        "{used} bytes held at once for a {}-byte input",
        data.len()
    );
});
