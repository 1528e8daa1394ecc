//! The layer's machinery: [`SessionService`], which wraps the routes, and its
//! [`ResponseFuture`], which commits the session after the handler. One request's lifecycle
//! fits on one screen here: put a slot in the request, run the inner service, take the
//! session back, plan, commit, answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::commit::{start, Committing};
use crate::config::{Config, SessionLayer};
use crate::schema::Databag;
use crate::slot::Slot;

impl<S, T: Databag> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        let config = self.config();
        if let Err(rule) = config.transport.check() {
            panic!("invalid SessionLayer configuration: {rule}");
        }
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

pin_project! {
    /// The response future of [`SessionService`]: the inner response, then the commit.
    pub struct ResponseFuture<F, T, B> {
        #[pin]
        inner: F,
        slot: Option<Arc<Slot<T>>>,
        commit: Option<Committing<B>>,
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
        if let Some(committing) = this.commit.as_mut() {
            return committing.as_mut().poll(cx).map(Ok);
        }
        let mut response = ready!(this.inner.as_mut().poll(cx))?;
        let Some(slot) = this.slot.take() else {
            return Poll::Ready(Ok(response));
        };
        let (mut returned, pending) = slot.finish();
        if returned.is_none() && pending.is_none() {
            // Untouched session: nothing to write.
            return Poll::Ready(Ok(response));
        }
        if response.status().is_server_error() {
            // A 5xx from the handler: its unsaved changes are not written. What it saved
            // explicitly is stored, so its token still goes out.
            returned = None;
            if pending.is_none() {
                return Poll::Ready(Ok(response));
            }
        }
        // The handler used the session: what it answered depends on the token.
        slot.config.transport.vary(response.headers_mut());
        match start(
            &slot.config,
            returned,
            pending,
            slot.take_snapshot(),
            slot.client(),
            response,
        ) {
            Err(response) => Poll::Ready(Ok(response)),
            Ok(committing) => this.commit.insert(committing).as_mut().poll(cx).map(Ok),
        }
    }
}
