//! The `static_path` target (`parse_target`, then `Site::directory(root).lookup`) and the
//! `static_request` target (a whole GET or HEAD through `static_files::respond`), on a web root
//! built once per process with secrets placed around it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use wschat::internals::http::{parse_head, Body, Parsed};
use wschat::internals::static_files::{parse_target, BadTarget, Lookup, Site, TargetPath};

use super::http::{check_response_head, token_listed, values};

/// Contents of the files a lookup must never serve.
const SECRETS: &[&[u8]] = &[b"SECRET-ISOLATED", b"SECRET-OUTSIDE", b"SECRET-DOTFILE"];

/// The web root built once per process.
pub(super) struct StaticRoot {
    pub(super) site: Site,
    pub(super) root: PathBuf,
    embedded: Site,
    /// (path under the root, (dev, ino)) of every file that may be served.
    servable: Vec<(&'static str, (u64, u64))>,
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Builds, in a fresh temporary directory:
///
/// ```text
/// base/outside.txt                      SECRET-OUTSIDE
/// base/root-isolated/{secret.txt,index.html}   SECRET-ISOLATED (a sibling whose name
///                                       starts with the root's: a string-prefix check fails)
/// base/root/                            the web root: servable files, dotfiles, and
///                                       symlinks out of it, absolute and relative
/// ```
pub(super) fn static_root() -> &'static StaticRoot {
    static ROOT: OnceLock<StaticRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        use std::fs;
        use std::os::unix::fs::symlink;
        // Integration tests get a scratch directory under target/; the fuzz targets use the
        // system's (scripts/fuzz points TMPDIR into fuzz/target/).
        let scratch = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let base = scratch.join(format!(
            "wschat-fuzz-static-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        let isolated = base.join("root-isolated");
        for dir in [
            root.join("sub/deeper"),
            root.join("sub/.hidden-dir"),
            root.join(".git"),
            root.join("noindex-link"),
            isolated.clone(),
        ] {
            fs::create_dir_all(dir).expect("create the fuzz web root");
        }
        let servable_files: [(&str, &str); 8] = [
            ("index.html", "<h1>root index</h1>"),
            ("a.txt", "a"),
            ("a b.txt", "a b"),
            ("café.txt", "cafe"),
            ("%41.txt", "percent 41"),
            ("sub/index.html", "<h1>sub index</h1>"),
            ("sub/b.css", "b {}"),
            ("sub/deeper/c.js", "c()"),
        ];
        let write = |path: PathBuf, text: &[u8]| fs::write(path, text).expect("write fuzz file");
        for (path, text) in servable_files {
            write(root.join(path), text.as_bytes());
        }
        write(base.join("outside.txt"), b"SECRET-OUTSIDE");
        write(isolated.join("secret.txt"), b"SECRET-ISOLATED");
        write(isolated.join("index.html"), b"SECRET-ISOLATED");
        write(root.join(".env"), b"SECRET-DOTFILE");
        write(root.join(".git/config"), b"SECRET-DOTFILE");
        write(root.join("sub/.hidden.txt"), b"SECRET-DOTFILE");
        write(root.join("sub/.hidden-dir/x.txt"), b"SECRET-DOTFILE");
        let links: [(&str, PathBuf); 7] = [
            ("link-in", PathBuf::from("a.txt")),
            ("link-out", PathBuf::from("../root-isolated/secret.txt")),
            ("link-dir-out", PathBuf::from("../root-isolated")),
            ("link-abs", base.join("outside.txt")),
            ("link-dot", PathBuf::from(".env")),
            ("sub/link-up", PathBuf::from("../../outside.txt")),
            (
                "noindex-link/index.html",
                PathBuf::from("../../root-isolated/secret.txt"),
            ),
        ];
        for (link, to) in links {
            symlink(to, root.join(link)).expect("create fuzz symlink");
        }
        let servable = servable_files
            .iter()
            .map(|(path, _)| {
                let meta = fs::metadata(root.join(path)).expect("stat fuzz file");
                (*path, file_id(&meta))
            })
            .collect();
        StaticRoot {
            site: Site::directory(&root).expect("Site::directory on the fuzz root"),
            root: fs::canonicalize(&root).expect("canonical root"),
            embedded: Site::embedded(),
            servable,
        }
    })
}

/// For any request target: the file served is one of the servable files (by device and
/// inode, whatever path led there), never a secret; a redirect stays on the site
/// (`/x/`, never `//host`) and points at a directory of the root; refusals are 400 or 404.
pub fn check_static_path(data: &[u8]) {
    let target = String::from_utf8_lossy(data);
    let parsed = match parse_target(&target) {
        Ok(parsed) => parsed,
        Err(bad) => {
            if !target.starts_with('/') {
                assert_eq!(bad, BadTarget::NotOriginForm);
            }
            let status = bad.response().status;
            assert!(matches!(status, 400 | 404), "{bad:?} answered {status}");
            return;
        }
    };
    assert!(
        target.starts_with('/'),
        "accepted a target not starting with /"
    );
    for segment in &parsed.segments {
        assert!(!segment.is_empty(), "empty segment");
        assert!(
            segment != "." && segment != "..",
            "traversal segment {segment:?}"
        );
        assert!(!segment.contains(['/', '\\', '\0']), "segment {segment:?}");
        assert!(!segment.starts_with('.'), "dotfile segment {segment:?}");
    }
    // The canonical URL leads back to the same segments: what a redirect names is what the
    // request meant.
    let url = parsed.url(parsed.trailing_slash);
    check_site_local(&url);
    assert_eq!(
        parse_target(&url).as_ref(),
        Ok(&parsed),
        "url() round trip: {url}"
    );

    let site = static_root();
    check_lookup_on_disk(site, &parsed);
    match site.embedded.lookup(&parsed) {
        Lookup::Found(asset) => assert!(matches!(asset.body, Body::Bytes(_))),
        Lookup::Redirect(location) => check_redirect(&location, &parsed),
        Lookup::NotFound => {}
    }
}

fn check_site_local(location: &str) {
    assert!(location.starts_with('/'), "location {location:?}");
    assert!(
        !location.starts_with("//"),
        "location {location:?} leaves the site"
    );
    assert!(!location.contains(['\\', '\r', '\n', '\0']), "{location:?}");
}

fn check_redirect(location: &str, parsed: &TargetPath) {
    check_site_local(location);
    assert!(
        location.ends_with('/'),
        "a directory redirect ends in /: {location}"
    );
    assert!(
        !parsed.trailing_slash,
        "redirected a target that had its slash"
    );
    let again = parse_target(location).expect("a redirect location parses");
    assert_eq!(again.segments, parsed.segments, "redirect to another path");
}

/// The file a directory site serves is one of the servable files (by device and inode, so
/// whatever path led to it), and holds no secret. Returns its path under the root.
fn check_served_file(site: &StaticRoot, body: &Body, relative: &str) -> &'static str {
    let Body::File(file, len) = body else {
        panic!("a directory site served {body:?}");
    };
    let meta = file.metadata().expect("fstat the served file");
    assert!(meta.is_file());
    assert_eq!(*len, meta.len());
    let id = file_id(&meta);
    let Some((path, _)) = site.servable.iter().find(|(_, sid)| *sid == id) else {
        panic!("/{relative} served a file that is not servable: {id:?}");
    };
    let mut content = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut content).expect("read served file");
    for secret in SECRETS {
        assert!(!content.starts_with(secret), "/{relative} served a secret");
    }
    path
}

