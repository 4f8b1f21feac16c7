//! Static files: from a request target to a file inside the web root, or a refusal.
//!
//! The rules, each stopping a bug a peer shipped:
//! - the target is percent-decoded once, segment by segment, so `%2f` can never become a path
//!   separator (node-static CVE-2023-26111) and `%252e` stays a literal `%2e`;
//! - `..`, `\`, NUL and encoded `/` are refused with 400; dotfiles (`.git`, `.env`) are 404;
//! - on disk, a candidate reached through a symlink is canonicalized (which follows symlinks)
//!   and must still lie under the canonical root, compared by path components rather than as a
//!   string prefix, so `/srv/public-isolated` is not "inside" `/srv/public` and a symlink out of
//!   the root is 404 (the rouille approach); a path with no symlink is its own canonical path;
//! - a directory serves its `index.html` and is never listed;
//! - a redirect is built from the cleaned segments, so it always starts with exactly one `/`
//!   and can never be `//evil.example/`.
//!
//! [`parse_target`] is pure and is what the fuzzer calls.

use crate::http::{Body, Request, Response};
use crate::httpdate;
use content_type::content_type;
use sha1::{Digest, Sha1};
use std::borrow::Cow;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

mod content_type;

/// The chat page built into the binary: (path under `www/`, bytes).
const EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/embedded_www.rs"));

/// The file served for a directory.
pub const INDEX: &str = "index.html";

/// Why a request target was refused before touching the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// Not origin-form (`/path`): absolute-form (`http://host/path`), `*`, or empty.
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A segment that is not UTF-8 after decoding.
    NotUtf8,
    /// A `..` or `.` segment, or an encoded `/` or a `\` that could become one.
    Traversal,
    /// A NUL byte.
    Nul,
    /// A segment starting with `.`: dotfiles are private.
    Dotfile,
}

impl BadTarget {
    /// The reply to this refusal. Dotfiles get 404 so their existence is not revealed.
    pub fn response(self) -> Response {
        match self {
            BadTarget::NotOriginForm => {
                Response::error(400, "request target must be a path starting with /")
            }
            BadTarget::BadPercentEncoding => Response::error(400, "malformed percent-encoding"),
            BadTarget::NotUtf8 => Response::error(400, "path is not UTF-8"),
            BadTarget::Traversal => {
                Response::error(400, "path may not contain .., encoded / or \\")
            }
            BadTarget::Nul => Response::error(400, "path may not contain NUL"),
            BadTarget::Dotfile => not_found(),
        }
    }
}

/// A request target cleaned into path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPath {
    /// Decoded segments, none empty, none `.` or `..`, none containing `/`, `\` or NUL.
    pub segments: Vec<String>,
    /// Whether the target ended in `/` (a directory asked for as a directory).
    pub trailing_slash: bool,
}

impl TargetPath {
    /// The canonical URL path for these segments, re-encoded; always begins with one `/`.
    pub fn url(&self, trailing_slash: bool) -> String {
        let mut url = String::from("/");
        url.push_str(
            &self
                .segments
                .iter()
                .map(|s| encode_segment(s))
                .collect::<Vec<_>>()
                .join("/"),
        );
        if trailing_slash && !self.segments.is_empty() {
            url.push('/');
        }
        url
    }
}

/// Splits and decodes a request target (query and fragment are ignored). Empty segments
/// (`//`) are dropped.
pub fn parse_target(target: &str) -> Result<TargetPath, BadTarget> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(BadTarget::NotOriginForm);
    }
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let bytes = percent_decode(raw)?;
        if bytes.contains(&0) {
            return Err(BadTarget::Nul);
        }
        let segment = String::from_utf8(bytes).map_err(|_| BadTarget::NotUtf8)?;
        if segment == "." || segment == ".." || segment.contains(['/', '\\']) {
            return Err(BadTarget::Traversal);
        }
        if segment.starts_with('.') {
            return Err(BadTarget::Dotfile);
        }
        segments.push(segment);
    }
    Ok(TargetPath {
        segments,
        trailing_slash: path.ends_with('/'),
    })
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, BadTarget> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(BadTarget::BadPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadTarget::BadPercentEncoding)?;
            let value = u8::from_str_radix(hex, 16).map_err(|_| BadTarget::BadPercentEncoding)?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One file ready to send.
