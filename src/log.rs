//! The server's log: one line per event on stderr.
//!
//! Everything the server reports goes through [`log`], so the format lives in one place: the
//! time in RFC 3339 UTC with milliseconds (`2026-12-02T02:16:13.329Z`), a space, the event.
//! Each line is formatted first and then written with a single `write(2)`, which the kernel
//! keeps whole against other threads' lines (for a pipe up to `PIPE_BUF`, 4 KiB; for a file
//! under its inode lock).

use crate::httpdate::civil_from_days;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Our own handle on stderr (a duplicate of descriptor 2), written without std's stderr lock,
/// so a thread never waits for another thread's log line. `None` if the duplicate could not be
/// had (no descriptor free at the first log line): std's locked stderr is used instead.
static STDERR: OnceLock<Option<File>> = OnceLock::new();

/// Writes one log line to stderr, prefixed with the current time in RFC 3339 UTC.
pub fn log(args: fmt::Arguments<'_>) {
    #[cfg(debug_assertions)]
    crate::sync::assert_io_allowed("a log line");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = String::with_capacity(128);
    push_timestamp(&mut line, now);
    let _ = writeln!(line, " {args}");
    #[cfg(any(test, feature = "test-support"))]
    if capture::is_on() {
        capture::record(line);
        return;
    }
    let own = STDERR.get_or_init(|| {
        let fd = io::stderr().as_fd().try_clone_to_owned().ok()?;
        Some(File::from(fd))
    });
    // A closed stderr must not take the server down: logging is best effort.
    let _ = match own.as_ref() {
        Some(mut file) => file.write_all(line.as_bytes()),
        None => io::stderr().lock().write_all(line.as_bytes()),
    };
}

/// The time now as RFC 3339 UTC with milliseconds, as log lines start.
pub fn timestamp_now() -> String {
    let mut out = String::with_capacity(24);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    push_timestamp(&mut out, now);
    out
}

/// Appends the instant `since_epoch` after 1970-01-01T00:00:00Z as RFC 3339 UTC with
/// milliseconds, truncated: `2026-12-02T02:16:13.329Z`.
fn push_timestamp(out: &mut String, since_epoch: Duration) {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60,
        since_epoch.subsec_millis()
    );
}

/// Formats and writes one log line, like `eprintln!` but through [`log`].
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::log(format_args!($($arg)*))
    };
}

/// Log lines kept for tests: each line goes to the test harness's captured output (shown only
/// when the test fails; std hands a test's capture on to the threads it starts, so a server
/// started by a test logs into that test's output) and into a list a test can wait on.
#[cfg(any(test, feature = "test-support"))]
pub mod capture {
    use crate::sync::lock;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Condvar, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    /// Lines kept for [`wait_for`]; older ones are dropped.
    const KEPT: usize = 100_000;

    static ON: AtomicBool = AtomicBool::new(false);
    /// The kept lines, and how many were recorded before the first of them.
    static LINES: Mutex<(VecDeque<String>, u64)> = Mutex::new((VecDeque::new(), 0));
    static ADDED: Condvar = Condvar::new();

    /// A point in the log: [`wait_for`] looks only at lines recorded after it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Mark(u64);

    /// The point in the log now.
    pub fn mark() -> Mark {
        let lines = lock(&LINES);
        Mark(lines.1 + lines.0.len() as u64)
    }

    /// Sends every later log line of this process to the test harness and the kept list.
    pub fn start() {
        ON.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_on() -> bool {
        // The crate's own unit tests always capture.
        cfg!(test) || ON.load(Ordering::Relaxed)
    }

    pub(super) fn record(line: String) {
        eprint!("{line}");
        let mut lines = lock(&LINES);
        if lines.0.len() == KEPT {
            lines.0.pop_front();
            lines.1 += 1;
        }
        lines.0.push_back(line);
        drop(lines);
        ADDED.notify_all();
    }

    /// Waits up to `patience` for a line recorded after `since` that `wanted` accepts, and
    /// returns it. (Tests run at once in one process share the log: a mark keeps a test from
    /// finding another's older line.)
    pub fn wait_for(
        since: Mark,
        wanted: impl Fn(&str) -> bool,
        patience: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + patience;
        let mut lines = lock(&LINES);
        loop {
            let skip = usize::try_from(since.0.saturating_sub(lines.1)).unwrap_or(usize::MAX);
            if let Some(line) = lines.0.iter().skip(skip).find(|l| wanted(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = ADDED
                .wait_timeout(lines, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(secs: u64, millis: u64) -> String {
        let mut out = String::new();
        push_timestamp(
            &mut out,
            Duration::from_secs(secs) + Duration::from_millis(millis),
        );
        out
    }

    #[test]
    fn known_instants() {
        for (secs, millis, expected) in [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (0, 1, "1970-01-01T00:00:00.001Z"),
            (94_694_399, 999, "1972-12-31T23:59:59.999Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000Z"), // a century that is a leap year
            (1_709_251_199, 500, "2024-02-29T23:59:59.500Z"),
            (1_735_689_599, 999, "2024-12-31T23:59:59.999Z"),
            (1_735_689_600, 0, "2025-01-01T00:00:00.000Z"),
            (1_796_177_773, 329, "2026-12-02T02:16:13.329Z"),
            (4_107_542_399, 0, "2100-02-28T23:59:59.000Z"), // 2100 is not a leap year
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799, 999, "9999-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(timestamp(secs, millis), expected, "{secs}.{millis:03}");
        }
    }

    #[test]
    fn milliseconds_are_truncated_not_rounded() {
        let mut out = String::new();
        push_timestamp(&mut out, Duration::new(0, 999_999_999));
        assert_eq!(out, "1970-01-01T00:00:00.999Z");
    }
}
