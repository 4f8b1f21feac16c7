//! A room shared with other nodes through their cluster (`--redis`).
//!
//! The room's stream orders it, not this node's lock: a join, a message or a leave is only
//! appended (by the member's own thread, holding no lock), and the node's reader thread applies
//! each entry it reads back, in order, under the room's lock ([`Room::apply`]). So:
//! - a message reaches this node's members when it comes back from the stream, never before
//!   and never twice: entries whose id is not after the last applied are dropped;
//! - a join is claimed in the cluster first (unique names across nodes), and the newcomer is
//!   welcomed when its own join comes back: its member list is the room's view at that entry
//!   (every node's members), its backlog the messages before it;
//! - the room's view of who is present changes only with join and leave entries, so every
//!   node tells its members the same joins and leaves, through the [`Roster`] as ever.
//!
//! [`Roster`]: crate::presence::Roster

use super::{Member, Membership, Room, State};
use crate::chat_protocol::{clean_name, name_key, Event, NameError};
use crate::cluster::entry::{Entry, EntryId};
use crate::cluster::{Claim, Claimed, Cluster, Snapshot};
use crate::frame::{self, CloseCode};
use crate::outbox::{Deliveries, Outbox, When};
use crate::presence::{Change, Roster};
use crate::sync::{lock, lock_for_queueing};
use std::sync::{Arc, Mutex};

/// A shared room's place in its stream, kept under the room's lock.
#[derive(Debug)]
pub(super) struct Following {
    /// The last entry applied: only later ones are.
    last: EntryId,
    /// Everyone in the room on every node.
    view: Vec<Arc<str>>,
    /// The room's epoch in Redis when this node started following it.
    epoch: String,
    /// Members have been told the store is unreachable.
    degraded: bool,
}

/// What applying entries found besides the frames to send.
#[derive(Debug, Default)]
#[must_use]
pub struct Applied {
    /// Frames and log lines, to be written once the lock is let go.
    pub deliveries: Deliveries,
    /// A leave of a member still connected here: the cluster took this node for dead (it was
    /// cut off longer than `--node-timeout`), so its members must claim their names again.
    pub reclaim: bool,
}

impl Room {
    /// An empty room shared through `cluster`, replaying the last `history` messages of its
    /// stream to newcomers. It follows its stream from its first join on this node.
    pub fn shared(name: &str, history: usize, cluster: Arc<dyn Cluster>) -> Arc<Room> {
        Arc::new(Room {
            name: Arc::from(name),
            state: Mutex::new(State::default()),
            roster: Roster::new(),
            history,
            sync: None,
            cluster: Some(cluster),
            followed: Mutex::new(false),
        })
    }

    /// Joins a shared room: the name is claimed across the cluster and the join appended; the
    /// welcome comes when the reader applies that join.
    pub(super) fn join_shared(
        self: &Arc<Self>,
        cluster: &Arc<dyn Cluster>,
        requested: &str,
        outbox: &Arc<Outbox>,
    ) -> Result<(Membership, Deliveries), NameError> {
        let name = clean_name(requested)?;
        let key = name_key(name);
        {
            // Held only by joiners of this room on this node, while it starts to follow.
            let mut followed = lock(&self.followed);
            if !*followed {
                cluster.follow(self).map_err(|_| NameError::Unavailable)?;
                *followed = true;
            }
        }
        let name: Arc<str> = Arc::from(name);
        let id = {
            let mut st = lock_for_queueing(&self.state);
            // A name held here is refused without asking Redis.
            if st.members.iter().any(|m| m.key == key) {
                return Err(NameError::Taken);
            }
            let id = st.next_id;
            st.next_id += 1;
            st.members.push(Member {
                id,
                name: Arc::clone(&name),
                key: key.clone(),
                outbox: Arc::clone(outbox),
                told: 0,
                welcomed: false,
            });
            id
        };
        let claim = Claim {
            name: name.to_string(),
            key,
            member: id,
        };
        let refused = match cluster.join(&self.name, &claim) {
            Ok(Claimed::Joined | Claimed::Present) => None,
            Ok(Claimed::Taken) => Some(NameError::Taken),
            Err(_) => {
                // The claim may have been made with its answer lost: let go of it.
                cluster.leave(&self.name, &claim);
                Some(NameError::Unavailable)
            }
        };
        if let Some(refused) = refused {
            let mut st = lock_for_queueing(&self.state);
            st.members.retain(|m| m.id != id);
            return Err(refused);
        }
        let membership = Membership {
            room: Arc::clone(self),
            id,
            name,
        };
        Ok((membership, Deliveries::default()))
    }

