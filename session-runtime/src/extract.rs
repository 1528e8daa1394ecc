//! Extracting `Session<T>`: finding the layer's slot and loading the session, once per
//! request.

use std::sync::Arc;

use http::request::Parts;

use crate::backend::{until, Answer, Found, Lookup};
use crate::config::Config;
use crate::handle::{ClientToken, Core, FromCore, Returned, SessionState};
use crate::id::SessionId;
use crate::plan::{deadlines, earliest, tightened};
use crate::record::Snapshot;
use crate::rejection::SessionRejection;
use crate::schema::{Databag, Tracked};
use crate::slot::{CheckOut, Slot};
use crate::store::StoreError;

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
    if let Some(client) = slot.config.tracking.client(parts) {
        slot.keep_client(client);
    }
    let returned = match slot.check_out() {
        CheckOut::Again(returned) => returned,
        CheckOut::Busy => return Err(SessionRejection::AlreadyExtracted { type_name }),
        CheckOut::Load => {
            let tokens = slot.config.transport.read_tokens(&parts.headers);
            match load(&slot.config, tokens).await {
                Ok((tracked, state, snapshot)) => {
                    slot.keep_snapshot(snapshot);
                    Returned::new(tracked, state)
                }
                Err(rejection) => {
                    slot.release();
                    return Err(rejection);
                }
            }
        }
    };
    Ok(H::from_core(Core::resumed(returned, slot)))
}

/// Runs `f` on this request's session without handing out a handle: loads the session if
/// nothing did yet (the one store read of the request; a later `Session<T>` extraction
/// reuses it), or takes the one given back earlier, and gives it back right after. The
/// CSRF layer and the token extractor read and make the session's secret this way.
///
/// # Errors
/// [`SessionRejection::HandleAlive`] when a `Session<T>` handle of this request is alive,
/// or what loading failed with.
pub(crate) async fn with_session<T: Databag, R>(
    slot: &Arc<Slot<T>>,
    headers: &http::HeaderMap,
    what: &'static str,
    f: impl FnOnce(&mut Returned<T>) -> R,
) -> Result<R, SessionRejection> {
    let mut returned = match slot.check_out() {
        CheckOut::Again(returned) => returned,
        CheckOut::Busy => {
            return Err(SessionRejection::HandleAlive {
                what,
                type_name: core::any::type_name::<T>(),
            })
        }
        CheckOut::Load => {
            let tokens = slot.config.transport.read_tokens(headers);
            match load(&slot.config, tokens).await {
                Ok((tracked, state, snapshot)) => {
                    slot.keep_snapshot(snapshot);
                    Returned::new(tracked, state)
                }
                Err(rejection) => {
                    slot.release();
                    return Err(rejection);
                }
            }
        }
    };
    let result = f(&mut returned);
    crate::handle::ReturnTo::give_back(&**slot, returned);
    Ok(result)
}

/// The session the client's token names if it names a live, decodable session, else a
/// fresh one with a new id. One store read per token: the client normally sends one; when
/// it sends several cookies of the session's name (one planted by a sibling subdomain or
/// over plain HTTP, say), each is looked at, and if more than one names a live session none
/// is trusted. Each read is bounded by the store timeout.
async fn load<T: Databag>(
    config: &Config<T>,
    tokens: crate::transport::Candidates<'_>,
) -> Result<(Tracked<T>, SessionState, Option<Snapshot>), SessionRejection> {
    let now = config.clock.now_ms();
    // The reads of all the tokens share one store timeout, counted from the first that
    // waits (a backend that answers at once needs no deadline, nor a clock read for one).
    let mut deadline = None;
    let mut live: Option<(Found<T>, Option<u64>)> = None;
    let mut client = ClientToken::None;
    if tokens.overflow {
        tracing::warn!(
            cookie = config.transport.name(),
            "more session cookies in one request than are looked at; none is used and a fresh \
             session starts"
        );
        client = ClientToken::Ambiguous;
    }
    for token in tokens.tokens.into_iter().flatten() {
        if client == ClientToken::Ambiguous {
            break;
        }
        let seen = load_one(config, token, now, &mut deadline).await.map_err(|error| {
            tracing::error!(%error, source = ?std::error::Error::source(&error), "session store failed to load a session");
            SessionRejection::StoreUnavailable
        })?;
        match seen {
            Seen::Live(found, expires) => match &live {
                None => live = Some((found, expires)),
                // Two seals of one session (a cookie store whose path or domain changed):
                // the same session, not two; keep the one that lasts longer.
                Some((held, held_expires)) if held.id == found.id => {
                    if earliest(*held_expires, expires) != expires {
                        live = Some((found, expires));
                    }
                }
                Some(_) => {
                    tracing::warn!(
                        cookie = config.transport.name(),
                        "the request carries several tokens that each name a live session \
                         (one may be planted); none is used and a fresh session starts"
                    );
                    live = None;
                    client = ClientToken::Ambiguous;
                }
            },
            Seen::Dead if client == ClientToken::None => client = ClientToken::Dead,
            Seen::Dead => {}
            Seen::Unusable => client = ClientToken::Unusable,
        }
    }
    if let Some((found, expires_ms)) = live {
        let state = SessionState::stored(found.id, found.meta, expires_ms, found.reseal);
        return Ok((found.tracked, state, found.snapshot));
    }
    let id = SessionId::generate().map_err(|error| {
        tracing::error!(%error, "cannot generate a session id");
        SessionRejection::NoRandomness
    })?;
    let expires = deadlines(&config.timeouts, now, now).expires_ms;
    Ok((
        Tracked::defaults(),
        SessionState::new(id, expires, client),
        None,
    ))
}

/// What one token names under the current timeouts.
pub(crate) enum Seen<T> {
    /// A live session, and when it expires under the current timeouts.
    Live(Found<T>, Option<u64>),
    /// Never usable again: malformed, or expired (under the current timeouts too).
    Dead,
    /// Not usable here and now, maybe elsewhere or later: kept by the client.
    Unusable,
}

/// What one token names; a session found but expired under the current timeouts (its own:
/// a remembered session's, capped by its fixed end) is dead. Also how sessions are loaded
/// outside a request. A load that waits is bounded by `deadline`, set to the store timeout
/// from now by the first load that waits if it is `None`.
pub(crate) async fn load_one<T: Databag>(
    config: &Config<T>,
    token: &str,
    now: u64,
    deadline: &mut Option<tokio::time::Instant>,
) -> Result<Seen<T>, StoreError> {
    let loaded = match config.backend.load(token, config.transport.name(), now) {
        Answer::Now(loaded) => loaded,
        Answer::Later(load) => {
            let deadline =
                *deadline.get_or_insert_with(|| tokio::time::Instant::now() + config.store_timeout);
            until(deadline, config.store_timeout, load).await
        }
    };
    Ok(match loaded? {
        Lookup::Live(found) => {
            let timeouts = config.timeouts_for(&found.tracked);
            match tightened(&timeouts, &found.meta, now) {
                Some(expires) => Seen::Live(found, expires),
                None => Seen::Dead,
            }
        }
        Lookup::Dead => Seen::Dead,
        Lookup::Unusable => Seen::Unusable,
    })
}
