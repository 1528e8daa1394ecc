//! [`MemoryStore`]: sessions in this process's memory.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use super::{
    CreateOutcome, Loaded, RemovalListener, SaveOutcome, SessionMeta, SessionStore, StoreError,
};
use crate::clock::{Clock, SystemClock};
use crate::id::SessionId;
use crate::record::Record;

/// Independent locks; a power of two so that picking one is a mask.
const SHARDS: usize = 64;
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

type Shard = RwLock<HashMap<SessionId, Loaded>>;
type WeakListener = Weak<dyn Fn(&SessionId, &Record) + Send + Sync>;

/// Sessions kept in this process's memory: for development, tests, and single-process apps.
///
/// - **Concurrent without a global lock**: sessions are spread over 64 shards, each with its
///   own read-write lock, so requests for different sessions rarely wait for each other.
/// - **Expired sessions are never returned**, even before they are swept.
/// - **A background sweeper** (every 60 s by default, see
///   [`MemoryStoreBuilder::sweep_interval`]) removes expired sessions and
///   reports each to the layer's `on_deleted` hook. It starts with the first store
///   operation inside a Tokio runtime and stops when the last clone of the store is dropped.
/// - **Optional capacity bound** ([`MemoryStoreBuilder::max_sessions`]): when a
///   shard is full, creating a session first drops expired ones, then evicts the session
///   closest to expiry in that shard (reported to `on_deleted` too).
///
/// Clones share the same sessions. Sessions do not survive a restart and are not shared
/// between processes: use a Redis store for that.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Shard]>,
    max_per_shard: Option<usize>,
    sweep_interval: Duration,
    clock: Arc<dyn Clock>,
    /// The layers' `on_deleted` reports, held weakly: each ends with its layer.
    listeners: RwLock<Vec<WeakListener>>,
    sweeper: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(sweeper) = self.sweeper.get() {
            sweeper.abort();
        }
    }
}

/// The settings of a new [`MemoryStore`]; see [`MemoryStore::builder`].
#[derive(Clone)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct MemoryStoreBuilder {
    max_sessions: Option<usize>,
    sweep_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl MemoryStoreBuilder {
    /// Bounds the number of sessions, approximately: the bound is enforced per shard
    /// (`max / 64`, at least 1). When a shard is full, creating a session first drops
    /// expired ones, then evicts the one closest to expiry (reported to `on_deleted`).
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    /// How often the sweeper removes expired sessions (default 60 seconds).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The clock the sweeper judges expiry by (default: the system clock; the layer passes
    /// its own time to each operation). For tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The store, empty.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                max_per_shard: self.max_sessions.map(|max| max.div_ceil(SHARDS).max(1)),
                sweep_interval: self.sweep_interval,
                clock: self.clock,
                listeners: RwLock::new(Vec::new()),
                sweeper: std::sync::OnceLock::new(),
            }),
        }
    }
}

impl std::fmt::Debug for MemoryStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStoreBuilder")
            .field("max_sessions", &self.max_sessions)
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("max_per_shard", &self.inner.max_per_shard)
            .field("sweep_interval", &self.inner.sweep_interval)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store without a capacity bound, swept every 60 seconds. See
    /// [`builder`](Self::builder) for the settings.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The settings of a new store:
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_runtime::MemoryStore;
    ///
    /// let store = MemoryStore::builder()
    ///     .max_sessions(100_000)
    ///     .sweep_interval(Duration::from_secs(30))
    ///     .build();
    /// ```
    ///
    /// Settings are given before the store exists, so that every clone of a store shares
    /// one set of sessions and one configuration.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_sessions: None,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            clock: Arc::new(SystemClock),
        }
    }

    /// How many sessions are held, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| read(shard).len())
            .sum()
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every session expired now, reports each to the removal listener, and returns
    /// how many were removed. The sweeper calls this; tests may too.
    pub fn sweep(&self) -> usize {
        self.inner.sweep()
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        self.inner.shard(id)
    }

    /// Applies `update` to session `id` if it exists and has not expired at `now_ms`
    /// (save and touch never bring back a deleted or expired session); `update` may refuse.
    fn update_live(
        &self,
        id: &SessionId,
        now_ms: u64,
        update: impl FnOnce(&mut Loaded) -> bool,
    ) -> SaveOutcome {
        let mut map = write(self.shard(id));
        match map.get_mut(id) {
            Some(stored) if !stored.meta.is_expired(now_ms) => {
                if update(stored) {
                    SaveOutcome::Saved
                } else {
                    SaveOutcome::Missing
                }
            }
            _ => SaveOutcome::Missing,
        }
    }

    /// Starts the sweeper on first use inside a Tokio runtime.
    fn ensure_sweeper(&self) {
        if self.inner.sweeper.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.sweep_interval;
        let _ = self.inner.sweeper.get_or_init(|| {
            runtime
                .spawn(sweep_periodically(weak, interval))
                .abort_handle()
        });
    }
}

