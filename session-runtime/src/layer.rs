//! The layer's machinery: [`SessionService`], which wraps the routes, and its
//! [`ResponseFuture`], which commits the session after the handler. One request's lifecycle
//! fits on one screen here: put a slot in the request, run the inner service, take the
//! session back, plan, commit, answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::{Abandoned, CommitError};
use crate::commit::{send, start, Pending};
use crate::config::{Config, SessionLayer};
use crate::schema::Databag;
use crate::slot::Slot;

impl<S, T: Databag> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        let config = self.config();
        // The one moment the layer touches the store: applied to a router, it subscribes its
        // `on_deleted` to the sessions the store removes by itself.
        if let Some(listener) = &config.removals {
            config.backend.subscribe_removals(listener);
        }
        SessionService {
            inner,
            config: Arc::new(config.clone()),
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

/// A commit under way, with the response it will complete.
struct Committing<T, B> {
    pending: Pending,
    response: Option<Response<B>>,
    config: Arc<Config<T>>,
    now: u64,
    /// For a renewal: tells its task, if this future is dropped first, that the client never
    /// got the new token.
    watch: Option<Abandoned>,
}

impl<T, B> Drop for Committing<T, B> {
    fn drop(&mut self) {
        if let Some(abandoned) = &self.watch {
            abandoned.set();
        }
    }
}

pin_project! {
    /// The response future of [`SessionService`]: the inner response, then the commit.
    pub struct ResponseFuture<F, T, B> {
        #[pin]
        inner: F,
        slot: Option<Arc<Slot<T>>>,
        commit: Option<Committing<T, B>>,
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
            if let Some(committing) = this.commit.as_mut() {
                let result = ready!(committing.pending.as_mut().poll(cx));
                committing.watch = None; // finished: nothing to roll back
                let mut response = committing.response.take().unwrap_or_default();
                match result {
                    Ok(update) => send(
                        &committing.config,
                        response.headers_mut(),
                        update,
                        committing.now,
                    ),
                    Err(error) => response = failure_response(&error),
                }
                *this.commit = None;
                return Poll::Ready(Ok(response));
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
            let Some((pending, now, watch)) = start(&slot.config, returned) else {
                return Poll::Ready(Ok(response));
            };
            *this.commit = Some(Committing {
                pending,
                response: Some(response),
                config: Arc::clone(&slot.config),
                now,
                watch,
            });
        }
    }
}

/// The opaque answer when committing failed; the cause is logged.
fn failure_response<B: Default>(error: &CommitError) -> Response<B> {
    let status = match error {
        CommitError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        CommitError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "session commit failed");
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}
