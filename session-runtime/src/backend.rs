//! Where a layer keeps its sessions: a server-side [`SessionStore`], or the client's
//! cookie ([`CookieStore`](crate::CookieStore)).

use std::sync::Arc;

use crate::store::{ErasedStore, SessionStore};

/// Anything `SessionLayer::new` accepts: every [`SessionStore`], and `CookieStore`.
pub trait SessionBackend: sealed::IntoBackend {}

impl<S: SessionStore> SessionBackend for S {}
#[cfg(feature = "cookie-store")]
impl SessionBackend for crate::CookieStore {}

pub(crate) mod sealed {
    /// Converts a store into the layer's backend; sealed so the conversion stays internal.
    pub trait IntoBackend {
        fn into_backend(self) -> super::Backend;
    }
}

impl<S: SessionStore> sealed::IntoBackend for S {
    fn into_backend(self) -> Backend {
        Backend::Server(Arc::new(self))
    }
}

#[cfg(feature = "cookie-store")]
impl sealed::IntoBackend for crate::CookieStore {
    fn into_backend(self) -> Backend {
        Backend::Cookie(Arc::new(self))
    }
}

/// The layer's storage, type-erased.
#[derive(Clone)]
pub enum Backend {
    /// Sessions in a server-side store, the client holds an id.
    Server(Arc<dyn ErasedStore>),
    /// Sessions sealed in the client's cookie (or header).
    #[cfg(feature = "cookie-store")]
    Cookie(Arc<crate::CookieStore>),
}
