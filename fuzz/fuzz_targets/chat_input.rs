//! Fuzz target `chat_input`: scripts of names and messages from up to four members through
//! `Room::join` and `Membership::say`, with outboxes over memory. The properties are in
//! `fuzz/checks/chat.rs` (`check_chat_input`), shared with `tests/fuzz_seeds.rs`: every frame each
//! member receives is exactly the JSON event the room's rules predict, so nothing can be forged.
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_chat_input(data));