/// The sweeper task: holds only a weak reference, so it never keeps the store alive, and
/// is aborted when the store is dropped.
async fn sweep_periodically(store: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(inner) = store.upgrade() else { return };
        let removed = inner.sweep();
        if removed > 0 {
            tracing::debug!(removed, "memory session store swept expired sessions");
        }
    }
}

impl Inner {
    fn shard(&self, id: &SessionId) -> &Shard {
        let bytes = id.expose_bytes();
        // Ids are uniformly random: their first byte picks a shard evenly.
        &self.shards[usize::from(bytes[0]) % SHARDS]
    }

    /// The listeners still alive, dropping the others from the list.
    fn listeners(&self) -> Vec<RemovalListener> {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|listener| listener.strong_count() > 0);
        listeners.iter().filter_map(Weak::upgrade).collect()
    }

    fn report(&self, removed: Vec<(SessionId, Record)>) {
        if removed.is_empty() {
            return;
        }
        for listener in self.listeners() {
            for (id, record) in &removed {
                listener(id, record);
            }
        }
    }

    fn sweep(&self) -> usize {
        let now = self.clock.now_ms();
        let mut total = 0;
        for shard in self.shards.iter() {
            let removed = {
                let mut map = write(shard);
                let removed = take_expired(&mut map, now);
                // Give memory back after a large expiry wave.
                if map.capacity() > 64 && map.len() < map.capacity() / 4 {
                    map.shrink_to_fit();
                }
                removed
            };
            total += removed.len();
            self.report(removed);
        }
        total
    }
}

fn take_expired(map: &mut HashMap<SessionId, Loaded>, now: u64) -> Vec<(SessionId, Record)> {
    let expired: Vec<SessionId> = map
        .iter()
        .filter(|(_, stored)| stored.meta.is_expired(now))
        .map(|(id, _)| id.clone())
        .collect();
    expired
        .into_iter()
        .filter_map(|id| map.remove(&id).map(|stored| (id, stored.record)))
        .collect()
}

// A panic while a shard lock is held cannot leave a session half-written (every update
// replaces whole values), so a poisoned lock is still safe to use.
fn read(shard: &Shard) -> std::sync::RwLockReadGuard<'_, HashMap<SessionId, Loaded>> {
    shard.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(shard: &Shard) -> std::sync::RwLockWriteGuard<'_, HashMap<SessionId, Loaded>> {
    shard.write().unwrap_or_else(PoisonError::into_inner)
}

impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionId, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        self.ensure_sweeper();
        let map = read(self.shard(id));
        Ok(map
            .get(id)
            .filter(|stored| !stored.meta.is_expired(now_ms))
            .cloned())
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<CreateOutcome, StoreError> {
        self.ensure_sweeper();
        let now = now_ms;
        let evicted = {
            let mut map = write(self.shard(id));
            if let Some(existing) = map.get(id) {
                if !existing.meta.is_expired(now) {
                    return Ok(CreateOutcome::IdTaken);
                }
            }
            let mut evicted = Vec::new();
            if let Some(max) = self.inner.max_per_shard {
                if map.len() >= max && !map.contains_key(id) {
                    evicted = take_expired(&mut map, now);
                    if map.len() >= max {
                        evicted.extend(evict_soonest(&mut map));
                    }
                }
            }
            map.insert(
                id.clone(),
                Loaded {
                    record: record.clone(),
                    meta: *meta,
                },
            );
            evicted
        };
        self.inner.report(evicted);
        Ok(CreateOutcome::Created)
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        Ok(self.update_live(id, now_ms, |stored| {
            // An older deploy never relabels a record a newer one wrote.
            if stored.record.version > changes.version {
                return false;
            }
            stored.record.merge(changes.clone());
            stored.meta = *meta;
            true
        }))
    }

    async fn touch(
        &self,
        id: &SessionId,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        Ok(self.update_live(id, now_ms, |stored| {
            stored.meta = *meta;
            true
        }))
    }

    async fn take(&self, id: &SessionId, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        let taken = write(self.shard(id)).remove(id);
        Ok(taken.filter(|stored| !stored.meta.is_expired(now_ms)))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(write(self.shard(id)).remove(id).is_some())
    }

    fn subscribe_removals(&self, listener: &RemovalListener) {
        let mut listeners = self
            .inner
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|held| held.strong_count() > 0);
        if !listeners.iter().any(|held| {
            held.upgrade()
                .is_some_and(|held| Arc::ptr_eq(&held, listener))
        }) {
            listeners.push(Arc::downgrade(listener));
        }
    }
}

