//! Locking that survives poisoning.
//!
//! The crate never runs user code under its locks (no callback, no
//! destructor), with two documented exceptions: `T`'s `Clone` in
//! `Task::result` and `T`'s `Debug` when a task is formatted. A panic there
//! poisons the lock but leaves the data it guards consistent (neither writes
//! it), so every lock of the crate takes the guard of a poisoned lock
//! instead of spreading the panic to every later user of the task.
//!
//! The helpers take `std`'s locks and, in the loom build (see
//! `sync_shim.rs`), loom's, through the two small traits below.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A mutex [`lock`] can take: `std`'s, or loom's in the loom build.
pub(crate) trait PoisonFreeMutex {
    type Guard<'a>
    where
        Self: 'a;
    fn lock_poison_free(&self) -> Self::Guard<'_>;
}

/// A read-write lock [`read`] and [`write`] can take.
pub(crate) trait PoisonFreeRwLock {
    type Read<'a>
    where
        Self: 'a;
    type Write<'a>
    where
        Self: 'a;
    fn read_poison_free(&self) -> Self::Read<'_>;
    fn write_poison_free(&self) -> Self::Write<'_>;
}

/// Locks `mutex`, ignoring poisoning (see the module docs).
pub(crate) fn lock<M: PoisonFreeMutex + ?Sized>(mutex: &M) -> M::Guard<'_> {
    mutex.lock_poison_free()
}

/// Read-locks `lock`, ignoring poisoning (see the module docs).
pub(crate) fn read<L: PoisonFreeRwLock + ?Sized>(lock: &L) -> L::Read<'_> {
    lock.read_poison_free()
}

/// Write-locks `lock`, ignoring poisoning (see the module docs).
pub(crate) fn write<L: PoisonFreeRwLock + ?Sized>(lock: &L) -> L::Write<'_> {
    lock.write_poison_free()
}

/// One implementation per lock type: the bodies are the same for `std` and
/// loom (loom's locks return `std`'s `LockResult`).
macro_rules! poison_free {
    ($mutex:ident, $guard:ident, $rwlock:ident, $read:ident, $write:ident) => {
        impl<T: ?Sized> PoisonFreeMutex for $mutex<T> {
            type Guard<'a>
                = $guard<'a, T>
            where
                Self: 'a;
            #[inline]
            fn lock_poison_free(&self) -> $guard<'_, T> {
                self.lock().unwrap_or_else(PoisonError::into_inner)
            }
        }

        impl<T: ?Sized> PoisonFreeRwLock for $rwlock<T> {
            type Read<'a>
                = $read<'a, T>
            where
                Self: 'a;
            type Write<'a>
                = $write<'a, T>
            where
                Self: 'a;
            #[inline]
            fn read_poison_free(&self) -> $read<'_, T> {
                self.read().unwrap_or_else(PoisonError::into_inner)
            }
            #[inline]
            fn write_poison_free(&self) -> $write<'_, T> {
                self.write().unwrap_or_else(PoisonError::into_inner)
            }
        }
    };
}

poison_free!(Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard);

#[cfg(all(test, asyncio_loom))]
mod loom_locks {
    use super::{PoisonError, PoisonFreeMutex, PoisonFreeRwLock};
    use ::loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

    poison_free!(Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard);
}
