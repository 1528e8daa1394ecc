//! [`CsrfLayer`], the CSRF check's configuration: where the token travels, which origins
//! are trusted, the body limit, the exempt paths. The check itself is in `service.rs`.

use std::sync::Arc;

use http::HeaderName;
use tower_layer::Layer;

use super::origin::normalize;
use super::service::CsrfService;

/// Default header a token travels in (JavaScript clients, `fetch`, htmx).
pub const DEFAULT_HEADER: &str = "x-csrf-token";
/// Default form field a token travels in (HTML forms).
pub const DEFAULT_FIELD: &str = "csrf_token";
/// Default bound on a urlencoded form body buffered to find the token: 256 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// What every request of a [`CsrfLayer`] shares.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) header: HeaderName,
    pub(super) field: String,
    /// Normalized origins.
    pub(super) trusted: Vec<String>,
    pub(super) secure: bool,
    pub(super) body_limit: usize,
    pub(super) exempt: Vec<String>,
}

/// Verifies unsafe requests (POST, PUT, PATCH, DELETE and any other method that is not
/// GET, HEAD, OPTIONS or TRACE) of the routes it wraps against the CSRF secret of the
/// session of type `T`; safe methods pass untouched.
///
/// A request passes when
/// 1. it comes from this site: its `Origin`, when sent, is this site's own
///    (`https://` + `Host`; `http://` with [`secure(false)`](Self::secure)) or a
///    [trusted](Self::trust_origin) one; without `Origin`, a `Sec-Fetch-Site` of
///    `same-site` or `cross-site` is refused (`same-origin`, `none` or no header pass);
/// 2. and it carries a token of its session's secret ([`CsrfToken`](crate::CsrfToken),
///    `session.csrf_token()`) in the [`x-csrf-token`](DEFAULT_HEADER) header, or in the
///    [`csrf_token`](DEFAULT_FIELD) field of an `application/x-www-form-urlencoded` body.
///    Such a body is buffered (up to [`body_limit`](Self::body_limit); more is a 413) and
///    handed to the handler unchanged. Multipart bodies are not searched: send the token
///    in the header.
///
/// Anything else is answered with a [`CsrfRejection`](super::CsrfRejection): a 403 whose body says what was
/// missing or wrong, logged at warn level. The check needs the session, which costs no
/// extra store read: the one load of the request happens here, and the handler's
/// `Session<T>` reuses it.
///
/// Add it inside the `SessionLayer` of the same `T` (that is, `.layer(CsrfLayer)` before
/// `.layer(SessionLayer)`):
///
/// ```
/// use axum::{routing::{get, post}, Router};
/// use session_runtime::{CsrfLayer, Databag, MemoryStore, SessionLayer};
/// # #[derive(Databag)] pub struct UserSession { pub name: String }
/// # async fn page() {} async fn save() {} async fn webhook() {}
///
/// let app: Router = Router::new()
///     .route("/", get(page))
///     .route("/name", post(save))
///     .route("/api/webhook", post(webhook))
///     .layer(
///         CsrfLayer::<UserSession>::new()
///             .trust_origin("https://admin.example.com")
///             .exempt("/api/"),
///     )
///     .layer(SessionLayer::<UserSession>::new(MemoryStore::new()));
/// ```
///
/// Opting out: routes whose clients are not browsers, such as APIs on the header transport
/// (a browser never attaches a custom header to a cross-site request, so those are not
/// exposed to CSRF), are exempted by path prefix with [`exempt`](Self::exempt), or by
/// not wrapping them in this layer at all.
pub struct CsrfLayer<T> {
    config: Arc<Config>,
    session: core::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for CsrfLayer<T> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            session: core::marker::PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for CsrfLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<T> Default for CsrfLayer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> CsrfLayer<T> {
    /// A layer with the defaults: header `x-csrf-token`, field `csrf_token`, the site
    /// served over HTTPS, no trusted origins, no exemptions, a 256 KiB form body limit.
    #[must_use]
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                header: HeaderName::from_static(DEFAULT_HEADER),
                field: DEFAULT_FIELD.to_owned(),
                trusted: Vec::new(),
                secure: true,
                body_limit: DEFAULT_BODY_LIMIT,
                exempt: Vec::new(),
            }),
            session: core::marker::PhantomData,
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        // The layer is being built: its config is not shared yet, else copied.
        let mut config = Arc::try_unwrap(self.config).unwrap_or_else(|shared| (*shared).clone());
        change(&mut config);
        self.config = Arc::new(config);
        self
    }

    /// The header a token is read from (default `x-csrf-token`).
    #[must_use]
    pub fn header(self, name: HeaderName) -> Self {
        self.with(|config| config.header = name)
    }

    /// The urlencoded form field a token is read from (default `csrf_token`).
    #[must_use]
    pub fn field(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|config| config.field = name)
    }

    /// Trusts another origin (`scheme://host[:port]`, e.g. `https://admin.example.com`) to
    /// send unsafe requests, with a valid token still required.
    #[must_use]
    pub fn trust_origin(self, origin: impl AsRef<str>) -> Self {
        let origin = normalize(origin.as_ref());
        self.with(|config| config.trusted.push(origin))
    }

    /// Whether the site is served over HTTPS (default `true`): this site's own origin is
    /// `https://` + the `Host` header, or `http://` with `false` (development, tests).
    #[must_use]
    pub fn secure(self, secure: bool) -> Self {
        self.with(|config| config.secure = secure)
    }

    /// The most bytes of a urlencoded form body buffered to find the token (default 256
    /// KiB); a larger body is refused with 413 Payload Too Large.
    #[must_use]
    pub fn body_limit(self, bytes: usize) -> Self {
        self.with(|config| config.body_limit = bytes)
    }

    /// Exempts the paths under `prefix` (say `/api`: `/api` and `/api/..`, not `/apikeys`)
    /// from the check: an explicit opt-out for routes no browser drives. The path is the one
    /// the layer sees: inside a nested router, without the nest's prefix.
    #[must_use]
    pub fn exempt(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with(|config| config.exempt.push(prefix))
    }
}

impl<S, T> Layer<S> for CsrfLayer<T> {
    type Service = CsrfService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService::new(inner, Arc::clone(&self.config))
    }
}
