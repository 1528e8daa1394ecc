//! Committing a session after the handler: what to write, and what to tell the client.

use http::HeaderMap;

use crate::backend::Backend;
use crate::clock::millis;
use crate::config::Config;
use crate::databag::Databag;
use crate::extract::until;
use crate::id::SessionId;
use crate::record::Record;
use crate::state::{Returned, SessionState};
use crate::store::{CreateOutcome, ErasedStore, SaveOutcome, SessionMeta, StoreError};
use crate::tracking::Tracked;

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
    #[error(
        "the sealed session cookie would be {size} bytes, over the {limit}-byte limit of \
         browsers; keep less data in the session or use a server-side store"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("the session could not be sealed: {0}")]
    Seal(String),
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

/// What a request's commit writes, besides destroying.
enum Write {
    Nothing,
    /// A new session, first stored.
    Create(SessionMeta),
    /// The session moves to a new id.
    Renew(SessionMeta),
    /// Changed fields.
    Save(SessionMeta),
    /// New deadlines only.
    Touch(SessionMeta),
}

fn plan<T: Databag>(
    config: &Config<T>,
    tracked: &Tracked<T>,
    state: &SessionState,
    now: u64,
) -> Write {
    let Some(stored_meta) = state.meta.filter(|_| !state.is_new()) else {
        // A new session is stored only once something was written to it.
        return if tracked.is_changed() {
            Write::Create(deadlines(config, now, now))
        } else {
            Write::Nothing
        };
    };
    let meta = deadlines(config, stored_meta.created_ms, now);
    if state.is_renewed() {
        Write::Renew(meta)
    } else if tracked.is_changed() {
        Write::Save(meta)
    } else if state.reseal || needs_touch(config, &stored_meta, &meta) {
        Write::Touch(meta)
    } else {
        Write::Nothing
    }
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
    // Every store operation of this commit shares one deadline.
    let deadline = tokio::time::Instant::now() + config.store_timeout;
    if state.destroyed {
        return destroy(config, &tracked, &state, headers, deadline).await;
    }
    let now = config.clock.now_ms();
    let write = plan(config, &tracked, &state, now);
    match &config.backend {
        Backend::Server(store) => {
            let target = StoreWrite {
                store: &**store,
                deadline,
                now,
            };
            write_to_store(config, &target, write, &tracked, &state, headers).await
        }
        #[cfg(feature = "cookie-store")]
        Backend::Cookie(cookies) => {
            write_to_cookie(config, cookies, write, &tracked, &state, headers, now)
        }
    }
}

async fn destroy<T: Databag>(
    config: &Config<T>,
    tracked: &Tracked<T>,
    state: &SessionState,
    headers: &mut HeaderMap,
    deadline: tokio::time::Instant,
) -> Result<(), CommitError> {
    if let Some(stored_id) = &state.stored_id {
        // Reported once, by whichever request actually removed it.
        let removed = match &config.backend {
            Backend::Server(store) => until(config, deadline, store.delete(stored_id)).await?,
            #[cfg(feature = "cookie-store")]
            Backend::Cookie(_) => true,
        };
        if removed {
            if let Some(hook) = &config.on_deleted {
                hook(stored_id, tracked.get());
            }
        }
    }
    if state.client_token || state.stored_id.is_some() {
        config.transport.write_removal(headers);
    }
    Ok(())
}

/// Where a server-side commit writes: the store, the commit's deadline, and its time.
struct StoreWrite<'a> {
    store: &'a dyn ErasedStore,
    deadline: tokio::time::Instant,
    now: u64,
}

