//! Several nodes, one chat: rooms shared through Redis Streams (`--redis`).
//!
//! Each room is one stream. A node appends what happens in it (a message, a join, a leave) and
//! delivers to its own members only what it reads back, in the stream's order, from one
//! reader thread: so every member on every node sees the same order, a node delivers its own
//! members' messages only once Redis has them, and after a reconnect it resumes from the last
//! entry it applied, losing nothing Redis took and repeating nothing (ids only increase).
//!
//! This module is what a [`Room`] needs from the cluster, the [`Cluster`] trait, and the parts
//! that do not need Redis: the stream's entries ([`entry`]) and the reconnect `backoff`. The
//! implementation on Redis is the `redis` module (with the `redis` cargo feature). The room's
//! side, applying entries under its lock, is in [`crate::room`].

#[cfg(any(feature = "redis", test))]
pub mod backoff;
pub mod entry;
#[cfg(feature = "redis")]
pub mod redis;

use crate::config::Config;
use crate::room::Room;
use entry::EntryId;
use std::io;
use std::sync::Arc;

/// A local member's hold on its name in a room, as the cluster records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The name as shown.
    pub name: String,
    /// The name's look-alike key ([`crate::chat_protocol::name_key`]): unique in the room
    /// across every node.
    pub key: String,
    /// The member's number in the room on this node.
    pub member: u64,
}

/// What claiming a name found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The name is ours now; its join entry is in the stream.
    Joined,
    /// This claim was already recorded (a reconnect re-announcing its members).
    Present,
    /// Someone (on any node) holds the name, or one that looks the same.
    Taken,
}

/// Where a room's stream stands when a node starts following it: read atomically, so that the
/// backlog and the member list are exactly those up to `last`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Made once with the room's stream; a different one later means Redis lost the room.
    pub epoch: String,
    /// The newest entry: the node applies what comes after it.
    pub last: EntryId,
    /// The newest messages (`from`, `text`), oldest first, at most `--history`.
    pub backlog: Vec<(String, String)>,
    /// Everyone in the room on every node.
    pub members: Vec<String>,
}

/// What the cluster reports to `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Redis can be reached now.
    pub up: bool,
    /// Times the reader connected again after losing Redis.
    pub reconnects: u64,
    /// How long after Redis took it the newest entry applied was applied, in milliseconds.
    pub reader_lag_ms: u64,
}

/// What a room asks of the cluster. Every call may block on the network (a bounded time) and
/// is made holding no room lock.
pub trait Cluster: Send + Sync + std::fmt::Debug {
    /// This node's id, as written in the entries it appends.
    fn node(&self) -> &str;

    /// Starts following `room`: reads its [`Snapshot`], hands it to the room, and has the
    /// reader apply every entry after it. Called once, before the room's first join here.
    fn follow(&self, room: &Arc<Room>) -> Result<(), String>;

    /// Claims a name in `room` and appends the join; the member is welcomed when the reader
    /// applies it.
    fn join(&self, room: &str, claim: &Claim) -> Result<Claimed, String>;

    /// Lets go of a name and appends the leave (if the claim is still ours). Failures are
    /// made good when the node reconnects, so this returns nothing.
    fn leave(&self, room: &str, claim: &Claim);

    /// Appends a message; `Err` says why it was not taken (nobody receives it).
    fn say(&self, room: &str, from: &str, text: &str, member: u64) -> Result<(), String>;

    /// What is wrong right now (Redis unreachable), for `/healthz`; `None` when all is well.
    fn problem(&self) -> Option<String>;

    /// Numbers for `/metrics`.
    fn stats(&self) -> Stats;

    /// Stops the reader and the heartbeat, and lets go of this node's members and liveness.
    /// Called once the server has closed every connection.
    fn stop(&self);
}

/// Connects this node to the Redis of `config.redis` (the caller checked it is set). Redis
/// need not be up yet: the node starts degraded and keeps trying. An error only when this
/// build cannot do it at all.
pub fn start(config: &Config) -> io::Result<Arc<dyn Cluster>> {
    #[cfg(feature = "redis")]
    {
        let url = config.redis.as_deref().unwrap_or_default();
        let cluster = redis::RedisCluster::start(url, config)?;
        Ok(cluster)
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = config;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "--redis: this wschat was built without Redis support (cargo build --features redis)",
        ))
    }
}

/// 64 random bits from the standard library's per-process hash keys, the time and a counter:
/// enough for node ids and jitter, which need to differ, not to be secret.
#[cfg(any(feature = "redis", test))]
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ() {
        let values: std::collections::HashSet<u64> = (0..100).map(|_| random_u64()).collect();
        assert_eq!(values.len(), 100);
    }
}
