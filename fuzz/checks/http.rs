//! The `http_head` target (`wschat::internals::http::parse_head` on arbitrary bytes), and what the
//! other HTTP checks share: headers read straight off the header list, and the shape of a
//! response head.

use wschat::internals::http::{
    parse_head, HttpError, Parsed, Request, MAX_HEADERS, MAX_HEAD_BYTES,
};

/// `parse_head` never panics, respects its limits, and is incremental: every prefix of a
/// complete head is `Partial` (the server parses a growing buffer, so a head that arrives in
/// pieces must parse like one that arrives whole).
pub fn check_http_head(data: &[u8]) {
    match parse_head(data) {
        Ok(Parsed::Partial) => {
            assert!(
                data.len() < MAX_HEAD_BYTES,
                "Partial for {} bytes",
                data.len()
            );
        }
        Ok(Parsed::Complete { request, head_len }) => {
            assert!(
                head_len > 0 && head_len <= data.len(),
                "head_len {head_len}"
            );
            assert!(
                head_len <= MAX_HEAD_BYTES,
                "head_len {head_len} over the limit"
            );
            assert!(request.headers.len() <= MAX_HEADERS);
            assert!(
                data[..head_len].ends_with(b"\n"),
                "a head ends with a blank line"
            );
            assert!(request.version <= 1, "HTTP/1.{}", request.version);
            check_request_shape(&request);
            // The head alone parses to the same request: nothing after it was looked at.
            match parse_head(&data[..head_len]) {
                Ok(Parsed::Complete {
                    request: again,
                    head_len: len,
                }) => {
                    assert_eq!(len, head_len);
                    assert_eq!(again, request);
                }
                other => panic!("the head alone parsed as {other:?}"),
            }
            // Incremental: cut anywhere inside the head, it is still only Partial.
            let mut cuts = vec![head_len - 1, head_len / 2, head_len / 3, 1];
            cuts.push(data.first().map_or(0, |&b| b as usize % head_len));
            for cut in cuts.into_iter().filter(|&c| c > 0 && c < head_len) {
                let prefix = parse_head(&data[..cut]);
                assert!(
                    matches!(prefix, Ok(Parsed::Partial)),
                    "prefix of {cut} of a complete {head_len}-byte head gave {prefix:?}"
                );
            }
            exercise_request(&request);
        }
        Err(error) => {
            match &error {
                HttpError::HeadTooLarge => assert!(data.len() >= MAX_HEAD_BYTES),
                HttpError::TooManyHeaders => {
                    let lines = data.iter().filter(|&&b| b == b'\n').count();
                    assert!(lines > MAX_HEADERS, "TooManyHeaders with {lines} lines");
                }
                HttpError::Malformed(why) => assert!(!why.is_empty()),
                other => panic!("parse_head does no I/O, yet returned {other:?}"),
            }
            let response = error.response().expect("a parse error deserves a reply");
            assert!(matches!(response.status, 400 | 431), "{}", response.status);
            check_error_response_head(&response.head(), response.status);
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_request_shape(request: &Request) {
    assert!(!request.method.is_empty());
    assert!(
        request.method.bytes().all(is_tchar),
        "method {:?}",
        request.method
    );
    assert!(!request.target.is_empty());
    assert!(
        !request
            .target
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()),
        "target {:?}",
        request.target
    );
    for header in &request.headers {
        assert!(!header.name.is_empty());
        assert!(header.name.bytes().all(is_tchar), "name {:?}", header.name);
        assert!(
            !header.value.contains(&b'\r') && !header.value.contains(&b'\n'),
            "a header value holds a line break: {:?}",
            header.value
        );
        assert_eq!(
            header.value.trim_ascii(),
            &header.value[..],
            "untrimmed value"
        );
    }
}

/// Calls every accessor the server uses on a parsed request: none may panic, and the simple
/// ones agree with a direct reading of the headers.
fn exercise_request(request: &Request) {
    let path = request.path();
    assert!(request.target.starts_with(path));
    assert!(!path.contains(['?', '#']));
    for name in [
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "origin",
    ] {
        let direct: Vec<&[u8]> = values(request, name);
        assert_eq!(request.headers_named(name).collect::<Vec<_>>(), direct);
        match request.single_header(name) {
            Ok(None) => assert!(direct.is_empty()),
            Ok(Some(v)) => assert_eq!(direct, [v]),
            Err(()) => assert!(direct.len() > 1),
        }
        let _ = request.header_str(name);
    }
    assert_eq!(
        request.has_token("connection", "upgrade"),
        token_listed(&values(request, "connection"), b"upgrade")
    );
    assert_eq!(
        request.wants_close(),
        request.version == 0 || token_listed(&values(request, "connection"), b"close")
    );
    assert_eq!(request.announces_body(), announces_body(request));
}

/// The values of every header called `name`, read straight off the header list.
pub(super) fn values<'a>(request: &'a Request, name: &str) -> Vec<&'a [u8]> {
    request
        .headers
        .iter()
        .filter(|h| h.name.as_bytes().eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| &h.value[..])
        .collect()
}

/// True when `token` is an item of the comma-separated lists in `values`.
pub(super) fn token_listed(values: &[&[u8]], token: &[u8]) -> bool {
    values.iter().any(|v| {
        v.split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
    })
}

pub(super) fn announces_body(request: &Request) -> bool {
    !values(request, "transfer-encoding").is_empty()
        || values(request, "content-length")
            .iter()
            .any(|v| v.trim_ascii() != b"0")
}

/// A refusal's head: the right status line, `Connection: close`, a length, no stray line breaks.
pub(super) fn check_error_response_head(head: &str, status: u16) {
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: "), "{head}");
    assert_eq!(head.matches("\r\n\r\n").count(), 1, "{head}");
    assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head}");
}

/// A response head: the status line, `Name: value` lines with token names and values free of
/// control characters, one blank line at the end, and a length unless 1xx or 304.
pub(super) fn check_response_head(head: &str, status: u16) {
    let Some((lines, rest)) = head.split_once("\r\n\r\n") else {
        panic!("no blank line: {head:?}");
    };
    assert!(rest.is_empty(), "bytes after the head: {head:?}");
    let mut lines = lines.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    assert!(
        status_line.starts_with(&format!("HTTP/1.1 {status} ")),
        "{status_line:?}"
    );
    let mut length = false;
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {name:?}"
        );
        assert!(
            !value.chars().any(|c| c.is_control() && c != '\t'),
            "{line:?}"
        );
        length |= name.eq_ignore_ascii_case("content-length");
    }
    assert_eq!(
        length,
        status >= 200 && status != 304,
        "Content-Length in {head:?}"
    );
}
