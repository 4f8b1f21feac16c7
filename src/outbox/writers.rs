//! What every outbox of a server shares, and the two words a caller chooses with: how much a
//! queue may hold ([`QueueLimits`]) and when a frame is written ([`When`]).

use super::Outbox;
use crate::metrics::Metrics;
use crate::sync::lock;
use crate::timer::Timer;
use crate::writer_pool::WriterPool;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long [`When::Soon`] frames wait to be written together.
pub const SOON: Duration = Duration::from_millis(25);

/// How much may wait in one connection's queue for frames from others.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most bytes waiting (including a batch being written).
    pub bytes: usize,
    /// Most frames waiting, when set; `None` lets the byte bound decide alone.
    pub messages: Option<usize>,
}

/// When a queued frame is written; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// By the caller, as far as the socket has room; the pool writes the rest.
    Now,
    /// By the pool, batched with whatever else piles up.
    Later,
    /// By the connection's own thread, which waits until the frame is out.
    Waiting,
    /// Within [`SOON`], by one thread for every queue that asked in that time: for joins and
    /// leaves, so that a storm of them costs each member one write per moment, not one per
    /// event, while later ones merge into those still waiting.
    Soon,
}

/// What every outbox of a server shares: the limits, the pool that writes, the timer that
/// bounds lingering closes, and the server's counters.
#[derive(Debug)]
pub struct Writers {
    pub(super) limits: QueueLimits,
    pub(super) linger: Duration,
    pub(super) pool: Arc<WriterPool>,
    pub(super) timer: Arc<Timer>,
    /// Broadcasts whose senders are writing them right now. While one is, the next goes to
    /// the pool: several senders writing every member's socket at once would pay a system
    /// call per frame and member, where a pool thread writes a member's pile in one.
    pub(super) broadcasting: AtomicUsize,
    /// Where the frames and bytes written are counted.
    pub(super) metrics: Arc<Metrics>,
    /// Queues whose turn waits for the next [`When::Soon`] round.
    pub(super) soon: Mutex<Vec<Arc<Outbox>>>,
}

impl Writers {
    /// Shared state for outboxes with `limits`, whose closes linger at most `linger`, counting
    /// into metrics of their own.
    pub fn new(limits: QueueLimits, linger: Duration) -> Arc<Self> {
        Writers::with_metrics(limits, linger, Arc::new(Metrics::new()))
    }

    /// Like [`Writers::new`], counting into the server's `metrics`.
    pub fn with_metrics(limits: QueueLimits, linger: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Writers {
            limits,
            linger,
            pool: WriterPool::new(Duration::from_secs(10)),
            timer: Timer::new(),
            broadcasting: AtomicUsize::new(0),
            metrics,
            soon: Mutex::new(Vec::new()),
        })
    }

    /// Writes `outbox`'s queue (its turn is the caller's) in the next [`When::Soon`] round,
    /// starting a round when none is waiting.
    pub(super) fn write_soon(self: &Arc<Self>, outbox: Arc<Outbox>) {
        let mut waiting = lock(&self.soon);
        waiting.push(outbox);
        if waiting.len() > 1 {
            return;
        }
        drop(waiting);
        let writers = Arc::downgrade(self);
        self.timer.at(
            Instant::now() + SOON,
            Box::new(move || {
                if let Some(writers) = writers.upgrade() {
                    writers.soon_round();
                }
            }),
        );
    }

    /// One [`When::Soon`] round: every queue that asked, written as far as its socket takes it
    /// now; the pool writes the rest.
    fn soon_round(&self) {
        let due = std::mem::take(&mut *lock(&self.soon));
        for outbox in due {
            if !outbox.write_without_waiting() {
                outbox.hand_to_pool();
            }
        }
    }

    /// How many threads the writer pool has now.
    pub fn writer_threads(&self) -> usize {
        self.pool.threads()
    }
}
