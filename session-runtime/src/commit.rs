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

use http::HeaderMap;

use crate::backend::{Abandoned, CommitError, Ctx, Plan, TokenUpdate};
use crate::config::Config;
use crate::handle::Returned;
use crate::plan::plan;
use crate::schema::{Databag, Tracked};

/// A commit in progress: the token update it will make, or why it failed.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Result<TokenUpdate, CommitError>> + Send>>;

/// What the commit of a returned session needs: `None` when there is nothing to write or
/// send (the common case of a request that only read its session), else the commit to run.
pub(crate) fn start<T: Databag>(
    config: &Arc<Config<T>>,
    returned: Returned<T>,
) -> Option<(Pending, u64, Option<Abandoned>)> {
    let now = config.clock.now_ms();
    let plan = plan(
        &returned.state,
        returned.tracked.is_changed(),
        &config.timeouts,
        now,
    );
    if plan == Plan::Nothing {
        return None;
    }
    let config = Arc::clone(config);
    let tracked = returned.tracked;
    if !plan.is_multi_step() {
        let pending = Box::pin(run(config, plan, tracked, now, Abandoned::unwatched()));
        return Some((pending, now, None));
    }
    let abandoned = Abandoned::watched();
    let task = run(config, plan, tracked, now, abandoned.clone());
    let pending: Pending = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let handle = runtime.spawn(task);
            Box::pin(async move {
                handle.await.unwrap_or_else(|error| {
                    Err(CommitError::internal(std::io::Error::other(format!(
                        "the session commit task failed: {error}"
                    ))))
                })
            })
        }
        Err(_) => Box::pin(task),
    };
    Some((pending, now, Some(abandoned)))
}

/// Applies `plan` and runs the hooks; the token update is what remains for the response.
async fn run<T: Databag>(
    config: Arc<Config<T>>,
    plan: Plan,
    tracked: Tracked<T>,
    now: u64,
    abandoned: Abandoned,
) -> Result<TokenUpdate, CommitError> {
    // Every store operation of this commit shares one deadline.
    let ctx = Ctx {
        deadline: tokio::time::Instant::now() + config.store_timeout,
        timeout: config.store_timeout,
        now,
        purpose: config.transport.name(),
        abandoned: &abandoned,
    };
    let applied = config.backend.apply(plan, &tracked, &ctx).await?;
    if let (Some(id), Some(hook)) = (&applied.started, &config.on_started) {
        hook(id, tracked.get());
    }
    if let (Some(id), Some(hook)) = (&applied.deleted, &config.on_deleted) {
        hook(id, tracked.get());
    }
    Ok(applied.token)
}

/// Writes the token update into the response headers.
pub(crate) fn send<T>(config: &Config<T>, headers: &mut HeaderMap, update: TokenUpdate, now: u64) {
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
