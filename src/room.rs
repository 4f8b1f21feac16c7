//! The chat room: who is in it, the backlog, and fan-out.
//!
//! The room is a list of members behind one mutex. Holding it orders every event (a join, a
//! message, a leave) the same way for every member, and it is only ever held to *queue*
//! frames: every method returns the [`Deliveries`] it queued, and the caller writes them once
//! the lock is let go. So no socket write, no `shutdown(2)` and no log line ever happens under
//! the lock (several peer hubs deadlocked by writing while holding their registry lock), and a
//! slow or stalled member cannot slow the room.
//!
//! A [`Membership`] leaves the room when dropped, so a member whose thread ends in any way (an
//! error, a closed socket, a panic) is removed, and its leave is announced. A member whose
//! outgoing queue overflows is closed by its outbox and leaves at once, in the same critical
//! section: it may take seconds to finish its close, and the others should not wait for its
//! leave meanwhile.

use crate::chat_protocol::{clean_name, name_key, Event, NameError};
use crate::frame;
use crate::outbox::{Deliveries, Outbox, When};
use crate::sync::lock_for_queueing;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tungstenite::Bytes;

#[derive(Debug)]
struct Member {
    id: u64,
    name: Arc<str>,
    key: String,
    outbox: Arc<Outbox>,
}

#[derive(Debug, Default)]
struct State {
    members: Vec<Member>,
    backlog: VecDeque<(Arc<str>, Arc<str>)>,
    next_id: u64,
}

/// The chat room. See the module docs.
#[derive(Debug)]
pub struct Room {
    state: Mutex<State>,
    history: usize,
}

/// Being in the room. Dropping it leaves the room.
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

    /// Queues `text` from this member for everyone else, to be written as `when` says, and
    /// keeps it for the backlog. A member that has been made to leave (its queue overflowed)
    /// says nothing more.
    pub fn say(&self, text: &str, when: When) -> Deliveries {
        let event = Event::Message {
            from: &self.name,
            text,
            backlog: false,
        };
        let frame = frame::text(&event.to_json());
        let mut st = lock_for_queueing(&self.room.state);
        if !st.members.iter().any(|m| m.id == self.id) {
            return Deliveries::default();
        }
        let deliveries = st.fan_out(&frame, when, Some(self.id));
        if self.room.history > 0 {
            if st.backlog.len() == self.room.history {
                st.backlog.pop_front();
            }
            st.backlog
                .push_back((Arc::clone(&self.name), Arc::from(text)));
        }
        deliveries
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let deliveries = {
            let mut st = lock_for_queueing(&self.room.state);
            st.leave(self.id).unwrap_or_default()
        };
        deliveries.write();
    }
}

impl State {
    /// Queues `frame` for every member but `except`. Members whose queue overflows leave.
    fn fan_out(&mut self, frame: &Bytes, when: When, except: Option<u64>) -> Deliveries {
        let mut deliveries = Deliveries::default();
        let mut overflowed = Vec::new();
        for member in self.members.iter().filter(|m| Some(m.id) != except) {
            let queued = member.outbox.enqueue(frame.clone(), when);
            if queued.overflowed() {
                overflowed.push(member.id);
            }
            deliveries.push(queued);
        }
        for id in overflowed {
            if let Some(more) = self.leave(id) {
                deliveries.extend(more);
            }
        }
        deliveries
    }

    /// Removes member `id`, if present, and queues its leave notice for the others.
    fn leave(&mut self, id: u64) -> Option<Deliveries> {
        let index = self.members.iter().position(|m| m.id == id)?;
        let member = self.members.remove(index);
        let frame = frame::text(&Event::Leave { name: &member.name }.to_json());
        Some(self.fan_out(&frame, When::Now, None))
    }
}

