//! [`CsrfLayer`]: verifies the CSRF token and the origin of unsafe requests before the
//! handler runs, with the session the request's `SessionLayer` loads (no second store read).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::header::CONTENT_LENGTH;
use http::{HeaderName, Method, Request};
use http_body_util::{BodyExt as _, Limited};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::origin::{self, normalize};
use super::rejection::CsrfRejection;
use crate::extract::with_session;
use crate::schema::csrf::{self, Verdict};
use crate::schema::Databag;
use crate::slot::Slot;

/// Default header a token travels in (JavaScript clients, `fetch`, htmx).
pub const DEFAULT_HEADER: &str = "x-csrf-token";
/// Default form field a token travels in (HTML forms).
pub const DEFAULT_FIELD: &str = "csrf_token";
/// Default bound on a urlencoded form body buffered to find the token: 256 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

#[derive(Debug)]
struct Config {
    header: HeaderName,
    field: String,
    trusted: Vec<String>,
    secure: bool,
    body_limit: usize,
    exempt: Vec<String>,
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
/// Anything else is answered with a [`CsrfRejection`]: a 403 whose body says what was
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
        let mut config = Arc::try_unwrap(self.config).unwrap_or_else(|shared| Config {
            header: shared.header.clone(),
            field: shared.field.clone(),
            trusted: shared.trusted.clone(),
            secure: shared.secure,
            body_limit: shared.body_limit,
            exempt: shared.exempt.clone(),
        });
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

    /// Exempts the paths starting with `prefix` (say `/api/`) from the check: an explicit
    /// opt-out for routes no browser drives.
    #[must_use]
    pub fn exempt(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with(|config| config.exempt.push(prefix))
    }
}

impl<S, T> Layer<S> for CsrfLayer<T> {
    type Service = CsrfService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService {
            inner,
            config: Arc::clone(&self.config),
            session: core::marker::PhantomData,
        }
    }
}

/// The service [`CsrfLayer`] wraps around the routes.
pub struct CsrfService<S, T> {
    inner: S,
    config: Arc<Config>,
    session: core::marker::PhantomData<fn() -> T>,
}

impl<S: Clone, T> Clone for CsrfService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            session: core::marker::PhantomData,
        }
    }
}

impl<S: std::fmt::Debug, T> std::fmt::Debug for CsrfService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type Checking<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project! {
    /// The response future of [`CsrfService`]: the inner future directly for requests
    /// that need no check, else the check and then the inner call.
    pub struct CsrfFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        // A safe or exempt request.
        Pass { #[pin] inner: F },
        // An unsafe request being checked.
        Check { checking: Checking<E> },
    }
}

impl<F, E> Future for CsrfFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Pass { inner } => inner.poll(cx),
            StateProj::Check { checking } => checking.as_mut().poll(cx),
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl<S, T> Service<Request<Body>> for CsrfService<S, T>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    T: Databag,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CsrfFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let path = request.uri().path();
        if is_safe(request.method())
            || self
                .config
                .exempt
                .iter()
                .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return CsrfFuture {
                state: State::Pass {
                    inner: self.inner.call(request),
                },
            };
        }
        // The check awaits before calling the inner service: take the instance
        // `poll_ready` prepared and leave a clone in its place (tower's pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        CsrfFuture {
            state: State::Check {
                checking: Box::pin(async move {
                    match verify::<T>(&config, request).await {
                        Ok(request) => inner.call(request).await,
                        Err(response) => Ok(response),
                    }
                }),
            },
        }
    }
}

/// The request back (its body intact) when it passes, else the rejection's response.
async fn verify<T: Databag>(
    config: &Config,
    request: Request<Body>,
) -> Result<Request<Body>, Response> {
    let (mut parts, body) = request.into_parts();
    match check::<T>(config, &mut parts, body).await {
        Ok(body) => Ok(Request::from_parts(parts, body)),
        Err(rejection @ CsrfRejection::MissingSessionLayer { .. }) => {
            tracing::error!(error = %rejection, "CsrfLayer is misconfigured");
            Err(rejection.into_response())
        }
        Err(rejection) => {
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                reason = %rejection,
                "CSRF check refused a request"
            );
            Err(rejection.into_response())
        }
    }
}

/// The check itself, cheapest first: origin, then the token's presence, then the session.
async fn check<T: Databag>(
    config: &Config,
    parts: &mut http::request::Parts,
    body: Body,
) -> Result<Body, CsrfRejection> {
    origin::check(&parts.headers, &parts.uri, config.secure, &config.trusted)?;
    let (token, body) = match parts.headers.get(&config.header) {
        Some(value) => (
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            body,
        ),
        None if is_urlencoded_form(&parts.headers) => {
            read_form(config, &parts.headers, body).await?
        }
        None => (None, body),
    };
    let Some(token) = token else {
        return Err(CsrfRejection::MissingToken {
            header: config.header.as_str().to_owned(),
            field: config.field.clone(),
        });
    };
    let Some(slot) = parts.extensions.get::<Arc<Slot<T>>>().cloned() else {
        return Err(CsrfRejection::MissingSessionLayer {
            type_name: core::any::type_name::<T>(),
        });
    };
    let secret = with_session(&slot, &parts.headers, "CsrfLayer", |returned| {
        csrf::secret(returned.tracked.internal())
    })
    .await
    .map_err(CsrfRejection::Session)?;
    let Some(secret) = secret else {
        return Err(CsrfRejection::NoSecret);
    };
    match csrf::verify(token.trim(), &secret) {
        Verdict::Valid => Ok(body),
        Verdict::Malformed => Err(CsrfRejection::MalformedToken),
        Verdict::Mismatch => Err(CsrfRejection::WrongToken),
    }
}

fn is_urlencoded_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Buffers a urlencoded body (up to the limit) and finds the token field in it; the body
/// goes back to the handler byte for byte.
async fn read_form(
    config: &Config,
    headers: &http::HeaderMap,
    body: Body,
) -> Result<(Option<String>, Body), CsrfRejection> {
    let limit = config.body_limit;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(CsrfRejection::BodyTooLarge { limit });
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(CsrfRejection::BodyTooLarge { limit });
        }
        Err(_) => return Err(CsrfRejection::UnreadableBody),
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| *name == config.field)
        .map(|(_, value)| value.into_owned());
    Ok((token, Body::from(bytes)))
}
