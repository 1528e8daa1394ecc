//! A wrapper around a real store that counts operations and can inject faults. It never
//! replaces the store: every operation that is not failed on purpose reaches the real one.
//!
//! Two kinds of faults:
//!
//! - standing ones, for every operation until switched off: [`Faults::down`],
//!   [`Faults::delay_ms`], [`Faults::fake_collisions`];
//! - one-shot ones aimed at the next call of one operation ([`Op`]), acting either before
//!   the real store is called or after it answered ([`Place`]): fail it
//!   ([`Faults::fail_next`]), stall it ([`Faults::stall_next`]), or run a hook there
//!   ([`Faults::run_next`]). Each call of an operation consumes at most one of them, the
//!   oldest armed for that operation.
//!
//! [`Counts::in_flight`] and [`Counts::activity`] tell when work the layer runs in the
//! background has settled (see [`Counts::is_quiet_since`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_runtime::record::Record;
use session_runtime::store::{
    CreateOutcome, Loaded, RemovalListener, RemovalWatch, SaveOutcome, SessionMeta, SessionStore,
    StoreError,
};
use session_runtime::SessionDigest;

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
    /// Operations started and not yet finished (or dropped).
    pub in_flight: AtomicUsize,
    /// Bumped whenever an operation starts or ends (finishes or is dropped).
    pub activity: AtomicU64,
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

    /// The current [`activity`](Self::activity) mark.
    pub fn activity_mark(&self) -> u64 {
        self.activity.load(Ordering::SeqCst)
    }

    /// Whether no operation is running and none started or ended since `mark` was taken.
    pub fn is_quiet_since(&self, mark: u64) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.activity_mark() == mark
    }
}

/// Marks one operation in flight until dropped (also when the caller drops the operation).
struct InFlight<'a>(&'a Counts);

impl<'a> InFlight<'a> {
    fn start(counts: &'a Counts) -> Self {
        counts.in_flight.fetch_add(1, Ordering::SeqCst);
        counts.activity.fetch_add(1, Ordering::SeqCst);
        Self(counts)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.activity.fetch_add(1, Ordering::SeqCst);
    }
}

/// A store operation, the target of a one-shot fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Load,
    Create,
    Save,
    Touch,
    Take,
    Delete,
}

/// Where a one-shot fault acts, relative to the real store's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Before the real store is called. A failure leaves the store untouched; a stall
    /// delays the operation itself (dropped during the stall, it never happens).
    BeforeStore,
    /// After the real store did the operation. A failure loses the answer of an operation
    /// that was applied (like a network error on the reply); a stall delays only the
    /// answer (dropped during the stall, the operation has happened all the same).
    AfterStore,
}

/// A hook run in place of a store operation's fault: `Faults::run_next`.
pub type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

enum Action {
    Fail,
    Stall(Duration),
    Run(Hook),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fail => f.write_str("Fail"),
            Self::Stall(duration) => f.debug_tuple("Stall").field(duration).finish(),
            Self::Run(_) => f.write_str("Run(..)"),
        }
    }
}

#[derive(Debug)]
struct Armed {
    op: Op,
    place: Place,
    action: Action,
}

#[derive(Default, Debug)]
pub struct Faults {
    /// Every operation fails.
    pub down: AtomicBool,
    /// Every operation waits this long first.
    pub delay_ms: AtomicU64,
    /// The next N creates report the id as taken without touching the store.
    pub fake_collisions: AtomicUsize,
    /// One-shot faults not yet fired, oldest first.
    armed: Mutex<VecDeque<Armed>>,
    /// The operations whose one-shot faults fired, in order.
    fired: Mutex<Vec<Op>>,
}

impl Faults {
    fn arm(&self, op: Op, place: Place, action: Action) {
        self.armed
            .lock()
            .unwrap()
            .push_back(Armed { op, place, action });
    }

    /// The next call of `op` fails with a [`StoreError`], before or after the real store
    /// did the operation.
    pub fn fail_next(&self, op: Op, place: Place) {
        self.arm(op, place, Action::Fail);
    }

    /// The next call of `op` waits `duration`, before or after the real store did the
    /// operation.
    pub fn stall_next(&self, op: Op, place: Place, duration: Duration) {
        self.arm(op, place, Action::Stall(duration));
    }

