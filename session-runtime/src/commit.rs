//! Committing a session: carrying out the [`Plan`] on the backend, running the hooks, and
//! telling the client about its token. One path serves both the commit after the handler
//! ([`start`]) and an explicit `session.save()` inside it ([`save`]), in a request or for a
//! session loaded outside one.
//!
//! A plan of one store operation runs inside the response future: if that future is dropped
//! halfway (the client left, an outer timeout fired), the operation either happened or did
//! not, and either way the client's token still names a live session or none it relied on.
//! A renewal or a reset in place takes several operations, so it runs on its own task to
//! completion, and rolls back if its response was dropped (see the server backend's `renew`
//! and `restart`): no failure or cancellation can leave a user with neither session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode};
use tracing::Instrument as _;

use crate::backend::{Abandoned, Answer, Applied, CommitError, Ctx, Plan, TokenUpdate};
use crate::client::Client;
use crate::config::Config;
use crate::error::SaveError;
use crate::handle::{ClientToken, Intent, Origin, Returned, SessionState};
use crate::id::SessionId;
use crate::plan::{deadlines, plan};
use crate::record::Snapshot;
use crate::schema::{keys, Databag, Tracked};

/// A commit in progress, with the response it completes.
pub(crate) type Committing<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

/// A token update an explicit save made, waiting for the response to carry it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) update: TokenUpdate,
    /// Whether the cookie persists (carries `Max-Age`).
    pub(crate) persistent: bool,
}

/// Where the token updates of explicit saves go: the request's slot, until its response is
/// sent; nowhere, for a session loaded outside a request.
pub(crate) trait Outlet: Send + Sync {
    /// Whether the response that would carry a token is gone (or there never was one).
    fn responded(&self) -> bool;

    /// Queues `pending` for the response; `false` when the response is gone.
    fn deliver(&self, pending: Pending) -> bool;

    /// What the layer keeps of the request's client, if anything (none outside a request).
    fn client(&self) -> Option<Client> {
        None
    }
}

/// Starts the commit after the handler: of the session given back (`None` when no handler
/// used it, or its handle outlived the response), and of the token updates explicit saves
/// left. `Err(response)` when nothing is left to write (the common case of a request that
/// only read its session; headers of earlier saves are written into it), else the future
/// that commits and then yields the response, with its token headers or as an opaque error.
pub(crate) fn start<T: Databag, B: Default + Send + 'static>(
    config: &Arc<Config<T>>,
    returned: Option<Returned<T>>,
    pending: Option<Pending>,
    snapshot: Option<Snapshot>,
    client: Option<Client>,
    mut response: Response<B>,
) -> Result<Committing<B>, Response<B>> {
    let now = config.clock.now_ms();
    let Some(mut returned) = returned else {
        if let Some(pending) = pending {
            send(config, response.headers_mut(), pending, now);
        }
        return Err(response);
    };
    if let (Origin::Stored { .. }, Intent::Keep | Intent::Renew { .. }, Some(snapshot)) =
        (&returned.state.origin, &returned.state.intent, snapshot)
    {
        // A field set to the value it was loaded with is no change: not written. (Not after
        // `destroy()`: the fresh session starts from defaults, and stores what was set.)
        snapshot.unmark_unchanged(&mut returned.tracked);
    }
    index_owner(config, &mut returned);
    let plan = decide(config, &returned, now);
    remember_client(config, &plan, client.as_ref(), &mut returned);
    let persistent = config.persists(&returned.tracked);
    let resend = remember_changed(&returned.tracked);
    if plan == Plan::Nothing {
        if let Some(pending) = pending {
            send(config, response.headers_mut(), pending, now);
        }
        return Err(response);
    }
    let finish = move |config: &Config<T>, result: Result<Applied, CommitError>, response| {
        let result = result.map(|applied| {
            let update = resent(applied.token, resend);
            let update = match pending {
                Some(earlier) => merge(earlier.update, update),
                None => update,
            };
            Pending { update, persistent }
        });
        respond(config, result, response, now)
    };
    if !plan.is_multi_step() && config.backend.commits_at_once(&plan) {
        // A backend that needs no I/O for this plan (the cookie store, the memory store's
        // save and touch) has committed when `apply` returns: the response goes out now,
        // without a boxed future. (Were the answer a future after all, it would be dropped
        // unpolled, which does nothing, and the commit would run below.)
        let abandoned = Abandoned::unwatched();
        let ctx = ctx(config, now, &abandoned);
        let answer = config.backend.apply(plan.clone(), &returned.tracked, &ctx);
        if let Answer::Now(applied) = answer {
            let result = applied.inspect(|applied| hooks(config, applied, &returned));
            return Err(finish(config, result, response));
        }
    }
    let config = Arc::clone(config);
    if !plan.is_multi_step() {
        return Ok(Box::pin(async move {
            let result = run(&config, plan, &returned, now, &Abandoned::unwatched()).await;
            finish(&config, result, response)
        }));
    }
    let task = {
        let config = Arc::clone(&config);
        move |abandoned: Abandoned| async move { run(&config, plan, &returned, now, &abandoned).await }
    };
    Ok(Box::pin(async move {
        let result = to_completion(task).await;
        finish(&config, result, response)
    }))
}

