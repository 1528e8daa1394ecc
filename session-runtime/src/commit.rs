//! Committing a session after the handler: what to write, and what to tell the client.

use http::HeaderMap;

use crate::clock::millis;
use crate::config::Config;
use crate::databag::Databag;
use crate::extract::bounded;
use crate::id::SessionId;
use crate::record::Record;
use crate::state::Returned;
use crate::store::{CreateOutcome, SaveOutcome, SessionMeta, StoreError};

/// How often a fresh id is drawn when the store says one is taken (a 192-bit collision:
/// in practice only a store bug or a test forcing it).
const CREATE_ATTEMPTS: usize = 3;

/// Why a commit failed; the layer answers 503 (store) or 500 (the rest) and logs it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not encode the session")]
    Encode(#[from] crate::error::EncodeError),
    #[error("no fresh session id could be generated")]
    NoRandomness,
}

/// The meta of a session created at `created_ms` and used at `now_ms`: the idle deadline
/// slides, the absolute one never moves.
pub(crate) fn deadlines<T>(config: &Config<T>, created_ms: u64, now_ms: u64) -> SessionMeta {
    let absolute_ms = config
        .absolute_timeout
        .map(|timeout| created_ms.saturating_add(millis(timeout)));
    let idle_ms = config
        .idle_timeout
        .map(|timeout| now_ms.saturating_add(millis(timeout)));
    let expires_ms = match (idle_ms, absolute_ms) {
        (Some(idle), Some(absolute)) => Some(idle.min(absolute)),
        (one, other) => one.or(other),
    };
    SessionMeta {
        created_ms,
        expires_ms,
        absolute_ms,
    }
}

/// Whether an unchanged session's deadline should be refreshed now: only when it would
/// move by at least a quarter of the idle timeout, so that a busy session costs one cheap
/// touch per quarter timeout rather than one per request.
fn needs_touch<T>(config: &Config<T>, stored: &SessionMeta, refreshed: &SessionMeta) -> bool {
    let (Some(idle), Some(old), Some(new)) =
        (config.idle_timeout, stored.expires_ms, refreshed.expires_ms)
    else {
        return false;
    };
    new.saturating_sub(old) >= millis(idle) / 4
}

/// Writes what the request changed and sets the token headers.
pub(crate) async fn commit<T: Databag>(
    config: &Config<T>,
    returned: Returned<T>,
    headers: &mut HeaderMap,
) -> Result<(), CommitError> {
    let Returned { tracked, state } = returned;
    if state.renew_failed {
        return Err(CommitError::NoRandomness);
    }
    let now = config.clock.now_ms();
    let store = &*config.store;

    if state.destroyed {
        if let Some(stored_id) = &state.stored_id {
            bounded(config, store.delete(stored_id)).await?;
            if let Some(hook) = &config.on_deleted {
                hook(stored_id, tracked.get());
            }
        }
        if state.client_token || state.stored_id.is_some() {
            config.transport.write_removal(headers);
        }
        return Ok(());
    }

    let Some(stored_id) = &state.stored_id else {
        // A new session is stored only once something was written to it.
        if !tracked.is_changed() {
            return Ok(());
        }
        let record = Record::encode(tracked.get())?;
        let meta = deadlines(config, now, now);
        let id = create(config, state.id.clone(), &record, &meta, now).await?;
        if let Some(hook) = &config.on_started {
            hook(&id, tracked.get());
        }
        send_token(config, headers, &id, &meta, now);
        return Ok(());
    };

    let stored_meta = state.meta.unwrap_or_default();
    let meta = deadlines(config, stored_meta.created_ms, now);
    if state.is_renewed() {
        // Fixation defence: the whole session moves to the new id and the old id dies.
        let record = Record::encode(tracked.get())?;
        let id = create(config, state.id.clone(), &record, &meta, now).await?;
        bounded(config, store.delete(stored_id)).await?;
        send_token(config, headers, &id, &meta, now);
        return Ok(());
    }
    if tracked.is_changed() {
        let changes = Record::changes(&tracked)?;
        match bounded(config, store.save(stored_id, &changes, &meta, now)).await? {
            SaveOutcome::Saved => refresh_token(config, headers, stored_id, &meta, now),
            SaveOutcome::Missing => tracing::debug!(
                session = %stored_id,
                "session was deleted or expired during the request; its changes are dropped"
            ),
        }
    } else if needs_touch(config, &stored_meta, &meta)
        && bounded(config, store.touch(stored_id, &meta, now)).await? == SaveOutcome::Saved
    {
        refresh_token(config, headers, stored_id, &meta, now);
    }
    Ok(())
}

/// Creates the session, drawing a new id if the store reports a collision.
async fn create<T>(
    config: &Config<T>,
    mut id: SessionId,
    record: &Record,
    meta: &SessionMeta,
    now: u64,
) -> Result<SessionId, CommitError> {
    for _ in 0..CREATE_ATTEMPTS {
        match bounded(config, config.store.create(&id, record, meta, now)).await? {
            CreateOutcome::Created => return Ok(id),
            CreateOutcome::IdTaken => {
                tracing::warn!(session = %id, "session id collision on create; drawing another");
                id = SessionId::generate().map_err(|_| CommitError::NoRandomness)?;
            }
        }
    }
    Err(StoreError::message("the store reported every new session id as taken").into())
}

fn send_token<T>(
    config: &Config<T>,
    headers: &mut HeaderMap,
    id: &SessionId,
    meta: &SessionMeta,
    now: u64,
) {
    let max_age = meta.expires_ms.map(|expires| expires.saturating_sub(now));
    config
        .transport
        .write_token(headers, &id.expose_token(), max_age);
}

/// A persistent cookie carries its own expiry, which must follow the session's.
fn refresh_token<T>(
    config: &Config<T>,
    headers: &mut HeaderMap,
    id: &SessionId,
    meta: &SessionMeta,
    now: u64,
) {
    if config.transport.refreshes_expiry() {
        send_token(config, headers, id, meta, now);
    }
}
