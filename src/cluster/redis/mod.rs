//! The cluster on Redis: streams, a members hash per room, node liveness keys.
//!
//! A node has three kinds of threads talking to Redis:
//! - members' own threads append (a message, a join, a leave) through `Commands`, one
//!   pipelined connection shared by the node;
//! - one `reader` follows every room this node has members in, with a blocking `XREAD`, and
//!   applies what it reads; after a reconnect it checks each room (did Redis lose it?) and
//!   makes good what the outage left undone (see `reader`);
//! - one `heartbeat` refreshes the node's liveness key every third of `--node-timeout`, and
//!   removes the members of nodes whose key expired.
//!
//! The keys are listed in [`keys`], the scripts that change several at once in `scripts`.
//! Every script is atomic and can run twice without harm, so nodes never need to agree on who
//! does what: two nodes cleaning up after the same dead node append its leaves once.

mod commands;
mod heartbeat;
pub mod keys;
mod reader;
pub mod reply;
mod scripts;

use super::entry::Entry;
use super::{random_u64, Claim, Claimed, Cluster, Snapshot, Stats};
use crate::config::Config;
use crate::log;
use crate::room::Room;
use crate::sync::lock;
use commands::Commands;
use redis::{Cmd, Value};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one command may take before it is given up (and a message refused).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// This node, one of several sharing their rooms through one Redis.
pub struct RedisCluster {
    url: String,
    node: String,
    client: redis::Client,
    commands: Commands,
    /// Entries kept per stream (`MAXLEN ~`, from `--history-keep`).
    keep: usize,
    /// Messages a newcomer receives.
    history: usize,
    node_timeout: Duration,
    /// Every room this node follows.
    followed: Mutex<Vec<Arc<Room>>>,
    /// Redis cannot be reached: why, and since when.
    problem: Mutex<Option<(String, Instant)>>,
    /// Times the reader connected again after losing Redis (`/metrics`).
    reconnects: AtomicU64,
    /// The reader's lag at the newest entry it applied, in milliseconds (`/metrics`).
    lag_ms: AtomicU64,
    /// This node's members must claim their names again (it was taken for dead, or a leave
    /// could not be appended): the reader does so before it reads on.
    reclaim: AtomicBool,
    stopping: Mutex<bool>,
    stop_signal: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("url", &self.url)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl RedisCluster {
    /// This node on the Redis at `url`, with its reader and heartbeat running.
    pub fn start(url: &str, config: &Config) -> io::Result<Arc<RedisCluster>> {
        let client = redis::Client::open(url).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("--redis {url}: {e}"))
        })?;
        let cluster = Arc::new(RedisCluster {
            url: url.to_string(),
            node: format!("{:016x}", random_u64()),
            commands: Commands::new(client.clone(), COMMAND_TIMEOUT),
            client,
            keep: config.history_keep,
            history: config.history,
            node_timeout: config.node_timeout,
            followed: Mutex::new(Vec::new()),
            problem: Mutex::new(None),
            reconnects: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            reclaim: AtomicBool::new(false),
            stopping: Mutex::new(false),
            stop_signal: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for (name, run) in [
            ("redis-reader", reader::run as fn(Arc<RedisCluster>)),
            ("redis-heartbeat", heartbeat::run),
        ] {
            let this = Arc::clone(&cluster);
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(this))
                .map_err(|e| io::Error::new(e.kind(), format!("cannot start {name}: {e}")))?;
            threads.push(thread);
        }
        *lock(&cluster.threads) = threads;
        log!(
            "rooms shared through Redis at {url} as node {} (each room's stream is its history: \
             --data and --fsync do not apply to chat messages)",
            cluster.node
        );
        Ok(cluster)
    }

    /// True once [`Cluster::stop`] was called.
    fn stopping(&self) -> bool {
        *lock(&self.stopping)
    }

    /// Sleeps `wait`, or less if the node stops meanwhile.
    fn sleep(&self, wait: Duration) {
        let stopping = lock(&self.stopping);
        let _ = self
            .stop_signal
            .wait_timeout_while(stopping, wait, |stopping| !*stopping)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Wakes the reader from its blocking read (a room to follow, members to reclaim).
    fn wake_reader(&self) {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys::wake(&self.node))
            .arg("MAXLEN")
            .arg(16)
            .arg("*")
            .arg("wake")
            .arg(1);
        let _ = self.commands.run(cmd);
    }

    /// The rooms followed.
    fn followed(&self) -> Vec<Arc<Room>> {
        lock(&self.followed).clone()
    }

    /// Records whether Redis can be reached, logging and telling every room's members when
    /// that changes.
    fn set_problem(&self, problem: Option<String>) {
        let changed = {
            let mut current = lock(&self.problem);
            match (&*current, problem) {
                (None, Some(why)) => {
                    log!(
                        "Redis at {} unreachable ({why}): rooms degraded, messages refused; reconnecting",
                        self.url
                    );
                    *current = Some((why.clone(), Instant::now()));
                    Some(Some(why))
                }
                (Some((_, since)), None) => {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                    log!(
                        "Redis at {} reachable again after {:.1}s: rooms restored",
                        self.url,
                        since.elapsed().as_secs_f64()
                    );
                    *current = None;
                    Some(None)
                }
                _ => None,
            }
        };
        let Some(problem) = changed else {
            return;
        };
        let reason = problem.map(|why| format!("the chat cannot reach its shared store: {why}"));
        for room in self.followed() {
            room.tell_degraded(reason.as_deref()).write();
        }
    }

    /// The members hash value of `claim` for this node.
    fn value(&self, claim: &Claim) -> String {
        keys::member_value(&self.node, claim.member, &claim.name)
    }

    fn join_cmd(&self, room: &str, claim: &Claim) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::JOIN)
            .arg(3)
            .arg(keys::stream(room))
            .arg(keys::members(room))
            .arg(keys::node_rooms(&self.node))
            .arg(&claim.key)
            .arg(self.value(claim))
            .arg(self.keep)
            .arg(room)
            .arg(&claim.name)
            .arg(&self.node)
            .arg(claim.member);
        cmd
    }

    fn leave_cmd(&self, room: &str, claim: &Claim) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::LEAVE)
            .arg(2)
            .arg(keys::stream(room))
            .arg(keys::members(room))
            .arg(&claim.key)
            .arg(self.value(claim))
            .arg(self.keep)
            .arg(&claim.name)
            .arg(&self.node)
            .arg(claim.member);
        cmd
    }

    fn snapshot_cmd(&self, room: &str) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::SNAPSHOT)
            .arg(3)
            .arg(keys::stream(room))
            .arg(keys::members(room))
            .arg(keys::epoch(room))
            .arg(format!("{:016x}", random_u64()))
            .arg(self.history);
        cmd
    }

    fn cleanup_cmd(&self, node: &str) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(scripts::CLEANUP)
            .arg(3)
            .arg(keys::NODES)
            .arg(keys::node(node))
            .arg(keys::node_rooms(node))
            .arg(node)
            .arg(self.keep)
            .arg(keys::ROOM_PREFIX);
        cmd
    }
}