/// Persists what changed in `session` so far (an explicit `save()`), through the same plan,
/// backend and hooks as the commit after the handler; on success `session` holds what is
/// stored now (its state, no pending changes), and the token update goes to `outlet` for
/// the response. On failure `session` is unchanged.
pub(crate) async fn save<T: Databag>(
    config: &Arc<Config<T>>,
    session: &mut Returned<T>,
    outlet: &dyn Outlet,
) -> Result<(), SaveError> {
    let now = config.clock.now_ms();
    index_owner(config, session);
    let plan = decide(config, session, now);
    remember_client(config, &plan, outlet.client().as_ref(), session);
    let needs_new_token = match &plan {
        Plan::Nothing => return Ok(()),
        Plan::Create { .. } | Plan::Renew { .. } | Plan::Restart { .. } => true,
        // With the cookie store the token is the session: any write is a new token.
        Plan::Save { .. } | Plan::Touch { .. } => config.backend.client_side(),
        // Deleting needs no response: a token naming nothing is forgotten later.
        Plan::Destroy { .. } => false,
    };
    if needs_new_token && outlet.responded() {
        // Refreshing deadlines alone is not worth an error.
        if matches!(plan, Plan::Touch { .. }) {
            return Ok(());
        }
        return Err(SaveError::TokenUndeliverable);
    }
    let persistent = config.persists(&session.tracked);
    let resend = remember_changed(&session.tracked);
    let applied = if plan.is_multi_step() {
        // The steps run on a task of their own, so that they complete or roll back even if
        // this future is dropped; the task gets its own copy of the data.
        let snapshot = snapshot(&session.tracked)?;
        let config = Arc::clone(config);
        let plan = plan.clone();
        to_completion(move |abandoned: Abandoned| async move {
            let ctx_config = &config;
            apply(ctx_config, plan, &snapshot, now, &abandoned).await
        })
        .await?
    } else {
        apply(
            config,
            plan.clone(),
            &session.tracked,
            now,
            &Abandoned::unwatched(),
        )
        .await?
    };
    hooks(config, &applied, session);
    if applied.missing {
        return Err(SaveError::Ended);
    }
    let update = resent(applied.token, resend);
    let must_reach_client = matches!(update, TokenUpdate::Send { .. });
    session.state = saved_state(config, &plan, applied.now_under, &session.state, now)?;
    session.tracked.reset_changes();
    session.destroyed = None;
    if !outlet.deliver(Pending { update, persistent }) && must_reach_client {
        // Only when the response went out while this save ran (a handle moved into a task).
        tracing::error!(
            "a session save finished after its response was sent; the client never gets the \
             new token"
        );
        return Err(SaveError::TokenUndeliverable);
    }
    Ok(())
}

/// Puts the owner field's key where server-side stores index it, when the owner changed
/// (the cookie store keeps no index: nothing to write there).
fn index_owner<T: Databag>(config: &Config<T>, session: &mut Returned<T>) {
    if !config.backend.client_side() {
        crate::schema::owner::sync(&mut session.tracked);
    }
}

