//! The test application: routes that exercise every part of the session lifecycle.

use std::sync::Arc;

use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use session_runtime::{Databag, Session, SessionLayer};
use tokio::sync::Notify;

/// The session data of the test app.
#[derive(Databag, Debug, Clone)]
pub struct TestSession {
    pub visits: u32,
    #[databag(default = "guest".to_owned())]
    pub username: String,
    pub a: u64,
    pub b: u64,
}

/// Lets a test hold a request between loading its session and committing it.
#[derive(Default)]
pub struct Gate {
    pub loaded: Notify,
    pub release: Notify,
}

#[derive(Clone, Default)]
pub struct AppState {
    pub gate: Arc<Gate>,
}

async fn visit(mut session: Session<TestSession>) -> String {
    session.set_visits(session.visits + 1);
    format!("visits: {}", session.visits)
}

async fn read(session: Session<TestSession>) -> String {
    format!(
        "visits: {} user: {} new: {} a: {} b: {}",
        session.visits,
        session.username,
        session.is_new(),
        session.a,
        session.b
    )
}

async fn id(session: Session<TestSession>) -> String {
    session.id().to_string()
}

async fn ignore() -> &'static str {
    "no session here"
}

async fn login(mut session: Session<TestSession>, Path(name): Path<String>) -> String {
    session.renew();
    session.set_username(name);
    format!("hello {}", session.username)
}

async fn logout(mut session: Session<TestSession>) -> &'static str {
    session.destroy();
    "bye"
}

async fn fail(mut session: Session<TestSession>) -> StatusCode {
    session.set_visits(1000);
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn set_a(mut session: Session<TestSession>, Path(n): Path<u64>) -> String {
    session.set_a(n);
    format!("a: {n}")
}

async fn set_b(mut session: Session<TestSession>, Path(n): Path<u64>) -> String {
    session.set_b(n);
    format!("b: {n}")
}

async fn set_ab(mut session: Session<TestSession>, Path((a, b)): Path<(u64, u64)>) -> String {
    session.set_a(a);
    session.set_b(b);
    format!("a: {a} b: {b}")
}

/// Loads the session, writes `a`, then waits for the test to release it.
async fn held_set_a(
    State(state): State<AppState>,
    mut session: Session<TestSession>,
    Path(n): Path<u64>,
) -> String {
    session.set_a(n);
    state.gate.loaded.notify_one();
    state.gate.release.notified().await;
    format!("a: {n}")
}

/// Loads the session, renews it and sets the name, then waits for the test to release it.
async fn held_login(
    State(state): State<AppState>,
    mut session: Session<TestSession>,
    Path(name): Path<String>,
) -> String {
    session.renew();
    session.set_username(name);
    state.gate.loaded.notify_one();
    state.gate.release.notified().await;
    "renewed".to_owned()
}

/// Loads the session and destroys it, then waits for the test to release it.
async fn held_logout(
    State(state): State<AppState>,
    mut session: Session<TestSession>,
) -> &'static str {
    session.destroy();
    state.gate.loaded.notify_one();
    state.gate.release.notified().await;
    "bye"
}

/// Extracts the session in a middleware, drops it, then the handler extracts it again.
async fn peek_then_next(
    session: Session<TestSession>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let visits = session.visits;
    drop(session);
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "x-visits-seen-by-middleware",
        visits.to_string().parse().unwrap(),
    );
    response
}

async fn websocket(ws: WebSocketUpgrade, mut session: Session<TestSession>) -> impl IntoResponse {
    // Changes made before the upgrade response are saved with it.
    session.set_visits(session.visits + 1);
    let greeting = format!("visits: {} user: {}", session.visits, session.username);
    ws.on_upgrade(move |mut socket| async move {
        let _ = socket
            .send(axum::extract::ws::Message::Text(greeting.into()))
            .await;
    })
}

/// The test app with `layer` in front of every route.
pub fn app(layer: SessionLayer<TestSession>) -> (Router, AppState) {
    let state = AppState::default();
    let router = Router::new()
        .route("/visit", get(visit))
        .route("/read", get(read))
        .route("/ignore", get(ignore))
        .route("/id", get(id))
        .route("/login/{name}", post(login))
        .route("/logout", post(logout))
        .route("/fail", get(fail))
        .route("/set-a/{n}", get(set_a))
        .route("/set-b/{n}", get(set_b))
        .route("/set-ab/{a}/{b}", get(set_ab))
        .route("/held/set-a/{n}", get(held_set_a))
        .route("/held/login/{name}", post(held_login))
        .route("/held/logout", post(held_logout))
        .route("/ws", get(websocket))
        .route(
            "/peek/visit",
            get(visit).layer(axum::middleware::from_fn(peek_then_next)),
        )
        .with_state(state.clone())
        .layer(layer);
    (router, state)
}
