//! The backend for any [`SessionStore`]: the client holds a session id, the store holds the
//! data, and a commit writes only what changed.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::{decoded, Answer, Applied, CommitError, Ctx, Lookup, Plan, Token, TokenUpdate};
use crate::id::SessionId;
use crate::record::{Record, RecordField, Snapshot};
use crate::schema::{is_internal, Databag, Tracked};
use crate::store::memory::MemoryStore;
use crate::store::{CreateOutcome, RemovalListener, SaveOutcome, SessionMeta, SessionStore};
use crate::store::{Loaded, StoreError};

/// How often a fresh id is drawn when the store says one is taken (a 192-bit collision:
/// in practice only a store bug or a test forcing it).
const CREATE_ATTEMPTS: usize = 3;

pub(crate) struct StoreBackend<S> {
    store: Arc<S>,
}

impl<S: SessionStore> StoreBackend<S> {
    pub(crate) fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The store, if it is the memory store, whose operations never wait: the layer then
    /// calls them without a future or a timer (the same operations the `SessionStore`
    /// methods run).
    fn memory(&self) -> Option<&MemoryStore> {
        (&*self.store as &dyn std::any::Any).downcast_ref::<MemoryStore>()
    }

    /// Another handle on the same store, for work on a task of its own.
    fn clone_handle(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
        }
    }
}

impl<T: Databag, S: SessionStore> super::Backend<T> for StoreBackend<S> {
    fn load<'a>(
        &'a self,
        token: &'a str,
        _purpose: &'a str,
        now: u64,
    ) -> Answer<'a, Result<Lookup<T>, StoreError>> {
        // A malformed token never reaches the store.
        let Some(id) = SessionId::parse(token) else {
            return Answer::Now(Ok(Lookup::Dead));
        };
        if let Some(memory) = self.memory() {
            // Never waits: answered at once, decoded from the stored record itself.
            let Some((record, meta)) = memory.load_shared(&id.digest(), now) else {
                return Answer::Now(Ok(Lookup::Unusable));
            };
            let value = record.decode::<T>();
            return Answer::Now(Ok(decoded(
                id,
                meta,
                value,
                false,
                Snapshot::Shared(record),
            )));
        }
        Answer::Later(Box::pin(async move {
            let Some(stored) = self.store.load(&id.digest(), now).await? else {
                return Ok(Lookup::Unusable);
            };
            if stored.meta.is_expired(now) {
                return Ok(Lookup::Dead);
            }
            let value = stored.record.decode::<T>();
            let snapshot = Snapshot::Fields(stored.record);
            Ok(decoded(id, stored.meta, value, false, snapshot))
        }))
    }

    fn apply<'a>(
        &'a self,
        plan: Plan,
        tracked: &'a Tracked<T>,
        ctx: &'a Ctx<'a>,
    ) -> Answer<'a, Result<Applied, CommitError>> {
        // The memory store never waits: a save or a touch (one operation each) is answered
        // at once. Everything else takes the general path below.
        if let (Some(memory), Plan::Save { id, meta } | Plan::Touch { id, meta }) =
            (self.memory(), &plan)
        {
            let outcome = match plan {
                Plan::Save { .. } => match Record::changes(tracked) {
                    Ok(changes) => memory.save_now(&id.digest(), &changes, meta, ctx.now),
                    Err(error) => return Answer::Now(Err(error.into())),
                },
                _ => memory.touch_now(&id.digest(), meta, ctx.now),
            };
            if outcome == SaveOutcome::Missing {
                missing(id);
            }
            return Answer::Now(Ok(refreshed(outcome, id.clone(), meta)));
        }
        Answer::Later(Box::pin(async move {
            let store = &*self.store;
            match plan {
                Plan::Nothing => Ok(Applied::token(TokenUpdate::Keep)),
                Plan::Create { id, meta } => {
                    let record = Record::full(tracked)?;
                    let id = self.create(Some(id), &record, &meta, ctx).await?;
                    Ok(Applied {
                        started: Some(id.clone()),
                        ..moved(id, &meta)
                    })
                }
                Plan::Save { id, meta } => {
                    let changes = Record::changes(tracked)?;
                    let outcome = ctx
                        .bounded(store.save(&id.digest(), &changes, &meta, ctx.now))
                        .await?;
                    if outcome == SaveOutcome::Missing {
                        missing(&id);
                    }
                    Ok(refreshed(outcome, id, &meta))
                }
                Plan::Touch { id, meta } => {
                    let outcome = ctx
                        .bounded(store.touch(&id.digest(), &meta, ctx.now))
                        .await?;
                    Ok(refreshed(outcome, id, &meta))
                }
                Plan::Destroy { stored, forget } => {
                    let mut deleted = None;
                    if let Some(id) = stored {
                        // Reported once, by whichever request actually removed it.
                        if ctx.bounded(store.delete(&id.digest())).await? {
                            deleted = Some(id);
                        }
                    }
                    let token = if forget {
                        TokenUpdate::Forget
                    } else {
                        TokenUpdate::Keep
                    };
                    Ok(Applied {
                        deleted,
                        ..Applied::token(token)
                    })
                }
                Plan::Renew { from, to, meta } => self.renew(from, to, meta, tracked, ctx).await,
                Plan::Restart { from, to, meta } => {
                    self.restart(from, to, meta, tracked, ctx).await
                }
            }
        }))
    }

    fn commits_at_once(&self, plan: &Plan) -> bool {
        self.memory().is_some() && matches!(plan, Plan::Save { .. } | Plan::Touch { .. })
    }

    fn subscribe_removals(&self, listener: &RemovalListener) {
        self.store.subscribe_removals(listener);
    }

    fn admin(&self) -> Option<&dyn super::Admin> {
        Some(&*self.store)
    }
}