#[derive(Debug)]
pub struct Asset {
    /// The body.
    pub body: Body,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its entity tag, quoted.
    pub etag: String,
    /// When it last changed, to the second.
    pub last_modified: SystemTime,
}

/// What a target resolved to.
#[derive(Debug)]
pub enum Lookup {
    /// A file.
    Found(Asset),
    /// A directory asked for without its trailing slash: redirect here, so relative links in
    /// its `index.html` resolve against the directory.
    Redirect(String),
    /// Nothing to serve.
    NotFound,
}

/// Where static files come from.
#[derive(Debug)]
pub enum Site {
    /// The page built into the binary; `started` stands in for the files' modification time,
    /// as they cannot change while the process runs.
    Embedded {
        /// Process start time, used as `Last-Modified`.
        started: SystemTime,
        /// Precomputed entity tags, parallel to the embedded table.
        etags: Vec<String>,
    },
    /// A directory on disk (canonical path).
    Directory(PathBuf),
}

impl Site {
    /// The built-in page.
    pub fn embedded() -> Site {
        let started = truncate_to_second(SystemTime::now());
        let etags = EMBEDDED
            .iter()
            .map(|(_, bytes)| {
                let digest = Sha1::digest(bytes);
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect();
        Site::Embedded { started, etags }
    }

    /// A directory; fails when it does not exist or is not a directory.
    pub fn directory(root: &Path) -> io::Result<Site> {
        let root = fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Site::Directory(root))
    }

    /// Finds the file for a cleaned target.
    pub fn lookup(&self, target: &TargetPath) -> Lookup {
        match self {
            Site::Embedded { started, etags } => {
                let mut name = target.segments.join("/");
                let is_dir = name.is_empty()
                    || EMBEDDED
                        .iter()
                        .any(|(n, _)| n.starts_with(&format!("{name}/")));
                if is_dir {
                    if !target.trailing_slash && !name.is_empty() {
                        return Lookup::Redirect(target.url(true));
                    }
                    name = if name.is_empty() {
                        INDEX.to_string()
                    } else {
                        format!("{name}/{INDEX}")
                    };
                }
                match EMBEDDED.iter().position(|(n, _)| *n == name) {
                    Some(i) => Lookup::Found(Asset {
                        body: Body::Bytes(Cow::Borrowed(EMBEDDED[i].1)),
                        content_type: content_type(&name),
                        etag: etags[i].clone(),
                        last_modified: *started,
                    }),
                    None => Lookup::NotFound,
                }
            }
            Site::Directory(root) => lookup_on_disk(root, target).unwrap_or(Lookup::NotFound),
        }
    }
}

/// Resolves `path` to a canonical path inside `root`, or `None`: missing, or outside the root
/// once symlinks are followed, or through a dot-named component.
fn contained(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(path).ok()?;
    // Path::starts_with compares whole components: /srv/public-isolated does not start with
    // /srv/public.
    let inside = real.strip_prefix(root).ok()?;
    let hidden = inside.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => true,
    });
    (!hidden).then_some(real)
}

/// Resolves `candidate` (the root joined with clean segments) to a path inside `root`, with its
/// metadata (symlinks not followed). With no symlink on the way the candidate is its own
/// canonical path, found with one `lstat` per segment; when a segment is a symlink, the whole
/// path is canonicalized and checked by [`contained`].
fn resolve(root: &Path, candidate: PathBuf) -> Option<(PathBuf, fs::Metadata)> {
    let mut path = root.to_path_buf();
    let mut last = None;
    for segment in candidate.strip_prefix(root).ok()?.components() {
        path.push(segment);
        let meta = fs::symlink_metadata(&path).ok()?;
        if meta.file_type().is_symlink() {
            let real = contained(root, &candidate)?;
            let meta = fs::symlink_metadata(&real).ok()?;
            return Some((real, meta));
        }
        last = Some(meta);
    }
    let meta = match last {
        Some(meta) => meta,
        None => fs::symlink_metadata(root).ok()?, // no segments: the root itself
    };
    Some((candidate, meta))
}