/// Removes the session closest to expiry (sessions without a deadline go last, oldest
/// first).
fn evict_soonest(map: &mut HashMap<SessionId, Loaded>) -> Option<(SessionId, Record)> {
    let victim = map
        .iter()
        .min_by_key(|(_, stored)| {
            (
                stored.meta.expires_ms.unwrap_or(u64::MAX),
                stored.meta.created_ms,
            )
        })
        .map(|(id, _)| id.clone())?;
    map.remove(&victim).map(|stored| (victim, stored.record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn meta(created: u64, expires: Option<u64>) -> SessionMeta {
        SessionMeta {
            created_ms: created,
            expires_ms: expires,
            absolute_ms: None,
        }
    }

    #[tokio::test]
    async fn sweeper_stops_when_the_store_is_dropped() {
        let store = MemoryStore::builder()
            .sweep_interval(Duration::from_millis(5))
            .build();
        let id = SessionId::generate().unwrap();
        store
            .create(&id, &Record::default(), &meta(0, None), 0)
            .await
            .unwrap();
        let sweeper = store.inner.sweeper.get().cloned().unwrap();
        assert!(!sweeper.is_finished());
        drop(store);
        for _ in 0..100 {
            if sweeper.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the sweeper outlived its store");
    }

    #[tokio::test]
    async fn sweeper_removes_expired_sessions_and_reports_them() {
        let clock = ManualClock::at_ms(1_000);
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .sweep_interval(Duration::from_millis(5))
            .build();
        let removed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&removed);
        let listener: RemovalListener = Arc::new(move |id, _record| {
            sink.lock().unwrap().push(id.clone());
        });
        store.subscribe_removals(&listener);
        let short = SessionId::generate().unwrap();
        let long = SessionId::generate().unwrap();
        let record = Record::default();
        store
            .create(&short, &record, &meta(1_000, Some(2_000)), 0)
            .await
            .unwrap();
        store
            .create(&long, &record, &meta(1_000, Some(9_000)), 0)
            .await
            .unwrap();
        clock.advance(Duration::from_millis(1_500));
        for _ in 0..200 {
            if !removed.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(*removed.lock().unwrap(), vec![short]);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn capacity_bound_evicts_the_session_closest_to_expiry() {
        // 64 sessions over 64 shards: one per shard.
        let store = MemoryStore::builder().max_sessions(64).build();
        let removed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&removed);
        let listener: RemovalListener =
            Arc::new(move |id, _| sink.lock().unwrap().push(id.clone()));
        store.subscribe_removals(&listener);
        let mut ids = Vec::new();
        for i in 0..2_000u64 {
            let id = SessionId::generate().unwrap();
            store
                .create(&id, &Record::default(), &meta(0, Some(10_000 + i)), 0)
                .await
                .unwrap();
            ids.push(id);
        }
        assert!(store.len() <= 64, "{} sessions held", store.len());
        assert_eq!(removed.lock().unwrap().len(), 2_000 - store.len());
        // The newest session is always kept: eviction picks the one expiring soonest.
        let last = ids.last().unwrap();
        assert!(store.load(last, 0).await.unwrap().is_some());
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    fn expired_session(store: &MemoryStore) {
        let id = SessionId::generate().unwrap();
        let meta = SessionMeta {
            created_ms: 0,
            expires_ms: Some(1),
            absolute_ms: None,
        };
        let mut map = write(store.shard(&id));
        map.insert(
            id,
            Loaded {
                record: Record::default(),
                meta,
            },
        );
    }

    fn counter() -> (RemovalListener, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sink = Arc::clone(&count);
        let listener: RemovalListener = Arc::new(move |_, _| {
            sink.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        (listener, count)
    }

    #[test]
    fn every_subscribed_listener_hears_each_removal_once() {
        let store = MemoryStore::new();
        let (first, first_count) = counter();
        let (second, second_count) = counter();
        store.subscribe_removals(&first);
        store.subscribe_removals(&first); // a layer is applied once per route
        store.clone().subscribe_removals(&second); // clones share the listeners
        expired_session(&store);
        assert_eq!(store.sweep(), 1);
        assert_eq!(first_count.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(second_count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_listener_is_no_longer_called_or_held() {
        let store = MemoryStore::new();
        let (listener, count) = counter();
        store.subscribe_removals(&listener);
        drop(listener);
        expired_session(&store);
        assert_eq!(store.sweep(), 1);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(store.inner.listeners.read().unwrap().is_empty());
    }
}
