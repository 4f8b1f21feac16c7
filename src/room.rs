//! The chat room: who is in it, the backlog, and fan-out.
//!
//! The room is a list of members behind one mutex. Holding it orders every event - a join, a
//! message, a leave - the same way for every member, and it is only ever held to *queue*
//! frames ([`Outbox::queue`], which never touches a socket), never to write: the writes happen
//! after it is let go ([`WriteTurn::write_now`], which never waits on a socket either). So a
//! slow or stalled member cannot slow the room: several peer hubs deadlocked by writing while
//! holding their registry lock.
//!
//! A [`Membership`] leaves the room when dropped, so a member whose thread ends in any way -
//! an error, a closed socket, a panic - is removed, and its leave is announced.

use crate::chat_protocol::{clean_name, name_key, Event, NameError};
use crate::outbox::{text_frame, Outbox, WriteTurn};
use crate::sync::lock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// How many threads are writing a broadcast's turns right now.
    writers: AtomicUsize,
}

/// When a message's deliveries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// At once, by the sending thread, as far as sockets have room (unless the room is busy):
    /// the lowest latency.
    Now,
    /// By the writer pool: the sender has more messages waiting to be read, and a pool thread
    /// writes each member's pile of them in one system call, not one per message.
    Later,
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
    pub fn say(&self, text: &str, flush: Flush) {
        let frame = text_frame(
            &Event::Message {
                from: &self.name,
                text,
                backlog: false,
            }
            .to_json(),
        );
        let mut st = lock(&self.room.state);
        let turns = queue_for_all(st.members.iter().filter(|m| m.id != self.id), &frame);
        if self.room.history > 0 {
            if st.backlog.len() == self.room.history {
                st.backlog.pop_front();
            }
            st.backlog
                .push_back((Arc::clone(&self.name), Arc::from(text)));
        }
        drop(st);
        self.room.deliver(turns, flush);
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
        let turns = queue_for_all(st.members.iter(), &frame);
        drop(st);
        self.room.deliver(turns, Flush::Now);
    }
}

/// Queues `frame` for each of `members`; returns the turns to write, to be used once the room
/// lock is let go.
fn queue_for_all<'a>(members: impl Iterator<Item = &'a Member>, frame: &Bytes) -> Vec<WriteTurn> {
    members
        .filter_map(|member| member.outbox.queue(frame.clone()))
        .collect()
}

impl Room {
    /// An empty room that replays the last `history` messages to newcomers.
    pub fn new(history: usize) -> Arc<Room> {
        Arc::new(Room {
            state: Mutex::new(State::default()),
            history,
            writers: AtomicUsize::new(0),
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
        let mut turns = Vec::new();
        turns.extend(
            outbox.queue(text_frame(
                &Event::Welcome {
                    name,
                    members: &others,
                }
                .to_json(),
            )),
        );
        for (from, text) in &st.backlog {
            turns.extend(
                outbox.queue(text_frame(
                    &Event::Message {
                        from,
                        text,
                        backlog: true,
                    }
                    .to_json(),
                )),
            );
        }
        let joined = text_frame(&Event::Join { name }.to_json());
        turns.extend(queue_for_all(st.members.iter(), &joined));
        let id = st.next_id;
        st.next_id += 1;
        let name: Arc<str> = Arc::from(name);
        st.members.push(Member {
            id,
            name: Arc::clone(&name),
            key,
            outbox: Arc::clone(outbox),
        });
        drop(st);
        self.deliver(turns, Flush::Now);
        Ok(Membership {
            room: Arc::clone(self),
            id,
            name,
        })
    }

    /// Writes the queues whose turns a broadcast got, after the room lock is let go. When the
    /// room is quiet, this thread writes them at once without waiting on any socket: no
    /// hand-off, lowest latency. When more messages are coming ([`Flush::Later`]) or another
    /// broadcast is still being written (the room is busy), the turns go to the writer pool
    /// instead: by the time a pool thread gets to a queue, several frames wait there and go
    /// out in one write, which is what keeps the deliveries per second up under load (one
    /// system call per frame and member would not).
    fn deliver(&self, turns: Vec<WriteTurn>, flush: Flush) {
        struct Writing<'a>(&'a AtomicUsize);
        impl Drop for Writing<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let busy = self.writers.fetch_add(1, Ordering::Relaxed) > 0;
        let _writing = Writing(&self.writers);
        for turn in turns {
            if busy || flush == Flush::Later {
                turn.hand_to_pool();
            } else {
                turn.write_now();
            }
        }
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
            member.say("last words", Flush::Now);
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
        alice.say("hello", Flush::Now);
        assert_eq!(room.members(), ["doomed"]);
    }
}
