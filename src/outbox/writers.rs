//! What every outbox of a server shares, and the two words a caller chooses with: how much a
//! queue may hold ([`QueueLimits`]) and when a frame is written ([`When`]).

use crate::metrics::Metrics;
use crate::timer::Timer;
use crate::writer_pool::WriterPool;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

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
        })
    }

    /// How many threads the writer pool has now.
    pub fn writer_threads(&self) -> usize {
        self.pool.threads()
    }
}
