//! [`SessionLayer`]: the tower layer that gives handlers their `Session<T>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{HeaderName, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::{Backend, SessionBackend};
use crate::clock::Clock;
use crate::commit::{commit, CommitError};
use crate::config::{Config, Hook};
use crate::databag::Databag;
use crate::id::SessionId;
use crate::state::Slot;
use crate::store::RemovalListener;
use crate::transport::{CookieConfig, Transport};

pub use cookie::SameSite;

/// The layer that manages sessions of type `T` for the routes it wraps.
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use session_runtime::{Databag, MemoryStore, Session, SessionLayer};
///
/// #[derive(Databag)]
/// struct Visits { count: u32 }
///
/// async fn index(mut session: Session<Visits>) -> String {
///     session.set_count(session.count + 1);
///     format!("visit #{}", session.count)
/// }
///
/// let app: Router = Router::new().route("/", get(index)).layer(
///     SessionLayer::<Visits>::new(MemoryStore::new())
///         .cookie_name("__Host-session")
///         .idle_timeout(Duration::from_secs(30 * 60))
///         .absolute_timeout(Duration::from_secs(8 * 3600))
///         .on_started(|id, _data| println!("session {id} started")),
/// );
/// ```
///
/// Defaults: cookie `session` with `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
/// `Domain`, and no `Max-Age` (the cookie ends with the browser session); idle timeout 24
/// hours, no absolute timeout; loading and committing each bounded by 3 seconds of store time.
#[must_use = "a layer does nothing until it is added to a router with `.layer(..)`"]
pub struct SessionLayer<T> {
    config: Config<T>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("type", &core::any::type_name::<T>())
            .field("transport", &self.config.transport)
            .field("idle_timeout", &self.config.idle_timeout)
            .field("absolute_timeout", &self.config.absolute_timeout)
            .field("store_timeout", &self.config.store_timeout)
            .finish_non_exhaustive()
    }
}

impl<T: Databag> SessionLayer<T> {
    /// A layer keeping sessions in `store`: any [`SessionStore`](crate::SessionStore) (such as
    /// [`MemoryStore`](crate::MemoryStore)), or a `CookieStore`.
    pub fn new(store: impl SessionBackend) -> Self {
        Self {
            config: Config::new(store.into_backend()),
        }
    }

    fn cookie(mut self, f: impl FnOnce(&mut CookieConfig)) -> Self {
        if let Transport::Header(_) = self.config.transport {
            tracing::warn!("a cookie setting was given to a SessionLayer that uses a header");
        }
        if let Transport::Cookie(cookie) = &mut self.config.transport {
            f(cookie);
        }
        self
    }

