//! Node liveness: each node refreshes `wschat:node:ID` (expiring after `--node-timeout`)
//! every third of the timeout, and looks for nodes whose key has expired: their members are
//! removed (claims released, leaves appended) by [`super::scripts::CLEANUP`], which any node
//! may run and which does the work once.
//!
//! The bound: a node killed at time T refreshed its key at most a third of the timeout
//! before, so the key is gone by T + timeout, and the next heartbeat of any other node, at
//! most a third of the timeout later, removes its members. With the default 15 s, within 20 s.

use super::{keys, reply, RedisCluster};
use crate::log;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Runs until the node stops.
pub(super) fn run(cluster: Arc<RedisCluster>) {
    let period = cluster.node_timeout / 3;
    while !cluster.stopping() {
        beat(&cluster);
        cluster.sleep(period);
    }
}

/// One heartbeat. Failures are left to the reader, which notices the same outage and says so.
fn beat(cluster: &RedisCluster) {
    let mut refresh = redis::cmd("SET");
    refresh
        .arg(keys::node(&cluster.node))
        .arg(crate::log::timestamp_now())
        .arg("PX")
        .arg(u64::try_from(cluster.node_timeout.as_millis()).unwrap_or(u64::MAX))
        .arg("GET");
    let Ok(before) = cluster.commands.run(refresh) else {
        return;
    };
    if before == redis::Value::Nil {
        // Our key had expired (or Redis lost it): the others may have removed our members.
        cluster.reclaim.store(true, Ordering::SeqCst);
        cluster.wake_reader();
    }
    let mut join = redis::cmd("SADD");
    join.arg(keys::NODES).arg(&cluster.node);
    if cluster.commands.run(join).is_err() {
        return;
    }
    let Ok(nodes) = cluster
        .commands
        .run(redis::cmd("SMEMBERS").arg(keys::NODES).clone())
    else {
        return;
    };
    let Ok(nodes) = reply::list(&nodes) else {
        return;
    };
    for node in nodes.iter().filter_map(|n| reply::text(n).ok()) {
        if node == cluster.node {
            continue;
        }
        let mut alive = redis::cmd("EXISTS");
        alive.arg(keys::node(&node));
        if !matches!(
            cluster.commands.run(alive).map(|v| reply::int(&v)),
            Ok(Ok(0))
        ) {
            continue;
        }
        match cluster.commands.run(cluster.cleanup_cmd(&node)) {
            Ok(removed) => match reply::int(&removed) {
                Ok(n) if n > 0 => log!(
                    "node {node} stopped answering (no heartbeat for {}s): its {n} member(s) removed",
                    cluster.node_timeout.as_secs()
                ),
                _ => {}
            },
            Err(why) => log!("cannot remove the members of node {node}: {why}"),
        }
    }
}

/// At shutdown, once every connection has closed: whatever claims this node still holds
/// (leaves that could not be appended) are released with their leaves, and the node is
/// forgotten. Best effort: if Redis cannot be reached, the others clean up after the timeout.
pub(super) fn farewell(cluster: &RedisCluster) {
    let mut forget = redis::cmd("DEL");
    forget.arg(keys::node(&cluster.node));
    if cluster.commands.run(forget).is_ok() {
        let _ = cluster.commands.run(cluster.cleanup_cmd(&cluster.node));
    }
    let mut wake = redis::cmd("DEL");
    wake.arg(keys::wake(&cluster.node));
    let _ = cluster.commands.run(wake);
}
