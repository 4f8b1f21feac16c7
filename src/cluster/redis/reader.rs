//! The reader: one thread per node that follows every room the node has members in.
//!
//! It blocks in `XREAD` on all those streams at once (and on the node's wake-up stream, which
//! a new room or a shutdown writes to), from the last entry each room applied, and hands what
//! it reads to the rooms in order. When Redis cannot be reached it says the rooms are
//! degraded, waits (a bounded, jittered backoff) and connects again; then, before reading on:
//! - it checks each room: an epoch that is gone means Redis lost the room (restarted without
//!   its data), and the room starts again from the new stream; a stream whose newest entry is
//!   older than the last one applied means Redis lost its newest entries, and the room carries
//!   on from the stream's real end. Both are logged;
//! - it makes the members hash agree with the members here ([`reconcile`]): claims lost with
//!   Redis's data, or removed while this node was taken for dead, are made again (and a
//!   member whose name someone else took meanwhile is closed); leaves that could not be
//!   appended are appended now;
//! - and only then says the rooms are restored.
//!
//! Resuming from the last applied id means members who stayed connected lose nothing Redis
//! took and see nothing twice.

use super::commands::{connect, describe};
use super::{keys, reply, scripts, snapshot, RedisCluster};
use crate::cluster::backoff::Backoff;
use crate::cluster::entry::EntryId;
use crate::log;
use crate::room::Room;
use redis::ConnectionLike;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one `XREAD` blocks.
const BLOCK: Duration = Duration::from_secs(2);

/// Most entries read per stream at once.
const COUNT: usize = 1000;

/// Reader lag above this is logged...
const LAG_WORTH_LOGGING: Duration = Duration::from_secs(1);

/// ...at most this often.
const LAG_LOG_EVERY: Duration = Duration::from_secs(5);

/// Runs until the node stops.
pub(super) fn run(cluster: Arc<RedisCluster>) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut reader = Reader {
        cluster: &cluster,
        connection: None,
        wake_last: EntryId::ZERO,
        lag_logged: None,
    };
    while !cluster.stopping() {
        if let Err(why) = reader.step() {
            reader.connection = None;
            cluster.commands.reset();
            if cluster.stopping() {
                return;
            }
            cluster.set_problem(Some(why));
            cluster.sleep(backoff.next_wait());
        } else {
            backoff.reset();
        }
    }
}

struct Reader<'a> {
    cluster: &'a RedisCluster,
    connection: Option<redis::Connection>,
    /// The last entry of the wake-up stream seen.
    wake_last: EntryId,
    lag_logged: Option<Instant>,
}