    /// The cookie's name (default `session`). A `__Host-` prefix makes browsers insist on
    /// `Secure`, `Path=/` and no `Domain`, which pins the cookie to one host.
    ///
    /// # Panics
    /// If `name` is empty or has characters a cookie name cannot have: a configuration
    /// mistake that should stop the app at start-up.
    pub fn cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)),
            "invalid session cookie name {name:?}: use letters, digits and `-_.!#$%&'*+^`|~`"
        );
        self.cookie(|cookie| cookie.name = name)
    }

    /// Whether the cookie is `Secure`, sent over HTTPS only (default `true`). Turn it off
    /// only for local development over plain HTTP.
    pub fn secure(self, secure: bool) -> Self {
        self.cookie(|cookie| cookie.secure = secure)
    }

    /// Whether the cookie is `HttpOnly`, hidden from JavaScript (default `true`).
    pub fn http_only(self, http_only: bool) -> Self {
        self.cookie(|cookie| cookie.http_only = http_only)
    }

    /// The cookie's `SameSite` (default `Lax`).
    pub fn same_site(self, same_site: SameSite) -> Self {
        self.cookie(|cookie| cookie.same_site = same_site)
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.cookie(|cookie| cookie.path = path)
    }

    /// The cookie's `Domain` (default none: this host only).
    pub fn domain(self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        self.cookie(|cookie| cookie.domain = Some(domain))
    }

    /// Whether the cookie outlives the browser session (default `false`). A persistent
    /// cookie gets a `Max-Age` equal to the session's remaining lifetime, refreshed
    /// whenever the session's deadline moves.
    pub fn persistent(self, persistent: bool) -> Self {
        self.cookie(|cookie| cookie.persistent = persistent)
    }

    /// Carries the token in the request header `name` instead of a cookie (for APIs); the
    /// new token is sent back in the same response header when it changes, and an empty
    /// value when the session is destroyed.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.config.transport = Transport::Header(name);
        self
    }

    /// Expire sessions unused for `timeout` (default 24 hours). Use refreshes the deadline
    /// with a cheap touch, at most once per quarter of the timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// No idle timeout: sessions end only by the absolute timeout, if any, or by
    /// `destroy()`.
    pub fn without_idle_timeout(mut self) -> Self {
        self.config.idle_timeout = None;
        self
    }

    /// Expire sessions `timeout` after they started, however much they are used (default:
    /// none).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = Some(timeout);
        self
    }

    /// Bound on the store work of each request phase (default 3 seconds): loading the
    /// session, and committing it (all the operations of one commit share this deadline).
    /// Past it the request gets a 503.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// The clock deadlines are computed with (default: the system clock). For tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config.clock = Arc::new(clock);
        self
    }

    /// Called when a session is first stored, with its id and data.
    pub fn on_started(mut self, hook: impl Fn(&SessionId, &T) + Send + Sync + 'static) -> Self {
        self.config.on_started = Some(Arc::new(hook));
        self
    }

    /// Called when a session is deleted: by `destroy()`, and by stores that observe expiry
    /// or eviction themselves (the memory store's sweeper). Installs a removal listener on
    /// the store, so a store serves one layer's `on_deleted` at a time.
    pub fn on_deleted(mut self, hook: impl Fn(&SessionId, &T) + Send + Sync + 'static) -> Self {
        let hook: Hook<T> = Arc::new(hook);
        let for_store = Arc::clone(&hook);
        let listener: RemovalListener = Arc::new(move |id, record| match record.decode::<T>() {
            Ok(decoded) => for_store(id, &decoded.value),
            Err(error) => tracing::warn!(
                session = %id,
                %error,
                "an expired session does not decode; on_deleted not called for it"
            ),
        });
        if let Backend::Server(store) = &self.config.backend {
            store.set_removal_listener(listener);
        }
        self.config.on_deleted = Some(hook);
        self
    }
}

impl<S, T: Databag> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: Arc::new(self.config.clone()),
        }
    }
}

/// The service [`SessionLayer`] wraps around the routes.
pub struct SessionService<S, T> {
    inner: S,
    config: Arc<Config<T>>,
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: std::fmt::Debug, T> std::fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    T: Databag,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, T, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Lazy: only a slot goes into the request; nothing is read or decoded until a
        // handler extracts the session.
        let slot = Arc::new(Slot::new(Arc::clone(&self.config)));
        request.extensions_mut().insert(Arc::clone(&slot));
        // The inner service is called right here, on the instance `poll_ready` prepared, and
        // its future owns what it needs: no clone-and-swap (which costs a clone of the whole
        // route per request) is needed, since nothing here outlives this call.
        ResponseFuture {
            inner: self.inner.call(request),
            slot: Some(slot),
            commit: None,
        }
    }
}

type CommitFuture<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// The response future of [`SessionService`]: the inner response, then the commit.
    pub struct ResponseFuture<F, T, B> {
        #[pin]
        inner: F,
        slot: Option<Arc<Slot<T>>>,
        commit: Option<CommitFuture<B>>,
    }
}

impl<F, T, B, E> Future for ResponseFuture<F, T, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    T: Databag,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(commit) = this.commit.as_mut() {
                return commit.as_mut().poll(cx).map(Ok);
            }
            let response = ready!(this.inner.as_mut().poll(cx))?;
            let Some(slot) = this.slot.take() else {
                return Poll::Ready(Ok(response));
            };
            // Untouched session, or a 5xx from the handler: nothing to write.
            let Some(returned) = slot.take_returned() else {
                return Poll::Ready(Ok(response));
            };
            if response.status().is_server_error() {
                return Poll::Ready(Ok(response));
            }
            let config = Arc::clone(&slot.config);
            *this.commit = Some(Box::pin(async move {
                let mut response = response;
                match commit(&config, returned, response.headers_mut()).await {
                    Ok(()) => response,
                    Err(error) => failure_response(&error),
                }
            }));
        }
    }
}

/// The opaque answer when committing failed; the cause is logged.
fn failure_response<B: Default>(error: &CommitError) -> Response<B> {
    let status = match error {
        CommitError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        CommitError::Encode(_)
        | CommitError::NoRandomness
        | CommitError::TooLarge { .. }
        | CommitError::Seal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "session commit failed");
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}
