//! One thread that runs small jobs at deadlines, for every connection: the bound on a lingering
//! close is one entry here, not a thread per connection or a poll loop. It knows nothing of
//! what its jobs do. It sleeps until the earliest deadline, so when nothing is due it costs no
//! CPU, and it exits after a while with nothing to do.

use crate::log;
use crate::sync::lock;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long the thread waits with nothing due before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// A job to run at a deadline. It must be quick: every other deadline waits for it.
pub type Job = Box<dyn FnOnce() + Send>;

struct Entry {
    at: Instant,
    /// Breaks ties so that jobs due at the same instant run in the order they were added.
    seq: u64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct State {
    due: BinaryHeap<Reverse<Entry>>,
    next_seq: u64,
    running: bool,
}

/// Runs jobs at their deadlines; see the module docs.
pub struct Timer {
    state: Mutex<State>,
    changed: Condvar,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("pending", &lock(&self.state).due.len())
            .finish()
    }
}

impl Timer {
    /// A timer; its thread starts with the first job.
    pub fn new() -> Arc<Self> {
        Arc::new(Timer {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// Runs `job` at `at` (at once if that has passed). If the timer's thread cannot be
    /// started, the job runs now on the caller's thread: a bound that fires early is better
    /// than one that never fires.
    pub fn at(self: &Arc<Self>, at: Instant, job: Job) {
        let mut st = lock(&self.state);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.due.push(Reverse(Entry { at, seq, job }));
        if st.running {
            self.changed.notify_one();
            return;
        }
        st.running = true;
        drop(st);
        let timer = Arc::clone(self);
        let started = thread::Builder::new()
            .name("timer".into())
            .stack_size(64 * 1024)
            .spawn(move || timer.work());
        if let Err(e) = started {
            log!("cannot start the timer thread ({e}): running its jobs now");
            let jobs: Vec<Entry> = {
                let mut st = lock(&self.state);
                st.running = false;
                st.due.drain().map(|Reverse(entry)| entry).collect()
            };
            for entry in jobs {
                run_caught(entry.job);
            }
        }
    }

    fn work(self: Arc<Self>) {
        let mut st = lock(&self.state);
        loop {
            let now = Instant::now();
            match st.due.peek() {
                Some(Reverse(first)) if first.at <= now => {
                    let Some(Reverse(entry)) = st.due.pop() else {
                        continue;
                    };
                    drop(st);
                    run_caught(entry.job);
                    st = lock(&self.state);
                }
                Some(Reverse(first)) => {
                    let wait = first.at - now;
                    st = self
                        .changed
                        .wait_timeout(st, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    let (guard, wait) = self
                        .changed
                        .wait_timeout(st, IDLE_EXIT)
                        .unwrap_or_else(PoisonError::into_inner);
                    st = guard;
                    if wait.timed_out() && st.due.is_empty() {
                        // The next job starts a new thread.
                        st.running = false;
                        return;
                    }
                }
            }
        }
    }
}

fn run_caught(job: Job) {
    if panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
        log!("a timer job panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_in_deadline_order_and_not_before() {
        let timer = Timer::new();
        let (done, finished) = mpsc::channel();
        let start = Instant::now();
        for (i, ms) in [(0, 60), (1, 20), (2, 40)] {
            let done = done.clone();
            let at = start + Duration::from_millis(ms);
            timer.at(
                at,
                Box::new(move || done.send((i, Instant::now() >= at)).unwrap()),
            );
        }
        let order: Vec<(i32, bool)> = (0..3)
            .map(|_| finished.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(order, [(1, true), (2, true), (0, true)]);
    }
}
