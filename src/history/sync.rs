//! Group commit for `--fsync`: a message is delivered only once its line is on the disk, and
//! senders that arrive together share one `fdatasync`.
//!
//! Each message gets a number when it is appended. A sender then asks for everything up to
//! its number to be synced: if a sync is running, it waits for it (and maybe the next); if
//! none is, it becomes the one that syncs, taking in everything appended so far. A busy room
//! thus pays one sync per batch of messages, not one per message.

use crate::sync::lock;
use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

#[derive(Debug)]
struct State {
    /// The number of the last message appended.
    appended: u64,
    /// Every message up to this number is on the disk.
    synced: u64,
    /// A thread is syncing right now.
    syncing: bool,
    /// The file to sync (replaced when a compaction renames a new one into place).
    file: Arc<File>,
    /// The last sync failed up to this number, with this error: those messages are lost.
    failed: Option<(u64, io::ErrorKind, String)>,
}

/// One room's group commit; see the module docs.
#[derive(Debug)]
pub struct GroupSync {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupSync {
    /// Group commit for `file`, whose messages so far are numbered up to `appended` and
    /// durable.
    pub fn new(file: File, appended: u64) -> Self {
        GroupSync {
            state: Mutex::new(State {
                appended,
                synced: appended,
                syncing: false,
                file: Arc::new(file),
                failed: None,
            }),
            done: Condvar::new(),
        }
    }

    /// Numbers a message just appended (called under the room's lock, so numbers follow the
    /// file's order). Numbers are never reused, even for messages given up.
    pub fn append(&self) -> u64 {
        let mut st = lock(&self.state);
        st.appended += 1;
        st.appended
    }

    /// The file was replaced by a compaction, which made everything in it durable.
    pub fn replaced(&self, file: File) {
        let mut st = lock(&self.state);
        st.file = Arc::new(file);
        st.synced = st.appended;
        drop(st);
        self.done.notify_all();
    }

    /// Returns once message `number` is on the disk, syncing if no one else is; an error when
    /// the sync that covered it failed.
    pub fn sync_through(&self, number: u64) -> io::Result<()> {
        let mut st = lock(&self.state);
        loop {
            if let Some((upto, kind, why)) = &st.failed {
                if number <= *upto && number > st.synced {
                    return Err(io::Error::new(*kind, why.clone()));
                }
            }
            if st.synced >= number {
                return Ok(());
            }
            if st.syncing {
                st = self.done.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.syncing = true;
            let target = st.appended;
            let file = Arc::clone(&st.file);
            drop(st);
            let result = file.sync_data();
            st = lock(&self.state);
            st.syncing = false;
            match result {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => st.failed = Some((target, e.kind(), e.to_string())),
            }
            self.done.notify_all();
        }
    }

    /// The number up to which messages are durable.
    pub fn synced(&self) -> u64 {
        lock(&self.state).synced
    }

    /// The messages waiting for a failed sync were given up (cut from the file and refused to
    /// their senders): every number so far counts as settled, and syncing starts afresh.
    pub fn given_up(&self) {
        let mut st = lock(&self.state);
        st.synced = st.appended;
        st.failed = None;
        drop(st);
        self.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn concurrent_senders_share_syncs_and_all_return() {
        let dir = std::env::temp_dir().join(format!("wschat-groupsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = File::create(dir.join("log")).unwrap();
        let sync = Arc::new(GroupSync::new(file, 0));
        let handles: Vec<_> = (1..=50u64)
            .map(|_| {
                let n = sync.append();
                let sync = Arc::clone(&sync);
                thread::spawn(move || sync.sync_through(n))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(sync.synced(), 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
