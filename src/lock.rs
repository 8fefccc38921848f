//! Locking that survives poisoning.
//!
//! The crate never runs user code under its locks (no callback, no
//! destructor), with two documented exceptions: `T`'s `Clone` in
//! `Task::result` and `T`'s `Debug` when a task is formatted. A panic there
//! poisons the lock but leaves the data it guards consistent (neither writes
//! it), so every lock of the crate takes the guard of a poisoned lock
//! instead of spreading the panic to every later user of the task.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, ignoring poisoning (see the module docs).
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `lock`, ignoring poisoning (see the module docs).
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `lock`, ignoring poisoning (see the module docs).
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
