//! [`CsrfService`]: the CSRF check of unsafe requests before the handler runs, with the
//! session the request's `SessionLayer` loads (no second store read): origin first, then the
//! token's presence (header, or a buffered urlencoded body handed back intact), then the
//! session's secret.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::header::CONTENT_LENGTH;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Limited};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::layer::Config;
use super::origin;
use super::rejection::CsrfRejection;
use crate::extract::with_session;
use crate::schema::csrf::{self, Verdict};
use crate::schema::Databag;
use crate::slot::Slot;

/// The service [`CsrfLayer`](super::CsrfLayer) wraps around the routes.
pub struct CsrfService<S, T> {
    inner: S,
    config: Arc<Config>,
    session: core::marker::PhantomData<fn() -> T>,
}

impl<S, T> CsrfService<S, T> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        Self {
            inner,
            config,
            session: core::marker::PhantomData,
        }
    }
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

/// Whether `path` is under the exempt `prefix`, cut at a segment boundary: `/api` exempts
/// `/api` and `/api/..`, not `/apikeys`.
fn exempted(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
}

/// A browser's WebSocket handshake (HTTP/1.1 `Upgrade: websocket`).
fn is_websocket_handshake(request: &Request<Body>) -> bool {
    request
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
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
        let exempt = self
            .config
            .exempt
            .iter()
            .any(|prefix| exempted(path, prefix));
        if !exempt && is_websocket_handshake(&request) {
            // A WebSocket handshake is a GET that opens a channel able to change the
            // session: a page of another origin (another port, a sibling subdomain, which
            // get the cookie) must not open one. It carries no token: the origin decides.
            let refused = origin::check(
                request.headers(),
                request.uri(),
                self.config.secure,
                &self.config.trusted,
            );
            if let Err(rejection) = refused {
                tracing::warn!(
                    method = %request.method(),
                    path = %path,
                    reason = %rejection,
                    "CSRF check refused a WebSocket handshake"
                );
                let response = rejection.into_response();
                return CsrfFuture {
                    state: State::Check {
                        checking: Box::pin(async move { Ok(response) }),
                    },
                };
            }
        }
        if is_safe(request.method()) || exempt {
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

/// The check itself, cheapest first: the layers' order (a configuration mistake is
/// reported whatever the request), the origin, the token's presence, then the session.
async fn check<T: Databag>(
    config: &Config,
    parts: &mut http::request::Parts,
    body: Body,
) -> Result<Body, CsrfRejection> {
    let Some(slot) = parts.extensions.get::<Arc<Slot<T>>>().cloned() else {
        return Err(CsrfRejection::MissingSessionLayer {
            type_name: core::any::type_name::<T>(),
        });
    };
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

#[cfg(test)]
mod tests {
    use super::exempted;

    #[test]
    fn exempt_prefixes_end_at_a_segment_boundary() {
        assert!(exempted("/api", "/api"));
        assert!(exempted("/api/users", "/api"));
        assert!(exempted("/api/users", "/api/"));
        assert!(!exempted("/apikeys/rotate", "/api"));
        assert!(!exempted("/api-admin", "/api"));
        assert!(!exempted("/", "/api"));
    }
}
