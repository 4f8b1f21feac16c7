//! Who joined and who left, as a log shared by a room and its members' outboxes, so that a
//! member that has fallen behind gets one merged notice instead of one frame per event.
//!
//! Each join or leave is one entry in the room's [`Roster`]. A member's outbox does not hold a
//! frame per entry but a [`PresenceMark`]: "tell this member about entries `after+1..=upto`",
//! and a mark that is still waiting when the next entry comes is simply extended. Marks are
//! written within a moment (25 ms, the outbox's `When::Soon`), in one round for every member,
//! so a storm's joins go out in few writes. The frame is made when the mark is written: up to
//! [`MERGE_AFTER`] entries are written as today's `join` and `leave` events, one each, so a
//! member that keeps up sees exactly those; more become one `presence` event with who joined
//! and who left since. A join storm of n members thus costs each member one waiting mark, not
//! n frames (n² in all).
//!
//! The roster keeps the last entries, four per member present and at least [`MIN_KEPT`], so an
//! empty room costs little. A mark older than that (a member very far behind) is written as
//! the whole member list, a `members` event.

use crate::chat_protocol::Event;
use crate::frame;
use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tungstenite::Bytes;

/// Most entries written one by one; a longer run is merged into one `presence` event.
pub const MERGE_AFTER: u64 = 16;

/// Fewest entries kept for marks still waiting to be written.
pub const MIN_KEPT: usize = 256;

/// One change of who is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This name joined.
    Joined(Arc<str>),
    /// This name left.
    Left(Arc<str>),
}

#[derive(Debug, Default)]
struct Log {
    /// The number of the entry before the first one kept: entry `first + 1` is `changes[0]`.
    first: u64,
    changes: VecDeque<Change>,
    /// Who is present after the last entry, in joining order.
    members: Vec<Arc<str>>,
}

impl Log {
    fn last(&self) -> u64 {
        self.first + self.changes.len() as u64
    }
}

/// A room's log of joins and leaves. See the module docs.
#[derive(Debug, Default)]
pub struct Roster {
    log: Mutex<Log>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Arc<Self> {
        Arc::new(Roster::default())
    }

    /// Records a change and returns its entry number. The caller orders changes (the room's
    /// lock), so numbers follow the room's order of events.
    pub fn record(&self, change: Change) -> u64 {
        let mut log = lock(&self.log);
        match &change {
            Change::Joined(name) => log.members.push(Arc::clone(name)),
            Change::Left(name) => {
                if let Some(i) = log.members.iter().position(|m| m == name) {
                    log.members.remove(i);
                }
            }
        }
        log.changes.push_back(change);
        let kept = (4 * log.members.len()).max(MIN_KEPT);
        while log.changes.len() > kept {
            log.changes.pop_front();
            log.first += 1;
        }
        log.last()
    }

    /// The number of the last entry: a newcomer's welcome covers everything up to it.
    pub fn last(&self) -> u64 {
        lock(&self.log).last()
    }

    /// The frames telling a member about entries `after+1..=upto`, one after the other in one
    /// buffer; `None` when they add up to nothing (someone came and went while the member was
    /// far behind).
    fn render(&self, after: u64, upto: u64) -> Option<Bytes> {
        let log = lock(&self.log);
        if after < log.first {
            let members: Vec<&str> = log.members.iter().map(|m| &**m).collect();
            return Some(frame::text(&Event::Members { members: &members }.to_json()));
        }
        let skip = usize::try_from(after - log.first).unwrap_or(usize::MAX);
        let take = usize::try_from(upto.saturating_sub(after)).unwrap_or(usize::MAX);
        let changes = log.changes.iter().skip(skip).take(take);
        if upto - after <= MERGE_AFTER {
            let mut frames = Vec::new();
            for change in changes {
                let event = match change {
                    Change::Joined(name) => Event::Join { name },
                    Change::Left(name) => Event::Leave { name },
                };
                frames.extend_from_slice(&frame::text(&event.to_json()));
            }
            return (!frames.is_empty()).then(|| Bytes::from(frames));
        }
        let (joined, left) = net_effect(changes);
        if joined.is_empty() && left.is_empty() {
            return None;
        }
        let joined: Vec<&str> = joined.iter().map(|n| &**n).collect();
        let left: Vec<&str> = left.iter().map(|n| &**n).collect();
        let event = Event::Presence {
            joined: &joined,
            left: &left,
        };
        Some(frame::text(&event.to_json()))
    }
}

/// Who joined and who left over a run of changes, each name at most once: a name that joined
/// and left again within the run is in neither list, one that left and came back in neither.
fn net_effect<'a>(changes: impl Iterator<Item = &'a Change>) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
    let mut joined: Vec<Arc<str>> = Vec::new();
    let mut left: Vec<Arc<str>> = Vec::new();
    for change in changes {
        match change {
            Change::Joined(name) => match left.iter().position(|n| n == name) {
                Some(i) => drop(left.remove(i)),
                None => joined.push(Arc::clone(name)),
            },
            Change::Left(name) => match joined.iter().position(|n| n == name) {
                Some(i) => drop(joined.remove(i)),
                None => left.push(Arc::clone(name)),
            },
        }
    }
    (joined, left)
}