impl Reader<'_> {
    /// Connects if need be, then reads and applies one batch.
    fn step(&mut self) -> Result<(), String> {
        if self.connection.is_none() {
            let mut connection = connect(&self.cluster.client, super::COMMAND_TIMEOUT, BLOCK * 2)?;
            self.wake_last = newest(&mut connection, &keys::wake(&self.cluster.node))?;
            self.resync(&mut connection)?;
            self.connection = Some(connection);
            self.cluster.set_problem(None);
        }
        let cluster = self.cluster;
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        if cluster.reclaim.swap(false, Ordering::SeqCst) {
            if let Err(why) = reconcile(cluster, connection) {
                cluster.reclaim.store(true, Ordering::SeqCst);
                return Err(why);
            }
        }
        let rooms: Vec<(Arc<Room>, EntryId)> = cluster
            .followed()
            .into_iter()
            .filter_map(|room| room.position().map(|(last, _)| (room, last)))
            .collect();
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(2000))
            .arg("STREAMS")
            .arg(keys::wake(&cluster.node));
        for (room, _) in &rooms {
            xread.arg(keys::stream(room.name()));
        }
        xread.arg(self.wake_last.to_string());
        for (_, last) in &rooms {
            xread.arg(last.to_string());
        }
        let read = connection.req_command(&xread).map_err(|e| describe(&e))?;
        let by_name: HashMap<&str, &Arc<Room>> =
            rooms.iter().map(|(room, _)| (room.name(), room)).collect();
        let mut newest_ms = None;
        for (key, entries) in reply::streams(&read)? {
            if key == keys::wake(&cluster.node) {
                if let Some((id, _)) = entries.last() {
                    self.wake_last = *id;
                }
                continue;
            }
            let Some(room) = keys::room_of(&key).and_then(|name| by_name.get(name)) else {
                continue;
            };
            if let Some((id, _)) = entries.last() {
                newest_ms = newest_ms.max(Some(id.ms));
            }
            let applied = room.apply(&cluster.node, entries);
            applied.deliveries.write();
            if applied.reclaim {
                cluster.reclaim.store(true, Ordering::SeqCst);
            }
        }
        if let Some(ms) = newest_ms {
            self.note_lag(ms);
        }
        Ok(())
    }

    /// Logs, at most every [`LAG_LOG_EVERY`], when the newest entry just applied was added
    /// more than [`LAG_WORTH_LOGGING`] ago (on Redis's clock, which is this machine's or
    /// close to it).
    fn note_lag(&mut self, added_ms: u64) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let lag_ms = now_ms.saturating_sub(added_ms);
        self.cluster.lag_ms.store(lag_ms, Ordering::Relaxed);
        let lag = Duration::from_millis(lag_ms);
        if lag < LAG_WORTH_LOGGING || self.lag_logged.is_some_and(|t| t.elapsed() < LAG_LOG_EVERY) {
            return;
        }
        self.lag_logged = Some(Instant::now());
        log!(
            "Redis reader lag: applied an entry {:.1}s after Redis took it",
            lag.as_secs_f64()
        );
    }

    /// After a (re)connect: checks every room followed, then reconciles; see the module docs.
    fn resync(&mut self, connection: &mut redis::Connection) -> Result<(), String> {
        let cluster = self.cluster;
        for room in cluster.followed() {
            let Some((last, epoch)) = room.position() else {
                continue;
            };
            let name = room.name();
            let mut check = redis::cmd("EVAL");
            check
                .arg(scripts::CHECK)
                .arg(2)
                .arg(keys::stream(name))
                .arg(keys::epoch(name));
            let found = connection.req_command(&check).map_err(|e| describe(&e))?;
            let [found_epoch, newest] = reply::list(&found)? else {
                return Err("unexpected reply to the room check".into());
            };
            let newest = reply::text(newest)?;
            let newest = EntryId::parse(&newest).ok_or("bad entry id in the room check")?;
            if reply::text(found_epoch).ok().as_deref() != Some(epoch.as_str()) {
                log!(
                    "room {name}: Redis no longer has this room (its epoch is gone: restarted \
                     without its data?); following its new stream from the start"
                );
                let fresh = connection
                    .req_command(&cluster.snapshot_cmd(name))
                    .map_err(|e| describe(&e))?;
                room.restart(snapshot(&fresh)?).write();
                cluster.reclaim.store(true, Ordering::SeqCst);
            } else if newest < last {
                log!(
                    "room {name}: the stream ends at {newest}, before {last} which this node \
                     already applied: Redis lost its newest entries; carrying on from {newest}"
                );
                room.rewind(newest);
            }
        }
        cluster.reclaim.store(false, Ordering::SeqCst);
        reconcile(cluster, connection)
    }
}

/// The id of the newest entry of `stream` (`0-0` when it has none).
fn newest(connection: &mut redis::Connection, stream: &str) -> Result<EntryId, String> {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
    let found = connection.req_command(&cmd).map_err(|e| describe(&e))?;
    match reply::list(&found)?.first() {
        None => Ok(EntryId::ZERO),
        Some(entry) => Ok(reply::entry(entry)?.0),
    }
}

/// Makes each followed room's members hash agree with this node's members: every member here
/// holds its claim (made again if Redis lost it or it was removed; a member whose name is now
/// someone else's is closed), and no claim of this node is left without its member (those
/// leaves are appended now).
fn reconcile(cluster: &RedisCluster, connection: &mut redis::Connection) -> Result<(), String> {
    let run = |connection: &mut redis::Connection, cmd: &redis::Cmd| {
        connection.req_command(cmd).map_err(|e| describe(&e))
    };
    for room in cluster.followed() {
        let name = room.name();
        let mut all = redis::cmd("HGETALL");
        all.arg(keys::members(name));
        let found = run(connection, &all)?;
        let mut recorded: HashMap<String, String> = HashMap::new();
        for pair in reply::list(&found)?.chunks(2) {
            if let [key, value] = pair {
                recorded.insert(reply::text(key)?, reply::text(value)?);
            }
        }
        let claims = room.claims();
        for claim in &claims {
            if recorded.get(&claim.key) == Some(&cluster.value(claim)) {
                continue;
            }
            let joined = run(connection, &cluster.join_cmd(name, claim))?;
            if reply::text(&joined)? == "taken" {
                log!(
                    "room {name}: {:?} was claimed on another node while Redis had lost this \
                     node's claim: closing that member",
                    claim.name
                );
                let reason =
                    "your name was taken while the chat's store was unreachable: join again";
                room.expel(claim.member, reason).write();
            }
        }
        for (key, value) in &recorded {
            let Some((node, member, member_name)) = keys::parse_member_value(value) else {
                continue;
            };
            if node != cluster.node || claims.iter().any(|c| c.member == member) {
                continue;
            }
            let gone = crate::cluster::Claim {
                name: member_name.to_string(),
                key: key.clone(),
                member,
            };
            run(connection, &cluster.leave_cmd(name, &gone))?;
        }
    }
    Ok(())
}
