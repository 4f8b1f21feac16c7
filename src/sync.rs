//! Locking that survives a panicking thread, and the rule that some locks are held only to
//! queue.
//!
//! A panic in one connection's thread must never make the room unusable for everyone else
//! (socket.io and engine.io lost whole processes that way). Every shared structure in wschat is
//! only ever changed by short critical sections that leave it consistent at each step, so a
//! poisoned mutex still holds valid data and it is safe to keep using it.
//!
//! The room's lock orders every event for every member, so nothing slow may happen under it:
//! no socket write, no `shutdown(2)`, no log line (a blocking `write(2)` on stderr). Code that
//! holds it works through [`lock_for_queueing`], and the places that do such I/O call
//! [`assert_io_allowed`], so a test that breaks the rule fails instead of passing slowly.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning (see the module docs for why that is sound here).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// How many queue-only locks this thread holds.
    static QUEUE_ONLY: Cell<usize> = const { Cell::new(0) };
}

/// A guard of a lock under which the thread may only queue; see [`lock_for_queueing`].
#[derive(Debug)]
pub struct QueueOnly<'a, T>(MutexGuard<'a, T>);

/// Locks `mutex` like [`lock`] and marks the thread as one that may only queue until the guard
/// is dropped.
pub fn lock_for_queueing<T>(mutex: &Mutex<T>) -> QueueOnly<'_, T> {
    let guard = lock(mutex);
    QUEUE_ONLY.with(|n| n.set(n.get() + 1));
    QueueOnly(guard)
}

impl<T> Deref for QueueOnly<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for QueueOnly<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for QueueOnly<'_, T> {
    fn drop(&mut self) {
        QUEUE_ONLY.with(|n| n.set(n.get() - 1));
    }
}

/// Panics when the current thread holds a queue-only lock: `what` (a socket write, a log
/// line) would make everyone waiting for that lock wait on I/O. Checked in debug builds and
/// on the in-memory transport; a release build never calls it.
#[cfg_attr(
    not(any(debug_assertions, test, feature = "test-support")),
    allow(dead_code)
)]
pub fn assert_io_allowed(what: &str) {
    let held = QUEUE_ONLY.with(Cell::get);
    assert!(
        held == 0,
        "{what} while holding a lock that is only for queueing"
    );
}
