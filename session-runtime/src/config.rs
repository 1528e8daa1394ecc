//! [`SessionLayer`], the layer's configuration: which backend, how the token travels,
//! timeouts, hooks. Every request shares one [`Config`].

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::backend::{Backend, SessionBackend};
use crate::client::Tracking;
use crate::clock::{Clock, SystemClock};
use crate::id::SessionDigest;
use crate::plan::{Lifetime, RememberPolicy, Timeouts};
use crate::schema::{keys, Databag, Tracked};
use crate::store::RemovalListener;
use crate::transport::{CookieConfig, Transport};

pub use cookie::SameSite;

/// A lifecycle hook: `on_started` or `on_deleted`.
pub(crate) type Hook<T> = Arc<dyn Fn(&SessionDigest, &T) + Send + Sync>;

/// Default idle timeout: a session unused for a day expires.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Default cap on a remember-me duration: 400 days, the longest `Max-Age` browsers keep
/// (RFC 6265bis caps it there; Chrome enforces it).
const DEFAULT_MAX_REMEMBER: Duration = Duration::from_secs(400 * 24 * 3600);
/// Default bound on the store work of loading, and of committing.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Everything a request needs to load and commit its session.
pub(crate) struct Config<T> {
    pub(crate) backend: Arc<dyn Backend<T>>,
    pub(crate) transport: Transport,
    pub(crate) timeouts: Timeouts,
    pub(crate) remember: RememberPolicy,
    pub(crate) store_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) on_started: Option<Hook<T>>,
    pub(crate) on_deleted: Option<Hook<T>>,
    /// `on_deleted` for sessions the store removes by itself; subscribed to the store when
    /// the layer is applied to a router, not before.
    pub(crate) removals: Option<RemovalListener>,
    /// What is kept of the client that starts a session (device, address).
    pub(crate) tracking: Tracking,
}

impl<T: Databag> Config<T> {
    /// The timeouts of one session: the layer's, with its remember-me choice and fixed end.
    pub(crate) fn timeouts_for(&self, tracked: &Tracked<T>) -> Timeouts {
        let internal = tracked.internal();
        let lifetime = Lifetime {
            remember_ms: internal.get_u64(keys::REMEMBER),
            end_ms: internal.get_u64(keys::END),
        };
        self.timeouts.for_session(&self.remember, lifetime)
    }

    /// Whether the session's cookie persists across browser restarts (with `Max-Age`).
    pub(crate) fn persists(&self, tracked: &Tracked<T>) -> bool {
        let remembered = tracked.internal().get_u64(keys::REMEMBER).is_some();
        self.transport.persists(remembered)
    }
}

impl<T> Clone for Config<T> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            transport: self.transport.clone(),
            timeouts: self.timeouts,
            remember: self.remember,
            store_timeout: self.store_timeout,
            clock: Arc::clone(&self.clock),
            on_started: self.on_started.clone(),
            on_deleted: self.on_deleted.clone(),
            removals: self.removals.clone(),
            tracking: self.tracking.clone(),
        }
    }
}

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
/// Builder methods only configure the layer they are called on: none of them touches the
/// store, which may be shared with other layers. An `on_deleted` hook is subscribed to the
/// store's expiry reports when the layer is applied to a router (`Router::layer`).
///
/// Defaults: cookie `__Host-session` (`session` with `secure(false)`) with `Secure`,
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, and no `Max-Age` (the cookie ends with
/// the browser session); idle timeout 24 hours, no absolute timeout; loading and committing
/// each bounded by 3 seconds of store time.
///
/// Responses that set or remove the token carry `Cache-Control: no-store` (a handler's own
/// `Cache-Control` is kept only if it already says `no-store`), and every response whose
/// handler used the session carries `Vary: cookie` (or `Vary: <header name>`).
///
/// # Panics
/// When the layer is applied to a router (`Router::layer`), if the cookie settings break a
/// rule browsers enforce silently: a `__Host-` name with `secure(false)`, a `domain(..)` or
/// a `path(..)` other than `/`, or a `__Secure-` name with `secure(false)`. The message
/// names the rule. A configuration mistake stops the app at start-up rather than giving it
/// sessions that never stick.
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
            .field("idle_timeout", &self.config.timeouts.idle)
            .field("absolute_timeout", &self.config.timeouts.absolute)
            .field("store_timeout", &self.config.store_timeout)
            .finish_non_exhaustive()
    }
}

