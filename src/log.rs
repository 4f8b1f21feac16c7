//! The server's log: one line per event on stderr.
//!
//! Everything the server reports goes through [`log`], so the format lives in one place. Each
//! line is formatted first and then written with a single `write(2)`, which the kernel keeps
//! whole against other threads' lines (for a pipe up to `PIPE_BUF`, 4 KiB; for a file under
//! its inode lock). The write goes to a duplicate of descriptor 2 rather than through std's
//! stderr lock, so a thread descheduled in the middle of its line never makes the others wait.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Our own handle on stderr. `None` if the duplicate could not be had (no descriptor free at
/// the first log line): std's locked stderr is used instead.
static STDERR: OnceLock<Option<File>> = OnceLock::new();

/// Writes one log line to stderr, prefixed with the time in seconds since the Unix epoch.
pub fn log(args: fmt::Arguments<'_>) {
    #[cfg(debug_assertions)]
    crate::sync::assert_io_allowed("a log line");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!("{}.{:03} {}\n", now.as_secs(), now.subsec_millis(), args);
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
    static LINES: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
    static ADDED: Condvar = Condvar::new();

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
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
        drop(lines);
        ADDED.notify_all();
    }

    /// Waits up to `patience` for a kept line that `wanted` accepts and returns it.
    pub fn wait_for(wanted: impl Fn(&str) -> bool, patience: Duration) -> Option<String> {
        let deadline = Instant::now() + patience;
        let mut lines = lock(&LINES);
        loop {
            if let Some(line) = lines.iter().find(|l| wanted(l)) {
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
