//! The backend for [`CookieStore`]: the client holds the whole session, sealed; every write
//! seals the full record again, and there is no server state to change.

use std::sync::Arc;

use super::{decoded, Answer, Applied, Backend, CommitError, Ctx, Lookup, Plan, Token};
use super::{sealed::IntoBackend, TokenUpdate};
use crate::cookie_store::{open, seal, CookieStore, Payload, MAX_COOKIE_BYTES};
use crate::id::SessionId;
use crate::record::Snapshot;
use crate::schema::{Databag, Tracked};
use crate::store::{RemovalListener, SessionMeta, StoreError};

/// The sealed cookie would not fit in a browser's cookie jar.
#[derive(Debug, thiserror::Error)]
#[error(
    "the sealed session cookie would be {size} bytes, over the {limit}-byte limit of \
     browsers; keep less data in the session or use a server-side store"
)]
struct TooLarge {
    size: usize,
    limit: usize,
}

impl IntoBackend for CookieStore {
    #[allow(private_interfaces)]
    fn into_backend<T: Databag>(self) -> Arc<dyn Backend<T>> {
        Arc::new(self)
    }
}

impl<T: Databag> Backend<T> for CookieStore {
    fn load<'a>(
        &'a self,
        token: &'a str,
        purpose: &'a str,
        now: u64,
    ) -> Answer<'a, Result<Lookup<T>, StoreError>> {
        // No I/O: answered at once. A cookie that does not open is never called
        // dead: it may be sealed with a key another instance already has (a rotation in
        // progress), and forgetting it would save no store read anyway.
        let found = match open(&self.keys, purpose, token, now) {
            Some(opened) => {
                let payload = opened.payload;
                let record = crate::record::decode_from_bytes::<T>(&payload.record);
                let snapshot = Snapshot::Framed(payload.record);
                decoded(
                    payload.id,
                    payload.meta,
                    record,
                    opened.with_old_key,
                    snapshot,
                )
            }
            None => Lookup::Unusable,
        };
        Answer::Now(Ok(found))
    }

    fn apply<'a>(
        &'a self,
        plan: Plan,
        tracked: &'a Tracked<T>,
        ctx: &'a Ctx<'a>,
    ) -> Answer<'a, Result<Applied, CommitError>> {
        Answer::Now(self.apply_now(plan, tracked, ctx))
    }

    fn commits_at_once(&self, _plan: &Plan) -> bool {
        true
    }

    fn subscribe_removals(&self, _listener: &RemovalListener) {
        // Cookies expire on the client: there is nothing to observe.
    }

    fn client_side(&self) -> bool {
        true
    }
}

/// The id drawn when the handler asked, or one drawn now.
fn drawn(id: Option<SessionId>) -> Result<SessionId, CommitError> {
    match id {
        Some(id) => Ok(id),
        None => Ok(SessionId::generate()?),
    }
}

impl CookieStore {
    fn apply_now<T: Databag>(
        &self,
        plan: Plan,
        tracked: &Tracked<T>,
        ctx: &Ctx<'_>,
    ) -> Result<Applied, CommitError> {
        let (id, meta, started, deleted) = match plan {
            Plan::Nothing => return Ok(Applied::token(TokenUpdate::Keep)),
            Plan::Destroy { stored, forget } => {
                let token = if forget {
                    TokenUpdate::Forget
                } else {
                    TokenUpdate::Keep
                };
                return Ok(Applied {
                    // The cookie held the session: telling the client to forget it is the
                    // deletion.
                    deleted: stored,
                    ..Applied::token(token)
                });
            }
            Plan::Create { id, meta } => (id, meta, true, None),
            Plan::Save { id, meta } | Plan::Touch { id, meta } => (id, meta, false, None),
            Plan::Renew { to, meta, .. } => (drawn(to)?, meta, false, None),
            // The new cookie replaces the old one, which is the deletion.
            Plan::Restart { from, to, meta } => (drawn(to)?, meta, true, Some(from)),
        };
        let token = self.seal_session(&id, meta, tracked, ctx.purpose)?;
        Ok(Applied {
            token: TokenUpdate::Send {
                token: Token::Text(token),
                expires_ms: meta.expires_ms,
            },
            started: started.then(|| id.clone()),
            deleted,
            now_under: Some(id),
            missing: false,
        })
    }

    /// The whole session sealed for `purpose`, refused when it would not fit in a cookie.
    fn seal_session<T: Databag>(
        &self,
        id: &SessionId,
        meta: SessionMeta,
        tracked: &Tracked<T>,
        purpose: &str,
    ) -> Result<String, CommitError> {
        let payload = Payload {
            id: id.clone(),
            meta,
            record: crate::record::encode_tracked_to_bytes(tracked)?,
        };
        let token = seal(&self.keys, purpose, &payload).map_err(CommitError::internal)?;
        let size = purpose.len() + 1 + token.len();
        if size > MAX_COOKIE_BYTES {
            return Err(CommitError::internal(TooLarge {
                size,
                limit: MAX_COOKIE_BYTES,
            }));
        }
        Ok(token)
    }
}
