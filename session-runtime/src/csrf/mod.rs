//! CSRF protection bound to the session: a per-session secret (an internal field, so every
//! store keeps it), masked tokens for pages ([`CsrfToken`], `session.csrf_token()`), and
//! [`CsrfLayer`], which verifies unsafe requests (token and origin) before the handler.
//!
//! The pure parts (the secret, masking, the constant-time comparison) live in the schema
//! layer, next to the internal fields they use; this module is the request-facing half.

mod layer;
mod origin;
mod rejection;
mod service;
mod token;

pub use layer::{CsrfLayer, DEFAULT_BODY_LIMIT, DEFAULT_FIELD, DEFAULT_HEADER};
pub use rejection::CsrfRejection;
pub use service::{CsrfFuture, CsrfService};
pub use token::CsrfToken;