/// Writes what the layer keeps of the client into a session stored under a new id (the
/// device and address a user's list of sessions shows); other writes leave it alone.
fn remember_client<T: Databag>(
    config: &Config<T>,
    plan: &Plan,
    client: Option<&Client>,
    session: &mut Returned<T>,
) {
    if config.backend.client_side() {
        // The cookie store lists nothing: a device label would only grow the cookie.
        return;
    }
    if let (Some(client), Plan::Create { .. } | Plan::Renew { .. } | Plan::Restart { .. }) =
        (client, plan)
    {
        crate::client::stamp(session.tracked.internal_mut(), client);
    }
}

/// The plan for `session` now, with its own timeouts.
fn decide<T: Databag>(config: &Config<T>, session: &Returned<T>, now: u64) -> Plan {
    let tracked = &session.tracked;
    let changed = match (&session.state.origin, &session.state.intent) {
        // A new session written only with default values is not worth storing, nor is a
        // reset in place that wrote only defaults.
        (Origin::New { .. }, _) | (_, Intent::Destroy { .. }) => {
            departs_from_defaults(tracked) || tracked.internal().is_changed()
        }
        (Origin::Stored { .. }, _) => tracked.has_changes(),
    };
    plan(&session.state, changed, &config.timeouts_for(tracked), now)
}

/// What the session is after a successful save of `plan`: stored under its (maybe new) id
/// with the meta just written, or, after a destroy, a fresh session not stored yet.
fn saved_state<T: Databag>(
    config: &Config<T>,
    plan: &Plan,
    now_under: Option<SessionId>,
    before: &SessionState,
    now: u64,
) -> Result<SessionState, SaveError> {
    let stored = |id: SessionId, meta: &crate::store::SessionMeta| {
        SessionState::stored(id, *meta, meta.expires_ms, false)
    };
    Ok(match plan {
        Plan::Nothing => before.clone(),
        Plan::Save { id, meta } | Plan::Touch { id, meta } => stored(id.clone(), meta),
        Plan::Create { id, meta } => stored(now_under.unwrap_or_else(|| id.clone()), meta),
        Plan::Renew { meta, .. } | Plan::Restart { meta, .. } => {
            let Some(id) = now_under else {
                return Err(SaveError::Ended);
            };
            stored(id, meta)
        }
        // A dead token forgotten: the session is still new, under its id.
        Plan::Destroy { .. } if !before.intent.is_destroy() => {
            SessionState::new(before.id.clone(), before.expires_ms, ClientToken::None)
        }
        Plan::Destroy { .. } => {
            let id = match &before.intent {
                Intent::Destroy { to: Some(to) } => to.clone(),
                _ => SessionId::generate().map_err(|error| SaveError::Internal(Box::new(error)))?,
            };
            let expires = deadlines(&config.timeouts, now, now).expires_ms;
            SessionState::new(id, expires, ClientToken::None)
        }
    })
}

/// A copy of `tracked` for a task of its own (the data type need not be `Clone`): encoded
/// and decoded again, with the same changes marked. `skip` fields take their defaults, which
/// the backend never reads.
fn snapshot<T: Databag>(tracked: &Tracked<T>) -> Result<Tracked<T>, SaveError> {
    let bytes = crate::record::encode_tracked_to_bytes(tracked).map_err(boxed)?;
    let decoded = crate::record::decode_from_bytes::<T>(&bytes).map_err(boxed)?;
    let mut copy = decoded.into_tracked();
    copy.reset_changes();
    for index in tracked.changes().iter() {
        copy.mark_changed(index);
    }
    *copy.internal_mut() = tracked.internal().clone();
    Ok(copy)
}

fn boxed(error: impl std::error::Error + Send + Sync + 'static) -> SaveError {
    SaveError::Internal(Box::new(error))
}