/// "Tell this member about roster entries `after+1..=upto`", waiting in its outbox.
#[derive(Debug, Clone)]
pub struct PresenceMark {
    roster: Arc<Roster>,
    after: u64,
    upto: u64,
}

impl PresenceMark {
    /// A mark for the entries after `after` up to `upto`.
    pub fn new(roster: &Arc<Roster>, after: u64, upto: u64) -> Self {
        PresenceMark {
            roster: Arc::clone(roster),
            after,
            upto,
        }
    }

    /// Takes in `later` when it continues this mark (its entries start right after ours):
    /// the member then gets one notice for both. False when it does not continue it.
    pub fn absorb(&mut self, later: &PresenceMark) -> bool {
        let continues = Arc::ptr_eq(&self.roster, &later.roster) && later.after == self.upto;
        if continues {
            self.upto = later.upto;
        }
        continues
    }

    /// The frame to write now; `None` when there is nothing to tell.
    pub fn render(&self) -> Option<Bytes> {
        self.roster.render(self.after, self.upto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn text(frame: &Bytes) -> &str {
        std::str::from_utf8(&frame[2..]).unwrap()
    }

    #[test]
    fn one_entry_is_todays_join_or_leave() {
        let roster = Roster::new();
        let a = roster.record(Change::Joined(name("alice")));
        let b = roster.record(Change::Left(name("alice")));
        let join = PresenceMark::new(&roster, 0, a).render().unwrap();
        assert_eq!(text(&join), r#"{"type":"join","name":"alice"}"#);
        let leave = PresenceMark::new(&roster, a, b).render().unwrap();
        assert_eq!(text(&leave), r#"{"type":"leave","name":"alice"}"#);
    }

    #[test]
    fn a_short_run_is_told_one_by_one_and_a_long_one_merged() {
        let roster = Roster::new();
        let before = roster.record(Change::Joined(name("carol")));
        let mut mark = PresenceMark::new(&roster, before, before);
        for change in [Change::Joined(name("alice")), Change::Left(name("alice"))] {
            let n = roster.record(change);
            assert!(mark.absorb(&PresenceMark::new(&roster, n - 1, n)));
        }
        let frames = mark.render().unwrap();
        let join = frame::text(r#"{"type":"join","name":"alice"}"#);
        let leave = frame::text(r#"{"type":"leave","name":"alice"}"#);
        assert_eq!(frames, [join, leave].concat());
        let mut mark = PresenceMark::new(&roster, roster.last(), roster.last());
        let mut changes = vec![Change::Left(name("carol")), Change::Joined(name("carol"))];
        for i in 0..MERGE_AFTER {
            changes.push(Change::Joined(name(&format!("m{i}"))));
        }
        changes.push(Change::Left(name("m0")));
        for change in changes {
            let n = roster.record(change);
            assert!(mark.absorb(&PresenceMark::new(&roster, n - 1, n)));
        }
        let joined: Vec<String> = (1..MERGE_AFTER).map(|i| format!("\"m{i}\"")).collect();
        assert_eq!(
            text(&mark.render().unwrap()),
            format!(
                r#"{{"type":"presence","joined":[{}],"left":[]}}"#,
                joined.join(",")
            )
        );
        // Someone who came and went while the member was far behind: nothing to tell.
        let from = roster.last();
        for i in 0..MERGE_AFTER {
            roster.record(Change::Joined(name(&format!("e{i}"))));
            roster.record(Change::Left(name(&format!("e{i}"))));
        }
        assert_eq!(
            PresenceMark::new(&roster, from, roster.last()).render(),
            None
        );
        // A mark that does not continue this one is not taken in.
        assert!(!mark.absorb(&PresenceMark::new(&roster, 0, 1)));
    }

    #[test]
    fn a_mark_older_than_the_log_gets_the_member_list() {
        let roster = Roster::new();
        roster.record(Change::Joined(name("stays")));
        for i in 0..MIN_KEPT {
            roster.record(Change::Joined(name(&format!("m{i}"))));
            roster.record(Change::Left(name(&format!("m{i}"))));
        }
        let frame = PresenceMark::new(&roster, 0, roster.last())
            .render()
            .unwrap();
        assert_eq!(text(&frame), r#"{"type":"members","members":["stays"]}"#);
        // Recent entries are still told one by one.
        let last = roster.last();
        let leave = PresenceMark::new(&roster, last - 1, last).render().unwrap();
        assert_eq!(
            text(&leave),
            format!(r#"{{"type":"leave","name":"m{}"}}"#, MIN_KEPT - 1)
        );
    }
}
