//! The server's log: one line per event on stderr.
//!
//! Everything the server reports goes through [`log`], so the format lives in one place and
//! lines from different threads never interleave (each line is written with one call while
//! stderr is locked).

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line to stderr, prefixed with the time in seconds since the Unix epoch.
pub fn log(args: fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!("{}.{:03} {}\n", now.as_secs(), now.subsec_millis(), args);
    // A closed stderr must not take the server down: logging is best effort.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Formats and writes one log line, like `eprintln!` but through [`log`].
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::log(format_args!($($arg)*))
    };
}
