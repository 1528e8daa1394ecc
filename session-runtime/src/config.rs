//! The layer's configuration, shared by every request.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::clock::{Clock, SystemClock};
use crate::id::SessionId;
use crate::transport::Transport;

/// A lifecycle hook: `on_started` or `on_deleted`.
pub(crate) type Hook<T> = Arc<dyn Fn(&SessionId, &T) + Send + Sync>;

/// Default idle timeout: a session unused for a day expires.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Default bound on each store operation.
pub(crate) const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Everything a request needs to load and commit its session.
pub(crate) struct Config<T> {
    pub(crate) backend: Backend,
    pub(crate) transport: Transport,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) store_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) on_started: Option<Hook<T>>,
    pub(crate) on_deleted: Option<Hook<T>>,
}

impl<T> Clone for Config<T> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            transport: self.transport.clone(),
            idle_timeout: self.idle_timeout,
            absolute_timeout: self.absolute_timeout,
            store_timeout: self.store_timeout,
            clock: Arc::clone(&self.clock),
            on_started: self.on_started.clone(),
            on_deleted: self.on_deleted.clone(),
        }
    }
}

impl<T> Config<T> {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            transport: Transport::default(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            absolute_timeout: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            clock: Arc::new(SystemClock),
            on_started: None,
            on_deleted: None,
        }
    }
}
