//! A runtime for counting a driver's work without one: spawned tasks are kept for the
//! benchmark to poll (or drop), and timers never fire (runs are shorter than any of them).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;
use tether_driver::{Runtime, Timer};

/// A spawned task, as [`Kept`] holds it.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Keeps what the driver spawns (its background tasks) in [`Kept::take`]'s list; its
/// timers never fire.
#[derive(Default)]
pub struct Kept {
    spawned: Mutex<Vec<Task>>,
}

impl Kept {
    /// The tasks spawned since the last call.
    pub fn take(&self) -> Vec<Task> {
        std::mem::take(&mut *self.spawned.lock().unwrap())
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

impl Runtime for Kept {
    fn spawn(&self, future: Task) {
        self.spawned.lock().unwrap().push(future);
    }

    fn timer(&self, _: Instant) -> Pin<Box<dyn Timer>> {
        Box::pin(Never)
    }
}

/// A timer that never fires.
#[derive(Debug)]
pub struct Never;

impl Timer for Never {
    fn reset(self: Pin<&mut Self>, _: Instant) {}
    fn poll_expired(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}