fn check_lookup_on_disk(site: &StaticRoot, parsed: &TargetPath) {
    let relative = parsed.segments.join("/");
    let named = site.servable.iter().find(|(path, _)| {
        *path == relative
            || (parsed.trailing_slash
                && ((relative.is_empty() && *path == "index.html")
                    || *path == format!("{relative}/index.html")))
    });
    match site.site.lookup(parsed) {
        Lookup::Found(asset) => {
            let path = check_served_file(site, &asset.body, &relative);
            if let Some((expected, _)) = named {
                assert_eq!(path, *expected, "/{relative} served another file");
            }
        }
        Lookup::Redirect(location) => {
            check_redirect(&location, parsed);
            let dir = std::fs::canonicalize(site.root.join(&relative)).expect("redirect target");
            assert!(
                dir.is_dir() && dir.starts_with(&site.root),
                "redirect to {dir:?}"
            );
        }
        Lookup::NotFound => {
            // A servable file named directly, with no detour, must be found.
            if let Some((path, _)) = named {
                panic!("/{relative} names {path} but was not found");
            }
        }
    }
}

/// A request head through `static_files::respond`, on the fuzz web root and on the built-in
/// page: the response head is well-formed whatever the request held (no header injection),
/// its status is one the handler gives, a redirect stays on the site, a 200 from disk is a
/// servable file, a 304 answers a conditional request, and `If-None-Match: *` is never
/// answered with the whole file.
pub fn check_static_request(data: &[u8]) {
    use wschat::internals::static_files::respond;
    let Ok(Parsed::Complete { request, .. }) = parse_head(data) else {
        return;
    };
    // The server hands only GET and HEAD without a body to the static handler.
    if !matches!(request.method.as_str(), "GET" | "HEAD") || request.announces_body() {
        return;
    }
    let site = static_root();
    let star = token_listed(&values(&request, "if-none-match"), b"*");
    let conditional = !values(&request, "if-none-match").is_empty()
        || !values(&request, "if-modified-since").is_empty();
    for (which, s) in [("disk", &site.site), ("embedded", &site.embedded)] {
        let response = respond(s, &request);
        let status = response.status;
        assert!(
            matches!(status, 200 | 301 | 304 | 400 | 404),
            "{which}: status {status}"
        );
        let head = response.head();
        check_response_head(&head, status);
        match status {
            200 => {
                assert!(!star, "{which}: 200 for If-None-Match: *");
                if which == "disk" {
                    check_served_file(site, &response.body, &request.target);
                }
            }
            301 => {
                let location = head
                    .split("\r\n")
                    .find_map(|line| line.strip_prefix("Location: "))
                    .expect("a 301 has a Location");
                check_site_local(location);
                assert!(location.ends_with('/'), "{location}");
            }
            304 => assert!(conditional, "{which}: 304 for an unconditional request"),
            _ => {}
        }
    }
}
