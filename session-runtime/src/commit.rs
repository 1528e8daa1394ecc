//! Committing a session after the handler: carrying out the [`Plan`] on the backend, running
//! the hooks, and telling the client about its token.
//!
//! A plan of one store operation runs inside the response future: if that future is dropped
//! halfway (the client left, an outer timeout fired), the operation either happened or did
//! not, and either way the client's token still names a live session or none it relied on.
//! A renewal takes several operations, so it runs on its own task to completion, and
//! rolls back if its response was dropped (see the server backend's `renew`): no failure or
//! cancellation can leave a user with neither session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode};
use tracing::Instrument as _;

use crate::backend::{Abandoned, Answer, Applied, CommitError, Ctx, Plan, TokenUpdate};
use crate::config::Config;
use crate::handle::{Origin, Returned};
use crate::plan::plan;
use crate::record::Snapshot;
use crate::schema::{Databag, Tracked};

/// A commit in progress, with the response it completes.
pub(crate) type Committing<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

/// Starts the commit of a returned session: `Err(response)` when the response is ready now
/// (nothing to write or send, the common case of a request that only read its session; or
/// a commit the backend did at once), else the future that commits and then yields the
/// response, with its token headers or as an opaque error.
pub(crate) fn start<T: Databag, B: Default + Send + 'static>(
    config: &Arc<Config<T>>,
    mut returned: Returned<T>,
    snapshot: Option<Snapshot>,
    response: Response<B>,
) -> Result<Committing<B>, Response<B>> {
    let now = config.clock.now_ms();
    let changed = match returned.state.origin {
        // A new session written only with default values is not worth storing.
        Origin::New { .. } => departs_from_defaults(&returned.tracked),
        Origin::Stored { .. } => {
            // A field set to the value it was loaded with is no change: not written.
            if let Some(snapshot) = snapshot {
                snapshot.unmark_unchanged(&mut returned.tracked);
            }
            returned.tracked.is_changed()
        }
    };
    let plan = plan(&returned.state, changed, &config.timeouts, now);
    if plan == Plan::Nothing {
        return Err(response);
    }
    let tracked = returned.tracked;
    if !plan.is_multi_step() && config.backend.commits_at_once(&plan) {
        // A backend that needs no I/O for this plan (the cookie store, the memory store's
        // save and touch) has committed when `apply` returns: the response goes out now,
        // without a boxed future. (Were the answer a future after all, it would be dropped
        // unpolled, which does nothing, and the commit would run below.)
        let abandoned = Abandoned::unwatched();
        let ctx = ctx(config, now, &abandoned);
        let answer = config.backend.apply(plan.clone(), &tracked, &ctx);
        if let Answer::Now(applied) = answer {
            let result = applied.map(|applied| hooks(config, applied, &tracked));
            return Err(respond(config, result, response, now));
        }
    }
    let config = Arc::clone(config);
    if !plan.is_multi_step() {
        return Ok(Box::pin(async move {
            let result = run(&config, plan, tracked, now, Abandoned::unwatched()).await;
            respond(&config, result, response, now)
        }));
    }
    let abandoned = Abandoned::watched();
    let task = {
        let (config, abandoned) = (Arc::clone(&config), abandoned.clone());
        async move { run(&config, plan, tracked, now, abandoned).await }.in_current_span()
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Ok(Box::pin(async move {
            let result = task.await;
            respond(&config, result, response, now)
        }));
    };
    let handle = runtime.spawn(task);
    Ok(Box::pin(async move {
        // Dropped before the task is done: the client never gets the new token.
        let watch = Watch(Some(abandoned));
        let result = handle.await.unwrap_or_else(|error| {
            Err(CommitError::internal(std::io::Error::other(format!(
                "the session commit task failed: {error}"
            ))))
        });
        watch.finish();
        respond(&config, result, response, now)
    }))
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
    result: Result<TokenUpdate, CommitError>,
    mut response: Response<B>,
    now: u64,
) -> Response<B> {
    match result {
        Ok(update) => {
            send(config, response.headers_mut(), update, now);
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

/// Applies `plan` and runs the hooks; the token update is what remains for the response.
async fn run<T: Databag>(
    config: &Config<T>,
    plan: Plan,
    tracked: Tracked<T>,
    now: u64,
    abandoned: Abandoned,
) -> Result<TokenUpdate, CommitError> {
    let ctx = ctx(config, now, &abandoned);
    let applied = match config.backend.apply(plan, &tracked, &ctx) {
        Answer::Now(applied) => applied,
        Answer::Later(applying) => applying.await,
    }?;
    Ok(hooks(config, applied, &tracked))
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

/// Runs the hooks for what a commit did; the token update is what remains for the response.
fn hooks<T: Databag>(config: &Config<T>, applied: Applied, tracked: &Tracked<T>) -> TokenUpdate {
    if let (Some(id), Some(hook)) = (&applied.started, &config.on_started) {
        hook(id, tracked.get());
    }
    if let (Some(id), Some(hook)) = (&applied.deleted, &config.on_deleted) {
        hook(id, tracked.get());
    }
    applied.token
}

/// Writes the token update into the response headers.
fn send<T>(config: &Config<T>, headers: &mut HeaderMap, update: TokenUpdate, now: u64) {
    let transport = &config.transport;
    match update {
        TokenUpdate::Keep => {}
        TokenUpdate::Refresh { .. } if !transport.refreshes_expiry() => {}
        TokenUpdate::Send { token, expires_ms } | TokenUpdate::Refresh { token, expires_ms } => {
            let max_age = expires_ms.map(|expires| expires.saturating_sub(now));
            transport.write_token(headers, &token.expose(), max_age);
        }
        TokenUpdate::Forget => transport.write_removal(headers),
    }
}
