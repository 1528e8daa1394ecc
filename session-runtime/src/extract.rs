//! Extracting `Session<T>`: finding the layer's slot and loading the session, once per
//! request.

use std::sync::Arc;

use http::request::Parts;

use crate::backend::until;
use crate::config::Config;
use crate::handle::{Core, FromCore, SessionState};
use crate::id::SessionId;
use crate::plan::deadlines;
use crate::rejection::SessionRejection;
use crate::schema::{Databag, Tracked};
use crate::slot::{CheckOut, Slot};

/// Extracts the session handle `H` for this request. Generated `FromRequestParts` impls
/// call this.
///
/// # Errors
/// See [`SessionRejection`].
pub async fn extract<H: FromCore>(parts: &mut Parts) -> Result<H, SessionRejection> {
    let type_name = core::any::type_name::<H::Data>();
    let Some(slot) = parts.extensions.get::<Arc<Slot<H::Data>>>().cloned() else {
        return Err(SessionRejection::MissingLayer { type_name });
    };
    let (tracked, state) = match slot.check_out() {
        CheckOut::Again(returned) => (returned.tracked, returned.state),
        CheckOut::Busy => return Err(SessionRejection::AlreadyExtracted { type_name }),
        CheckOut::Load => {
            let token = slot.config.transport.read_token(&parts.headers);
            match load(&slot.config, token).await {
                Ok(found) => found,
                Err(rejection) => {
                    slot.release();
                    return Err(rejection);
                }
            }
        }
    };
    Ok(H::from_core(Core::managed(tracked, state, slot)))
}

/// The session for `token`: the stored one if the token names a live, decodable session,
/// else a fresh one with a new id. At most one store read, bounded by the store timeout.
async fn load<T: Databag>(
    config: &Config<T>,
    token: Option<&str>,
) -> Result<(Tracked<T>, SessionState), SessionRejection> {
    let now = config.clock.now_ms();
    if let Some(token) = token {
        let deadline = tokio::time::Instant::now() + config.store_timeout;
        let load = config.backend.load(token, config.transport.name(), now);
        match until(deadline, config.store_timeout, load).await {
            Ok(Some(found)) => {
                return Ok((
                    found.tracked,
                    SessionState::stored(found.id, found.meta, found.reseal),
                ))
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, source = ?std::error::Error::source(&error), "session store failed to load a session");
                return Err(SessionRejection::StoreUnavailable);
            }
        }
    }
    let id = SessionId::generate().map_err(|error| {
        tracing::error!(%error, "cannot generate a session id");
        SessionRejection::NoRandomness
    })?;
    let expires = deadlines(&config.timeouts, now, now).expires_ms;
    Ok((
        Tracked::defaults(),
        SessionState::new(id, expires, token.is_some()),
    ))
}