    /// Appends a message of member `id`; one the cluster did not take is refused to its sender.
    pub(super) fn say_shared(
        &self,
        cluster: &Arc<dyn Cluster>,
        id: u64,
        from: &str,
        text: &str,
        sender: &Arc<Outbox>,
    ) -> Deliveries {
        let mut deliveries = Deliveries::default();
        if let Err(reason) = cluster.say(&self.name, from, text, id) {
            let refusal = Event::NotSent {
                text,
                reason: &reason,
            };
            deliveries.push(sender.enqueue(frame::text(&refusal.to_json()), When::Now));
        }
        deliveries
    }

    /// Member `id` leaves: it is sent nothing more, and its leave is appended for everyone
    /// (this node's members included) to be told.
    pub(super) fn leave_shared(&self, cluster: &Arc<dyn Cluster>, id: u64) {
        let claim = {
            let mut st = lock_for_queueing(&self.state);
            let Some(index) = st.members.iter().position(|m| m.id == id) else {
                return;
            };
            let member = st.members.remove(index);
            Claim {
                name: member.name.to_string(),
                key: member.key,
                member: member.id,
            }
        };
        cluster.leave(&self.name, &claim);
    }

    /// Starts following the stream where `snapshot` was taken.
    pub fn start_following(&self, snapshot: Snapshot) {
        let mut st = lock_for_queueing(&self.state);
        self.take_backlog(&mut st, snapshot.backlog);
        st.following = Some(Following {
            last: snapshot.last,
            view: snapshot
                .members
                .iter()
                .map(|n| Arc::from(n.as_str()))
                .collect(),
            epoch: snapshot.epoch,
            degraded: false,
        });
    }

    fn take_backlog(&self, st: &mut State, backlog: Vec<(String, String)>) {
        let skip = backlog.len().saturating_sub(self.history);
        st.backlog = backlog
            .into_iter()
            .skip(skip)
            .map(|(from, text)| (Arc::from(from), Arc::from(text)))
            .collect();
    }

    /// The last entry applied, and the epoch followed; `None` before the room follows its
    /// stream.
    pub fn position(&self) -> Option<(EntryId, String)> {
        let st = lock_for_queueing(&self.state);
        st.following.as_ref().map(|f| (f.last, f.epoch.clone()))
    }

    /// The stream was found behind the last entry applied (Redis lost its newest entries):
    /// carry on from its real end.
    pub fn rewind(&self, last: EntryId) {
        let mut st = lock_for_queueing(&self.state);
        if let Some(f) = st.following.as_mut() {
            f.last = last;
        }
    }

    /// Applies entries read from the room's stream, in order, as node `node`; see the module
    /// docs.
    pub fn apply(&self, node: &str, entries: Vec<(EntryId, Result<Entry, String>)>) -> Applied {
        let mut applied = Applied::default();
        let deliveries = &mut applied.deliveries;
        // A batch of several entries is written by the pool, which gathers a member's frames
        // into one write; a single entry at once.
        let when = match entries.len() {
            0 | 1 => When::Now,
            _ => When::Later,
        };
        let mut st = lock_for_queueing(&self.state);
        for (id, entry) in entries {
            let Some(following) = st.following.as_mut() else {
                return applied;
            };
            if id <= following.last {
                continue;
            }
            following.last = id;
            let entry = match entry {
                Ok(entry) => entry,
                Err(why) => {
                    deliveries.note(format!("room {}: entry {id} skipped: {why}", self.name));
                    continue;
                }
            };
            match entry {
                Entry::Message {
                    from,
                    text,
                    node: from_node,
                    member,
                } => {
                    let sender = (from_node == node).then_some(member);
                    let (from, text) = (Arc::from(from), Arc::from(text));
                    self.deliver(&mut st, sender, &from, &text, when, deliveries);
                }
                Entry::Join {
                    name,
                    node: at,
                    member,
                } => {
                    let name: Arc<str> = Arc::from(name);
                    let new = !following.view.contains(&name);
                    if new {
                        following.view.push(Arc::clone(&name));
                        self.announce(&mut st, Change::Joined(Arc::clone(&name)), deliveries);
                    }
                    if at == node {
                        self.welcome(&mut st, member, deliveries);
                    }
                }
                Entry::Leave {
                    name,
                    node: at,
                    member,
                } => {
                    if let Some(i) = following.view.iter().position(|n| **n == *name) {
                        following.view.remove(i);
                        self.announce(&mut st, Change::Left(Arc::from(name)), deliveries);
                    }
                    if at == node && st.members.iter().any(|m| m.id == member) {
                        applied.reclaim = true;
                    }
                }
            }
        }
        applied
    }

