//! A room's own history: each message appended to its file under the room's lock before it is
//! queued to anyone, refused when it cannot be stored, and with `--fsync` delivered only once
//! it is on the disk (see the module docs of [`super`]).

use super::{Pending, Room, State};
use crate::chat_protocol::Event;
use crate::frame;
use crate::history::{Entry, GroupSync, RoomLog};
use crate::outbox::{Deliveries, When};
use crate::presence::Roster;
use crate::sync::lock_for_queueing;
use std::sync::{Arc, Mutex};

impl Room {
    /// A room whose history is `log`, of which `newest` are the last messages; with `fsync`,
    /// each message reaches the disk before anyone receives it.
    pub fn stored(
        name: &str,
        history: usize,
        log: RoomLog,
        newest: Vec<Entry>,
        fsync: bool,
    ) -> std::io::Result<Arc<Room>> {
        let sync = match fsync {
            true => Some(GroupSync::new(log.try_clone_file()?, 0)),
            false => None,
        };
        let skip = newest.len().saturating_sub(history);
        let backlog = newest
            .into_iter()
            .skip(skip)
            .map(|e| (Arc::from(e.from), Arc::from(e.text)))
            .collect();
        let state = State {
            backlog,
            log: Some(log),
            ..State::default()
        };
        Ok(Arc::new(Room {
            name: Arc::from(name),
            state: Mutex::new(state),
            roster: Roster::new(),
            history,
            sync,
            cluster: None,
            followed: Mutex::new(false),
        }))
    }

    /// Stores and delivers a message of member `id`; see
    /// [`Membership::say`](crate::room::Membership::say).
    pub(super) fn say(&self, id: u64, from: &Arc<str>, text: &str, when: When) -> Deliveries {
        let mut deliveries = Deliveries::default();
        let mut st = lock_for_queueing(&self.state);
        let Some(sender) = st.members.iter().find(|m| m.id == id) else {
            return deliveries;
        };
        let sender = Arc::clone(&sender.outbox);
        let text: Arc<str> = Arc::from(text);
        if st.closed {
            let refusal = Event::NotSent {
                text: &text,
                reason: "the server is shutting down",
            };
            deliveries.push(sender.enqueue(frame::text(&refusal.to_json()), When::Now));
            return deliveries;
        }
        if let Some(cluster) = &self.cluster {
            drop(st);
            return self.say_shared(cluster, id, from, &text, &sender);
        }
        let Some(log) = &mut st.log else {
            self.deliver(&mut st, Some(id), from, &text, when, &mut deliveries);
            return deliveries;
        };
        let offset = log.len();
        let entry = Entry {
            at: crate::log::timestamp_now(),
            from: from.to_string(),
            text: text.to_string(),
        };
        let stored = log.append(&entry);
        let compacted = match stored {
            Ok(compacted) => compacted,
            Err(e) => {
                let reason = format!("the server could not store it ({e})");
                if !st.failing {
                    st.failing = true;
                    deliveries.note(format!(
                        "room {}: {reason}; refusing messages until a write succeeds",
                        self.name
                    ));
                }
                let refusal = Event::NotSent {
                    text: &text,
                    reason: &reason,
                };
                deliveries.push(sender.enqueue(frame::text(&refusal.to_json()), When::Now));
                return deliveries;
            }
        };
        if st.failing {
            st.failing = false;
            deliveries.note(format!("room {}: storing messages again", self.name));
        }
        let Some(sync) = &self.sync else {
            self.deliver(&mut st, Some(id), from, &text, when, &mut deliveries);
            return deliveries;
        };
        if compacted {
            // The compaction synced the new file with everything in it.
            if let Some(file) = st.log.as_ref().and_then(|log| log.try_clone_file().ok()) {
                sync.replaced(file);
            }
        }
        let number = sync.append();
        st.pending.push_back(Pending {
            number,
            offset,
            from: Arc::clone(from),
            text,
            sender: id,
        });
        drop(st);
        let synced = sync.sync_through(number);
        let mut st = lock_for_queueing(&self.state);
        match synced {
            Ok(()) => {
                let upto = sync.synced();
                while st.pending.front().is_some_and(|p| p.number <= upto) {
                    let Some(p) = st.pending.pop_front() else {
                        break;
                    };
                    self.deliver(
                        &mut st,
                        Some(p.sender),
                        &p.from,
                        &p.text,
                        When::Now,
                        &mut deliveries,
                    );
                }
            }
            Err(e) => self.give_up_pending(&mut st, &e, &mut deliveries),
        }
        deliveries
    }

    /// A sync failed: nothing waiting is known to be on the disk, so all of it is cut from
    /// the file and refused to its senders.
    fn give_up_pending(&self, st: &mut State, e: &std::io::Error, deliveries: &mut Deliveries) {
        let Some(first) = st.pending.front() else {
            return;
        };
        let offset = first.offset;
        let count = st.pending.len();
        let reason = format!("the server could not store it on the disk ({e})");
        if let Some(log) = &mut st.log {
            if let Err(cut) = log.cut_back(offset, count) {
                deliveries.note(format!(
                    "room {}: cannot cut back its history: {cut}",
                    self.name
                ));
            }
        }
        deliveries.note(format!(
            "room {}: {reason}: {count} message(s) refused",
            self.name
        ));
        let pending: Vec<Pending> = st.pending.drain(..).collect();
        for p in pending {
            if let Some(sender) = st.members.iter().find(|m| m.id == p.sender) {
                let refusal = Event::NotSent {
                    text: &p.text,
                    reason: &reason,
                };
                deliveries.push(
                    sender
                        .outbox
                        .enqueue(frame::text(&refusal.to_json()), When::Now),
                );
            }
        }
        if let Some(sync) = &self.sync {
            sync.given_up();
        }
    }

    /// Closes the room's history at shutdown: its file is let go, and later messages are
    /// refused rather than stored where another server may be writing by then.
    pub fn close_history(&self) {
        let mut st = lock_for_queueing(&self.state);
        if st.log.is_some() {
            st.log = None;
            st.closed = true;
        }
    }

    /// True while the room cannot store messages (its last append failed).
    pub fn is_failing(&self) -> bool {
        lock_for_queueing(&self.state).failing
    }
}
