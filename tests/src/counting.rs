//! A wrapper around a real store that counts operations and can inject faults. It never
//! replaces the store: every operation that is not failed on purpose reaches the real one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use session_runtime::store::{
    CreateOutcome, Loaded, RemovalListener, SaveOutcome, SessionMeta, SessionStore, StoreError,
};
use session_runtime::{Record, SessionId};

#[derive(Default, Debug)]
pub struct Counts {
    pub load: AtomicUsize,
    pub create: AtomicUsize,
    pub save: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    pub take: AtomicUsize,
    /// How many fields the last save carried.
    pub last_save_fields: AtomicUsize,
}

impl Counts {
    /// `(load, create, save, touch, delete + take)`.
    pub fn snapshot(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.load.load(Ordering::SeqCst),
            self.create.load(Ordering::SeqCst),
            self.save.load(Ordering::SeqCst),
            self.touch.load(Ordering::SeqCst),
            self.delete.load(Ordering::SeqCst) + self.take.load(Ordering::SeqCst),
        )
    }

    pub fn writes(&self) -> usize {
        let (_, create, save, touch, removals) = self.snapshot();
        create + save + touch + removals
    }

    pub fn total(&self) -> usize {
        self.load.load(Ordering::SeqCst) + self.writes()
    }
}

#[derive(Default, Debug)]
pub struct Faults {
    /// Every operation fails.
    pub down: AtomicBool,
    /// Every operation waits this long first.
    pub delay_ms: AtomicU64,
    /// The next N creates report the id as taken without touching the store.
    pub fake_collisions: AtomicUsize,
}

/// A real store, counted.
pub struct Counting<S> {
    pub inner: S,
    pub counts: Arc<Counts>,
    pub faults: Arc<Faults>,
}

impl<S: Clone> Clone for Counting<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            counts: Arc::clone(&self.counts),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Arc::default(),
            faults: Arc::default(),
        }
    }

    async fn before(&self, counter: &AtomicUsize) -> Result<(), StoreError> {
        counter.fetch_add(1, Ordering::SeqCst);
        let delay = self.faults.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.faults.down.load(Ordering::SeqCst) {
            return Err(StoreError::message("injected fault: store down"));
        }
        Ok(())
    }
}

impl<S: SessionStore> SessionStore for Counting<S> {
    async fn load(&self, id: &SessionId, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        self.before(&self.counts.load).await?;
        self.inner.load(id, now_ms).await
    }

    async fn create(
        &self,
        id: &SessionId,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<CreateOutcome, StoreError> {
        self.before(&self.counts.create).await?;
        let collisions = &self.faults.fake_collisions;
        if collisions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(CreateOutcome::IdTaken);
        }
        self.inner.create(id, record, meta, now_ms).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        self.before(&self.counts.save).await?;
        self.counts
            .last_save_fields
            .store(changes.fields.len(), Ordering::SeqCst);
        self.inner.save(id, changes, meta, now_ms).await
    }

    async fn touch(
        &self,
        id: &SessionId,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        self.before(&self.counts.touch).await?;
        self.inner.touch(id, meta, now_ms).await
    }

    async fn take(&self, id: &SessionId, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        self.before(&self.counts.take).await?;
        self.inner.take(id, now_ms).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.before(&self.counts.delete).await?;
        self.inner.delete(id).await
    }

    fn set_removal_listener(&self, listener: RemovalListener) {
        self.inner.set_removal_listener(listener);
    }
}
