//! Durable chat history: one append-only log per room in the data directory.
//!
//! [`dir`] finds, creates and locks the directory; [`line`](mod@line) is the format of one stored
//! message; [`log`] is a room's file (append, repair, compaction); [`sync`] is the group
//! commit behind `--fsync`. The room ([`crate::room`]) appends each message under its lock
//! before queueing it to anyone.

pub mod dir;
pub mod line;
pub mod log;
pub mod sync;

pub use dir::DataDir;
pub use line::Entry;
pub use log::RoomLog;
pub use sync::GroupSync;

/// How the rooms keep their history on disk.
#[derive(Debug)]
pub struct Store {
    /// The locked data directory.
    pub dir: DataDir,
    /// Messages kept per room (`--history-keep`).
    pub keep: usize,
    /// Each message reaches the disk before anyone receives it (`--fsync`).
    pub fsync: bool,
}
