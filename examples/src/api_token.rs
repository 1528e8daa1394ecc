//! An API whose clients carry the session token in the `x-session-token` header.

use axum::routing::get;
use axum::{Json, Router};
use http::HeaderName;
use serde::Serialize;
use session_runtime::{Databag, MemoryStore, Session, SessionLayer};

/// The header the token travels in, both ways.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-session-token");

/// What the API keeps per client.
#[derive(Databag, Debug)]
pub struct ApiSession {
    /// Counted by `GET /api/visits`.
    pub visits: u32,
}

#[derive(Serialize)]
struct Visits {
    visits: u32,
}

async fn visits(mut session: Session<ApiSession>) -> Json<Visits> {
    session.set_visits(session.visits + 1);
    Json(Visits {
        visits: session.visits,
    })
}

/// The API with sessions in memory.
pub fn app() -> Router {
    Router::new()
        .route("/api/visits", get(visits))
        .layer(SessionLayer::<ApiSession>::new(MemoryStore::new()).header(TOKEN_HEADER))
}
