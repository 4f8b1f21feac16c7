//! The chat room: who is in it, the backlog, and fan-out.
//!
//! The room is a list of members behind one mutex. Holding it orders every event - a join, a
//! message, a leave - the same way for every member, and it is only ever held to *queue*
//! frames (an [`Outbox::push`], which never touches a socket), never to write. So a slow or
//! stalled member cannot slow the room: several peer hubs deadlocked by writing while holding
//! their registry lock.
//!
//! A [`Membership`] leaves the room when dropped, so a member whose thread ends in any way -
//! an error, a closed socket, a panic - is removed, and its leave is announced.

use crate::chat_protocol::{clean_name, name_key, Event, NameError};
use crate::outbox::{text_frame, Outbox};
use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

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

    /// Sends `text` from this member to everyone else, and keeps it for the backlog.
    pub fn say(&self, text: &str) {
        let frame = text_frame(
            &Event::Message {
                from: &self.name,
                text,
                backlog: false,
            }
            .to_json(),
        );
        let mut st = lock(&self.room.state);
        for member in st.members.iter().filter(|m| m.id != self.id) {
            member.outbox.push(frame.clone());
        }
        if self.room.history > 0 {
            if st.backlog.len() == self.room.history {
                st.backlog.pop_front();
            }
            st.backlog
                .push_back((Arc::clone(&self.name), Arc::from(text)));
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut st = lock(&self.room.state);
        let Some(index) = st.members.iter().position(|m| m.id == self.id) else {
            return;
        };
        st.members.remove(index);
        let frame = text_frame(&Event::Leave { name: &self.name }.to_json());
        for member in &st.members {
            member.outbox.push(frame.clone());
        }
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

    /// Tries to join with `requested` as the name. On success the newcomer's outbox gets the
    /// welcome and then the backlog, and everyone else a join notice, all in one critical
    /// section so no message can fall between the backlog and the live stream.
    pub fn join(
        self: &Arc<Self>,
        requested: &str,
        outbox: &Arc<Outbox>,
    ) -> Result<Membership, NameError> {
        let name = clean_name(requested)?;
        let key = name_key(name);
        let mut st = lock(&self.state);
        if st.members.iter().any(|m| m.key == key) {
            return Err(NameError::Taken);
        }
        let others: Vec<&str> = st.members.iter().map(|m| &*m.name).collect();
        outbox.push(text_frame(
            &Event::Welcome {
                name,
                members: &others,
            }
            .to_json(),
        ));
        for (from, text) in &st.backlog {
            outbox.push(text_frame(
                &Event::Message {
                    from,
                    text,
                    backlog: true,
                }
                .to_json(),
            ));
        }
        let joined = text_frame(&Event::Join { name }.to_json());
        for member in &st.members {
            member.outbox.push(joined.clone());
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
        Ok(Membership {
            room: Arc::clone(self),
            id,
            name,
        })
    }

    /// The names of everyone in the room, in joining order.
    pub fn members(&self) -> Vec<String> {
        lock(&self.state)
            .members
            .iter()
            .map(|m| m.name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryTransport;
    use crate::outbox::{QueueLimits, WriterPool};
    use std::time::Duration;

    fn outbox(pool: &Arc<WriterPool>) -> Arc<Outbox> {
        let limits = QueueLimits {
            messages: 64,
            bytes: 1 << 20,
        };
        let transport = Arc::new(MemoryTransport::new(Vec::new()));
        Arc::new(Outbox::new(
            transport,
            "127.0.0.1:1".parse().unwrap(),
            limits,
            Arc::clone(pool),
        ))
    }

    #[test]
    fn a_member_whose_thread_panics_leaves_and_the_room_goes_on() {
        let pool = WriterPool::new(Duration::from_secs(1));
        let room = Room::new(10);
        let thread_room = Arc::clone(&room);
        let thread_outbox = outbox(&pool);
        let result = std::thread::spawn(move || {
            let member = thread_room.join("doomed", &thread_outbox).unwrap();
            member.say("last words");
            panic!("a bug in one connection");
        })
        .join();
        assert!(result.is_err());
        assert!(
            room.members().is_empty(),
            "the panicking member was not removed"
        );
        let alice = room
            .join("doomed", &outbox(&pool))
            .expect("the room still works");
        alice.say("hello");
        assert_eq!(room.members(), ["doomed"]);
    }
}