    /// The next call of `op` runs `hook` (and waits for it), before or after the real store
    /// did the operation.
    pub fn run_next<F, Fut>(&self, op: Op, place: Place, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let hook: Hook = Box::new(move || Box::pin(hook()));
        self.arm(op, place, Action::Run(hook));
    }

    /// How many one-shot faults aimed at `op` have fired (started acting) so far.
    pub fn fired(&self, op: Op) -> usize {
        self.fired
            .lock()
            .unwrap()
            .iter()
            .filter(|&&o| o == op)
            .count()
    }

    /// How many one-shot faults are armed and have not fired yet.
    pub fn pending(&self) -> usize {
        self.armed.lock().unwrap().len()
    }

    /// The oldest one-shot fault armed for `op`, removed.
    fn next_for(&self, op: Op) -> Option<Armed> {
        let mut armed = self.armed.lock().unwrap();
        let index = armed.iter().position(|fault| fault.op == op)?;
        armed.remove(index)
    }

    async fn act(&self, op: Op, action: Action) -> Result<(), StoreError> {
        self.fired.lock().unwrap().push(op);
        match action {
            Action::Fail => Err(StoreError::message(format!(
                "injected fault: {op:?} failed"
            ))),
            Action::Stall(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Action::Run(hook) => {
                hook().await;
                Ok(())
            }
        }
    }
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

    /// Counts `op`, applies the standing faults and the next one-shot fault aimed at it,
    /// and runs `real` (the real store's operation) unless a fault stops it first.
    async fn run<T>(
        &self,
        op: Op,
        counter: &AtomicUsize,
        real: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let _in_flight = InFlight::start(&self.counts);
        self.before(counter).await?;
        match self.faults.next_for(op) {
            None => real.await,
            Some(Armed {
                place: Place::BeforeStore,
                action,
                ..
            }) => {
                self.faults.act(op, action).await?;
                real.await
            }
            Some(Armed {
                place: Place::AfterStore,
                action,
                ..
            }) => {
                let result = real.await;
                self.faults.act(op, action).await?;
                result
            }
        }
    }
}

impl<S: SessionStore> SessionStore for Counting<S> {
    async fn load(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        self.run(Op::Load, &self.counts.load, self.inner.load(id, now_ms))
            .await
    }

    async fn create(
        &self,
        id: &SessionDigest,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<CreateOutcome, StoreError> {
        let real = async {
            let collisions = &self.faults.fake_collisions;
            if collisions
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Ok(CreateOutcome::IdTaken);
            }
            self.inner.create(id, record, meta, now_ms).await
        };
        self.run(Op::Create, &self.counts.create, real).await
    }

    async fn save(
        &self,
        id: &SessionDigest,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        let real = async {
            self.counts
                .last_save_fields
                .store(changes.fields.len(), Ordering::SeqCst);
            self.inner.save(id, changes, meta, now_ms).await
        };
        self.run(Op::Save, &self.counts.save, real).await
    }

    async fn touch(
        &self,
        id: &SessionDigest,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        self.run(
            Op::Touch,
            &self.counts.touch,
            self.inner.touch(id, meta, now_ms),
        )
        .await
    }

    async fn take(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        self.run(Op::Take, &self.counts.take, self.inner.take(id, now_ms))
            .await
    }

    async fn delete(&self, id: &SessionDigest) -> Result<bool, StoreError> {
        self.run(Op::Delete, &self.counts.delete, self.inner.delete(id))
            .await
    }

    fn subscribe_removals(&self, listener: &RemovalListener) {
        self.inner.subscribe_removals(listener);
    }

    // The owner index and admin operations go straight to the real store (not counted).

    async fn owned_by(
        &self,
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<(SessionDigest, Loaded)>, StoreError> {
        self.inner.owned_by(owner, now_ms).await
    }

    async fn count(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.inner.count(now_ms).await
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        self.inner.clear().await
    }

    async fn watch_removal(&self, id: &SessionDigest) -> Result<RemovalWatch, StoreError> {
        self.inner.watch_removal(id).await
    }
}
