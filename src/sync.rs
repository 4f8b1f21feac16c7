//! Locking that survives a panicking thread.
//!
//! A panic in one connection's thread must never make the room unusable for everyone else
//! (socket.io and engine.io lost whole processes that way). Every shared structure in wschat is
//! only ever changed by short critical sections that leave it consistent at each step, so a
//! poisoned mutex still holds valid data and it is safe to keep using it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning (see the module docs for why that is sound here).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
