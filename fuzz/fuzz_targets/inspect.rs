//! Fuzz target `inspect`: the inspector's frame dissector on arbitrary bytes (checked against
//! tungstenite's header parser), and whole `/inspect/ws` sessions through `inspect::Tap` over
//! an in-memory transport (the output is valid frames whose reports describe exactly the other
//! frames). The properties are in `fuzz/checks/inspect.rs`, shared with `tests/fuzz_seeds.rs`;
//! this file adds the memory bound, which needs the counting allocator.
#![no_main]

#[path = "../support/alloc_probe.rs"]
mod alloc_probe;
#[path = "../checks/mod.rs"]
mod checks;

#[global_allocator]
static ALLOC: alloc_probe::Counting = alloc_probe::Counting;

/// Most bytes one input may make the process hold beyond what it held before: the output and
/// the reports (a few hundred bytes per frame) and tungstenite's buffers; never a frame's
/// announced length.
fn memory_bound(input: usize) -> usize {
    (2 << 20) + 1024 * input
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = alloc_probe::reset();
    checks::inspect::check_inspect(data);
    let used = alloc_probe::peak().saturating_sub(base);
    assert!(
        used <= memory_bound(data.len()),
        "{used} bytes held at once for a {}-byte input",
        data.len()
    );
});