/// Runs a multi-step commit to completion on a task of its own (when there is a runtime),
/// telling it through [`Abandoned`] if the future awaiting it is dropped first.
async fn to_completion<R, F, Fut>(task: F) -> Result<R, CommitError>
where
    F: FnOnce(Abandoned) -> Fut,
    Fut: Future<Output = Result<R, CommitError>> + Send + 'static,
    R: Send + 'static,
{
    let abandoned = Abandoned::watched();
    let task = task(abandoned.clone()).in_current_span();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return task.await;
    };
    let handle = runtime.spawn(task);
    // Dropped before the task is done: the client never gets the new token.
    let watch = Watch(Some(abandoned));
    let result = handle.await.unwrap_or_else(|error| {
        Err(CommitError::internal(std::io::Error::other(format!(
            "the session commit task failed: {error}"
        ))))
    });
    watch.finish();
    result
}

/// Sets [`Abandoned`] when dropped before [`finish`](Self::finish).
struct Watch(Option<Abandoned>);

impl Watch {
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(abandoned) = &self.0 {
            abandoned.set();
        }
    }
}

/// The response once the commit is done: with its token headers, or an opaque error.
fn respond<T, B: Default>(
    config: &Config<T>,
    result: Result<Pending, CommitError>,
    mut response: Response<B>,
    now: u64,
) -> Response<B> {
    match result {
        Ok(pending) => {
            send(config, response.headers_mut(), pending, now);
            response
        }
        Err(error) => failure_response(&error),
    }
}

