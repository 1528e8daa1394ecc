//! The quickstart app: a visit counter and a login, with sessions in memory.

use std::time::Duration;

use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use session_runtime::{Databag, MemoryStore, Session, SessionBackend, SessionLayer};

/// What the app keeps about a visitor.
#[derive(Databag, Debug)]
pub struct UserSession {
    /// Shown on the page; set by `POST /login`.
    #[databag(default = "guest".to_owned())]
    pub username: String,
    /// Counted by `GET /`.
    pub visits: u32,
}

async fn index(mut session: Session<UserSession>, store: &str) -> Html<String> {
    session.set_visits(session.visits + 1);
    Html(crate::page(store, &session.username, session.visits))
}

#[derive(Deserialize)]
struct Login {
    username: String,
}

async fn login(mut session: Session<UserSession>, Form(form): Form<Login>) -> Redirect {
    // A new id whenever privileges change: a session id planted before login is useless.
    session.renew();
    session.set_username(form.username);
    Redirect::to("/")
}

async fn logout(mut session: Session<UserSession>) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

/// The routes, without a session layer.
pub fn routes() -> Router {
    routes_for("memory")
}

/// The routes, without a session layer, for a page that says where sessions are kept.
pub fn routes_for(store: &'static str) -> Router {
    Router::new()
        .route("/", get(move |session| index(session, store)))
        .route("/login", post(login))
        .route("/logout", post(logout))
}

/// The session layer of the quickstart over `store`.
pub fn sessions(store: impl SessionBackend) -> SessionLayer<UserSession> {
    SessionLayer::<UserSession>::new(store)
        // Served over plain http on localhost; keep the default `Secure` in production.
        .secure(false)
        .idle_timeout(Duration::from_secs(30 * 60))
        .on_started(|id, data| tracing::info!(%id, user = %data.username, "session started"))
        .on_deleted(|id, _| tracing::info!(%id, "session deleted"))
}

/// The whole app, with sessions in memory.
pub fn app() -> Router {
    routes().layer(sessions(MemoryStore::new()))
}
