//! The one-way signal from a connection's writer to its reader: "the
//! connection is closed", so that closing the writer closes the whole
//! connection, as closing asyncio's transport does.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use super::error::copy_error;
use crate::lock::lock;

#[derive(Debug, Default)]
pub(crate) struct Link {
    closed: AtomicBool,
    /// The transport error that closed the connection, if one did.
    error: Mutex<Option<io::Error>>,
    notify: Notify,
}

impl Link {
    pub(crate) fn close(&self, error: Option<&io::Error>) {
        if let Some(e) = error {
            *lock(&self.error) = Some(copy_error(e));
        }
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// The error the connection was closed with, if any.
    pub(crate) fn error(&self) -> Option<io::Error> {
        lock(&self.error).as_ref().map(copy_error)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves once [`close`](Self::close) was called.
    pub(crate) async fn closed(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}
