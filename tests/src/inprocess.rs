//! The layer driven in process (no network): for tests that send a very large number of
//! requests through the decode paths.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use http::{HeaderValue, Request, Response};
use session_runtime::{Session, SessionLayer};
use tower::{Layer, ServiceExt};

use crate::app::TestSession;

/// What the handler saw.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub is_new: bool,
    /// The id fingerprint (`sid:..`).
    pub id: String,
    pub visits: u32,
}

/// A service that extracts the session, bumps `visits` when asked to, and reports.
pub fn service(layer: &SessionLayer<TestSession>) -> Svc {
    tower::util::BoxCloneService::new(layer.layer(tower::service_fn(
        |request: Request<String>| async move {
            let write = request.uri().path() == "/visit";
            let (mut parts, _) = request.into_parts();
            let response = match Session::<TestSession>::from_request_parts(&mut parts, &()).await {
                Ok(mut session) => {
                    if write {
                        session.set_visits(session.visits + 1);
                    }
                    Response::new(format!(
                        "{} {} {}",
                        session.is_new(),
                        session.id(),
                        session.visits
                    ))
                }
                Err(rejection) => {
                    let mut response = Response::new(rejection.to_string());
                    *response.status_mut() = rejection.status();
                    response
                }
            };
            Ok::<_, Infallible>(response)
        },
    )))
}

/// The layer and handler as one cloneable service.
pub type Svc = tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>;

/// Sends one request with `header: value` and reports what the handler saw.
pub async fn send(
    service: &Svc,
    path: &str,
    header: Option<(&str, HeaderValue)>,
) -> (Seen, Response<String>) {
    let mut request = Request::builder().uri(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let request = request.body(String::new()).unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let mut words = response.body().split(' ');
    let seen = Seen {
        status,
        is_new: words.next() == Some("true"),
        id: words.next().unwrap_or_default().to_owned(),
        visits: words
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX),
    };
    (seen, response)
}
