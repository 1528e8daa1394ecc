//! [`CsrfToken<T>`], the extractor that gives a handler a masked CSRF token of the
//! request's session.

use core::fmt;
use core::marker::PhantomData;
use std::sync::Arc;

use axum_core::extract::FromRequestParts;
use http::request::Parts;

use crate::extract::with_session;
use crate::rejection::SessionRejection;
use crate::schema::{csrf, Databag};
use crate::slot::Slot;

/// A masked CSRF token of the request's session (of type `T`), for a hidden form field or a
/// `<meta>` tag: a different string on every extraction, each valid for the session's
/// secret (made on the first extraction and stored with the session). Put it before
/// `Session<T>` in a handler's arguments, or call `session.csrf_token()` on a handle.
///
/// ```
/// use axum::response::Html;
/// use session_runtime::{CsrfToken, Databag};
/// # #[derive(Databag)] pub struct UserSession { pub name: String }
///
/// async fn form(token: CsrfToken<UserSession>) -> Html<String> {
///     Html(format!(
///         r#"<form method="post" action="/name">
///              <input type="hidden" name="csrf_token" value="{token}">
///              <input name="name"> <button>Save</button>
///            </form>"#
///     ))
/// }
/// ```
///
/// `Display` writes the token (it is made to be embedded in a page); `Debug` does not.
/// The token is URL-safe base64: it needs no escaping in HTML attributes or headers.
pub struct CsrfToken<T> {
    token: String,
    session: PhantomData<fn() -> T>,
}

impl<T> CsrfToken<T> {
    /// The token.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The token, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.token
    }
}

impl<T> fmt::Display for CsrfToken<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token)
    }
}

impl<T> fmt::Debug for CsrfToken<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(REDACTED)")
    }
}

impl<S: Send + Sync, T: Databag> FromRequestParts<S> for CsrfToken<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let type_name = core::any::type_name::<T>();
        let Some(slot) = parts.extensions.get::<Arc<Slot<T>>>().cloned() else {
            return Err(SessionRejection::MissingLayer { type_name });
        };
        let token = with_session(&slot, &parts.headers, "CsrfToken", |returned| {
            csrf::token(returned.tracked.internal_mut())
        })
        .await?
        .map_err(|error| {
            tracing::error!(%error, "cannot make a CSRF secret or token");
            SessionRejection::NoRandomness
        })?;
        Ok(Self {
            token,
            session: PhantomData,
        })
    }
}
