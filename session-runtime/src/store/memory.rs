//! [`MemoryStore`]: sessions in this process's memory.
//!
//! Layout: 64 shards, each a read-write lock around a map from the SHA-256 digest of a
//! session's id to its entry, plus two ordered indexes kept in step with the map:
//!
//! - `deadlines`: the sessions that have a deadline, soonest first. Expiry (the sweeper, or a
//!   full shard making room) pops expired sessions off its front instead of scanning.
//! - `queue` (bounded stores only): the eviction order, an exact LRU kept lazily. Every use
//!   of a session takes a stamp from its shard's counter (an atomic, so that `load` only
//!   needs the read lock) and raises the entry's `used` stamp; the entry sits in `queue`
//!   under the stamp it had when it was last queued (`queued <= used`). To evict, the shard
//!   pops the smallest queued stamp: if that entry was not used since (`queued == used`), it
//!   is the least recently used session of the shard (every other entry has
//!   `used >= queued > this`); otherwise it is queued again under `used` and the next is
//!   popped. An entry is re-queued at most once per use, so eviction costs O(log n)
//!   amortized per operation, with no scan.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use super::owners::OwnerIndex;
use super::removals::{Removals, Removed};
use super::sweeper::{Sweep, Sweeper};
use super::watch::{RemovalWatch, Watchers};
use super::{
    CreateOutcome, Loaded, RemovalListener, SaveOutcome, SessionMeta, SessionStore, StoreError,
};
use crate::clock::{Clock, SystemClock};
use crate::id::SessionDigest;
use crate::record::{OwnerField, Record};

/// Independent locks; a power of two so that picking one is a mask.
const SHARDS: usize = 64;
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A session's key in the store: the SHA-256 digest of its id ([`SessionId::digest`]).
type Key = [u8; 32];
/// Digests are already uniformly random: the map hashes them by taking 8 of their bytes.
/// Entries are boxed so that the table, which a full shard's churn of removals and inserts
/// doubles once (tombstones), stays small: 40 bytes a slot.
type Sessions = HashMap<Key, Box<Entry>, BuildHasherDefault<DigestHasher>>;

/// Sessions kept in this process's memory: for development, tests, and single-process apps.
///
/// - **Bounded by default**: at most [`DEFAULT_MAX_SESSIONS`](Self::DEFAULT_MAX_SESSIONS)
///   (100,000) sessions; change it with [`MemoryStoreBuilder::max_sessions`], or lift it with
///   [`MemoryStoreBuilder::unbounded`]. A session costs about 400 bytes of the store's own
///   (its entry, its digest three times: map and two indexes) plus its record; with a
///   one-field record, 100,000 sessions take 44 MiB of heap and 55 MiB of resident memory
///   once the store has been full for a while (`tests/tests/scale.rs`). Count about 1 KiB
///   a session for records of a few short fields: at most about 100 MiB at the default
///   bound. A flood of requests without a cookie to a route that writes the session
///   therefore makes the store evict, not grow for the whole idle timeout.
/// - **Least recently used evicted first** when full; see [Capacity and
///   eviction](#capacity-and-eviction) for exactly what that guarantees.
/// - **Keyed by digest**: sessions are stored under the SHA-256 digest of their id (as the
///   Redis store does), not under the id, so the store's maps hold no usable token. Removals
///   are reported to `on_deleted` hooks by that digest (see [`RemovalListener`]).
/// - **Concurrent without a global lock**: sessions are spread over 64 shards, each with its
///   own read-write lock; loads take only the read lock, so requests for different
///   sessions, and reads of one session, rarely wait for each other.
/// - **Expired sessions are never returned**, even before they are swept.
/// - **A background sweeper** (every 60 s by default, see
///   [`MemoryStoreBuilder::sweep_interval`]) removes expired sessions and
///   reports each to the layer's `on_deleted` hook. It starts with the first store
///   operation inside a Tokio runtime and stops when the last clone of the store is dropped.
///
/// Clones share the same sessions. Sessions do not survive a restart and are not shared
/// between processes: use a Redis store for that.
///
/// # Capacity and eviction
///
/// Sessions fall into the 64 shards at random (by their id's digest), and the bound is split
/// evenly among the shards: `max / 64` each (the remainder spread over the first shards, and
/// at least 1 each, so the store never holds more than `max.max(64)` sessions). A session's
/// *use* is any `load`, `save`, `touch` or `create` of it: every request that reads its
/// session loads it. Creating a session in a full shard first removes that shard's expired
/// sessions; if none had expired, it evicts the shard's **least recently used** session.
/// Every removal is reported to `on_deleted`, expired sessions before evicted ones.
///
/// What this guarantees, exactly: a session is evicted only when its shard is full and
/// every other session of that shard was used (or created) more recently than it. So a
/// session is never evicted before at least its shard's capacity of *other* sessions of its
/// shard have been created or used since its own last use. With the default bound that is
/// 1,562 (or 1,563) sessions of its shard, about 100,000 new sessions store-wide (a few
/// percent more or less: new sessions fall into shards at random). Under a flood of new
/// anonymous sessions, a logged-in user who makes a request at least once per that many new
/// sessions keeps their session, however long the flood lasts; the flood's own sessions go
/// before them. But the least recently used go first: users idle since before the flood
/// are evicted before the flood's own sessions, once the flood has created about the
/// bound's worth of them.
///
/// What it does not guarantee: a session left unused while more new sessions than the
/// bound are created is evicted before its idle timeout (its user gets a fresh session). Size
/// the bound as your peak rate of new sessions times the idle time you need to survive it,
/// or use a Redis store. And because the bound is per shard, a store starts evicting a
/// little before it holds `max` sessions (its fullest shard fills first: typically from
/// about 94% of the default bound), so give the bound some margin over the sessions you
/// expect to hold.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Shard]>,
    clock: Arc<dyn Clock>,
    /// The layers' `on_deleted` reports, held weakly: each ends with its layer.
    removals: Removals,
    sweeper: Sweeper,
    /// Owner -> sessions, updated under the lock of the session's shard.
    owners: OwnerIndex,
    /// Who waits on a session's removal.
    watchers: Watchers,
}

