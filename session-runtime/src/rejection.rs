//! Why a `Session<T>` could not be extracted.

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

/// Why a `Session<T>` could not be extracted. As a response it has the status of its kind;
/// the store error details are only logged, never sent to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No `SessionLayer<T>` for this `T` runs in front of the handler.
    #[error(
        "Session<{type_name}> needs a `SessionLayer::<{type_name}>` in front of this handler: \
         add `.layer(SessionLayer::<{type_name}>::new(MemoryStore::new()))` to the router, \
         after the routes that use the session"
    )]
    MissingLayer {
        /// The session data type asked for.
        type_name: &'static str,
    },
    /// Another `Session<T>` of this request is still alive (for example held by a
    /// middleware across `next.run(request)`); drop it before the next one is extracted.
    #[error(
        "Session<{type_name}> was extracted twice in one request while the first handle was \
         still alive; drop the first one before extracting it again"
    )]
    AlreadyExtracted {
        /// The session data type asked for.
        type_name: &'static str,
    },
    /// Something that reads the session without a handle (`CsrfToken<T>`, `CsrfLayer<T>`)
    /// ran while a `Session<T>` handle of the request was alive.
    #[error(
        "{what} needs the session while a Session<{type_name}> handle of this request is \
         alive: put {what} before Session<{type_name}> in the handler's arguments, or use the \
         handle's own method (`session.csrf_token()`)"
    )]
    HandleAlive {
        /// What asked for the session.
        what: &'static str,
        /// The session data type.
        type_name: &'static str,
    },
    /// The session store failed or did not answer in time (details are logged).
    #[error("the session store is unavailable")]
    StoreUnavailable,
    /// No session id could be generated (the operating system's random source failed).
    #[error("no session id could be generated")]
    NoRandomness,
}

impl SessionRejection {
    /// The status code of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            // Configuration mistakes: say how to fix them (like axum's MissingExtension).
            Self::MissingLayer { .. }
            | Self::AlreadyExtracted { .. }
            | Self::HandleAlive { .. } => {
                tracing::error!(error = %self, "session extraction failed");
                (status, self.to_string()).into_response()
            }
            // Runtime failures: opaque to the client, logged where they happened.
            Self::StoreUnavailable | Self::NoRandomness => {
                (status, status.canonical_reason().unwrap_or_default()).into_response()
            }
        }
    }
}

/// So that a handler can use `?` on `session.csrf_token()`: an opaque 500, logged.
impl IntoResponse for crate::id::RandomnessError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "no CSRF token could be made");
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        (status, status.canonical_reason().unwrap_or_default()).into_response()
    }
}

/// So that a handler can use `?` on `session.flash(..)`: an opaque 500, logged.
impl IntoResponse for crate::error::EncodeError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, source = ?std::error::Error::source(&self), "a session value could not be encoded");
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        (status, status.canonical_reason().unwrap_or_default()).into_response()
    }
}