/// The opaque answer when committing failed; the cause is logged.
fn failure_response<B: Default>(error: &CommitError) -> Response<B> {
    let status = match error {
        CommitError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        CommitError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "session commit failed");
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// Whether a changed field holds something other than its default (compared encoded, so no
/// `PartialEq` is needed). An encoding failure counts as a change, so that the commit
/// reports it.
fn departs_from_defaults<T: Databag>(tracked: &Tracked<T>) -> bool {
    if !tracked.is_changed() {
        return false;
    }
    let defaults = T::defaults();
    let (mut ours, mut default) = (Vec::new(), Vec::new());
    tracked.changes().iter().any(|index| {
        ours.clear();
        default.clear();
        let encoded = tracked.get().encode_field(index, &mut ours);
        let encoded_default = defaults.encode_field(index, &mut default);
        encoded.is_err() || encoded_default.is_err() || ours != default
    })
}

/// Whether the remember-me choice changed: the cookie must then be sent again, with or
/// without `Max-Age`, even where a deadline refresh alone would not send it.
fn remember_changed<T: Databag>(tracked: &Tracked<T>) -> bool {
    tracked.internal().key_changed(keys::REMEMBER)
}

/// `update`, with a refresh turned into a send when the token must go out regardless.
fn resent(update: TokenUpdate, force: bool) -> TokenUpdate {
    match update {
        TokenUpdate::Refresh { token, expires_ms } if force => {
            TokenUpdate::Send { token, expires_ms }
        }
        update => update,
    }
}

/// The one token update for the response, of an earlier explicit save and a later commit
/// (or save) of the same session: the later one wins, except that a refresh after a send
/// still sends (the client has not received the earlier token yet).
pub(crate) fn merge(earlier: TokenUpdate, later: TokenUpdate) -> TokenUpdate {
    match (earlier, later) {
        (earlier, TokenUpdate::Keep) => earlier,
        (TokenUpdate::Send { .. }, TokenUpdate::Refresh { token, expires_ms }) => {
            TokenUpdate::Send { token, expires_ms }
        }
        (_, later) => later,
    }
}

/// Applies `plan` and runs the hooks.
async fn run<T: Databag>(
    config: &Config<T>,
    plan: Plan,
    session: &Returned<T>,
    now: u64,
    abandoned: &Abandoned,
) -> Result<Applied, CommitError> {
    let applied = apply(config, plan, &session.tracked, now, abandoned).await?;
    hooks(config, &applied, session);
    Ok(applied)
}

/// Applies `plan` on the backend; every store operation of it shares one deadline.
async fn apply<T: Databag>(
    config: &Config<T>,
    plan: Plan,
    tracked: &Tracked<T>,
    now: u64,
    abandoned: &Abandoned,
) -> Result<Applied, CommitError> {
    match config
        .backend
        .apply(plan, tracked, &ctx(config, now, abandoned))
    {
        Answer::Now(applied) => applied,
        Answer::Later(applying) => applying.await,
    }
}

/// What a commit runs with: every store operation of the commit shares one deadline.
fn ctx<'a, T>(config: &'a Config<T>, now: u64, abandoned: &'a Abandoned) -> Ctx<'a> {
    Ctx {
        deadline: tokio::time::Instant::now() + config.store_timeout,
        timeout: config.store_timeout,
        now,
        purpose: config.transport.name(),
        abandoned,
    }
}

/// `on_started` for a session this commit stored first, `on_deleted` for one it removed
/// (with the data it had when `destroy()` was called).
fn hooks<T: Databag>(config: &Config<T>, applied: &Applied, session: &Returned<T>) {
    if let (Some(id), Some(hook)) = (&applied.started, &config.on_started) {
        hook(&id.digest(), session.tracked.get());
    }
    if let (Some(id), Some(hook)) = (&applied.deleted, &config.on_deleted) {
        hook(
            &id.digest(),
            session.destroyed.as_ref().unwrap_or(session.tracked.get()),
        );
    }
}

/// Writes the token update into the response headers.
fn send<T>(config: &Config<T>, headers: &mut HeaderMap, pending: Pending, now: u64) {
    let transport = &config.transport;
    let Pending { update, persistent } = pending;
    match update {
        TokenUpdate::Keep => {}
        // A session cookie carries no expiry: nothing to refresh.
        TokenUpdate::Refresh { .. } if !persistent => {}
        TokenUpdate::Send { token, expires_ms } | TokenUpdate::Refresh { token, expires_ms } => {
            let max_age = expires_ms
                .filter(|_| persistent)
                .map(|expires| expires.saturating_sub(now));
            transport.write_token(headers, &token.expose(), max_age);
        }
        TokenUpdate::Forget => transport.write_removal(headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Token;

    fn id(byte: u8) -> SessionId {
        SessionId::from_bytes([byte; 24])
    }

    fn send_(byte: u8) -> TokenUpdate {
        TokenUpdate::Send {
            token: Token::Id(id(byte)),
            expires_ms: Some(1),
        }
    }

    fn refresh(byte: u8) -> TokenUpdate {
        TokenUpdate::Refresh {
            token: Token::Id(id(byte)),
            expires_ms: Some(2),
        }
    }

    fn shown(update: &TokenUpdate) -> String {
        match update {
            TokenUpdate::Keep => "keep".to_owned(),
            TokenUpdate::Forget => "forget".to_owned(),
            TokenUpdate::Send { token, expires_ms } => {
                format!("send {} {expires_ms:?}", &token.expose()[..4])
            }
            TokenUpdate::Refresh { token, expires_ms } => {
                format!("refresh {} {expires_ms:?}", &token.expose()[..4])
            }
        }
    }

    #[test]
    fn a_token_an_earlier_save_issued_still_goes_out_after_a_later_refresh() {
        let merged = merge(send_(1), refresh(1));
        assert_eq!(
            shown(&merged),
            shown(&send_(1)).replace("Some(1)", "Some(2)")
        );
    }

    #[test]
    fn the_later_update_wins_otherwise() {
        assert_eq!(shown(&merge(send_(1), TokenUpdate::Keep)), shown(&send_(1)));
        assert_eq!(shown(&merge(send_(1), TokenUpdate::Forget)), "forget");
        assert_eq!(
            shown(&merge(TokenUpdate::Forget, send_(2))),
            shown(&send_(2))
        );
        assert_eq!(shown(&merge(refresh(1), send_(2))), shown(&send_(2)));
        assert_eq!(
            shown(&merge(TokenUpdate::Keep, refresh(1))),
            shown(&refresh(1))
        );
    }

    #[test]
    fn a_changed_remember_choice_resends_the_cookie() {
        assert_eq!(
            shown(&resent(refresh(1), true)),
            shown(&send_(1)).replace("Some(1)", "Some(2)")
        );
        assert_eq!(shown(&resent(refresh(1), false)), shown(&refresh(1)));
    }
}
