//! Removal watches across processes: the store's subscriber to its removal channel, which
//! resolves the watches of the sessions published there, and rechecks every watched session
//! after each (re)connection and periodically.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::{RedisResult, Value};
use tokio::sync::oneshot;

use super::{layout, Connection, RedisStore};
use crate::id::SessionDigest;
use crate::store::watch::Watchers;

/// The first wait before reconnecting, doubled on each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Watched sessions checked per batch of `EXISTS`.
const RECHECK_BATCH: usize = 500;

/// What the clones of a store share: the watches, and the stop signal of their subscriber.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) watchers: Watchers,
    /// Set once the subscriber runs. Dropped with the last clone of the store, which stops
    /// the subscriber.
    stop: OnceLock<oneshot::Sender<()>>,
}

impl RedisStore {
    /// Starts the subscriber on the first watch (inside a Tokio runtime).
    pub(super) fn ensure_subscriber(&self) {
        if self.shared.stop.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stop, stopped) = oneshot::channel();
        if self.shared.stop.set(stop).is_err() {
            return; // another watch started it
        }
        let subscriber = Subscriber {
            clients: Arc::clone(&self.subscribe_to),
            channel: layout::channel(&self.prefix),
            prefix: Arc::clone(&self.prefix),
            connection: self.connection.clone(),
            timeout: self.command_timeout,
            interval: self.recheck_interval,
            shared: Arc::downgrade(&self.shared),
        };
        runtime.spawn(subscriber.run(stopped));
    }
}

/// The task behind a store's watches. Holds the store's state weakly: it ends with the last
/// clone of the store.
struct Subscriber {
    clients: Arc<[redis::Client]>,
    channel: Vec<u8>,
    prefix: Arc<str>,
    connection: Connection,
    timeout: Duration,
    interval: Duration,
    shared: Weak<Shared>,
}

impl Subscriber {
    async fn run(self, mut stopped: oneshot::Receiver<()>) {
        let mut node = 0;
        let mut backoff = MIN_BACKOFF;
        loop {
            let ended = tokio::select! {
                _ = &mut stopped => return,
                ended = self.listen(node, &mut backoff) => ended,
            };
            match ended {
                Ok(()) => tracing::warn!(
                    "redis session store: the removal subscriber lost its connection; reconnecting"
                ),
                Err(error) => {
                    tracing::warn!(%error, "redis session store: the removal subscriber failed; reconnecting")
                }
            }
            // On a cluster, try the next node: any node hears every publication.
            node = (node + 1) % self.clients.len().max(1);
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Subscribes through client `node`, rechecks every watch, then delivers removals until
    /// the connection ends.
    async fn listen(&self, node: usize, backoff: &mut Duration) -> RedisResult<()> {
        let Some(client) = self.clients.get(node) else {
            return Ok(());
        };
        let pubsub = self.bounded(client.get_async_pubsub()).await?;
        let (mut sink, mut stream) = pubsub.split();
        self.bounded(sink.subscribe(&self.channel)).await?;
        *backoff = MIN_BACKOFF;
        // Removals published while no subscription was active are found here.
        self.recheck().await?;
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ok(()) };
                    self.deliver(message.get_payload_bytes()).await?;
                }
                _ = ticker.tick() => {
                    // A connection that died silently fails the ping: reconnect.
                    self.bounded(sink.ping::<Value>()).await?;
                    self.recheck().await?;
                }
            }
        }
    }

    async fn deliver(&self, payload: &[u8]) -> RedisResult<()> {
        if payload == layout::EVERYTHING.as_bytes() {
            return self.recheck().await;
        }
        let digest = std::str::from_utf8(payload)
            .ok()
            .and_then(SessionDigest::parse_hex);
        if let (Some(digest), Some(shared)) = (digest, self.shared.upgrade()) {
            shared.watchers.notify(&digest);
        }
        Ok(())
    }

    /// Resolves the watches of every watched session that no longer exists.
    async fn recheck(&self) -> RedisResult<()> {
        let watched = match self.shared.upgrade() {
            Some(shared) => shared.watchers.watched(),
            None => return Ok(()),
        };
        for batch in watched.chunks(RECHECK_BATCH) {
            let commands = batch
                .iter()
                .map(|id| {
                    redis::cmd("EXISTS")
                        .arg(layout::key(&self.prefix, id))
                        .clone()
                })
                .collect();
            let exists = self.bounded(self.connection.each(commands)).await?;
            let Some(shared) = self.shared.upgrade() else {
                return Ok(());
            };
            for (id, exists) in batch.iter().zip(exists) {
                if exists == Some(Value::Int(0)) {
                    shared.watchers.notify(id);
                }
            }
        }
        Ok(())
    }

    async fn bounded<T>(
        &self,
        future: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        tokio::time::timeout(self.timeout, future)
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within the command timeout",
                )))
            })
    }
}
