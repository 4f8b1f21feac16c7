//! One chat room: who is in it, the backlog, and fan-out.
//!
//! The room is a list of members behind one mutex. Holding it orders every event (a join, a
//! message, a leave) the same way for every member, and it is only ever held to *queue*
//! frames: every method returns the [`Deliveries`] it queued, and the caller writes them once
//! the lock is let go. So no socket write, no `shutdown(2)` and no log line ever happens under
//! the lock (several peer hubs deadlocked by writing while holding their registry lock), and a
//! slow or stalled member cannot slow the room.
//!
//! Joins and leaves go through the room's [`Roster`]: a member that has fallen behind gets
//! them merged into one notice (see [`crate::presence`]).
//!
//! History: with a [`RoomLog`] each message is appended to the room's file under the lock,
//! before it is queued to anyone, so the file's order is the room's order and nobody receives
//! a message that is not stored. A message that cannot be stored is refused to its sender
//! (`not-sent`) and reaches no one. With `--fsync` the room waits for the disk first, sharing
//! one sync among the senders of a moment ([`GroupSync`]): messages wait in `pending`, in
//! order, and whoever finds them synced delivers them. This file I/O is the one thing done
//! under the room's lock, since it is what orders the room.
//!
//! A [`Membership`] leaves the room when dropped, so a member whose thread ends in any way (an
//! error, a closed socket, a panic) is removed, and its leave is announced. A member whose
//! outgoing queue overflows is closed by its outbox and leaves at once, in the same critical
//! section: it may take seconds to finish its close, and the others should not wait for its
//! leave meanwhile.
//!
//! Shared with other nodes (`--redis`), a room's order is its stream's instead: joins,
//! messages and leaves are appended to it, and what happens in the room is what the node's
//! reader applies from it (`room/shared.rs`).

use crate::chat_protocol::{clean_name, name_key, Event, NameError};
use crate::cluster::Cluster;
use crate::frame;
use crate::history::{GroupSync, RoomLog};
use crate::outbox::{Deliveries, Outbox, Queued, When};
use crate::presence::{Change, PresenceMark, Roster};
use crate::sync::lock_for_queueing;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
struct Member {
    id: u64,
    name: Arc<str>,
    key: String,
    outbox: Arc<Outbox>,
    /// The last roster entry this member has been told about or has a mark queued for.
    told: u64,
    /// It has had its welcome: it is sent what happens in the room. A member of a shared
    /// room waits for its join to come back from the stream.
    welcomed: bool,
}

/// A message stored but not yet on the disk (`--fsync`), waiting to be delivered.
#[derive(Debug)]
struct Pending {
    /// Its number in the group commit.
    number: u64,
    /// The file's length before it, to cut back to if its sync fails.
    offset: u64,
    from: Arc<str>,
    text: Arc<str>,
    sender: u64,
}

#[derive(Debug, Default)]
struct State {
    members: Vec<Member>,
    backlog: VecDeque<(Arc<str>, Arc<str>)>,
    next_id: u64,
    /// The room's file; `None` with `--ephemeral`.
    log: Option<RoomLog>,
    /// The last append failed: messages are refused until one succeeds.
    failing: bool,
    /// The server has stopped: its history is closed, and messages are refused.
    closed: bool,
    pending: VecDeque<Pending>,
    /// A shared room's place in its stream, once it follows it.
    following: Option<shared::Following>,
}

/// One chat room. See the module docs.
#[derive(Debug)]
pub struct Room {
    name: Arc<str>,
    state: Mutex<State>,
    roster: Arc<Roster>,
    history: usize,
    /// With `--fsync`: messages are delivered once on the disk.
    sync: Option<GroupSync>,
    /// With `--redis`: the cluster the room is shared through.
    cluster: Option<Arc<dyn Cluster>>,
    /// Set once a shared room follows its stream; held while it starts to.
    followed: Mutex<bool>,
}

/// Being in a room. Dropping it leaves the room.
#[derive(Debug)]
pub struct Membership {
    room: Arc<Room>,
    id: u64,
    name: Arc<str>,
}

impl Membership {
    /// The member's accepted name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room.
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    /// Queues `text` from this member for everyone else, to be written as `when` says, after
    /// storing it (see the module docs). A message that cannot be stored is refused to the
    /// member instead. A member that has been made to leave (its queue overflowed) says
    /// nothing more.
    pub fn say(&self, text: &str, when: When) -> Deliveries {
        self.room.say(self.id, &self.name, text, when)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(cluster) = &self.room.cluster {
            return self.room.leave_shared(cluster, self.id);
        }
        let mut deliveries = Deliveries::default();
        {
            let mut st = lock_for_queueing(&self.room.state);
            self.room.remove(&mut st, vec![self.id], &mut deliveries);
        }
        deliveries.write();
    }
}

