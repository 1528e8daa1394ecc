//! Extracting `Session<T>`: finding the layer's slot and loading the session, once.

use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use crate::__private::Core;
use crate::backend::Backend;
use crate::config::Config;
use crate::databag::{Databag, DatabagHandle};
use crate::error::DecodeError;
use crate::id::SessionId;
use crate::record::Decoded;
use crate::rejection::SessionRejection;
use crate::state::{CheckOut, SessionState, Slot};
use crate::store::{ErasedStore, SessionMeta, StoreError};
use crate::tracking::Tracked;

type Found<T> = (Tracked<T>, SessionState);

/// Extracts the session of type `T` for this request. Generated `FromRequestParts` impls
/// call this.
///
/// # Errors
/// See [`SessionRejection`].
pub async fn extract<T: Databag>(parts: &mut Parts) -> Result<T::Handle, SessionRejection> {
    let type_name = core::any::type_name::<T>();
    let Some(slot) = parts.extensions.get::<Arc<Slot<T>>>().cloned() else {
        return Err(SessionRejection::MissingLayer { type_name });
    };
    match slot.check_out() {
        CheckOut::Again(returned) => Ok(T::Handle::__from_core(Core::managed(
            returned.tracked,
            returned.state,
            slot,
        ))),
        CheckOut::Busy => Err(SessionRejection::AlreadyExtracted { type_name }),
        CheckOut::Load => {
            let token = slot.config.transport.read_token(&parts.headers);
            match load(&slot.config, token).await {
                Ok((tracked, state)) => {
                    Ok(T::Handle::__from_core(Core::managed(tracked, state, slot)))
                }
                Err(rejection) => {
                    slot.release();
                    Err(rejection)
                }
            }
        }
    }
}

/// Runs a store operation within the configured timeout.
pub(crate) async fn bounded<R>(
    config: &Config<impl Sized>,
    operation: impl Future<Output = Result<R, StoreError>>,
) -> Result<R, StoreError> {
    let deadline = tokio::time::Instant::now() + config.store_timeout;
    until(config, deadline, operation).await
}

/// Runs a store operation that must finish by `deadline`: the operations of one commit
/// share a deadline, so that all of them together take at most the store timeout.
pub(crate) async fn until<R>(
    config: &Config<impl Sized>,
    deadline: tokio::time::Instant,
    operation: impl Future<Output = Result<R, StoreError>>,
) -> Result<R, StoreError> {
    match tokio::time::timeout_at(deadline, operation).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(config.store_timeout)),
    }
}

/// The session for `token`: the stored one if the token names a live, decodable session,
/// else a fresh one with a new id. At most one store read.
async fn load<T: Databag>(
    config: &Config<T>,
    token: Option<&str>,
) -> Result<Found<T>, SessionRejection> {
    let now = config.clock.now_ms();
    let found = match (&config.backend, token) {
        (_, None) => None,
        (Backend::Server(store), Some(token)) => {
            load_from_store(config, &**store, token, now).await?
        }
        #[cfg(feature = "cookie-store")]
        (Backend::Cookie(cookies), Some(token)) => {
            load_from_cookie(cookies, config.transport.name(), token, now)
        }
    };
    if let Some(found) = found {
        return Ok(found);
    }
    let id = SessionId::generate().map_err(|error| {
        tracing::error!(%error, "cannot generate a session id");
        SessionRejection::NoRandomness
    })?;
    let expires = crate::commit::deadlines(config, now, now).expires_ms;
    Ok((
        Tracked::defaults(),
        SessionState::new(id, expires, token.is_some()),
    ))
}

async fn load_from_store<T: Databag>(
    config: &Config<T>,
    store: &dyn ErasedStore,
    token: &str,
    now: u64,
) -> Result<Option<Found<T>>, SessionRejection> {
    // A malformed token never reaches the store.
    let Some(id) = SessionId::parse(token) else {
        return Ok(None);
    };
    let loaded = bounded(config, store.load(&id, now)).await.map_err(|error| {
        tracing::error!(%error, source = ?std::error::Error::source(&error), "session store failed to load a session");
        SessionRejection::StoreUnavailable
    })?;
    Ok(loaded
        .filter(|stored| !stored.meta.is_expired(now))
        .and_then(|stored| adopt(id, stored.meta, stored.record.decode::<T>())))
}

#[cfg(feature = "cookie-store")]
fn load_from_cookie<T: Databag>(
    cookies: &crate::CookieStore,
    purpose: &str,
    token: &str,
    now: u64,
) -> Option<Found<T>> {
    let opened = crate::cookie_store::open(&cookies.keys, purpose, token, now)?;
    let payload = opened.payload;
    let decoded = crate::record::decode_from_bytes::<T>(&payload.record);
    let (tracked, mut state) = adopt(payload.id, payload.meta, decoded)?;
    state.reseal = opened.with_old_key;
    Some((tracked, state))
}

/// A stored session, if its record decodes (migrating older versions).
fn adopt<T: Databag>(
    id: SessionId,
    meta: SessionMeta,
    decoded: Result<Decoded<T>, DecodeError>,
) -> Option<Found<T>> {
    match decoded {
        Ok(decoded) => {
            if let Some(from) = decoded.migrated_from {
                tracing::info!(session = %id, from, to = T::VERSION, "migrated a session record");
            }
            Some((decoded.into_tracked(), SessionState::stored(id, meta)))
        }
        Err(error) => {
            tracing::warn!(
                session = %id,
                %error,
                "stored session record does not decode; starting a fresh session"
            );
            None
        }
    }
}
