//! [`Shutdown`]: one signal that ends every stream attached to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

/// A signal that ends the streams attached to it, so that a server's graceful
/// shutdown completes while clients are connected.
///
/// Every [`Hub`](crate::Hub) has one ([`Hub::shutdown`](crate::Hub::shutdown));
/// [`Sse::with_shutdown`](crate::Sse::with_shutdown) attaches one to a stream of
/// your own. Triggering is sticky and idempotent.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let shutdown = ssekit::Shutdown::new();
/// let waiter = shutdown.clone();
/// let task = tokio::spawn(async move { waiter.wait().await });
/// shutdown.trigger();
/// task.await.unwrap();
/// assert!(shutdown.is_triggered());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    triggered: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers the signal: every attached stream ends at its next poll, and
    /// waiting streams are woken now.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether [`trigger`](Shutdown::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Waits until the signal is triggered (returns at once if it was).
    pub async fn wait(&self) {
        let notified = self.notified();
        if !self.is_triggered() {
            notified.await;
        }
    }

    /// A future that completes on the next trigger; create it before checking
    /// [`is_triggered`](Shutdown::is_triggered) so that no trigger is missed.
    pub(crate) fn notified(&self) -> OwnedNotified {
        self.notify.clone().notified_owned()
    }
}