impl State {
    /// Queues for every member but `except` what `queue` makes for it, into `deliveries`;
    /// returns the members whose queue overflowed (they are being closed).
    fn each_member(
        &mut self,
        except: Option<u64>,
        deliveries: &mut Deliveries,
        mut queue: impl FnMut(&mut Member) -> Queued,
    ) -> Vec<u64> {
        let mut overflowed = Vec::new();
        let told = |m: &&mut Member| m.welcomed && Some(m.id) != except;
        for member in self.members.iter_mut().filter(told) {
            let queued = queue(member);
            if queued.overflowed() {
                overflowed.push(member.id);
            }
            deliveries.push(queued);
        }
        overflowed
    }
}

impl Room {
    /// An empty room called `name` that replays the last `history` messages to newcomers,
    /// kept only in memory.
    pub fn new(name: &str, history: usize) -> Arc<Room> {
        Arc::new(Room {
            name: Arc::from(name),
            state: Mutex::new(State::default()),
            roster: Roster::new(),
            history,
            sync: None,
            cluster: None,
            followed: Mutex::new(false),
        })
    }

    /// Queues a stored message for everyone but its sender (when it is a member here) and
    /// keeps it for the backlog.
    fn deliver(
        &self,
        st: &mut State,
        sender: Option<u64>,
        from: &Arc<str>,
        text: &Arc<str>,
        when: When,
        deliveries: &mut Deliveries,
    ) {
        let event = Event::Message {
            from,
            text,
            backlog: false,
        };
        let frame = frame::text(&event.to_json());
        let overflowed = st.each_member(sender, deliveries, |member| {
            member.outbox.enqueue(frame.clone(), when)
        });
        self.remove(st, overflowed, deliveries);
        if self.history > 0 {
            if st.backlog.len() == self.history {
                st.backlog.pop_front();
            }
            st.backlog.push_back((Arc::clone(from), Arc::clone(text)));
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tries to join with `requested` as the name, from the thread that owns `outbox`. On
    /// success the newcomer's outbox gets the welcome and then the backlog (written by its
    /// own thread, waiting), and everyone else a join notice, all in one critical section so
    /// no message can fall between the backlog and the live stream.
    pub fn join(
        self: &Arc<Self>,
        requested: &str,
        outbox: &Arc<Outbox>,
    ) -> Result<(Membership, Deliveries), NameError> {
        if let Some(cluster) = &self.cluster {
            return self.join_shared(cluster, requested, outbox);
        }
        let name = clean_name(requested)?;
        let key = name_key(name);
        let mut st = lock_for_queueing(&self.state);
        if st.members.iter().any(|m| m.key == key) {
            return Err(NameError::Taken);
        }
        let name: Arc<str> = Arc::from(name);
        let others: Vec<Arc<str>> = st.members.iter().map(|m| Arc::clone(&m.name)).collect();
        // The others' notices first: they are written without waiting, the newcomer's own
        // frames by its thread, waiting.
        let mut deliveries = Deliveries::default();
        let told = self.announce(&mut st, Change::Joined(Arc::clone(&name)), &mut deliveries);
        let others: Vec<&str> = others.iter().map(|n| &**n).collect();
        let welcome = Event::Welcome {
            room: &self.name,
            name: &name,
            members: &others,
        };
        deliveries.push(outbox.enqueue(frame::text(&welcome.to_json()), When::Waiting));
        for (from, text) in &st.backlog {
            let event = Event::Message {
                from,
                text,
                backlog: true,
            };
            deliveries.push(outbox.enqueue(frame::text(&event.to_json()), When::Waiting));
        }
        let id = st.next_id;
        st.next_id += 1;
        st.members.push(Member {
            id,
            name: Arc::clone(&name),
            key,
            outbox: Arc::clone(outbox),
            told,
            welcomed: true,
        });
        let membership = Membership {
            room: Arc::clone(self),
            id,
            name,
        };
        Ok((membership, deliveries))
    }

    /// Records `change` and queues it for every member present; returns its roster entry.
    fn announce(&self, st: &mut State, change: Change, deliveries: &mut Deliveries) -> u64 {
        let entry = self.roster.record(change);
        let overflowed = st.each_member(None, deliveries, |member| {
            let mark = PresenceMark::new(&self.roster, member.told, entry);
            member.told = entry;
            member.outbox.enqueue_presence(mark, When::Soon)
        });
        self.remove(st, overflowed, deliveries);
        entry
    }

    /// Removes the members `ids` that are still present, announcing each leave (which may
    /// make more queues overflow, whose members leave too).
    fn remove(&self, st: &mut State, ids: Vec<u64>, deliveries: &mut Deliveries) {
        for id in ids {
            let Some(index) = st.members.iter().position(|m| m.id == id) else {
                continue;
            };
            let member = st.members.remove(index);
            self.announce(st, Change::Left(member.name), deliveries);
        }
    }

    /// The names of everyone in the room, in joining order.
    pub fn members(&self) -> Vec<String> {
        lock_for_queueing(&self.state)
            .members
            .iter()
            .map(|m| m.name.to_string())
            .collect()
    }
}

mod shared;
mod stored;
#[cfg(test)]
mod tests;
