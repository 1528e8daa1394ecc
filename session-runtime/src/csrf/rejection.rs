//! Why the CSRF check refused a request: [`CsrfRejection`], a 403 (413 for a form body over
//! the limit) whose body says what was missing or wrong.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use crate::rejection::SessionRejection;

/// Why [`CsrfLayer`](crate::CsrfLayer) refused a request. Each is logged (`tracing`,
/// warn level, with the method and path) and answered with [`status`](Self::status) and
/// its message as a plain-text body: nothing in it is secret, and it tells a developer what
/// to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// The request's `Origin` is neither this site's nor a trusted one.
    #[error(
        "CSRF check failed: cross-origin request refused (Origin `{origin}` is neither this \
         site's origin `{own}` nor a trusted origin)"
    )]
    CrossOrigin {
        /// The `Origin` sent (normalized).
        origin: String,
        /// This site's origin as the layer sees it.
        own: String,
    },
    /// No `Origin`, and `Sec-Fetch-Site` says the request comes from another site.
    #[error("CSRF check failed: cross-site request refused (Sec-Fetch-Site: {sec_fetch_site})")]
    CrossSite {
        /// The `Sec-Fetch-Site` value sent.
        sec_fetch_site: String,
    },
    /// No token in the header nor in the form field.
    #[error(
        "CSRF check failed: token missing (send it in the `{header}` header or the \
         `{field}` field of a urlencoded form)"
    )]
    MissingToken {
        /// The header the layer reads.
        header: String,
        /// The form field the layer reads.
        field: String,
    },
    /// The token is not one this library makes (wrong length or characters).
    #[error("CSRF check failed: malformed token")]
    MalformedToken,
    /// The session has no CSRF secret: it is new, expired, or was renewed or ended since
    /// the token was made.
    #[error(
        "CSRF check failed: this session has no CSRF token (it is new, expired, or was \
         renewed or ended since the form was rendered); reload the form"
    )]
    NoSecret,
    /// A well-formed token made for another session, or before this one was renewed.
    #[error("CSRF check failed: the token does not belong to this session; reload the form")]
    WrongToken,
    /// The form body is larger than the layer buffers to look for the token.
    #[error("CSRF check failed: the form body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The layer's body limit.
        limit: usize,
    },
    /// The form body could not be read.
    #[error("CSRF check failed: the request body could not be read")]
    UnreadableBody,
    /// No `SessionLayer<T>` runs around the `CsrfLayer<T>` (a configuration mistake).
    #[error(
        "CsrfLayer<{type_name}> needs a SessionLayer::<{type_name}> around it: add \
         `.layer(CsrfLayer::<{type_name}>::new())` before \
         `.layer(SessionLayer::<{type_name}>::new(..))`"
    )]
    MissingSessionLayer {
        /// The session data type.
        type_name: &'static str,
    },
    /// The session could not be loaded (store down, a handle alive): see the inner
    /// rejection.
    #[error(transparent)]
    Session(SessionRejection),
}

impl CsrfRejection {
    /// 403 Forbidden, but 413 Payload Too Large for [`BodyTooLarge`](Self::BodyTooLarge),
    /// 400 for [`UnreadableBody`](Self::UnreadableBody), 500 for
    /// [`MissingSessionLayer`](Self::MissingSessionLayer), and the inner status for
    /// [`Session`](Self::Session) (503 when the store is down).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingSessionLayer { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnreadableBody => StatusCode::BAD_REQUEST,
            Self::Session(inner) => inner.status(),
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Session(inner) => inner.into_response(),
            other => (other.status(), other.to_string()).into_response(),
        }
    }
}
