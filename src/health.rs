//! `GET /healthz`: whether this server should be sent traffic, for proxies and orchestrators.
//!
//! The answer is a short list of named [`Check`]s, each passing or saying what is wrong. All
//! passing: `200` with the body `ok`. Any failing: `503` with one line naming each failing
//! check and its problem, e.g. `unhealthy: accepting: shutting down`. New checks (a history
//! directory that must stay writable, say) are one more entry in the list the server builds.
//!
//! Proxies and orchestrators poll every few seconds, so a passing check is not logged (the
//! server skips the log line for a `200` here); every failing answer is.

use crate::http::{Body, Request, Response};
use std::borrow::Cow;

/// The path health is served at.
pub const PATH: &str = "/healthz";

/// One named check and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short name, such as `accepting`.
    pub name: &'static str,
    /// `None` when the check passes; otherwise what is wrong, in a few words.
    pub problem: Option<String>,
}

impl Check {
    /// A check named `name` that passes unless `problem` is given.
    pub fn new(name: &'static str, problem: Option<String>) -> Self {
        Check { name, problem }
    }
}

/// The reply to a request for [`PATH`], given the server's checks. `GET` and `HEAD` only;
/// a request body is refused as everywhere else.
pub fn respond(request: &Request, checks: &[Check]) -> Response {
    if request.announces_body() {
        return Response::error(400, "request bodies are not accepted");
    }
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Response::error(405, "only GET and HEAD are served").header("Allow", "GET, HEAD");
    }
    let failing: Vec<String> = checks
        .iter()
        .filter_map(|c| c.problem.as_ref().map(|p| format!("{}: {p}", c.name)))
        .collect();
    let response = if failing.is_empty() {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Bytes(Cow::Borrowed(b"ok\n")))
    } else {
        // A one-line reason: the same line goes to the log.
        Response::error(503, &format!("unhealthy: {}", failing.join("; ")))
    };
    // Health must be asked afresh every time, never answered from a cache.
    response.header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Parsed};

    fn request(head: &str) -> Request {
        match parse_head(head.as_bytes()).unwrap() {
            Parsed::Complete { request, .. } => request,
            Parsed::Partial => panic!("partial"),
        }
    }

    fn body(response: &Response) -> String {
        match &response.body {
            Body::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    const GET: &str = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn all_passing_is_200_ok() {
        let checks = [Check::new("accepting", None), Check::new("capacity", None)];
        let reply = respond(&request(GET), &checks);
        assert_eq!(reply.status, 200);
        assert_eq!(body(&reply), "ok\n");
        assert!(!reply.closes_connection());
        assert!(reply.head().contains("\r\nCache-Control: no-store\r\n"));
        assert_eq!(respond(&request(GET), &[]).status, 200);
    }

    #[test]
    fn a_failing_check_is_503_naming_it() {
        let checks = [
            Check::new("accepting", Some("shutting down".into())),
            Check::new("capacity", None),
            Check::new("history", Some("not writable".into())),
        ];
        let reply = respond(&request(GET), &checks);
        assert_eq!(reply.status, 503);
        assert_eq!(
            body(&reply),
            "unhealthy: accepting: shutting down; history: not writable\n"
        );
        assert!(reply.head().contains("\r\nCache-Control: no-store\r\n"));
    }

    #[test]
    fn methods_and_bodies() {
        let head = respond(&request("HEAD /healthz HTTP/1.1\r\n\r\n"), &[]);
        assert_eq!(head.status, 200);
        let post = respond(&request("POST /healthz HTTP/1.1\r\n\r\n"), &[]);
        assert_eq!(post.status, 405);
        assert!(post.head().contains("\r\nAllow: GET, HEAD\r\n"));
        let body = respond(
            &request("GET /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\n"),
            &[],
        );
        assert_eq!(body.status, 400);
    }
}