/// One lock's worth of sessions.
struct Shard {
    /// The last stamp handed out in this shard: every session created takes the next one
    /// (its serial), and in bounded stores so does every use (load, save, touch).
    uses: AtomicU64,
    /// The most sessions this shard holds; `None` when the store is unbounded.
    capacity: Option<usize>,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    sessions: Sessions,
    /// Bounded stores only: each session once, under its `queued` stamp (see the module
    /// docs). Stamps are unique within a shard.
    queue: BTreeMap<u64, Key>,
    /// The sessions that have a deadline (`expires_ms`), soonest first, under
    /// `(deadline, serial)`.
    deadlines: BTreeMap<(u64, u64), Key>,
}

/// Hashes a [`Key`] by its bytes 8 to 15 (byte 0 picks the shard). Keys are SHA-256
/// digests of ids the server drew at random, so they are evenly spread without further
/// hashing; a client can choose the ids it looks up, but not the ids that are stored, so it
/// cannot lengthen the probe sequences of the table.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(word) = bytes.get(8..16).and_then(|word| word.try_into().ok()) {
            self.0 = u64::from_le_bytes(word);
        } else {
            // Not a digest (the map hashes nothing else): mixed in, never relied on.
            for &byte in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(byte);
            }
        }
    }

    fn write_usize(&mut self, _length: usize) {
        // `[u8; 32]` hashes as a slice: its length first, the same for every key.
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Entry {
    /// The record, shared with the requests that loaded it (a load costs no copy; a save
    /// copies it only if a request still holds the old one).
    record: Arc<Record>,
    meta: SessionMeta,
    /// Unique within the shard: this entry's place among equal deadlines in
    /// `State::deadlines`.
    serial: u64,
    /// The stamp this entry is queued under in `State::queue` (bounded stores).
    queued: u64,
    /// The stamp of its last use, never below `queued`; loads raise it under the read lock.
    used: AtomicU64,
}

/// A session the store removed by itself (expired or evicted) from under `key`, to report.
fn report_of(key: Key, entry: Entry) -> Removed {
    Removed {
        digest: SessionDigest::from_bytes(key),
        record: Arc::unwrap_or_clone(entry.record),
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
    /// Bounds the number of sessions (default
    /// [`MemoryStore::DEFAULT_MAX_SESSIONS`], 100,000). The bound is split over the store's
    /// 64 shards (at least 1 each, so at most `max.max(64)` sessions are held); when a shard
    /// is full, creating a session first drops its expired sessions, then evicts its least
    /// recently used one, and reports each to `on_deleted`. See [Capacity and
    /// eviction](MemoryStore#capacity-and-eviction).
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
        self
    }

    /// No capacity bound: sessions are removed only when they expire or are destroyed.
    ///
    /// Only for stores whose sessions are all created by trusted or rate-limited requests:
    /// with no bound, every request without a cookie to a route that writes the session
    /// keeps a new session in memory for the whole idle timeout.
    pub fn unbounded(mut self) -> Self {
        self.max_sessions = None;
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
        let shards = (0..SHARDS)
            .map(|index| Shard {
                uses: AtomicU64::new(0),
                capacity: self.max_sessions.map(|max| shard_capacity(max, index)),
                state: RwLock::new(State::default()),
            })
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                sweeper: Sweeper::new(self.sweep_interval),
                clock: self.clock,
                removals: Removals::default(),
                owners: OwnerIndex::default(),
                watchers: Watchers::new(),
            }),
        }
    }
}

