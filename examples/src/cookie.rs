//! The quickstart routes with sessions sealed in the client's cookie.

use axum::Router;
use session_runtime::{CookieStore, Key, KeyError};

/// How the secret for the example was obtained.
pub enum Secret {
    /// Read from the environment.
    FromEnv(Key),
    /// Generated because the variable was unset: sessions end with the process.
    Generated(Key),
}

/// The key from `var`, or a generated one when `var` is unset.
///
/// # Errors
/// If `var` is set but unusable (too short, not UTF-8): refusing beats running with a
/// weak key.
pub fn secret(var: &str) -> Result<Secret, KeyError> {
    match Key::from_env(var) {
        Ok(key) => Ok(Secret::FromEnv(key)),
        Err(KeyError::MissingEnv { .. }) => Ok(Secret::Generated(Key::generate()?)),
        Err(error) => Err(error),
    }
}

/// The app with sessions sealed under `key`.
pub fn app(key: Key) -> Router {
    crate::quickstart::routes().layer(crate::quickstart::sessions(CookieStore::new(key)))
}
