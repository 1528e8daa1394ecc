//! [`CookieStore`]: the whole session sealed in the client's cookie, no server state; its
//! keys, and the sealed format.

mod key;
mod seal;

pub use key::{generate_secret, Key, KeyError, KeyRing, MIN_KEY_BYTES};
pub use seal::MAX_COOKIE_BYTES;
pub(crate) use seal::{open, seal, Payload};

/// Sessions kept in the client's cookie, sealed with AES-256-GCM: the client can neither
/// read nor change them, and the server keeps no state.
///
/// ```
/// use session_runtime::{CookieStore, Databag, Key, Session, SessionLayer};
///
/// #[derive(Databag)]
/// struct Cart { items: Vec<u64> }
///
/// # fn main() -> Result<(), session_runtime::KeyError> {
/// // In production: Key::from_env("SESSION_SECRET")?
/// let layer = SessionLayer::<Cart>::new(CookieStore::new(Key::generate()?));
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
///
/// What it guarantees: a tampered, truncated or forged cookie, a cookie sealed with an
/// unknown key, a cookie moved from another cookie name (the name is bound into the
/// seal), and a cookie past the deadline sealed inside it all give a fresh session. Keys
/// rotate with a [`KeyRing`]: new cookies are sealed with the newest key, and a cookie
/// opened with an older one is sealed again with the newest in the same response.
///
/// What it cannot do, compared with a server-side store:
/// - **No revocation.** `destroy()` clears the client's cookie, but a copy taken earlier
///   stays valid until the deadline inside it. Keep the idle or absolute timeout short,
///   rotate the key to invalidate every session at once, or use a server-side store when
///   one session must be revocable (for example after a password change).
/// - **No merging of concurrent changes.** Each response carries the whole session; of two
///   concurrent requests, the cookie of the one that finishes last wins.
/// - **Size.** A cookie is limited to 4096 bytes: a session that seals larger is refused
///   at save with a logged error and a 500 (no truncated cookie is ever sent), and an
///   incoming cookie over 4096 bytes is ignored before any decoding.
/// - **Hooks.** `on_deleted` fires on `destroy()` only: expiry happens on the client. And
///   it fires for every request that destroys a session it carries: the store keeps
///   nothing, so a replayed logout (the same cookie sent again) runs it again.
pub struct CookieStore {
    pub(crate) keys: KeyRing,
}

impl CookieStore {
    /// A store sealing with `keys` (a [`Key`] or a [`KeyRing`]).
    pub fn new(keys: impl Into<KeyRing>) -> Self {
        Self { keys: keys.into() }
    }
}

impl std::fmt::Debug for CookieStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieStore")
            .field("keys", &self.keys)
            .finish()
    }
}

/// Opens a cookie-store token exactly as the layer does, for the fuzz targets in `fuzz/`
/// (built with `cfg(fuzzing)` only): whether it opened.
#[cfg(fuzzing)]
pub fn fuzz_open_cookie(store: &CookieStore, purpose: &str, token: &str, now_ms: u64) -> bool {
    open(&store.keys, purpose, token, now_ms).is_some()
}