/// Shard `index`'s part of a bound of `max` sessions: the shards' parts add up to `max`
/// (when `max >= 64`), and none is 0.
fn shard_capacity(max: usize, index: usize) -> usize {
    (max / SHARDS + usize::from(index < max % SHARDS)).max(1)
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
            .field("capacity", &self.capacity())
            .field("sweep_interval", &self.inner.sweeper.interval())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// The capacity of [`MemoryStore::new`] and of a [`builder`](Self::builder) not told
    /// otherwise: 100,000 sessions. At about 400 bytes of the store's own a session plus the
    /// record (about 1 KiB in all for a few short fields) that is at most about 100 MiB: a
    /// fixed cost a single process can afford, with room for many times the signed-in users
    /// of an app that runs on one process, while a flood of cookie-less requests can only
    /// make the store evict, not grow.
    pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

    /// An empty store holding at most [`DEFAULT_MAX_SESSIONS`](Self::DEFAULT_MAX_SESSIONS)
    /// sessions (least recently used evicted first), swept every 60 seconds. See
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
    ///     .max_sessions(20_000)
    ///     .sweep_interval(Duration::from_secs(30))
    ///     .build();
    /// assert_eq!(store.capacity(), Some(20_000));
    /// ```
    ///
    /// Settings are given before the store exists, so that every clone of a store shares
    /// one set of sessions and one configuration.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_sessions: Some(Self::DEFAULT_MAX_SESSIONS),
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
            .map(|shard| read(shard).sessions.len())
            .sum()
    }

    /// Whether no session is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most sessions the store holds (the bound given to
    /// [`MemoryStoreBuilder::max_sessions`], or 64 if that was less), or `None` when
    /// [unbounded](MemoryStoreBuilder::unbounded).
    #[must_use]
    pub fn capacity(&self) -> Option<usize> {
        self.inner.shards.iter().map(|shard| shard.capacity).sum()
    }

    /// Removes every session expired now, reports each to the removal listener, and returns
    /// how many were removed. The sweeper calls this; tests may too.
    pub fn sweep(&self) -> usize {
        self.inner.sweep()
    }

    /// Applies `update` to the session under `key` if it exists and has not expired at
    /// `now_ms` (save and touch never bring back a deleted or expired session); `update` may
    /// refuse. A session updated counts as used.
    fn update_live(
        &self,
        key: &Key,
        now_ms: u64,
        update: impl FnOnce(&mut Arc<Record>, &mut SessionMeta) -> bool,
    ) -> SaveOutcome {
        let shard = self.inner.shard(key);
        let mut state = write(shard);
        let State {
            sessions,
            deadlines,
            ..
        } = &mut *state;
        let Some(entry) = sessions.get_mut(key) else {
            return SaveOutcome::Missing;
        };
        if entry.meta.is_expired(now_ms) {
            return SaveOutcome::Missing;
        }
        let deadline = entry.meta.expires_ms;
        if !update(&mut entry.record, &mut entry.meta) {
            return SaveOutcome::Missing;
        }
        if entry.meta.expires_ms != deadline {
            if let Some(at) = deadline {
                deadlines.remove(&(at, entry.serial));
            }
            if let Some(at) = entry.meta.expires_ms {
                deadlines.insert((at, entry.serial), *key);
            }
        }
        shard.mark_used(entry);
        SaveOutcome::Saved
    }

    /// Starts the sweeper on first use inside a Tokio runtime.
    fn ensure_sweeper(&self) {
        self.inner.sweeper.ensure(|| Arc::downgrade(&self.inner));
    }
}

impl Sweep for Inner {
    const NAME: &'static str = "memory";

    async fn sweep_expired(&self) -> usize {
        self.sweep()
    }
}

impl Inner {
    fn shard(&self, key: &Key) -> &Shard {
        // Digests of random ids are uniformly random: their first byte picks a shard evenly.
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    fn report(&self, removed: &[Removed]) {
        self.removals.report(removed);
    }

    /// Drops removed sessions from the owner index; called under their shard's lock.
    fn unindex(&self, removed: &[Removed]) {
        for session in removed {
            self.owners.removed(&session.digest, &session.record);
        }
    }

    /// Resolves the watches of removed sessions; called after their shard's lock is gone.
    fn notify(&self, removed: &[Removed]) {
        for session in removed {
            self.watchers.notify(&session.digest);
        }
    }

    fn sweep(&self) -> usize {
        let now = self.clock.now_ms();
        let mut total = 0;
        for shard in self.shards.iter() {
            let removed = {
                let mut state = write(shard);
                let removed = state.take_expired(now);
                self.unindex(&removed);
                // Give memory back after a large expiry wave.
                let sessions = &mut state.sessions;
                if sessions.capacity() > 64 && sessions.len() < sessions.capacity() / 4 {
                    sessions.shrink_to_fit();
                }
                removed
            };
            total += removed.len();
            self.report(&removed);
            self.notify(&removed);
        }
        total
    }
}

impl Shard {
    /// Records a use of `entry` now. Needs only the read lock.
    fn mark_used(&self, entry: &Entry) {
        if self.capacity.is_some() {
            let stamp = self.uses.fetch_add(1, Ordering::Relaxed) + 1;
            // `fetch_max`: of two loads racing, the later stamp wins whatever the order of
            // their stores.
            entry.used.fetch_max(stamp, Ordering::Relaxed);
        }
    }

    /// A new entry, used now. Called under the write lock.
    fn entry(&self, loaded: Loaded) -> Box<Entry> {
        let stamp = self.uses.fetch_add(1, Ordering::Relaxed) + 1;
        Box::new(Entry {
            record: Arc::new(loaded.record),
            meta: loaded.meta,
            serial: stamp,
            queued: stamp,
            used: AtomicU64::new(stamp),
        })
    }
}

impl State {
    /// Stores `entry` under `key`, which must be free.
    fn insert(&mut self, key: Key, entry: Box<Entry>, bounded: bool) {
        if bounded {
            self.queue.insert(entry.queued, key);
        }
        if let Some(at) = entry.meta.expires_ms {
            self.deadlines.insert((at, entry.serial), key);
        }
        self.sessions.insert(key, entry);
    }