/// Logs a save that found no session to save into.
fn missing(id: &SessionId) {
    tracing::debug!(
        session = %id,
        "session was deleted, expired, or rewritten by a newer deploy during the request; \
         its changes are dropped"
    );
}

/// The answer to a save or touch: the same token, with the deadline that moved.
fn refreshed(outcome: SaveOutcome, id: SessionId, meta: &SessionMeta) -> Applied {
    match outcome {
        SaveOutcome::Saved => Applied::token(TokenUpdate::Refresh {
            token: Token::Id(id),
            expires_ms: meta.expires_ms,
        }),
        SaveOutcome::Missing => Applied::missing(),
    }
}

impl<S: SessionStore> StoreBackend<S> {
    /// Creates the session under `id` (or a fresh id), drawing another id if the store
    /// reports a collision. On a store error the id last tried is deleted in the background,
    /// in case a timed-out create is applied late: no record is left under an id nobody
    /// holds.
    async fn create(
        &self,
        id: Option<SessionId>,
        record: &Record,
        meta: &SessionMeta,
        ctx: &Ctx<'_>,
    ) -> Result<SessionId, CommitError> {
        let mut id = match id {
            Some(id) => id,
            None => SessionId::generate()?,
        };
        for _ in 0..CREATE_ATTEMPTS {
            match ctx
                .bounded(self.store.create(&id.digest(), record, meta, ctx.now))
                .await
            {
                Ok(CreateOutcome::Created) => return Ok(id),
                Ok(CreateOutcome::IdTaken) => {
                    tracing::warn!(session = %id, "session id collision on create; drawing another");
                    id = SessionId::generate()?;
                }
                Err(error) => {
                    self.delete_in_background(id, ctx, "a new session whose create failed");
                    return Err(error.into());
                }
            }
        }
        Err(StoreError::message("the store reported every new session id as taken").into())
    }

