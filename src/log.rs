//! The server's log: one line per event on stderr.
//!
//! Everything the server reports goes through [`log`], so the format lives in one place. Each
//! line is formatted first and then written with a single `write(2)`, which the kernel keeps
//! whole against other threads' lines (for a pipe up to `PIPE_BUF`, 4 KiB; for a file under
//! its inode lock).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Our own handle on stderr (a duplicate of descriptor 2), written without std's stderr lock.
/// With that lock, a thread descheduled in the middle of its write made every other thread that
/// logged sleep on a futex: with fifty keep-alive connections, three futex calls per static
/// request, more than all the file-serving system calls together. `None` if the duplicate could
/// not be had (no descriptor free at the first log line): std's locked stderr is used instead.
static STDERR: OnceLock<Option<File>> = OnceLock::new();

/// Writes one log line to stderr, prefixed with the time in seconds since the Unix epoch.
pub fn log(args: fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!("{}.{:03} {}\n", now.as_secs(), now.subsec_millis(), args);
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
