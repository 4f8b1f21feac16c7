//! Writing one response: status line, headers, and a body from memory or from a file.
//!
//! Every reply wschat sends, refusals included, is a [`Response`] written by
//! [`Response::write_to`], so `Content-Length` is always derived from the body.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::num::NonZeroUsize;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// No body.
    Empty,
    /// Bytes in memory (built-in files and short texts).
    Bytes(Cow<'static, [u8]>),
    /// An open file of the given length, streamed.
    File(File, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// Sends `len` bytes of `file` with `sendfile(2)`: the kernel moves them from the page cache to
/// the socket without copying them through this process. The socket's write timeout applies as
/// to any write.
fn send_file(stream: &TcpStream, file: &File, len: u64) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let mut sent = 0;
    while sent < len {
        let offset = usize::try_from(sent).map_err(|_| io::ErrorKind::FileTooLarge)?;
        let left = usize::try_from(len - sent).unwrap_or(usize::MAX);
        match socket.sendfile(file, offset, NonZeroUsize::new(left.min(1 << 30))) {
            // The file shrank under us; the length we promised is now a lie, so the
            // connection must end.
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank")),
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A response to write.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines other than `Content-Length`, which is always derived from the body.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Adds a header line.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A refusal: `status`, a one-line plain-text reason, and `Connection: close`. Every error
    /// wschat sends is built here, so they all look alike.
    pub fn error(status: u16, reason: &str) -> Self {
        let mut body = reason.as_bytes().to_vec();
        body.push(b'\n');
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Connection", "close")
            .with_body(Body::Bytes(Cow::Owned(body)))
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// True when this response ends the connection.
    pub fn closes_connection(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
    }

    /// The status line and headers, ending with the blank line.
    pub fn head(&self) -> String {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        // 1xx and 304 responses carry no body and no length (RFC 9110 section 8.6).
        if self.status >= 200 && self.status != 304 {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        head.push_str("\r\n");
        head
    }

    /// Writes the response; `head_only` leaves the body out (for `HEAD`).
    pub fn write_to(self, stream: &TcpStream, head_only: bool) -> io::Result<()> {
        let mut out = stream;
        let head = self.head();
        match self.body {
            Body::Bytes(bytes) if !head_only && bytes.len() <= 16 * 1024 => {
                // Small bodies go out with the head in one write (one TCP segment).
                let mut all = head.into_bytes();
                all.extend_from_slice(&bytes);
                out.write_all(&all)?;
            }
            Body::Bytes(bytes) => {
                out.write_all(head.as_bytes())?;
                if !head_only {
                    out.write_all(&bytes)?;
                }
            }
            Body::File(mut file, len) if !head_only && len <= 64 * 1024 => {
                // A small file goes out with the head in one write: one read, one send.
                let mut all = head.into_bytes();
                let start = all.len();
                all.resize(start + len as usize, 0);
                // A file that shrank under us fails here, before anything is sent.
                file.read_exact(&mut all[start..])?;
                out.write_all(&all)?;
            }
            Body::File(file, len) => {
                out.write_all(head.as_bytes())?;
                if !head_only {
                    send_file(stream, &file, len)?;
                }
            }
            Body::Empty => out.write_all(head.as_bytes())?,
        }
        Ok(())
    }
}

/// The reason phrase for the statuses wschat sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_derived_from_the_body_and_left_out_where_no_body_may_be() {
        let ok = Response::new(200)
            .header("X-A", "b")
            .with_body(Body::Bytes(Cow::Borrowed(b"hello")));
        assert_eq!(
            ok.head(),
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 5\r\n\r\n"
        );
        assert_eq!(
            Response::new(304).head(),
            "HTTP/1.1 304 Not Modified\r\n\r\n"
        );
        assert_eq!(
            Response::new(101).head(),
            "HTTP/1.1 101 Switching Protocols\r\n\r\n"
        );
    }

    #[test]
    fn errors_are_one_line_and_close_the_connection() {
        let error = Response::error(400, "bad");
        assert!(error.closes_connection());
        assert!(!Response::new(200).closes_connection());
        match error.body {
            Body::Bytes(bytes) => assert_eq!(&bytes[..], b"bad\n"),
            other => panic!("{other:?}"),
        }
    }
}
