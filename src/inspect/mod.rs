//! The inspector: a page at `/inspect` that shows a visitor their own WebSocket, byte by byte.
//!
//! The page opens a WebSocket to [`SOCKET`], which echoes data messages like `/echo`, with the
//! same limits. The server wraps that one connection's socket in a [`Tap`], which sees every
//! byte read and written and sends the page reports about them on the same connection:
//! - first, the upgrade request exactly as received, each line with the RFC 6455 section
//!   4.2.1 item it answers and whether it passed, the `Sec-WebSocket-Accept` computation step
//!   by step, and the `101` reply as written ([`report::handshake`]);
//! - then every frame, either way, taken apart field by field ([`dissect`]) once its last byte
//!   has crossed the socket ([`report::frames`]).
//!
//! Since the tap belongs to one connection and reports on that connection only, a visitor only
//! ever sees bytes of their own connection.
//!
//! The page's files are built into the binary (`www/inspect/`) and served by [`page`] even
//! when `--root` points elsewhere: `/inspect` and everything under `/inspect/` belong to the
//! inspector.

pub mod dissect;
pub mod report;
pub mod stash;
mod tap;

pub use tap::Tap;

use crate::http::{Body, Request, Response};
use crate::static_files::{self, Site};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Where the page is served.
pub const PAGE: &str = "/inspect";

/// The inspector's WebSocket endpoint.
pub const SOCKET: &str = "/inspect/ws";

/// Where a page fetches the reports of its connection's last frames, after the close.
pub const AFTER_CLOSE: &str = "/inspect/after-close";

/// Answers a GET or HEAD for the inspector's page and files from the copy built into the
/// binary, and a GET of [`AFTER_CLOSE`]; `None` for any other path.
pub fn page(request: &Request) -> Option<Response> {
    let path = request.path();
    if path == AFTER_CLOSE {
        return Some(after_close(request));
    }
    let target = if path == PAGE {
        // The page itself, without the redirect to `/inspect/` a directory would get; its
        // links are absolute, so they resolve the same from either URL.
        "/inspect/"
    } else if path.starts_with("/inspect/") {
        &request.target
    } else {
        return None;
    };
    static BUILT_IN: OnceLock<Site> = OnceLock::new();
    let site = BUILT_IN.get_or_init(Site::embedded);
    let request = Request {
        target: target.to_string(),
        ..request.clone()
    };
    Some(static_files::respond(site, &request))
}

/// `GET /inspect/after-close?n=<nonce>`: the reports kept in the [`stash`] for that
/// connection, as a JSON array, once; 404 when there are none.
fn after_close(request: &Request) -> Response {
    if request.method != "GET" {
        return Response::error(405, "only GET fetches reports").header("Allow", "GET");
    }
    let nonce = request
        .target
        .split_once("?n=")
        .map(|(_, nonce)| nonce)
        .unwrap_or("");
    let reports = match stash::take(nonce) {
        Some(reports) => reports,
        None => return static_files::not_found(),
    };
    let mut body = String::from("[");
    body.push_str(&reports.join(","));
    body.push(']');
    Response::new(200)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .with_body(Body::Bytes(Cow::Owned(body.into_bytes())))
}