impl<T: Databag> SessionLayer<T> {
    /// A layer keeping sessions in `store`: any [`SessionStore`](crate::store::SessionStore) (such as
    /// [`MemoryStore`](crate::MemoryStore)), or a `CookieStore`.
    pub fn new(store: impl SessionBackend) -> Self {
        Self {
            config: Config {
                backend: store.into_backend::<T>(),
                transport: Transport::default(),
                timeouts: Timeouts {
                    idle: Some(DEFAULT_IDLE_TIMEOUT),
                    absolute: None,
                    end_ms: None,
                },
                remember: RememberPolicy {
                    max: DEFAULT_MAX_REMEMBER,
                    absolute: None,
                },
                store_timeout: DEFAULT_STORE_TIMEOUT,
                clock: Arc::new(SystemClock),
                on_started: None,
                on_deleted: None,
                removals: None,
                tracking: Tracking::default(),
            },
        }
    }

    /// The configuration every request of this layer shares.
    pub(crate) fn config(&self) -> &Config<T> {
        &self.config
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

    /// The cookie's name (default `__Host-session`, or `session` with `secure(false)`). A
    /// `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no `Domain`, which
    /// pins the cookie to one host: no sibling subdomain, and no attacker on plain HTTP, can
    /// set a cookie of that name for it.
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
        self.cookie(|cookie| cookie.name = Some(name))
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
    /// whenever the session's deadline moves. To choose per session (remember me), leave
    /// this off and call `remember_for` in the handler (typically at login).
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
        self.config.timeouts.idle = Some(timeout);
        self
    }

    /// No idle timeout: sessions end only by the absolute timeout, if any, or by
    /// `destroy()`.
    pub fn without_idle_timeout(mut self) -> Self {
        self.config.timeouts.idle = None;
        self
    }

    /// Expire sessions `timeout` after they started, however much they are used (default:
    /// none).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.timeouts.absolute = Some(timeout);
        self
    }

    /// The longest a handler may ask to remember a session (`remember_for`); longer requests
    /// are cut to it. Default: 400 days, the longest `Max-Age` browsers keep.
    pub fn max_remember(mut self, max: Duration) -> Self {
        self.config.remember.max = max;
        self
    }

    /// The absolute timeout of remembered sessions (those whose handler called
    /// `remember_for(Some(..))`), instead of the layer's [`absolute_timeout`](Self::absolute_timeout).
    ///
    /// Without it, the layer's absolute timeout caps remembered sessions too: an absolute
    /// timeout bounds how long one login lasts, a policy of whoever runs the app, so a
    /// handler cannot lift it by asking to be remembered; lifting it for remembered sessions
    /// is this explicit, per-layer decision (say an 8-hour absolute timeout for ordinary
    /// sessions and 30 days for "keep me signed in").
    pub fn remembered_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.remember.absolute = Some(timeout);
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

    /// Called when a session is first stored, with its digest and data.
    ///
    /// Hooks receive the session's [`SessionDigest`], not its id: it names the session (in
    /// logs, in the app's own tables) without giving access to it, and it is all that a
    /// store which keeps only digests can report when it removes a session by itself.
    pub fn on_started(mut self, hook: impl Fn(&SessionDigest, &T) + Send + Sync + 'static) -> Self {
        self.config.on_started = Some(Arc::new(hook));
        self
    }

    /// Called when a session is deleted: by `destroy()` (once, by the request that removed
    /// it), and by stores that observe expiry or eviction themselves (the sweepers of the
    /// memory and SQL stores). Every layer using one store gets its own reports; nothing is
    /// installed on the store until the layer is applied to a router. The session is named
    /// by its [`SessionDigest`] (see [`on_started`](Self::on_started)).
    pub fn on_deleted(mut self, hook: impl Fn(&SessionDigest, &T) + Send + Sync + 'static) -> Self {
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
        self.config.on_deleted = Some(hook);
        self.config.removals = Some(listener);
        self
    }

    /// Keeps, with each session, the device that started it: the request's `User-Agent`
    /// (at most [`MAX_DEVICE_BYTES`](crate::client::MAX_DEVICE_BYTES)), written when the
    /// session is stored under a new id (created, renewed at login, reset), never on other
    /// requests: it costs no extra write. Shown by
    /// [`Sessions::list`](crate::Sessions::list) so a user can tell their sessions apart.
    /// Off by default. Server-side stores only (the cookie store lists nothing).
    pub fn track_devices(mut self) -> Self {
        self.config.tracking.devices = true;
        self
    }

    /// Keeps, with each session, the address of the client that started it, taken as
    /// `source` says (the connection's peer, or a forwarded address from proxies the app
    /// trusts: see [`ClientAddress`](crate::client::ClientAddress)); written like
    /// [`track_devices`](Self::track_devices). Off by default: an address is personal data,
    /// keep it only if you show it to the user.
    pub fn track_client_address(mut self, source: crate::client::ClientAddress) -> Self {
        self.config.tracking.address = Some(source);
        self
    }
}
