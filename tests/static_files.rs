//! Static files over real sockets: statuses, types, caching, HEAD, keep-alive, and every way
//! out of the web root that peers have shipped.

mod support;

use std::io::Write;
use support::*;

/// A web root `<tmp>/public` with a sibling `<tmp>/public-isolated` holding a secret, as in
/// node-static CVE-2023-26111, plus a dotfile and symlinks in and out.
fn site() -> (TempDir, TestServer) {
    let dir = TempDir::new("static");
    dir.write("public/index.html", b"<h1>home</h1>");
    dir.write("public/style.css", b"body{}");
    dir.write("public/app.js", b"1");
    dir.write("public/data.json", b"{}");
    dir.write("public/logo.svg", b"<svg/>");
    dir.write("public/notes.txt", b"hello");
    dir.write("public/font.woff2", b"w");
    dir.write("public/sub/index.html", b"sub home");
    dir.write("public/empty-dir/readme.md", b"no index here");
    dir.write("public/.env", b"SECRET=1");
    dir.write("public/.git/config", b"[core]");
    dir.write("public-isolated/secret", b"top secret");
    std::os::unix::fs::symlink(
        dir.0.join("public-isolated/secret"),
        dir.0.join("public/escape"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.0.join("public-isolated"),
        dir.0.join("public/escape-dir"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.0.join("public/notes.txt"),
        dir.0.join("public/inside-link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.0.join("public/sub"), dir.0.join("public/sub-link")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("public/.git"), dir.0.join("public/git-link")).unwrap();
    let root = dir.0.join("public");
    let server = TestServer::with(|c| c.root = Some(root));
    (dir, server)
}

#[test]
fn index_and_content_types() {
    let (_dir, server) = site();
    let home = get(&server, "/", "");
    assert_eq!(home.status, 200);
    assert_eq!(home.text(), "<h1>home</h1>");
    assert_eq!(home.header("content-length"), Some("13"));
    for (path, ty) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/logo.svg", "image/svg+xml"),
        ("/notes.txt", "text/plain; charset=utf-8"),
        ("/font.woff2", "font/woff2"),
        ("/inside-link", "text/plain; charset=utf-8"),
    ] {
        let response = get(&server, path, "");
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("content-type"), Some(ty), "{path}");
    }
    assert_eq!(get(&server, "/sub/", "").text(), "sub home");
    // A symlink to a directory inside the root is followed, index and all.
    assert_eq!(get(&server, "/sub-link/", "").text(), "sub home");
    assert_eq!(get(&server, "/sub-link/index.html", "").text(), "sub home");
}

#[test]
fn directory_without_slash_redirects_within_the_site() {
    let (_dir, server) = site();
    let response = get(&server, "/sub", "");
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("/sub/"));
    // node-static sent `Location: //evil.example/`, which browsers read as another host.
    let response = get(&server, "//sub", "");
    assert_eq!(response.header("location"), Some("/sub/"));
}

#[test]
fn missing_files_and_directories_without_index_are_404() {
    let (_dir, server) = site();
    assert_eq!(get(&server, "/nope.html", "").status, 404);
    // No directory listings.
    assert_eq!(get(&server, "/empty-dir/", "").status, 404);
    assert_eq!(get(&server, "//evil.example/", "").status, 404);
}

#[test]
fn nothing_outside_the_root_is_served() {
    let (_dir, server) = site();
    let cases = [
        ("/../public-isolated/secret", 400),
        ("/%2e%2e/public-isolated/secret", 400),
        ("/..%2fpublic-isolated%2fsecret", 400), // node-static CVE-2023-26111
        ("/sub/..%2f..%2fpublic-isolated%2fsecret", 400),
        ("/..%5cpublic-isolated%5csecret", 400),
        ("/%00", 400),
        ("/notes.txt%00.html", 400),
        ("/.env", 404),
        ("/.git/config", 404),
        ("/%2eenv", 404),
        ("/escape", 404),            // symlink to a file outside the root
        ("/escape-dir/secret", 404), // symlink to a directory outside the root
        ("/git-link/config", 404),   // symlink into a dot-directory
        ("/%252e%252e/public-isolated/secret", 404), // decoded once: a literal "%2e%2e"
        ("http://test/notes.txt", 400), // absolute-form target
    ];
    for (target, status) in cases {
        let response = get(&server, target, "");
        assert_eq!(response.status, status, "{target}");
        assert!(!response.text().contains("secret"), "{target} leaked");
    }
}

#[test]
fn caching_headers_and_conditional_requests() {
    let (_dir, server) = site();
    let first = get(&server, "/notes.txt", "");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    assert_eq!(first.header("cache-control"), Some("no-cache"));

    let by_tag = get(&server, "/notes.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(by_tag.status, 304);
    assert!(by_tag.body.is_empty());
    assert_eq!(by_tag.header("etag"), Some(etag.as_str()));
    let weak = get(
        &server,
        "/notes.txt",
        &format!("If-None-Match: \"x\", W/{etag}\r\n"),
    );
    assert_eq!(weak.status, 304);
    let other = get(&server, "/notes.txt", "If-None-Match: \"other\"\r\n");
    assert_eq!(other.status, 200);

    let by_date = get(
        &server,
        "/notes.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(by_date.status, 304);
    let old = get(
        &server,
        "/notes.txt",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(old.status, 200);
    // If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
    let both = get(
        &server,
        "/notes.txt",
        &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(both.status, 200);
}

#[test]
fn head_has_headers_and_no_body() {
    let (_dir, server) = site();
    let mut stream = server.connect();
    stream.write_all(b"HEAD /notes.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_response(&mut stream, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    // The next response on the same connection starts right after the head: no body was sent.
    let get = read_response(&mut stream, false);
    assert_eq!(get.text(), "hello");
}

#[test]
fn files_of_every_size_arrive_whole_on_one_connection() {
    // Under 64 KiB a file goes out with its head in one write; above, through sendfile.
    let dir = TempDir::new("sizes");
    let sizes = [
        0,
        1,
        10 * 1024,
        64 * 1024,
        64 * 1024 + 1,
        3 * 1024 * 1024 + 7,
    ];
    for size in sizes {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        dir.write(&format!("f{size}.bin"), &bytes);
    }
    let root = dir.0.clone();
    let server = TestServer::with(|c| c.root = Some(root));
    let mut stream = server.connect();
    for size in sizes {
        let request = format!("HEAD /f{size}.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /f{size}.bin HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let head = read_response(&mut stream, true);
        assert_eq!(head.header("content-length"), Some(&*size.to_string()));
        let get = read_response(&mut stream, false);
        assert_eq!(get.status, 200);
        let expected: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        assert!(get.body == expected, "the {size}-byte file arrived changed");
    }
}

#[test]
fn keep_alive_serves_several_requests_and_honours_close() {
    let (_dir, server) = site();
    let mut stream = server.connect();
    for _ in 0..3 {
        stream
            .write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut stream, false).text(), "hello");
    }
    stream
        .write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_response(&mut stream, false);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(closed_by_server(&mut stream));
}

#[test]
fn keep_alive_has_a_request_limit() {
    let dir = TempDir::new("keep-alive");
    dir.write("notes.txt", b"hello");
    let root = dir.0.clone();
    let server = TestServer::with(|c| {
        c.root = Some(root);
        c.max_requests_per_connection = 2;
    });
    let mut stream = server.connect();
    stream
        .write_all(
            b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_response(&mut stream, false).header("connection"), None);
    assert_eq!(
        read_response(&mut stream, false).header("connection"),
        Some("close")
    );
    assert!(closed_by_server(&mut stream));
}

#[test]
fn other_methods_and_malformed_heads() {
    let (_dir, server) = site();
    let post = raw_request(
        &server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        raw_request(&server, b" GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
        400
    );
    assert_eq!(
        raw_request(&server, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").status,
        400
    );
    let body = raw_request(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(body.status, 400);
}

#[test]
fn oversized_heads_get_431() {
    let server = TestServer::start();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert_eq!(raw_request(&server, big.as_bytes()).status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(raw_request(&server, many.as_bytes()).status, 431);
}

#[test]
fn the_built_in_page_is_served_by_default() {
    let server = TestServer::start();
    let page = get(&server, "/", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("<html"));
    let etag = page.header("etag").unwrap();
    assert_eq!(
        get(&server, "/", &format!("If-None-Match: {etag}\r\n")).status,
        304
    );
    assert_eq!(get(&server, "/missing.png", "").status, 404);
}

#[test]
fn a_fifo_in_the_root_is_404_and_does_not_block_the_thread() {
    // Opening a FIFO for reading blocks until a writer appears; the server must never try.
    let (dir, server) = site();
    let fifo = dir.0.join("public/pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert_eq!(get(&server, "/pipe", "").status, 404);
}
