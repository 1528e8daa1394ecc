//! Extracting `Session<T>`: finding the layer's slot and loading the session, once per
//! request.

use std::sync::Arc;

use http::request::Parts;

use crate::backend::{until, Found};
use crate::config::Config;
use crate::handle::{ClientToken, Core, FromCore, SessionState};
use crate::id::SessionId;
use crate::plan::{deadlines, tightened};
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
            let tokens = slot.config.transport.read_tokens(&parts.headers);
            match load(&slot.config, tokens).await {
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

/// The session the client's token names if it names a live, decodable session, else a
/// fresh one with a new id. One store read per token: the client normally sends one; when
/// it sends several cookies of the session's name (one planted by a sibling subdomain or
/// over plain HTTP, say), each is looked at, and if more than one names a live session none
/// is trusted. Each read is bounded by the store timeout.
async fn load<T: Databag>(
    config: &Config<T>,
    tokens: crate::transport::Candidates<'_>,
) -> Result<(Tracked<T>, SessionState), SessionRejection> {
    let now = config.clock.now_ms();
    let mut live: Option<(Found<T>, Option<u64>)> = None;
    let mut client = ClientToken::None;
    for token in tokens.into_iter().flatten() {
        client = ClientToken::Stale;
        let Some(found) = load_one(config, token, now).await? else {
            continue;
        };
        if live.is_some() {
            tracing::warn!(
                cookie = config.transport.name(),
                "the request carries several tokens that each name a live session (one may \
                 be planted); none is used and a fresh session starts"
            );
            live = None;
            client = ClientToken::Ambiguous;
            break;
        }
        live = Some(found);
    }
    if let Some((found, expires_ms)) = live {
        let state = SessionState::stored(found.id, found.meta, expires_ms, found.reseal);
        return Ok((found.tracked, state));
    }
    let id = SessionId::generate().map_err(|error| {
        tracing::error!(%error, "cannot generate a session id");
        SessionRejection::NoRandomness
    })?;
    let expires = deadlines(&config.timeouts, now, now).expires_ms;
    Ok((Tracked::defaults(), SessionState::new(id, expires, client)))
}

/// The live session one token names, with when it expires under the current timeouts.
async fn load_one<T: Databag>(
    config: &Config<T>,
    token: &str,
    now: u64,
) -> Result<Option<(Found<T>, Option<u64>)>, SessionRejection> {
    let load = config.backend.load(token, config.transport.name(), now);
    let loaded = if config.backend.loads_with_io() {
        let deadline = tokio::time::Instant::now() + config.store_timeout;
        until(deadline, config.store_timeout, load).await
    } else {
        load.await
    };
    match loaded {
        Ok(found) => Ok(found.and_then(|found| {
            let expires = tightened(&config.timeouts, &found.meta, now)?;
            Some((found, expires))
        })),
        Err(error) => {
            tracing::error!(%error, source = ?std::error::Error::source(&error), "session store failed to load a session");
            Err(SessionRejection::StoreUnavailable)
        }
    }
}
