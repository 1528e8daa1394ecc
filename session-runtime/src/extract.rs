//! Extracting `Session<T>`: finding the layer's slot and loading the session, once.

use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use crate::__private::Core;
use crate::config::Config;
use crate::databag::{Databag, DatabagHandle};
use crate::id::SessionId;
use crate::rejection::SessionRejection;
use crate::state::{CheckOut, SessionState, Slot};
use crate::store::StoreError;
use crate::tracking::Tracked;

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
    match tokio::time::timeout(config.store_timeout, operation).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(config.store_timeout)),
    }
}

/// The session for `token`: the stored one if the token names a live, decodable session,
/// else a fresh one with a new id. At most one store read.
async fn load<T: Databag>(
    config: &Config<T>,
    token: Option<&str>,
) -> Result<(Tracked<T>, SessionState), SessionRejection> {
    let now = config.clock.now_ms();
    let client_token = token.is_some();
    if let Some(id) = token.and_then(SessionId::parse) {
        let loaded = bounded(config, config.store.load(&id, now))
            .await
            .map_err(|error| {
                tracing::error!(%error, "session store failed to load a session");
                SessionRejection::StoreUnavailable
            })?;
        match loaded {
            Some(stored) if !stored.meta.is_expired(now) => match stored.record.decode::<T>() {
                Ok(decoded) => {
                    if let Some(from) = decoded.migrated_from {
                        tracing::info!(session = %id, from, to = T::VERSION, "migrated a session record");
                    }
                    let mut state = SessionState::new(id.clone(), stored.meta.expires_ms, true);
                    state.stored_id = Some(id);
                    state.meta = Some(stored.meta);
                    return Ok((decoded.into_tracked(), state));
                }
                Err(error) => tracing::warn!(
                    session = %id,
                    %error,
                    "stored session record does not decode; starting a fresh session"
                ),
            },
            _ => {}
        }
    }
    let id = SessionId::generate().map_err(|error| {
        tracing::error!(%error, "cannot generate a session id");
        SessionRejection::NoRandomness
    })?;
    let expires = crate::commit::deadlines(config, now, now).expires_ms;
    Ok((
        Tracked::defaults(),
        SessionState::new(id, expires, client_token),
    ))
}