fn lookup_on_disk(root: &Path, target: &TargetPath) -> Option<Lookup> {
    let mut candidate = root.to_path_buf();
    candidate.extend(&target.segments);
    let (mut real, mut meta) = resolve(root, candidate)?;
    if meta.is_dir() {
        if !target.trailing_slash && !target.segments.is_empty() {
            return Some(Lookup::Redirect(target.url(true)));
        }
        // index.html may itself be a symlink, so it is checked like any other file.
        (real, meta) = resolve(root, real.join(INDEX))?;
    }
    // Only regular files: opening a FIFO or a device could block this thread forever, so the
    // type is checked before opening, and again on the opened handle. O_NOFOLLOW: if the file
    // was swapped for a symlink since it was checked, the open fails instead of following it.
    if !meta.is_file() {
        return None;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let modified = truncate_to_second(meta.modified().unwrap_or(UNIX_EPOCH));
    let since_epoch = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Some(Lookup::Found(Asset {
        content_type: content_type(&real.to_string_lossy()),
        etag: format!("\"{:x}-{:x}\"", meta.len(), since_epoch),
        last_modified: modified,
        body: Body::File(file, meta.len()),
    }))
}

fn truncate_to_second(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// The 404 reply.
pub fn not_found() -> Response {
    Response::error(404, "not found")
}

/// Answers a GET or HEAD for a static file (the method has been checked by the caller).
pub fn respond(site: &Site, request: &Request) -> Response {
    let target = match parse_target(&request.target) {
        Ok(target) => target,
        Err(bad) => return bad.response(),
    };
    match site.lookup(&target) {
        Lookup::NotFound => not_found(),
        Lookup::Redirect(location) => Response::new(301)
            .header("Location", location)
            .header("Content-Type", "text/plain; charset=utf-8")
            .with_body(Body::Bytes(Cow::Borrowed(b"moved\n"))),
        Lookup::Found(asset) => {
            let response = Response::new(200)
                .header("ETag", asset.etag.clone())
                .header("Last-Modified", httpdate::format(asset.last_modified))
                // Revalidate every time: the page changes with the binary, and a 304 is cheap.
                .header("Cache-Control", "no-cache")
                .header("X-Content-Type-Options", "nosniff");
            if not_modified(request, &asset) {
                let mut response = response;
                response.status = 304;
                return response;
            }
            response
                .header("Content-Type", asset.content_type)
                .with_body(asset.body)
        }
    }
}

/// Conditional GET (RFC 9110 section 13.2.2): `If-None-Match` wins over `If-Modified-Since`.
fn not_modified(request: &Request, asset: &Asset) -> bool {
    let mut tags = request.headers_named("if-none-match").peekable();
    if tags.peek().is_some() {
        return tags.any(|value| {
            value.split(|&b| b == b',').any(|tag| {
                let tag = tag.trim_ascii();
                // Weak comparison: W/"x" matches "x".
                let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
                tag == b"*" || tag == asset.etag.as_bytes()
            })
        });
    }
    match request
        .header_str("if-modified-since")
        .and_then(httpdate::parse)
    {
        Some(since) => asset.last_modified <= since,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_targets() {
        let t = parse_target("/a//b/?q=1").unwrap();
        assert_eq!(t.segments, ["a", "b"]);
        assert!(t.trailing_slash);
        assert_eq!(parse_target("/caf%C3%A9").unwrap().segments, ["café"]);
        assert_eq!(parse_target("/%252e%252e").unwrap().segments, ["%2e%2e"]);
    }

    #[test]
    fn refused_targets() {
        let cases = [
            ("http://x/a", BadTarget::NotOriginForm),
            ("*", BadTarget::NotOriginForm),
            ("/../etc/passwd", BadTarget::Traversal),
            ("/%2e%2e/x", BadTarget::Traversal),
            ("/..%2fpublic-isolated%2fsecret", BadTarget::Traversal),
            ("/a%5c..%5cb", BadTarget::Traversal),
            ("/%00", BadTarget::Nul),
            ("/.git/config", BadTarget::Dotfile),
            ("/%zz", BadTarget::BadPercentEncoding),
            ("/%ff", BadTarget::NotUtf8),
        ];
        for (target, expected) in cases {
            assert_eq!(parse_target(target), Err(expected), "{target}");
        }
    }

    #[test]
    fn redirects_never_leave_the_site() {
        let t = parse_target("//evil.example").unwrap();
        assert_eq!(t.url(true), "/evil.example/");
        assert_eq!(parse_target("/a b").unwrap().url(false), "/a%20b");
    }
}