    /// Renewal: the session moves from `from` to a new id without ever being in neither
    /// place. The new id is created first, holding the loaded data and this request's
    /// changes; then the old one is taken, atomically, which is the moment the move
    /// happens:
    ///
    /// - create fails: the old session is untouched, the request gets a 503;
    /// - the take finds nothing: a concurrent request ended (or renewed) the session, so the
    ///   new id is deleted too and nothing is sent: the client's old token is dead, and a
    ///   concurrent renewal's response may carry its new one (a double-submitted login
    ///   stays logged in);
    /// - the take fails: the session may or may not still be under the old id, but it is
    ///   under the new one, so the client gets the new token and the old id is deleted once
    ///   more in the background (if a logout raced it, the outcome is as if the login had
    ///   come after the logout);
    /// - the response was dropped (the client left, an outer timeout): the client still
    ///   holds the old token, so the move is undone: the new id is deleted and, if the old
    ///   one was taken already, the session is put back under it as it was.
    async fn renew<T: Databag>(
        &self,
        from: SessionId,
        to: Option<SessionId>,
        meta: SessionMeta,
        tracked: &Tracked<T>,
        ctx: &Ctx<'_>,
    ) -> Result<Applied, CommitError> {
        let ours = Record::full(tracked)?;
        let to = self.create(to, &ours, &meta, ctx).await?;
        if ctx.abandoned.is_set() {
            self.delete_in_background(to, ctx, "a renewal whose response was dropped");
            return Ok(Applied::token(TokenUpdate::Keep));
        }
        let taken = match ctx.bounded(self.store.take(&from.digest(), ctx.now)).await {
            Ok(taken) => taken,
            Err(error) if ctx.abandoned.is_set() => {
                tracing::warn!(session = %from, %error, "renewal could not remove the old session id, and its response was dropped; undoing it");
                self.undo_after_failed_take(from, to, ctx);
                return Ok(Applied::token(TokenUpdate::Keep));
            }
            Err(error) => {
                tracing::warn!(
                    session = %from,
                    %error,
                    "renewal could not remove the old session id; the session moved to the new \
                     one and the old id is deleted again in the background"
                );
                self.delete_in_background(from, ctx, "the old id of a renewed session");
                return Ok(moved(to, &meta));
            }
        };
        let Some(taken) = taken else {
            tracing::debug!(session = %from, "session ended or moved during the request; it is not renewed");
            self.delete_in_background(to, ctx, "a renewal of a session ended meanwhile");
            return Ok(Applied::missing());
        };
        self.carry_over(&to, &ours, &taken.record, tracked, &meta, ctx)
            .await;
        if ctx.abandoned.is_set() {
            // Put back what was taken, without this request's changes: a renewal is a
            // privilege change (a login), and the old id may be one an attacker planted.
            self.move_back(from, to, taken, ctx.timeout, ctx.now);
            return Ok(Applied::token(TokenUpdate::Keep));
        }
        Ok(moved(to, &meta))
    }

    /// Reset in place (writes after `destroy()`): the fresh session is created first, then
    /// the old one deleted, so that a failure never leaves the client with neither:
    ///
    /// - create fails: the old session is untouched, the request gets a 503 (the logout did
    ///   not happen; the client may retry);
    /// - the delete fails: the client gets the new token, and the old id is deleted again in
    ///   the background;
    /// - the response was dropped: the fresh session is deleted again (the client never got
    ///   its token); if that happened before the delete, the old session stays, as if the
    ///   request had never come.
    async fn restart<T: Databag>(
        &self,
        from: SessionId,
        to: Option<SessionId>,
        meta: SessionMeta,
        tracked: &Tracked<T>,
        ctx: &Ctx<'_>,
    ) -> Result<Applied, CommitError> {
        let record = Record::full(tracked)?;
        let to = self.create(to, &record, &meta, ctx).await?;
        if ctx.abandoned.is_set() {
            self.delete_in_background(to, ctx, "a reset session whose response was dropped");
            return Ok(Applied::token(TokenUpdate::Keep));
        }
        let deleted = match ctx.bounded(self.store.delete(&from.digest())).await {
            Ok(deleted) => deleted.then(|| from.clone()),
            Err(error) => {
                tracing::warn!(
                    session = %from,
                    %error,
                    "reset in place could not delete the old session; it is deleted again in \
                     the background"
                );
                self.delete_in_background(from.clone(), ctx, "the old id of a reset session");
                None
            }
        };
        if ctx.abandoned.is_set() {
            self.delete_in_background(to, ctx, "a reset session whose response was dropped");
            return Ok(Applied {
                deleted,
                ..Applied::token(TokenUpdate::Keep)
            });
        }
        Ok(Applied {
            started: Some(to.clone()),
            deleted,
            ..moved(to, &meta)
        })
    }