    /// Welcomes member `id` if it is here and waiting: the others in the room's view, then the
    /// backlog, queued after everything it may have been sent before.
    fn welcome(&self, st: &mut State, id: u64, deliveries: &mut Deliveries) {
        let Some(following) = &st.following else {
            return;
        };
        let Some(member) = st.members.iter().find(|m| m.id == id && !m.welcomed) else {
            return;
        };
        let others: Vec<&str> = following
            .view
            .iter()
            .filter(|n| ***n != *member.name)
            .map(|n| &**n)
            .collect();
        let welcome = Event::Welcome {
            room: &self.name,
            name: &member.name,
            members: &others,
        };
        let outbox = Arc::clone(&member.outbox);
        deliveries.push(outbox.enqueue(frame::text(&welcome.to_json()), When::Now));
        for (from, text) in &st.backlog {
            let event = Event::Message {
                from,
                text,
                backlog: true,
            };
            deliveries.push(outbox.enqueue(frame::text(&event.to_json()), When::Now));
        }
        let told = self.roster.last();
        if let Some(member) = st.members.iter_mut().find(|m| m.id == id) {
            member.welcomed = true;
            member.told = told;
        }
    }

    /// Redis lost the room (its epoch is gone): follow the new stream from its start (what
    /// other nodes appended since Redis came back is news here too), with `snapshot`'s epoch
    /// and members, telling members who is no longer there and who is. This node's own members
    /// stay in the view: they claim their names again right after. The backlog starts again
    /// with the new stream's messages.
    pub fn restart(&self, snapshot: Snapshot) -> Deliveries {
        let mut deliveries = Deliveries::default();
        let mut st = lock_for_queueing(&self.state);
        let Some(old) = st.following.take() else {
            return deliveries;
        };
        let mut view: Vec<Arc<str>> = snapshot
            .members
            .iter()
            .map(|n| Arc::from(n.as_str()))
            .collect();
        for member in &st.members {
            if !view.contains(&member.name) {
                view.push(Arc::clone(&member.name));
            }
        }
        for name in old.view.iter().filter(|n| !view.contains(n)) {
            self.announce(&mut st, Change::Left(Arc::clone(name)), &mut deliveries);
        }
        for name in view.iter().filter(|n| !old.view.contains(n)) {
            self.announce(&mut st, Change::Joined(Arc::clone(name)), &mut deliveries);
        }
        st.backlog.clear();
        st.following = Some(Following {
            last: EntryId::ZERO,
            view,
            epoch: snapshot.epoch,
            degraded: old.degraded,
        });
        deliveries
    }

    /// Tells the members the room's store became unreachable (`Some(reason)`) or reachable
    /// again (`None`), once per change.
    pub fn tell_degraded(&self, problem: Option<&str>) -> Deliveries {
        let mut deliveries = Deliveries::default();
        let mut st = lock_for_queueing(&self.state);
        let Some(following) = st.following.as_mut() else {
            return deliveries;
        };
        if following.degraded == problem.is_some() {
            return deliveries;
        }
        following.degraded = problem.is_some();
        let event = match problem {
            Some(reason) => Event::Degraded { reason },
            None => Event::Restored,
        };
        let frame = frame::text(&event.to_json());
        let overflowed = st.each_member(None, &mut deliveries, |member| {
            member.outbox.enqueue(frame.clone(), When::Now)
        });
        self.remove(&mut st, overflowed, &mut deliveries);
        deliveries
    }

    /// The claims of every member here, welcomed or waiting, to be made again after a
    /// reconnect.
    pub fn claims(&self) -> Vec<Claim> {
        let st = lock_for_queueing(&self.state);
        st.members
            .iter()
            .map(|m| Claim {
                name: m.name.to_string(),
                key: m.key.clone(),
                member: m.id,
            })
            .collect()
    }

    /// Member `id` lost its name (another node's member claimed it while the cluster had
    /// forgotten ours): it is closed with 1008 and `reason`, and sent nothing more.
    pub fn expel(&self, id: u64, reason: &str) -> Deliveries {
        let mut deliveries = Deliveries::default();
        let mut st = lock_for_queueing(&self.state);
        if let Some(index) = st.members.iter().position(|m| m.id == id) {
            let member = st.members.remove(index);
            deliveries.push(member.outbox.close(CloseCode::Policy, reason, When::Now));
        }
        deliveries
    }
}