impl Room {
    /// An empty room that replays the last `history` messages to newcomers.
    pub fn new(history: usize) -> Arc<Room> {
        Arc::new(Room {
            state: Mutex::new(State::default()),
            history,
        })
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
        let name = clean_name(requested)?;
        let key = name_key(name);
        let joined = frame::text(&Event::Join { name }.to_json());
        let mut st = lock_for_queueing(&self.state);
        if st.members.iter().any(|m| m.key == key) {
            return Err(NameError::Taken);
        }
        let mut deliveries = st.fan_out(&joined, When::Now, None);
        let others: Vec<&str> = st.members.iter().map(|m| &*m.name).collect();
        let welcome = Event::Welcome {
            name,
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
        let name: Arc<str> = Arc::from(name);
        st.members.push(Member {
            id,
            name: Arc::clone(&name),
            key,
            outbox: Arc::clone(outbox),
        });
        let membership = Membership {
            room: Arc::clone(self),
            id,
            name,
        };
        Ok((membership, deliveries))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{QueueLimits, Writers};
    use crate::transport::MemoryTransport;
    use std::time::Duration;

    fn writers() -> Arc<Writers> {
        let limits = QueueLimits {
            bytes: 1 << 20,
            messages: None,
        };
        Writers::new(limits, Duration::from_secs(2))
    }

    fn outbox(writers: &Arc<Writers>) -> (Arc<Outbox>, Arc<MemoryTransport>) {
        let transport = Arc::new(MemoryTransport::new(Vec::new()));
        let outbox = Outbox::new(
            transport.clone(),
            "127.0.0.1:1".parse().unwrap(),
            Arc::clone(writers),
        );
        (Arc::new(outbox), transport)
    }

    fn join(room: &Arc<Room>, name: &str, outbox: &Arc<Outbox>) -> Membership {
        let (membership, deliveries) = room.join(name, outbox).expect("name accepted");
        deliveries.write();
        membership
    }

    #[test]
    fn a_member_whose_thread_panics_leaves_and_the_room_goes_on() {
        let writers = writers();
        let room = Room::new(10);
        let thread_room = Arc::clone(&room);
        let (thread_outbox, _) = outbox(&writers);
        let result = std::thread::spawn(move || {
            let member = join(&thread_room, "doomed", &thread_outbox);
            member.say("last words", When::Now).write();
            panic!("a bug in one connection");
        })
        .join();
        assert!(result.is_err());
        assert!(
            room.members().is_empty(),
            "the panicking member was not removed"
        );
        let (alice_outbox, _) = outbox(&writers);
        let alice = join(&room, "doomed", &alice_outbox);
        alice.say("hello", When::Now).write();
        assert_eq!(room.members(), ["doomed"]);
    }

    /// The memory transport panics when written or shut down while the room lock is held
    /// (see `sync::assert_io_allowed`), so this runs every path that queues under the lock,
    /// including an overflow that closes a member, with the writes that follow it.
    #[test]
    fn nothing_is_written_or_shut_down_under_the_room_lock() {
        let limits = QueueLimits {
            bytes: 200,
            messages: None,
        };
        let writers = Writers::new(limits, Duration::from_secs(2));
        let room = Room::new(3);
        let (a, a_out) = outbox(&writers);
        let (b, b_out) = outbox(&writers);
        let alice = join(&room, "alice", &a);
        let bob = join(&room, "bob", &b);
        bob.say("hello", When::Now).write();
        // Over bob's 200-byte bound: queued under the lock as a 1008 close, written after.
        alice.say(&"x".repeat(300), When::Now).write();
        drop(bob);
        drop(alice);
        assert!(room.members().is_empty());
        let got = b_out.output();
        let close = frame::close(
            frame::CloseCode::Policy,
            "outgoing queue full: you are not reading fast enough",
        );
        assert!(got.ends_with(&close), "bob was not closed with 1008");
        let hello = frame::text(r#"{"type":"message","from":"bob","text":"hello"}"#);
        assert!(a_out.output().windows(hello.len()).any(|w| w == hello));
    }
}
