//! Reading one request head: parsed with `httparse` into an owned [`Request`].
//!
//! [`parse_head`] is a pure function over bytes (it is what the fuzzer calls); [`read_request`]
//! wraps it with the socket reads, a size limit and a deadline. As in `httparse` itself, "need
//! more bytes" is a value ([`Parsed::Partial`]), not an error, so the reader simply loops.

use super::Response;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest request head accepted, in bytes. Larger heads get 431 (tungstenite CVE-2023-43669
/// was a 20 MB header).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines accepted. More get 431 (ws CVE-2024-37890 was 2,000 junk headers).
pub const MAX_HEADERS: usize = 100;
// The 431 reply names the head limit in KiB.
const _: () = assert!(MAX_HEAD_BYTES.is_multiple_of(1024));

/// One header line, owned. Values stay bytes: HTTP does not promise UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as sent.
    pub name: String,
    /// The field value, without surrounding whitespace.
    pub value: Vec<u8>,
}

/// A parsed request head, owned so it can outlive the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target as sent, e.g. `/chat?x=1`.
    pub target: String,
    /// The minor version of HTTP/1.x: 0 or 1.
    pub version: u8,
    /// The header lines in order.
    pub headers: Vec<Header>,
}

impl Request {
    /// Values of every header line called `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// The value of the only header line called `name`, or `None` when there is none.
    /// `Err(())` when the header appears more than once.
    #[allow(clippy::result_unit_err)] // the caller names the error; there is nothing to add
    pub fn single_header<'a>(&'a self, name: &'a str) -> Result<Option<&'a [u8]>, ()> {
        let mut values = self.headers_named(name);
        let first = values.next();
        match values.next() {
            Some(_) => Err(()),
            None => Ok(first),
        }
    }

    /// The value of the first header called `name` as text, if it is UTF-8.
    pub fn header_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// True when any `name` header holds `token` in its comma-separated list, compared
    /// case-insensitively. This is how `Connection: keep-alive, Upgrade` must be read: as a list
    /// of tokens, never by searching for a substring.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name).any(|value| {
            value
                .split(|&b| b == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// The path part of the target (before any `?`).
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }

    /// True when the request announces a body: a `Transfer-Encoding`, or a `Content-Length`
    /// other than zero. wschat serves no request bodies, and refusing them keeps a body from
    /// ever being read as the next request (request smuggling, tiny_http RUSTSEC-2020-0031).
    pub fn announces_body(&self) -> bool {
        self.headers_named("transfer-encoding").next().is_some()
            || self
                .headers_named("content-length")
                .any(|v| v.trim_ascii() != b"0")
    }

    /// True when the connection should close after this request.
    pub fn wants_close(&self) -> bool {
        self.version == 0 || self.has_token("connection", "close")
    }
}

/// Why a request head could not be read.
#[derive(Debug)]
pub enum HttpError {
    /// The head is over [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The head has over [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// The bytes are not an HTTP/1.x request head; the text says what is wrong.
    Malformed(&'static str),
    /// The head did not arrive before the deadline.
    Timeout,
    /// The peer closed the connection before sending a byte of a new request.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

impl HttpError {
    /// The reply this error deserves, if the peer can still receive one.
    pub fn response(&self) -> Option<Response> {
        match self {
            HttpError::HeadTooLarge => Some(Response::error(
                431,
                &format!("request head over {} KiB", MAX_HEAD_BYTES / 1024),
            )),
            HttpError::TooManyHeaders => Some(Response::error(
                431,
                &format!("over {MAX_HEADERS} header lines"),
            )),
            HttpError::Malformed(why) => Some(Response::error(400, why)),
            HttpError::Timeout => Some(Response::error(408, "request head not received in time")),
            HttpError::Closed | HttpError::Io(_) => None,
        }
    }
}

/// The result of parsing the bytes received so far.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet: read more.
    Partial,
    /// A whole head: the request and how many bytes of the buffer it took.
    Complete {
        /// The request.
        request: Request,
        /// The head's length; bytes after it belong to what follows (a body, the next
        /// request, or the first WebSocket frame).
        head_len: usize,
    },
}

/// Parses a request head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, HttpError> {
    // httparse tolerates empty lines before the request line (RFC 9112 section 2.2 allows a
    // server to); anything else before the method, such as a space, is an error.
    // On the heap, not the stack: every stack page a connection thread touches stays resident
    // for the life of the connection, and this array alone is over 3 KiB.
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(Parsed::Partial)
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(e) => return Err(HttpError::Malformed(parse_error_reason(e))),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HttpError::Malformed("incomplete request line"));
    };
    let headers = req
        .headers
        .iter()
        .map(|h| Header {
            name: h.name.to_string(),
            value: h.value.trim_ascii().to_vec(),
        })
        .collect();
    Ok(Parsed::Complete {
        request: Request {
            method: method.to_string(),
            target: target.to_string(),
            version,
            headers,
        },
        head_len,
    })
}