    /// Removes the session under `key` from the map and both indexes.
    fn remove(&mut self, key: &Key) -> Option<Box<Entry>> {
        let entry = self.sessions.remove(key)?;
        // Unbounded stores queue nothing: then this finds nothing.
        self.queue.remove(&entry.queued);
        if let Some(at) = entry.meta.expires_ms {
            self.deadlines.remove(&(at, entry.serial));
        }
        Some(entry)
    }

    /// Removes every session expired at `now`, soonest deadline first.
    fn take_expired(&mut self, now: u64) -> Vec<Removed> {
        let mut removed = Vec::new();
        while let Some(first) = self.deadlines.first_entry() {
            if first.key().0 > now {
                break;
            }
            let key = first.remove();
            if let Some(entry) = self.sessions.remove(&key) {
                self.queue.remove(&entry.queued);
                removed.push(report_of(key, *entry));
            }
        }
        removed
    }

    /// Removes the least recently used session (bounded stores).
    fn evict_least_recently_used(&mut self) -> Option<Removed> {
        loop {
            let (queued, key) = self.queue.pop_first()?;
            let Some(entry) = self.sessions.get_mut(&key) else {
                continue; // cannot happen: the indexes follow the map
            };
            let used = *entry.used.get_mut();
            if used != queued {
                // Used since it was queued: queue it again as of its last use.
                entry.queued = used;
                self.queue.insert(used, key);
                continue;
            }
            let entry = self.sessions.remove(&key)?;
            if let Some(at) = entry.meta.expires_ms {
                self.deadlines.remove(&(at, entry.serial));
            }
            return Some(report_of(key, *entry));
        }
    }
}

// A panic while a shard lock is held cannot leave a shard inconsistent in a way that
// matters: the map and its indexes are updated together without calling user code, so a
// poisoned lock is still safe to use.
fn read(shard: &Shard) -> RwLockReadGuard<'_, State> {
    shard.state.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(shard: &Shard) -> RwLockWriteGuard<'_, State> {
    shard.state.write().unwrap_or_else(PoisonError::into_inner)
}

/// The operations the session layer calls without a future: the store never waits, so
/// the layer answers at once (no boxed future, no timer), exactly as the `SessionStore`
/// methods, which call these, would.
impl MemoryStore {
    /// The record stored under `id`, shared (no copy), and its meta, unless unknown or
    /// expired at `now_ms`.
    pub(crate) fn load_shared(
        &self,
        id: &SessionDigest,
        now_ms: u64,
    ) -> Option<(Arc<Record>, SessionMeta)> {
        self.ensure_sweeper();
        let key = *id.as_bytes();
        let shard = self.inner.shard(&key);
        let state = read(shard);
        let entry = state.sessions.get(&key)?;
        if entry.meta.is_expired(now_ms) {
            return None;
        }
        shard.mark_used(entry);
        Some((Arc::clone(&entry.record), entry.meta))
    }