    /// The take of an abandoned renewal failed, so whether the session is still under the
    /// old id is unknown: take it again on a task of its own (after the first attempt, on a
    /// store that orders one client's commands) and put it back if it was still there.
    fn undo_after_failed_take(&self, from: SessionId, to: SessionId, ctx: &Ctx<'_>) {
        let this = self.clone_handle();
        let (timeout, now) = (ctx.timeout, ctx.now);
        spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            match super::until(deadline, timeout, this.store.take(&from.digest(), now)).await {
                Ok(Some(taken)) => this.move_back(from, to, taken, timeout, now),
                Ok(None) => tracing::error!(
                    session = %from,
                    "a renewal whose response was dropped could not be undone: the old id was \
                     already gone; the session stays under its new id"
                ),
                Err(error) => tracing::error!(
                    session = %from,
                    %error,
                    "a renewal whose response was dropped could not be undone; both ids may \
                     hold the session until it expires"
                ),
            }
        });
    }

    /// Writes to the new id what other requests saved under the old one while this request
    /// ran (fields this request did not change). A failure is logged: the session lives on
    /// under the new id, without those fields.
    async fn carry_over<T: Databag>(
        &self,
        to: &SessionId,
        ours: &Record,
        theirs: &Record,
        tracked: &Tracked<T>,
        meta: &SessionMeta,
        ctx: &Ctx<'_>,
    ) {
        let carried = if theirs.version > T::VERSION {
            // A newer deploy rewrote the record meanwhile: keep its data, move the id only.
            theirs.clone()
        } else {
            let changed: Vec<&str> = tracked
                .changed_fields()
                .map(|field| field.key)
                .chain(tracked.internal().changed().map(|(key, _)| key))
                .collect();
            Record {
                version: T::VERSION,
                fields: theirs
                    .fields
                    .iter()
                    .filter(|field| {
                        T::FIELDS.iter().any(|known| known.key == field.key)
                            || is_internal(&field.key)
                    })
                    .filter(|field| !changed.contains(&field.key.as_str()))
                    .filter(|field| ours.get(&field.key) != Some(field.value.as_slice()))
                    .cloned()
                    .collect::<Vec<RecordField>>(),
            }
        };
        if carried.fields.is_empty() && carried.version == ours.version {
            return;
        }
        if let Err(error) = ctx
            .bounded(self.store.save(&to.digest(), &carried, meta, ctx.now))
            .await
        {
            tracing::warn!(
                session = %to,
                %error,
                "renewal could not carry over fields saved meanwhile by other requests"
            );
        }
    }

    /// Undoes a renewal whose response never reached the client: the session goes back
    /// under `from` (which the client still holds) as it was before this request, and `to`
    /// is deleted, on a task of its own. If putting it back fails, the old id is read to
    /// learn whether it landed all the same (a late answer): only then is `to` deleted, so
    /// the session is never left in neither place.
    fn move_back(
        &self,
        from: SessionId,
        to: SessionId,
        session: Loaded,
        timeout: Duration,
        now: u64,
    ) {
        let store = Arc::clone(&self.store);
        spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let restored = super::until(
                deadline,
                timeout,
                store.create(&from.digest(), &session.record, &session.meta, now),
            )
            .await;
            let back = match restored {
                // `IdTaken`: a session is under the old id, which is what was wanted.
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(session = %from, %error, "putting a session back under its old id failed; checking whether it landed");
                    let deadline = tokio::time::Instant::now() + timeout;
                    matches!(
                        super::until(deadline, timeout, store.load(&from.digest(), now)).await,
                        Ok(Some(_))
                    )
                }
            };
            if back {
                let deadline = tokio::time::Instant::now() + timeout;
                let moved = super::until(deadline, timeout, store.delete(&to.digest())).await;
                if matches!(moved, Ok(false)) {
                    // The new id was ended meanwhile (revoked, or logged out by a request
                    // that had its token): the session must not live on under the old id.
                    tracing::info!(session = %from, "a renewal being undone was ended meanwhile; the old id is ended too");
                    let deadline = tokio::time::Instant::now() + timeout;
                    let _ = super::until(deadline, timeout, store.delete(&from.digest())).await;
                }
            } else {
                tracing::error!(
                    session = %from,
                    "could not undo a renewal whose response was dropped; the session stays \
                     under its new id"
                );
            }
        });
    }

    /// Deletes `id` on a task of its own, bounded by the store timeout, so that cleanup
    /// after a failure never delays the response and is not lost if the response is dropped.
    fn delete_in_background(&self, id: SessionId, ctx: &Ctx<'_>, what: &'static str) {
        let store = Arc::clone(&self.store);
        let timeout = ctx.timeout;
        spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            if let Err(error) = super::until(deadline, timeout, store.delete(&id.digest())).await {
                tracing::warn!(session = %id, %error, "could not delete {what}");
            }
        });
    }
}

/// The answer to a commit that put the session under `to`: send its token.
fn moved(to: SessionId, meta: &SessionMeta) -> Applied {
    Applied {
        now_under: Some(to.clone()),
        ..Applied::token(TokenUpdate::Send {
            token: Token::Text(to.expose_token()),
            expires_ms: meta.expires_ms,
        })
    }
}

/// Runs `task` on the current Tokio runtime (the layer always runs inside one), in the
/// request's tracing span.
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(task.in_current_span());
        }
        Err(_) => tracing::error!("no Tokio runtime to run session cleanup on"),
    }
}
