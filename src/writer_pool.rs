//! A small pool of threads that runs jobs: it grows a thread when every thread is busy and
//! lets a thread exit after a while without work. It knows nothing of what its jobs do (the
//! outbox hands it "write this queue"), so jobs and pool live apart.
//!
//! Jobs may block (a write waits on a slow socket for up to the write timeout), which is why
//! the pool grows instead of queueing behind a fixed number of threads: one member that stops
//! reading ties up one thread, never the others' writes.

use crate::log;
use crate::sync::lock;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// Work for a pool thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Stack size of pool threads: they copy bytes to sockets and need little.
const STACK: usize = 64 * 1024;

/// Threads that run [`Job`]s; see the module docs.
pub struct WriterPool {
    state: Mutex<State>,
    work: Condvar,
    idle_timeout: Duration,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

impl fmt::Debug for WriterPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("WriterPool")
            .field("jobs", &st.jobs.len())
            .field("threads", &st.threads)
            .finish()
    }
}

impl WriterPool {
    /// A pool with no threads yet; a thread idle for `idle_timeout` exits.
    pub fn new(idle_timeout: Duration) -> Arc<Self> {
        Arc::new(WriterPool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            idle_timeout,
        })
    }

    /// Runs `job` on a pool thread, starting one when none is idle. When no thread can be
    /// started and none is running, the caller runs the job itself: a job is never lost.
    pub fn run(self: &Arc<Self>, job: Job) {
        let mut st = lock(&self.state);
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() {
            self.work.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let pool = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("writer".into())
            .stack_size(STACK)
            .spawn(move || pool.work());
        let Err(e) = spawned else { return };
        let mut st = lock(&self.state);
        st.threads -= 1;
        if st.threads > 0 {
            // A running thread takes the job when it is free.
            return;
        }
        let stranded: Vec<Job> = st.jobs.drain(..).collect();
        drop(st);
        log!(
            "cannot start a writer thread ({e}): running {} job(s) on the calling thread",
            stranded.len()
        );
        for job in stranded {
            run_caught(job);
        }
    }

    /// How many threads the pool has now, busy or idle.
    pub fn threads(&self) -> usize {
        lock(&self.state).threads
    }

    fn work(self: Arc<Self>) {
        while let Some(job) = self.next_job() {
            run_caught(job);
        }
    }

    /// The next job, or `None` once the thread has waited `idle_timeout` for one (it has then
    /// left the count of threads).
    fn next_job(&self) -> Option<Job> {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            st.idle += 1;
            let (guard, wait) = self
                .work
                .wait_timeout(st, self.idle_timeout)
                .unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.idle -= 1;
            if wait.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return None;
            }
        }
    }
}

/// Runs a job; a panicking job is logged and the thread goes on. Jobs leave their own state
/// consistent when they panic (the outbox's job does), so nothing else is needed here.
fn run_caught(job: Job) {
    if panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
        log!("a writer job panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_job_and_survives_a_panicking_one() {
        let pool = WriterPool::new(Duration::from_secs(1));
        let (done, finished) = mpsc::channel();
        pool.run(Box::new(|| panic!("a bug in one job")));
        for i in 0..20 {
            let done = done.clone();
            pool.run(Box::new(move || done.send(i).unwrap()));
        }
        let mut got: Vec<i32> = (0..20)
            .map(|_| finished.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn idle_threads_exit() {
        let pool = WriterPool::new(Duration::from_millis(10));
        let (done, finished) = mpsc::channel();
        pool.run(Box::new(move || done.send(()).unwrap()));
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&pool.state).threads > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle thread stayed"
            );
            thread::yield_now();
        }
    }
}
