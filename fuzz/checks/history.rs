//! The `history_log` target: a room's history file as read at start-up.

use wschat::internals::history::line::{self, Entry};
use wschat::internals::history::log::scan;

/// Entries kept in memory by the scan in this check: few, so that the kept window moves.
const NEWEST: usize = 5;

/// Arbitrary bytes as a log file. `scan` never panics; it never yields a message that was not
/// a whole valid line: each kept entry, written again, is a whole line of the input; the lines
/// it counts and the damaged ones it notes are exactly the whole lines; what follows the last
/// whole line (a torn line, cut at start-up) holds no newline.
pub fn check_history_log(data: &[u8]) {
    let found = scan(data, NEWEST).expect("reading memory cannot fail");
    let whole = usize::try_from(found.whole_len).expect("a length in memory");
    assert!(whole <= data.len());
    assert!(
        whole == 0 || data[whole - 1] == b'\n',
        "whole lines end in a newline"
    );
    assert!(
        !data[whole..].contains(&b'\n'),
        "a whole line was left as torn"
    );
    let lines: Vec<&[u8]> = data[..whole].split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(found.entries + found.damaged.len(), lines.len());
    // Each damaged offset starts a line that really does not decode, and none is listed twice.
    let mut starts = Vec::new();
    let mut at = 0;
    for line in &lines {
        starts.push(at);
        at += line.len();
    }
    for offset in &found.damaged {
        let i = starts
            .iter()
            .position(|&s| s as u64 == *offset)
            .unwrap_or_else(|| panic!("damaged offset {offset} is not a line start"));
        assert!(line::decode(&lines[i][..lines[i].len() - 1]).is_none());
    }
    // The kept entries are the last entries of the file, each a whole line written exactly
    // so, in order.
    let good: Vec<&[u8]> = lines
        .iter()
        .copied()
        .filter(|l| line::decode(&l[..l.len() - 1]).is_some())
        .collect();
    assert_eq!(good.len(), found.entries);
    let expected_tail = &good[good.len().saturating_sub(NEWEST)..];
    assert_eq!(found.newest.len(), expected_tail.len());
    for (entry, raw) in found.newest.iter().zip(expected_tail) {
        assert_eq!(
            line::encode(entry).as_bytes(),
            *raw,
            "an entry that is not its line"
        );
        check_entry(entry);
    }
}

/// An entry holds what a member could have said: a name the rules accept, and a timestamp.
fn check_entry(entry: &Entry) {
    assert_eq!(
        wschat::internals::chat_protocol::clean_name(&entry.from),
        Ok(entry.from.as_str()),
        "stored under a name nobody could have: {:?}",
        entry.from
    );
    assert_eq!(entry.at.len(), 24, "{:?}", entry.at);
}
