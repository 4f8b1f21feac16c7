//! Reports that cannot travel over the connection they describe.
//!
//! Nothing may follow a close frame (RFC 6455 section 5.5.1), and a browser drops every
//! message that arrives once its page has called `close()` (the WebSocket API delivers
//! messages only while the socket is open). So the reports of the last frames - the page's
//! close frame and the server's answer to it - are kept here, under the connection's nonce,
//! and the page fetches them over HTTP once its `close` event has fired
//! (`GET /inspect/after-close?n=<nonce>`, answered by [`super::page`]).
//!
//! Bounded: at most [`MAX_ENTRIES`] connections' worth, each at most [`MAX_ENTRY_BYTES`] (and
//! the reports of its two close frames), kept for at most [`KEEP_FOR`], and each fetched at
//! most once. The nonce is the only key: it is
//! known to the page of that connection alone.

use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most connections whose last reports are kept; past it the oldest are dropped.
pub const MAX_ENTRIES: usize = 256;

/// Most bytes of reports kept for one connection; later reports are dropped.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// How long reports wait to be fetched.
pub const KEEP_FOR: Duration = Duration::from_secs(60);

/// How long a fetch waits for the connection's thread to finish with it, so that a page that
/// asks the moment its socket closes still gets the reports of the very last bytes.
const WAIT_FOR_END: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Entry {
    nonce: String,
    created: Instant,
    reports: Vec<String>,
    bytes: usize,
    /// The connection is over: no more reports will come.
    finished: bool,
}

#[derive(Debug)]
struct Stash {
    entries: Mutex<VecDeque<Entry>>,
    finished: Condvar,
}

static STASH: Stash = Stash {
    entries: Mutex::new(VecDeque::new()),
    finished: Condvar::new(),
};

/// Keeps `reports` for the connection `nonce`; past [`MAX_ENTRY_BYTES`] they are dropped,
/// unless `always` (the report of a close frame: one frame, at most one each way).
pub fn add(nonce: &str, reports: Vec<String>, always: bool) {
    let mut entries = lock(&STASH.entries);
    let now = Instant::now();
    entries.retain(|e| now.duration_since(e.created) < KEEP_FOR);
    let index = match entries.iter().position(|e| e.nonce == nonce) {
        Some(index) => index,
        None => {
            if entries.len() >= MAX_ENTRIES {
                entries.pop_front();
            }
            entries.push_back(Entry {
                nonce: nonce.to_string(),
                created: now,
                reports: Vec::new(),
                bytes: 0,
                finished: false,
            });
            entries.len() - 1
        }
    };
    let entry = &mut entries[index];
    for report in reports {
        if entry.bytes + report.len() > MAX_ENTRY_BYTES && !always {
            break;
        }
        entry.bytes += report.len();
        entry.reports.push(report);
    }
}

/// The connection `nonce` is over: a fetch waiting for its reports can have them.
pub fn finish(nonce: &str) {
    let mut entries = lock(&STASH.entries);
    if let Some(entry) = entries.iter_mut().find(|e| e.nonce == nonce) {
        entry.finished = true;
        STASH.finished.notify_all();
    }
}

/// Takes the reports kept for `nonce`, once the connection is over (or after a short wait).
/// `None` when there are none, or they were taken already or have expired.
pub fn take(nonce: &str) -> Option<Vec<String>> {
    let entries = lock(&STASH.entries);
    let (mut entries, _) = STASH
        .finished
        .wait_timeout_while(entries, WAIT_FOR_END, |entries| {
            entries.iter().any(|e| e.nonce == nonce && !e.finished)
        })
        .unwrap_or_else(PoisonError::into_inner);
    let index = entries.iter().position(|e| e.nonce == nonce)?;
    let entry = entries.remove(index)?;
    (entry.created.elapsed() < KEEP_FOR).then_some(entry.reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn reports_are_taken_once() {
        add("stash-test-once", vec!["a".into(), "b".into()], false);
        finish("stash-test-once");
        assert_eq!(take("stash-test-once"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(take("stash-test-once"), None);
        assert_eq!(take("stash-test-never"), None);
    }

    #[test]
    fn a_fetch_waits_for_the_end_of_the_connection() {
        add("stash-test-wait", vec!["first".into()], false);
        let later = thread::spawn(|| {
            add("stash-test-wait", vec!["last".into()], false);
            finish("stash-test-wait");
        });
        // The fetch waits (up to two seconds) until the connection is over.
        let reports = take("stash-test-wait").unwrap();
        later.join().unwrap();
        assert_eq!(reports, ["first", "last"]);
    }

    #[test]
    fn one_connection_keeps_at_most_its_share() {
        let big = "x".repeat(MAX_ENTRY_BYTES / 3 + 1);
        add(
            "stash-test-big",
            vec![big.clone(), big.clone(), big.clone()],
            false,
        );
        add("stash-test-big", vec!["the close".into()], true);
        finish("stash-test-big");
        let kept = take("stash-test-big").unwrap();
        assert_eq!(kept.len(), 3, "two of three, and the close frame's");
        assert_eq!(kept[2], "the close");
    }
}