async fn write_to_store<T: Databag>(
    config: &Config<T>,
    target: &StoreWrite<'_>,
    write: Write,
    tracked: &Tracked<T>,
    state: &SessionState,
    headers: &mut HeaderMap,
) -> Result<(), CommitError> {
    let StoreWrite {
        store,
        deadline,
        now,
    } = *target;
    let refresh = config.transport.refreshes_expiry();
    match (write, &state.stored_id) {
        (Write::Nothing, _) => {}
        (Write::Create(meta), _) => {
            let record = Record::encode(tracked.get())?;
            let id = create(config, target, state.id.clone(), &record, &meta).await?;
            if let Some(hook) = &config.on_started {
                hook(&id, tracked.get());
            }
            send_token(config, headers, &id, &meta, now);
        }
        (Write::Renew(meta), Some(old)) => {
            // Fixation defence: the session moves to the new id and the old id dies. Taking
            // the old record atomically means a session destroyed (or renewed) by a
            // concurrent request stays ended, and fields other requests saved meanwhile
            // move along with this request's changes.
            let Some(taken) = until(config, deadline, store.take(old, now)).await? else {
                tracing::debug!(
                    session = %old,
                    "session ended during the request; it is not renewed"
                );
                config.transport.write_removal(headers);
                return Ok(());
            };
            let mut record = taken.record;
            // A newer deploy rewrote the record meanwhile: keep its data, renew the id only.
            if record.version <= T::VERSION {
                record.merge(Record::changes(tracked)?);
            }
            let id = create(config, target, state.id.clone(), &record, &meta).await?;
            send_token(config, headers, &id, &meta, now);
        }
        (Write::Save(meta), Some(id)) => {
            let changes = Record::changes(tracked)?;
            match until(config, deadline, store.save(id, &changes, &meta, now)).await? {
                SaveOutcome::Saved if refresh => send_token(config, headers, id, &meta, now),
                SaveOutcome::Saved => {}
                SaveOutcome::Missing => tracing::debug!(
                    session = %id,
                    "session was deleted, expired, or rewritten by a newer deploy during the \
                     request; its changes are dropped"
                ),
            }
        }
        (Write::Touch(meta), Some(id)) => {
            let outcome = until(config, deadline, store.touch(id, &meta, now)).await?;
            if outcome == SaveOutcome::Saved && refresh {
                send_token(config, headers, id, &meta, now);
            }
        }
        // Renew, save and touch are only planned for stored sessions.
        (Write::Renew(_) | Write::Save(_) | Write::Touch(_), None) => {}
    }
    Ok(())
}

/// A cookie session is written whole: every write seals the full record again.
#[cfg(feature = "cookie-store")]
fn write_to_cookie<T: Databag>(
    config: &Config<T>,
    cookies: &crate::CookieStore,
    write: Write,
    tracked: &Tracked<T>,
    state: &SessionState,
    headers: &mut HeaderMap,
    now: u64,
) -> Result<(), CommitError> {
    let (meta, started) = match write {
        Write::Nothing => return Ok(()),
        Write::Create(meta) => (meta, true),
        Write::Renew(meta) | Write::Save(meta) | Write::Touch(meta) => (meta, false),
    };
    let payload = crate::cookie_store::Payload {
        id: state.id.clone(),
        meta,
        record: crate::record::encode_to_bytes(tracked.get())?,
    };
    let purpose = config.transport.name();
    let token = crate::cookie_store::seal(&cookies.keys, purpose, &payload)
        .map_err(|error| CommitError::Seal(error.to_string()))?;
    let size = purpose.len() + 1 + token.len();
    if size > crate::cookie_store::MAX_COOKIE_BYTES {
        return Err(CommitError::TooLarge {
            size,
            limit: crate::cookie_store::MAX_COOKIE_BYTES,
        });
    }
    if started {
        if let Some(hook) = &config.on_started {
            hook(&state.id, tracked.get());
        }
    }
    write_token(config, headers, &token, &meta, now);
    Ok(())
}

/// Creates the session, drawing a new id if the store reports a collision.
async fn create<T>(
    config: &Config<T>,
    target: &StoreWrite<'_>,
    mut id: SessionId,
    record: &Record,
    meta: &SessionMeta,
) -> Result<SessionId, CommitError> {
    let StoreWrite {
        store,
        deadline,
        now,
    } = *target;
    for _ in 0..CREATE_ATTEMPTS {
        match until(config, deadline, store.create(&id, record, meta, now)).await? {
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
    write_token(config, headers, &id.expose_token(), meta, now);
}

fn write_token<T>(
    config: &Config<T>,
    headers: &mut HeaderMap,
    token: &str,
    meta: &SessionMeta,
    now: u64,
) {
    let max_age = meta.expires_ms.map(|expires| expires.saturating_sub(now));
    config.transport.write_token(headers, token, max_age);
}
