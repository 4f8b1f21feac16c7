//! Commands from many threads over one connection, pipelined: a group commit.
//!
//! A member's thread that appends a message waits for Redis's answer (its message is refused
//! if Redis did not take it). Rather than a connection per thread, commands wait in one queue;
//! a thread that finds nobody sending becomes the sender, takes everything queued, writes it
//! as one pipeline and hands each waiting thread its reply. A busy node thus pays one round
//! trip per batch of commands, not per command, and Redis sees one connection per node.
//!
//! Every wait is bounded: the connection has read and write timeouts, and after a failed
//! connect the next try waits [`RETRY_AFTER`], so that a Redis that is down costs a sender
//! one quick refusal rather than a connect timeout each.

use crate::sync::lock;
use redis::{Cmd, ConnectionLike, Value};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most commands sent in one pipeline.
const MAX_BATCH: usize = 1024;

/// After a failed connect, commands are refused without trying again for this long.
pub const RETRY_AFTER: Duration = Duration::from_millis(250);

/// A connection idle this long is checked with a `PING` before a batch is sent on it: Redis
/// may have restarted meanwhile, and a batch sent on a dead connection would be refused.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The connection and what the last attempt to make one found.
struct Link {
    connection: Option<redis::Connection>,
    /// When the connection last answered.
    used: Instant,
    failed: Option<(Instant, String)>,
}

#[derive(Default)]
struct Queue {
    next: u64,
    waiting: Vec<(u64, Cmd)>,
    replies: HashMap<u64, Result<Value, String>>,
    sending: bool,
}

/// Commands sent to one Redis over one connection; see the module docs.
pub struct Commands {
    client: redis::Client,
    timeout: Duration,
    queue: Mutex<Queue>,
    answered: Condvar,
    link: Mutex<Link>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

/// Opens a connection to `client`'s Redis whose every read and write gives up after `timeout`
/// (`read_timeout` for reads, which a blocking read needs longer).
pub fn connect(
    client: &redis::Client,
    timeout: Duration,
    read_timeout: Duration,
) -> Result<redis::Connection, String> {
    let connection = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| describe(&e))?;
    connection
        .set_write_timeout(Some(timeout))
        .and_then(|()| connection.set_read_timeout(Some(read_timeout)))
        .map_err(|e| describe(&e))?;
    Ok(connection)
}

/// A Redis error in a few words, for a person.
pub fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "Redis did not answer in time".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        format!("cannot reach Redis ({e})")
    } else {
        format!("Redis refused it ({e})")
    }
}

impl Commands {
    /// Commands to `client`'s Redis, each waiting at most about `timeout`.
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        Commands {
            client,
            timeout,
            queue: Mutex::new(Queue::default()),
            answered: Condvar::new(),
            link: Mutex::new(Link {
                connection: None,
                used: Instant::now(),
                failed: None,
            }),
        }
    }

    /// Runs one command and returns its reply; an error (Redis's own, or why it could not be
    /// asked) in words for a person.
    pub fn run(&self, cmd: Cmd) -> Result<Value, String> {
        let mut queue = lock(&self.queue);
        let ticket = queue.next;
        queue.next += 1;
        queue.waiting.push((ticket, cmd));
        loop {
            if let Some(reply) = queue.replies.remove(&ticket) {
                return reply;
            }
            if queue.sending {
                queue = self
                    .answered
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.sending = true;
            let take = queue.waiting.len().min(MAX_BATCH);
            let batch: Vec<(u64, Cmd)> = queue.waiting.drain(..take).collect();
            drop(queue);
            let (tickets, cmds): (Vec<u64>, Vec<Cmd>) = batch.into_iter().unzip();
            let replies = self.send(cmds);
            queue = lock(&self.queue);
            queue.replies.extend(tickets.into_iter().zip(replies));
            queue.sending = false;
            self.answered.notify_all();
        }
    }

    /// Lets go of the connection (the reader found Redis gone): the next batch makes a new
    /// one rather than fail on the dead one.
    pub fn reset(&self) {
        lock(&self.link).connection = None;
    }

    /// Sends `cmds` as one pipeline; one reply per command.
    fn send(&self, cmds: Vec<Cmd>) -> Vec<Result<Value, String>> {
        let count = cmds.len();
        let fail = |why: &str| vec![Err(why.to_string()); count];
        let mut link = lock(&self.link);
        if link.used.elapsed() >= CHECK_AFTER_IDLE {
            if let Some(connection) = link.connection.as_mut() {
                if connection.req_command(&redis::cmd("PING")).is_err() {
                    link.connection = None;
                }
            }
        }
        if link.connection.is_none() {
            if let Some((at, why)) = &link.failed {
                if at.elapsed() < RETRY_AFTER {
                    return fail(why);
                }
            }
            match connect(&self.client, self.timeout, self.timeout) {
                Ok(connection) => {
                    link.connection = Some(connection);
                    link.failed = None;
                }
                Err(why) => {
                    let refused = fail(&why);
                    link.failed = Some((Instant::now(), why));
                    return refused;
                }
            }
        }
        let Some(connection) = link.connection.as_mut() else {
            return fail("no connection to Redis");
        };
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd);
        }
        let sent = connection.req_packed_commands(&pipe.get_packed_pipeline(), 0, count);
        link.used = Instant::now();
        match sent {
            Ok(values) if values.len() == count => values
                .into_iter()
                .map(|value| match value {
                    Value::ServerError(e) => Err(format!("Redis refused it ({e})")),
                    value => Ok(value),
                })
                .collect(),
            Ok(_) => {
                link.connection = None;
                fail("Redis answered out of step")
            }
            Err(e) => {
                // The connection may hold half a reply: never reuse it. Whether Redis took
                // the commands is unknown.
                link.connection = None;
                let why = format!("{} (it may still have been taken)", describe(&e));
                link.failed = Some((Instant::now(), why.clone()));
                fail(&why)
            }
        }
    }
}
