//! HTTP/1.1, as much of it as a chat page and a WebSocket upgrade need: request heads in
//! ([`read_request`], [`parse_head`]), responses out ([`Response`]).
//!
//! Two halves with one job each: `request.rs` reads and parses a head within a size limit and
//! a deadline; `response.rs` writes a reply. Everything is used through this module's paths
//! (`http::Request`, `http::Response`, ...).

mod request;
mod response;

pub use request::{
    parse_head, read_request, Header, HttpError, Parsed, Request, MAX_HEADERS, MAX_HEAD_BYTES,
};
pub use response::{reason_phrase, Body, Response};
