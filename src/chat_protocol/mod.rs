//! What the chat server says, and the rules for names.
//!
//! Every text frame the server sends on `/chat` is exactly one JSON object with a `type` set by
//! the server ([`events`]). What users typed only ever appears inside JSON string values,
//! escaped there, so no input can turn into a notice or into another member's message: the
//! encoding is the forgery protection. Clients send plain text: first their name ([`names`]),
//! then messages. The README has the full protocol.

pub mod events;
pub mod names;

pub use events::{push_json_string, Event};
pub use names::{clean_name, name_key, NameError, MAX_NAME_CHARS};
