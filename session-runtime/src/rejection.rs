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
            Self::MissingLayer { .. } | Self::AlreadyExtracted { .. } => {
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