fn parse_error_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in request line",
        // Reported as HttpError::TooManyHeaders before it gets here.
        httparse::Error::TooManyHeaders => "too many header lines",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// The read timeout to use with `left` until the deadline: `left` rounded down to a tenth of a
/// second (or `left` itself when shorter). Successive requests on a kept-alive connection then
/// want the same value and cost no `setsockopt` each; a read may give up early, never late.
fn timeout_step(left: Duration) -> Duration {
    const STEP: Duration = Duration::from_millis(100);
    if left < STEP {
        return left;
    }
    let steps = left.as_millis() / STEP.as_millis();
    STEP * u32::try_from(steps).unwrap_or(u32::MAX)
}

/// Reads one request head from `stream`.
///
/// `buf` may already hold bytes (a pipelined request); on success it still holds the head and
/// whatever followed it, and the returned length says where the head ends. Every read is given
/// only the time left until `deadline`, so a peer trickling one byte a second (slowloris) is cut
/// off at the deadline, not after one timeout per byte. `timeout` is the read timeout last set on
/// `stream` (`None` before the first call), kept by the caller across requests.
pub fn read_request(
    mut stream: &TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    timeout: &mut Option<Duration>,
) -> Result<(Request, usize), HttpError> {
    // Read straight into `buf` rather than through a stack buffer, for the reason given in
    // parse_head: stack pages stay resident for the whole connection.
    const CHUNK: usize = 2048;
    loop {
        if !buf.is_empty() {
            if let Parsed::Complete { request, head_len } = parse_head(buf)? {
                return Ok((request, head_len));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout);
        }
        let wanted = timeout_step(left);
        if *timeout != Some(wanted) {
            stream
                .set_read_timeout(Some(wanted))
                .map_err(HttpError::Io)?;
            *timeout = Some(wanted);
        }
        // Never read past the head limit: the limit bounds memory, not just parsing.
        let room = (MAX_HEAD_BYTES - buf.len().min(MAX_HEAD_BYTES)).clamp(1, CHUNK);
        let start = buf.len();
        buf.resize(start + room, 0);
        let read = stream.read(&mut buf[start..]);
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) if buf.is_empty() => return Err(HttpError::Closed),
            Ok(0) => {
                return Err(HttpError::Malformed(
                    "connection closed inside the request head",
                ))
            }
            Ok(_) => {}
            // A timed-out read may have been given a little less than the time left (see
            // timeout_step): the loop checks the deadline itself.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(HttpError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;

    #[test]
    fn read_timeouts_are_never_late_and_repeat_across_requests() {
        let ms = Duration::from_millis;
        for left in [
            ms(1),
            ms(99),
            ms(100),
            ms(101),
            ms(4_999),
            ms(5_000),
            ms(10_000),
        ] {
            let step = timeout_step(left);
            assert!(step <= left && !step.is_zero(), "{left:?} -> {step:?}");
        }
        // Two kept-alive requests a moment apart want the same timeout: no setsockopt.
        assert_eq!(timeout_step(ms(4_999)), timeout_step(ms(4_950)));
    }

    fn complete(bytes: &[u8]) -> (Request, usize) {
        match parse_head(bytes).unwrap() {
            Parsed::Complete { request, head_len } => (request, head_len),
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn parses_a_head_and_leaves_what_follows() {
        let (req, len) = complete(
            b"GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\nrest",
        );
        assert_eq!(req.method, "GET");
        assert_eq!(req.path(), "/a");
        assert_eq!(req.version, 1);
        assert!(req.has_token("connection", "upgrade"));
        assert!(!req.has_token("connection", "upgr"));
        assert_eq!(len, 63);
    }

    #[test]
    fn partial_until_the_blank_line() {
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn limits_and_malformed_heads() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES + 10, b'a');
        assert!(matches!(parse_head(&big), Err(HttpError::HeadTooLarge)));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse_head(&many), Err(HttpError::TooManyHeaders)));
        assert!(matches!(
            parse_head(b" GET / HTTP/1.1\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn refusals_name_the_limits() {
        let text = |error: HttpError| match error.response().unwrap().body {
            Body::Bytes(bytes) => String::from_utf8(bytes.into_owned()).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(HttpError::HeadTooLarge), "request head over 8 KiB\n");
        assert_eq!(text(HttpError::TooManyHeaders), "over 100 header lines\n");
    }

    #[test]
    fn body_announcements() {
        let (req, _) = complete(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(!req.announces_body());
        let (req, _) = complete(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(req.announces_body());
    }
}
