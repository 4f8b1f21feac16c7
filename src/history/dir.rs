//! Where history lives: the data directory, found, created and locked at start-up.
//!
//! `--data DIR`; without it `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`), else
//! `$XDG_STATE_HOME/wschat`, else `~/.local/state/wschat`. It is created with mode 0700 (chat
//! history is nobody else's business) and locked, so that a second server on the same
//! directory is refused instead of interleaving its writes with ours.

use std::env;
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The locked data directory. The lock is held as long as this lives.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

/// The directory the command line or the environment names for history.
pub fn choose(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let var = |name: &str| env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = var("STATE_DIRECTORY") {
        // systemd sets a colon-separated list when the unit names several; ours is first.
        let first = dirs
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Ok(PathBuf::from(first));
    }
    if let Some(state) = var("XDG_STATE_HOME") {
        return Ok(PathBuf::from(state).join("wschat"));
    }
    match var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/wschat")),
        None => Err(
            "no --data given, and none of STATE_DIRECTORY, XDG_STATE_HOME or HOME is set: \
                     say where to keep history with --data DIR, or use --ephemeral"
                .to_string(),
        ),
    }
}

impl DataDir {
    /// Creates `path` (mode 0700, parents as needed) and its `rooms/` folder, and takes its
    /// lock. The error names the directory and says why.
    pub fn open(path: &Path) -> io::Result<DataDir> {
        let context = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path.join("rooms"))
            .map_err(|e| context("create the history directory", e))?;
        let lock_path = path.join("lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| context("write in the history directory", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another wschat is using the history directory {} (it holds {})",
                        path.display(),
                        lock_path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(context("lock", e)),
        }
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the rooms' logs are.
    pub fn rooms(&self) -> PathBuf {
        self.path.join("rooms")
    }

    /// The names of the rooms that have a log, from their file names.
    pub fn room_names(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.rooms())? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(room) = name.strip_suffix(".jsonl") {
                names.push(room.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}