/// Reads the reply of [`scripts::SNAPSHOT`].
fn snapshot(value: &Value) -> Result<Snapshot, String> {
    let [epoch, last, messages, members] = reply::list(value)? else {
        return Err("a snapshot is not [epoch, last, messages, members]".into());
    };
    let last = reply::text(last)?;
    let mut backlog = Vec::new();
    for message in reply::list(messages)?.iter().rev() {
        if let (_, Ok(Entry::Message { from, text, .. })) = reply::entry(message)? {
            backlog.push((from, text));
        }
    }
    Ok(Snapshot {
        epoch: reply::text(epoch)?,
        last: super::entry::EntryId::parse(&last)
            .ok_or_else(|| format!("bad entry id {last:?}"))?,
        backlog,
        members: reply::list(members)?
            .iter()
            .map(reply::text)
            .collect::<Result<_, _>>()?,
    })
}

impl Cluster for RedisCluster {
    fn node(&self) -> &str {
        &self.node
    }

    fn follow(&self, room: &Arc<Room>) -> Result<(), String> {
        let found = self.commands.run(self.snapshot_cmd(room.name()))?;
        room.start_following(snapshot(&found)?);
        lock(&self.followed).push(Arc::clone(room));
        self.wake_reader();
        Ok(())
    }

    fn join(&self, room: &str, claim: &Claim) -> Result<Claimed, String> {
        let found = self
            .commands
            .run(self.join_cmd(room, claim))
            .inspect_err(|why| {
                log!("room {room}: cannot claim the name {:?}: {why}", claim.name);
            })?;
        match reply::text(&found)?.as_str() {
            "joined" => Ok(Claimed::Joined),
            "present" => Ok(Claimed::Present),
            "taken" => Ok(Claimed::Taken),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    fn leave(&self, room: &str, claim: &Claim) {
        if let Err(why) = self.commands.run(self.leave_cmd(room, claim)) {
            log!(
                "room {room}: the leave of {:?} could not be appended ({why}); retried once Redis answers",
                claim.name
            );
            self.reclaim.store(true, Ordering::SeqCst);
        }
    }

    fn say(&self, room: &str, from: &str, text: &str, member: u64) -> Result<(), String> {
        let entry = Entry::Message {
            from: from.to_string(),
            text: text.to_string(),
            node: self.node.clone(),
            member,
        };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(keys::stream(room))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.keep)
            .arg("*");
        for (name, value) in entry.fields() {
            cmd.arg(name).arg(value);
        }
        self.commands
            .run(cmd)
            .map(drop)
            .map_err(|why| format!("the chat's shared store did not take it: {why}"))
    }

    fn stats(&self) -> Stats {
        Stats {
            up: lock(&self.problem).is_none(),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            reader_lag_ms: self.lag_ms.load(Ordering::Relaxed),
        }
    }

    fn problem(&self) -> Option<String> {
        lock(&self.problem).as_ref().map(|(why, since)| {
            format!(
                "cannot reach Redis at {} for {:.0}s: {why}",
                self.url,
                since.elapsed().as_secs_f64()
            )
        })
    }

    fn stop(&self) {
        {
            let mut stopping = lock(&self.stopping);
            if *stopping {
                return;
            }
            *stopping = true;
        }
        self.stop_signal.notify_all();
        self.wake_reader();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
        heartbeat::farewell(self);
        lock(&self.followed).clear();
    }
}