    /// [`SessionStore::save`], at once: merges `changes` into the stored record in place.
    pub(crate) fn save_now(
        &self,
        id: &SessionDigest,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> SaveOutcome {
        self.update_live(id.as_bytes(), now_ms, |record, stored_meta| {
            // An older deploy never relabels a record a newer one wrote.
            if record.version > changes.version {
                return false;
            }
            if changes.owner() == OwnerField::Absent {
                Arc::make_mut(record).merge_from(changes);
            } else {
                // The owner moves: the index follows under this shard's lock.
                let before = record.owner().key().map(str::to_owned);
                Arc::make_mut(record).merge_from(changes);
                self.inner.owners.saved(*id, before.as_deref(), changes);
            }
            *stored_meta = *meta;
            true
        })
    }

    /// [`SessionStore::touch`], at once.
    pub(crate) fn touch_now(
        &self,
        id: &SessionDigest,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> SaveOutcome {
        self.update_live(id.as_bytes(), now_ms, |_, stored_meta| {
            *stored_meta = *meta;
            true
        })
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        Ok(self.load_shared(id, now_ms).map(|(record, meta)| Loaded {
            record: Arc::unwrap_or_clone(record),
            meta,
        }))
    }

    async fn create(
        &self,
        id: &SessionDigest,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<CreateOutcome, StoreError> {
        self.ensure_sweeper();
        let key = *id.as_bytes();
        let shard = self.inner.shard(&key);
        let removed = {
            let mut state = write(shard);
            let mut removed: Vec<Removed> = Vec::new();
            if let Some(existing) = state.sessions.get(&key) {
                if !existing.meta.is_expired(now_ms) {
                    return Ok(CreateOutcome::IdTaken);
                }
                // An expired session under the same id: removed by the store, so reported.
                removed.extend(state.remove(&key).map(|entry| report_of(key, *entry)));
            }
            if let Some(capacity) = shard.capacity {
                if state.sessions.len() >= capacity {
                    removed.extend(state.take_expired(now_ms));
                }
                while state.sessions.len() >= capacity {
                    let Some(evicted) = state.evict_least_recently_used() else {
                        break;
                    };
                    removed.push(evicted);
                }
            }
            let loaded = Loaded {
                record: record.clone(),
                meta: *meta,
            };
            let entry = shard.entry(loaded);
            state.insert(key, entry, shard.capacity.is_some());
            self.inner.unindex(&removed);
            self.inner.owners.created(*id, record);
            removed
        };
        self.inner.report(&removed);
        self.inner.notify(&removed);
        Ok(CreateOutcome::Created)
    }

    async fn save(
        &self,
        id: &SessionDigest,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        Ok(self.save_now(id, changes, meta, now_ms))
    }

    async fn touch(
        &self,
        id: &SessionDigest,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        Ok(self.touch_now(id, meta, now_ms))
    }

    async fn take(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        let taken = self.remove(id);
        match taken {
            Some(entry) if entry.meta.is_expired(now_ms) => {
                // Gone by expiry, not by the caller's hand: reported like a swept one.
                self.inner.report(&[report_of(*id.as_bytes(), *entry)]);
                Ok(None)
            }
            taken => Ok(taken.map(|entry| Loaded {
                record: Arc::unwrap_or_clone(entry.record),
                meta: entry.meta,
            })),
        }
    }

    async fn delete(&self, id: &SessionDigest) -> Result<bool, StoreError> {
        Ok(self.remove(id).is_some())
    }

    fn subscribe_removals(&self, listener: &RemovalListener) {
        self.inner.removals.subscribe(listener);
    }

    async fn owned_by(
        &self,
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<(SessionDigest, Loaded)>, StoreError> {
        Ok(self.owned_by_now(owner, now_ms))
    }

    async fn count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let live = self.inner.shards.iter().map(|shard| {
            let state = read(shard);
            state
                .sessions
                .values()
                .filter(|entry| !entry.meta.is_expired(now_ms))
                .count()
        });
        Ok(live.sum::<usize>() as u64)
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        for shard in self.inner.shards.iter() {
            let mut state = write(shard);
            removed += state.sessions.len() as u64;
            // Each session's index entry goes under its shard's lock, with the session: a
            // session created meanwhile in a shard already cleared keeps its entry.
            for (key, entry) in &state.sessions {
                self.inner
                    .owners
                    .removed(&SessionDigest::from_bytes(*key), &entry.record);
            }
            *state = State::default();
        }
        for id in self.inner.watchers.watched() {
            self.inner.watchers.notify(&id);
        }
        Ok(removed)
    }

    async fn watch_removal(&self, id: &SessionDigest) -> Result<RemovalWatch, StoreError> {
        Ok(self.watch_now(id))
    }
}

impl MemoryStore {
    /// Removes the session `id` (expired or not) with its index entry, and resolves its
    /// watches.
    fn remove(&self, id: &SessionDigest) -> Option<Box<Entry>> {
        let key = *id.as_bytes();
        let taken = {
            let mut state = write(self.inner.shard(&key));
            let taken = state.remove(&key);
            if let Some(entry) = &taken {
                self.inner.owners.removed(id, &entry.record);
            }
            taken
        };
        if taken.is_some() {
            self.inner.watchers.notify(id);
        }
        taken
    }

    /// [`SessionStore::owned_by`], at once.
    pub(crate) fn owned_by_now(&self, owner: &str, now_ms: u64) -> Vec<(SessionDigest, Loaded)> {
        let mut found = Vec::new();
        for id in self.inner.owners.of(owner) {
            let key = *id.as_bytes();
            let state = read(self.inner.shard(&key));
            let Some(entry) = state.sessions.get(&key) else {
                continue; // removed since the index was read
            };
            // The index is updated under this lock; checked again all the same.
            if entry.meta.is_expired(now_ms) || entry.record.owner().key() != Some(owner) {
                continue;
            }
            found.push((
                id,
                Loaded {
                    record: Record::clone(&entry.record),
                    meta: entry.meta,
                },
            ));
        }
        found
    }

    /// [`SessionStore::watch_removal`], at once.
    pub(crate) fn watch_now(&self, id: &SessionDigest) -> RemovalWatch {
        let watch = self.inner.watchers.watch(id);
        let key = *id.as_bytes();
        // Registered first, checked second: a removal in between resolves the watch.
        if read(self.inner.shard(&key)).sessions.contains_key(&key) {
            watch
        } else {
            RemovalWatch::resolved()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::id::SessionId;
    use std::sync::Mutex;

    fn meta(created: u64, expires: Option<u64>) -> SessionMeta {
        SessionMeta {
            created_ms: created,
            seen_ms: created,
            expires_ms: expires,
            absolute_ms: None,
        }
    }

    /// A listener recording the ids it hears, in order.
    fn recorder() -> (RemovalListener, Arc<Mutex<Vec<SessionDigest>>>) {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&heard);
        let listener: RemovalListener = Arc::new(move |id, _record| {
            sink.lock().unwrap().push(*id);
        });
        (listener, heard)
    }

    /// `n` fresh ids that all fall into shard 0.
    fn ids_in_shard_zero(n: usize) -> Vec<SessionId> {
        std::iter::repeat_with(|| SessionId::generate().unwrap())
            .filter(|id| usize::from(id.digest().as_bytes()[0]) % SHARDS == 0)
            .take(n)
            .collect()
    }

    /// Checks that the map and both indexes of every shard agree.
    fn assert_consistent(store: &MemoryStore) {
        for shard in store.inner.shards.iter() {
            let state = read(shard);
            let bounded = shard.capacity.is_some();
            if let Some(capacity) = shard.capacity {
                assert!(state.sessions.len() <= capacity);
                assert_eq!(state.queue.len(), state.sessions.len());
            } else {
                assert!(state.queue.is_empty());
            }
            let with_deadline = state
                .sessions
                .values()
                .filter(|entry| entry.meta.expires_ms.is_some())
                .count();
            assert_eq!(state.deadlines.len(), with_deadline);
            for (key, entry) in &state.sessions {
                if bounded {
                    assert_eq!(state.queue.get(&entry.queued), Some(key));
                    assert!(entry.queued <= entry.used.load(Ordering::Relaxed));
                }
                if let Some(at) = entry.meta.expires_ms {
                    assert_eq!(state.deadlines.get(&(at, entry.serial)), Some(key));
                }
            }
        }
    }

    #[test]
    fn new_is_bounded_by_default_and_unbounded_is_explicit() {
        assert_eq!(
            MemoryStore::new().capacity(),
            Some(MemoryStore::DEFAULT_MAX_SESSIONS)
        );
        assert_eq!(MemoryStore::DEFAULT_MAX_SESSIONS, 100_000);
        assert_eq!(MemoryStore::default().capacity(), Some(100_000));
        assert_eq!(MemoryStore::builder().build().capacity(), Some(100_000));
        assert_eq!(MemoryStore::builder().unbounded().build().capacity(), None);
        let store = MemoryStore::builder().max_sessions(1_000).build();
        assert_eq!(store.capacity(), Some(1_000), "the shards' parts add up");
        // At least one session per shard.
        assert_eq!(
            MemoryStore::builder().max_sessions(10).build().capacity(),
            Some(64)
        );
        // The last setting wins.
        let store = MemoryStore::builder().unbounded().max_sessions(640).build();
        assert_eq!(store.capacity(), Some(640));
    }

    #[tokio::test]
    async fn sweeper_stops_when_the_store_is_dropped() {
        let store = MemoryStore::builder()
            .sweep_interval(Duration::from_millis(5))
            .build();
        let id = SessionId::generate().unwrap();
        store
            .create(&id.digest(), &Record::default(), &meta(0, None), 0)
            .await
            .unwrap();
        let sweeper = store.inner.sweeper.task().unwrap();
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
        let (listener, removed) = recorder();
        store.subscribe_removals(&listener);
        let short = SessionId::generate().unwrap();
        let long = SessionId::generate().unwrap();
        let record = Record::default();
        store
            .create(&short.digest(), &record, &meta(1_000, Some(2_000)), 0)
            .await
            .unwrap();
        store
            .create(&long.digest(), &record, &meta(1_000, Some(9_000)), 0)
            .await
            .unwrap();
        clock.advance(Duration::from_millis(1_500));
        for _ in 0..200 {
            if !removed.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(*removed.lock().unwrap(), vec![short.digest()]);
        assert_eq!(store.len(), 1);
        assert_consistent(&store);
    }

    /// Four sessions a shard; every kind of use (load, save, touch, create) counts, and the
    /// least recently used session of the shard goes first, reported to the listener.
    #[tokio::test]
    async fn a_full_shard_evicts_its_least_recently_used_session_and_reports_it() {
        let store = MemoryStore::builder().max_sessions(4 * SHARDS).build();
        let (listener, evicted) = recorder();
        store.subscribe_removals(&listener);
        let ids = ids_in_shard_zero(8);
        let [a, b, c, d, e, f, g, h] = <[SessionId; 8]>::try_from(ids).unwrap();
        let record = Record::default();
        let live = meta(0, Some(1_000_000));
        for id in [&a, &b, &c, &d] {
            store.create(&id.digest(), &record, &live, 0).await.unwrap();
        }
        // Uses, oldest first: c, d (created), a (loaded), b (saved).
        assert!(store.load(&a.digest(), 0).await.unwrap().is_some());
        let saved = store.save(&b.digest(), &record, &live, 0).await.unwrap();
        assert_eq!(saved, SaveOutcome::Saved);
        assert!(evicted.lock().unwrap().is_empty());

        store.create(&e.digest(), &record, &live, 0).await.unwrap();
        assert_eq!(*evicted.lock().unwrap(), vec![c.digest()]);
        // A touch is a use too: d is now the most recent of the old ones.
        let touched = store.touch(&d.digest(), &live, 0).await.unwrap();
        assert_eq!(touched, SaveOutcome::Saved);
        store.create(&f.digest(), &record, &live, 0).await.unwrap();
        store.create(&g.digest(), &record, &live, 0).await.unwrap();
        assert_eq!(
            *evicted.lock().unwrap(),
            vec![c.digest(), a.digest(), b.digest()]
        );
        store.create(&h.digest(), &record, &live, 0).await.unwrap();
        assert_eq!(
            *evicted.lock().unwrap(),
            vec![c.digest(), a.digest(), b.digest(), e.digest()]
        );
        for kept in [&d, &f, &g, &h] {
            assert!(store.load(&kept.digest(), 0).await.unwrap().is_some());
        }
        assert_eq!(store.len(), 4);
        assert_consistent(&store);
    }

    /// A full shard first drops its expired sessions (reported first, soonest deadline
    /// first), and evicts a live one only if that did not make room.
    #[tokio::test]
    async fn a_full_shard_drops_expired_sessions_before_evicting_live_ones() {
        let store = MemoryStore::builder().max_sessions(3 * SHARDS).build();
        let (listener, removed) = recorder();
        store.subscribe_removals(&listener);
        let [old, expires_late, expires_soon, new, newer] =
            <[SessionId; 5]>::try_from(ids_in_shard_zero(5)).unwrap();
        let record = Record::default();
        store
            .create(&old.digest(), &record, &meta(0, Some(1_000_000)), 0)
            .await
            .unwrap();
        store
            .create(&expires_late.digest(), &record, &meta(0, Some(200)), 0)
            .await
            .unwrap();
        store
            .create(&expires_soon.digest(), &record, &meta(0, Some(100)), 0)
            .await
            .unwrap();
        // At 500 both short ones have expired: they go, although `old` is used least recently.
        store
            .create(&new.digest(), &record, &meta(500, Some(1_000_000)), 500)
            .await
            .unwrap();
        assert_eq!(
            *removed.lock().unwrap(),
            vec![expires_soon.digest(), expires_late.digest()]
        );
        assert_eq!(store.len(), 2);
        // Room for one more without eviction, then `old` is the least recently used.
        store
            .create(&newer.digest(), &record, &meta(500, Some(1_000_000)), 500)
            .await
            .unwrap();
        let extra = ids_in_shard_zero(1).pop().unwrap();
        store
            .create(&extra.digest(), &record, &meta(500, Some(1_000_000)), 500)
            .await
            .unwrap();
        assert_eq!(
            *removed.lock().unwrap(),
            vec![expires_soon.digest(), expires_late.digest(), old.digest()]
        );
        assert_consistent(&store);
    }

    /// A tiny deterministic generator, so that the model test needs no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }
    }

    /// 20,000 random operations on one shard of capacity 8 against a plain LRU list: the
    /// lazy queue evicts exactly the session an exact LRU would, and the map and indexes
    /// stay in step.
    #[tokio::test]
    async fn eviction_matches_an_exact_lru_model() {
        let store = MemoryStore::builder().max_sessions(8 * SHARDS).build();
        let (listener, evicted) = recorder();
        store.subscribe_removals(&listener);
        let pool = ids_in_shard_zero(24);
        let record = Record::default();
        let live = meta(0, None);
        // Least recently used first.
        let mut model: Vec<SessionId> = Vec::new();
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        let used = |model: &mut Vec<SessionId>, id: &SessionId| {
            model.retain(|held| held != id);
            model.push(id.clone());
        };
        for step in 0..20_000 {
            let id = &pool[random.below(pool.len())];
            let held = model.contains(id);
            match random.below(6) {
                0 | 1 => {
                    let outcome = store.create(&id.digest(), &record, &live, 0).await.unwrap();
                    if held {
                        assert_eq!(outcome, CreateOutcome::IdTaken, "step {step}");
                    } else {
                        assert_eq!(outcome, CreateOutcome::Created, "step {step}");
                        let expected: Vec<SessionDigest> = if model.len() == 8 {
                            vec![model.remove(0).digest()]
                        } else {
                            Vec::new()
                        };
                        let heard: Vec<SessionDigest> = evicted.lock().unwrap().drain(..).collect();
                        assert_eq!(heard, expected, "step {step}");
                        used(&mut model, id);
                    }
                }
                2 => {
                    let loaded = store.load(&id.digest(), 0).await.unwrap();
                    assert_eq!(loaded.is_some(), held, "step {step}");
                    if held {
                        used(&mut model, id);
                    }
                }
                3 => {
                    let outcome = store.save(&id.digest(), &record, &live, 0).await.unwrap();
                    assert_eq!(outcome == SaveOutcome::Saved, held, "step {step}");
                    if held {
                        used(&mut model, id);
                    }
                }
                4 => {
                    let outcome = store.touch(&id.digest(), &live, 0).await.unwrap();
                    assert_eq!(outcome == SaveOutcome::Saved, held, "step {step}");
                    if held {
                        used(&mut model, id);
                    }
                }
                _ => {
                    let gone = if random.below(2) == 0 {
                        store.delete(&id.digest()).await.unwrap()
                    } else {
                        store.take(&id.digest(), 0).await.unwrap().is_some()
                    };
                    assert_eq!(gone, held, "step {step}");
                    model.retain(|held| held != id);
                }
            }
            assert!(evicted.lock().unwrap().is_empty(), "step {step}");
            assert_eq!(store.len(), model.len(), "step {step}");
            if step % 100 == 0 {
                assert_consistent(&store);
            }
        }
    }

    #[tokio::test]
    async fn sessions_are_keyed_by_digest_and_deletions_are_not_reported_by_the_store() {
        let store = MemoryStore::new();
        let (listener, removed) = recorder();
        store.subscribe_removals(&listener);
        let id = SessionId::generate().unwrap();
        store
            .create(&id.digest(), &Record::default(), &meta(0, Some(9_000)), 0)
            .await
            .unwrap();
        {
            let key = *id.digest().as_bytes();
            let state = read(store.inner.shard(&key));
            assert!(state.sessions.contains_key(&key));
            assert!(state.deadlines.values().all(|held| *held == key));
            assert!(state.queue.values().all(|held| *held == key));
        }
        let other = SessionId::generate().unwrap();
        store
            .create(
                &other.digest(),
                &Record::default(),
                &meta(0, Some(9_000)),
                0,
            )
            .await
            .unwrap();
        assert!(store.delete(&other.digest()).await.unwrap());
        assert!(store.take(&id.digest(), 0).await.unwrap().is_some());
        assert!(
            removed.lock().unwrap().is_empty(),
            "deletions are the layer's to report"
        );
        assert!(store.is_empty());
        assert_consistent(&store);
    }

    #[tokio::test]
    async fn taking_an_expired_session_reports_it_and_returns_nothing() {
        let store = MemoryStore::new();
        let (listener, removed) = recorder();
        store.subscribe_removals(&listener);
        let id = SessionId::generate().unwrap();
        store
            .create(&id.digest(), &Record::default(), &meta(0, Some(100)), 0)
            .await
            .unwrap();
        assert_eq!(store.take(&id.digest(), 100).await.unwrap(), None);
        assert_eq!(*removed.lock().unwrap(), vec![id.digest()]);
        assert!(store.is_empty());
        assert_consistent(&store);
    }

    #[tokio::test]
    async fn unbounded_store_never_evicts() {
        let store = MemoryStore::builder().unbounded().build();
        let (listener, removed) = recorder();
        store.subscribe_removals(&listener);
        for _ in 0..2_000 {
            let id = SessionId::generate().unwrap();
            store
                .create(&id.digest(), &Record::default(), &meta(0, Some(9_000)), 0)
                .await
                .unwrap();
        }
        assert_eq!(store.len(), 2_000);
        assert!(removed.lock().unwrap().is_empty());
        assert_consistent(&store);
    }

    #[tokio::test]
    async fn save_and_touch_move_the_deadline_the_sweeper_uses() {
        let clock = ManualClock::at_ms(0);
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .sweep_interval(Duration::from_secs(3600))
            .build();
        let saved = SessionId::generate().unwrap();
        let touched = SessionId::generate().unwrap();
        let record = Record::default();
        for id in [&saved, &touched] {
            store
                .create(&id.digest(), &record, &meta(0, Some(100)), 0)
                .await
                .unwrap();
        }
        let later = meta(0, Some(1_000));
        store
            .save(&saved.digest(), &record, &later, 50)
            .await
            .unwrap();
        store.touch(&touched.digest(), &later, 50).await.unwrap();
        clock.advance(Duration::from_millis(500));
        assert_eq!(
            store.sweep(),
            0,
            "the old deadlines are gone from the index"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(store.sweep(), 2);
        assert_consistent(&store);
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;

    async fn expired_session(store: &MemoryStore) {
        let id = crate::id::SessionId::generate().unwrap().digest();
        let meta = SessionMeta {
            created_ms: 0,
            seen_ms: 0,
            expires_ms: Some(1),
            absolute_ms: None,
        };
        let created = store.create(&id, &Record::default(), &meta, 0).await;
        assert_eq!(created.unwrap(), CreateOutcome::Created);
    }

    fn counter() -> (RemovalListener, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sink = Arc::clone(&count);
        let listener: RemovalListener = Arc::new(move |_, _| {
            sink.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        (listener, count)
    }

    #[tokio::test]
    async fn every_subscribed_listener_hears_each_removal_once() {
        let store = MemoryStore::new();
        let (first, first_count) = counter();
        let (second, second_count) = counter();
        store.subscribe_removals(&first);
        store.subscribe_removals(&first); // a layer is applied once per route
        store.clone().subscribe_removals(&second); // clones share the listeners
        expired_session(&store).await;
        assert_eq!(store.sweep(), 1);
        assert_eq!(first_count.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(second_count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_listener_does_not_stop_the_reports() {
        let store = MemoryStore::new();
        let panicking: RemovalListener = Arc::new(|_, _| panic!("a buggy on_deleted hook"));
        let (listener, count) = counter();
        store.subscribe_removals(&panicking);
        store.subscribe_removals(&listener);
        expired_session(&store).await;
        expired_session(&store).await;
        assert_eq!(store.sweep(), 2);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
        // And the next sweep still works.
        expired_session(&store).await;
        assert_eq!(store.sweep(), 1);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_dropped_listener_is_no_longer_called_or_held() {
        let store = MemoryStore::new();
        let (listener, count) = counter();
        store.subscribe_removals(&listener);
        drop(listener);
        expired_session(&store).await;
        assert_eq!(store.sweep(), 1);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(store.inner.removals.alive().is_empty());
    }
}
