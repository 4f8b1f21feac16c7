//! One room's history on disk: an append-only file of [`line`](mod@super::line)s, repaired when
//! opened, compacted when it grows past its bound.
//!
//! The guarantees, each tested by causing the fault for real:
//! - A message is appended before anyone receives it (the room appends under its lock, then
//!   queues), so after a crash of the process every message a member received is in the file,
//!   once, in the room's order. With `--fsync` it also reaches the disk first (see
//!   [`super::sync`]), so it survives a power loss too.
//! - A failed append (disk full, file size limit) leaves nothing half-written: the file is cut
//!   back to where it was, and the message is refused to its sender.
//! - Opening repairs what a crash can leave: a torn last line is cut off, a damaged line in
//!   the middle is skipped (and dropped at the next compaction), each logged with its offset.
//! - Compaction keeps the newest `keep` messages: it writes a new file, syncs it, renames it
//!   over the old one and syncs the directory, so a crash at any step leaves the old file or
//!   the new one, both whole. A leftover new file is removed when the room is next opened.

use super::line::{self, Entry};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What opening a log found: the newest entries and what had to be repaired.
#[derive(Debug)]
pub struct Opened {
    /// The log, ready to append to.
    pub log: RoomLog,
    /// The newest entries, oldest first, at most as many as asked for.
    pub newest: Vec<Entry>,
    /// One line per repair, for the server's log.
    pub repairs: Vec<String>,
}

/// One room's file; see the module docs.
#[derive(Debug)]
pub struct RoomLog {
    path: PathBuf,
    file: File,
    /// The file's length: where the next line goes, and where to cut back to on a failure.
    len: u64,
    /// Whole entries in the file.
    entries: usize,
    /// Entries kept by compaction.
    keep: usize,
}

/// A compaction starts when the file holds this many more entries than it keeps: a quarter
/// more, at least 64, so that a busy room rewrites its file once per many messages.
fn slack(keep: usize) -> usize {
    (keep / 4).max(64)
}

impl RoomLog {
    /// The file of a room in `dir`.
    pub fn path_in(dir: &Path, room: &str) -> PathBuf {
        dir.join(format!("{room}.jsonl"))
    }

    /// Opens (or creates) the log at `path`, repairs it, and reads its newest `newest`
    /// entries. Compaction will keep `keep` entries.
    pub fn open(path: &Path, keep: usize, newest: usize) -> io::Result<Opened> {
        let leftover = compacting_path(path);
        let mut repairs = Vec::new();
        match fs::remove_file(&leftover) {
            Ok(()) => repairs.push(format!(
                "{}: removed an unfinished compaction",
                leftover.display()
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut reader = BufReader::new(&file);
        reader.seek(SeekFrom::Start(0))?;
        let scan = scan(reader, newest)?;
        for at in &scan.damaged {
            repairs.push(format!(
                "{}: skipped a damaged line at byte {at}",
                path.display()
            ));
        }
        if scan.whole_len < file.metadata()?.len() {
            repairs.push(format!(
                "{}: cut off a torn last line at byte {}",
                path.display(),
                scan.whole_len
            ));
            file.set_len(scan.whole_len)?;
            file.sync_data()?;
        }
        let log = RoomLog {
            path: path.to_path_buf(),
            file,
            len: scan.whole_len,
            entries: scan.entries,
            keep,
        };
        Ok(Opened {
            log,
            newest: scan.newest,
            repairs,
        })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Cuts the file back to `len` bytes, dropping the last `entries` entries (messages given
    /// up after a failed sync).
    pub fn cut_back(&mut self, len: u64, entries: usize) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        self.entries = self.entries.saturating_sub(entries);
        Ok(())
    }

    /// Appends `entry`. On failure the file is cut back to its length before, so nothing
    /// half-written stays. Compacts the file when it has grown past its bound; returns true
    /// when it did (the file is then a new one, already on the disk).
    pub fn append(&mut self, entry: &Entry) -> io::Result<bool> {
        let line = line::encode(entry);
        if let Err(e) = (&self.file).write_all(line.as_bytes()) {
            // If even this fails, the next open finds a torn or damaged line and repairs it.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += line.len() as u64;
        self.entries += 1;
        if self.entries < self.keep + slack(self.keep) {
            return Ok(false);
        }
        self.compact()?;
        Ok(true)
    }

    /// Makes the appended lines durable (`fdatasync`).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// A second handle on the file, for syncing without holding the room.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Rewrites the file with its newest `keep` entries; see the module docs.
    fn compact(&mut self) -> io::Result<()> {
        let new_path = compacting_path(&self.path);
        let mut reader = BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(0))?;
        let mut writer = BufWriter::new(File::create(&new_path)?);
        let mut skip = self.entries.saturating_sub(self.keep);
        let mut kept = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let Some(body) = line.strip_suffix(b"\n") else {
                break;
            };
            if line::decode(body).is_none() {
                continue; // a damaged line found when opening: dropped here
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            writer.write_all(&line)?;
            kept += 1;
        }
        let new_file = writer.into_inner().map_err(|e| e.into_error())?;
        new_file.sync_all()?;
        drop(new_file);
        fs::rename(&new_path, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.len = self.file.metadata()?.len();
        self.entries = kept;
        Ok(())
    }
}

/// Where a compaction writes the new file before renaming it.
fn compacting_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compacting");
    path.with_file_name(name)
}

/// What reading a log found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The length up to the end of the last whole line: what follows is a torn line.
    pub whole_len: u64,
    /// Whole lines that hold an entry.
    pub entries: usize,
    /// The newest entries, oldest first.
    pub newest: Vec<Entry>,
    /// Where each whole line that holds no entry starts.
    pub damaged: Vec<u64>,
}

/// Reads every line of a log: counts the entries, keeps the newest `newest`, notes damaged
/// lines and where the last whole line ends. Pure over its input (the fuzzer calls it).
pub fn scan(mut reader: impl BufRead, newest: usize) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut kept = std::collections::VecDeque::with_capacity(newest.min(1024));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        let Some(body) = line.strip_suffix(b"\n") else {
            break; // the end, or a torn last line (no newline)
        };
        match line::decode(body) {
            Some(entry) => {
                scan.entries += 1;
                if newest > 0 {
                    if kept.len() == newest {
                        kept.pop_front();
                    }
                    kept.push_back(entry);
                }
            }
            None => scan.damaged.push(scan.whole_len),
        }
        scan.whole_len += n as u64;
    }
    scan.newest = kept.into();
    Ok(scan)
}
