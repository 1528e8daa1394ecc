//! The handler-API test application (issue 17): remember me, fixed ends, explicit saves,
//! resets in place, WebSockets that change the session after the upgrade, and handles moved
//! into spawned tasks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use session_runtime::{Databag, Session, SessionLayer};
use tokio::sync::Notify;

/// The session data of the handler-API app.
#[derive(Databag, Debug)]
pub struct Account {
    pub user: Option<String>,
    pub visits: u32,
    pub step: u32,
    pub notes: Vec<String>,
}

/// Lets a test run a spawned task's part after the response, and learn what it did.
#[derive(Default)]
pub struct ApiState {
    pub release: Notify,
    pub done: Notify,
    pub report: Mutex<String>,
}

type Shared = State<Arc<ApiState>>;

fn describe(session: &Session<Account>) -> String {
    format!(
        "user={:?} visits={} step={} notes={:?} remembered={:?} new={}",
        session.user,
        session.visits,
        session.step,
        session.notes,
        session.remembered_for().map(|d| d.as_secs()),
        session.is_new()
    )
}

fn outcome(result: Result<(), session_runtime::SaveError>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(session_runtime::SaveError::TokenUndeliverable) => "undeliverable".to_owned(),
        Err(session_runtime::SaveError::Ended) => "ended".to_owned(),
        Err(error) => format!("error: {error}"),
    }
}

async fn read(session: Session<Account>) -> String {
    describe(&session)
}

async fn visit(mut session: Session<Account>) -> String {
    session.set_visits(session.visits + 1);
    describe(&session)
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    days: Option<u64>,
}

async fn login(
    mut session: Session<Account>,
    Path(name): Path<String>,
    Query(query): Query<LoginQuery>,
) -> String {
    session.renew();
    session.set_user(Some(name));
    if let Some(days) = query.days {
        session.remember_for(Some(Duration::from_secs(days * 24 * 3600)));
    }
    describe(&session)
}

async fn forget_me(mut session: Session<Account>) -> String {
    session.remember_for(None);
    describe(&session)
}

async fn end_at(mut session: Session<Account>, Path(ms): Path<u64>) -> String {
    session.end_at(Some(UNIX_EPOCH + Duration::from_millis(ms)));
    format!(
        "ends at {:?}",
        session.ends_at().map(|t| t > SystemTime::UNIX_EPOCH)
    )
}

async fn logout(mut session: Session<Account>) -> &'static str {
    session.destroy();
    "bye"
}

/// Rails' `reset_session`: destroy, then write to the fresh session in place.
async fn reset(mut session: Session<Account>, Path(note): Path<String>) -> String {
    let before = session.id().to_string();
    session.destroy();
    let after_destroy = describe(&session);
    session.notes_mut().push(note);
    format!(
        "after destroy: {after_destroy}; id changed: {}",
        session.id().to_string() != before
    )
}

/// Destroy, then write only default values: nothing to store.
async fn reset_to_defaults(mut session: Session<Account>) -> &'static str {
    session.destroy();
    session.set_visits(0);
    "reset"
}

async fn renew_only(mut session: Session<Account>) -> &'static str {
    session.renew();
    "renewed"
}

async fn save_visit_then_step(mut session: Session<Account>) -> String {
    session.set_visits(session.visits + 1);
    let saved = outcome(session.save().await);
    session.set_step(session.step + 1);
    format!("saved: {saved}; new after save: {}", session.is_new())
}

/// Saves a visit, then sets `visits` back to what was loaded: the commit must write it,
/// although it equals the loaded value (the store holds the saved one).
async fn save_visit_then_back(mut session: Session<Account>) -> String {
    let loaded = session.visits;
    session.set_visits(loaded + 1);
    let saved = outcome(session.save().await);
    session.set_visits(loaded);
    format!("saved: {saved}")
}

/// Resets in place, then sets `user` to what the old session held: the fresh session must
/// store it, although it equals the loaded value.
async fn reset_keeping_user(mut session: Session<Account>) -> &'static str {
    let user = session.user.clone();
    session.destroy();
    session.set_user(user);
    "reset"
}

async fn save_logout_then_note(mut session: Session<Account>, Path(note): Path<String>) -> String {
    session.destroy();
    let saved = outcome(session.save().await);
    session.notes_mut().push(note);
    format!("saved: {saved}")
}

async fn save_login(mut session: Session<Account>, Path(name): Path<String>) -> String {
    session.renew();
    session.set_user(Some(name));
    let saved = outcome(session.save().await);
    session.set_visits(session.visits + 1);
    format!("saved: {saved}")
}

/// Each text message "visit" counts a visit and saves it, after the upgrade; the reply says
/// what the save did.
async fn socket_loop(mut socket: WebSocket, mut session: Session<Account>) {
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        if text.as_str() != "visit" {
            continue;
        }
        session.set_visits(session.visits + 1);
        let saved = outcome(session.save().await);
        let reply = format!("visits={} saved: {saved}", session.visits);
        if socket.send(Message::Text(reply.into())).await.is_err() {
            break;
        }
    }
}

async fn ws(ws: WebSocketUpgrade, session: Session<Account>) -> impl IntoResponse {
    ws.on_upgrade(move |socket| socket_loop(socket, session))
}

/// Saves a new session before the upgrade, so that its token goes out with the 101.
async fn ws_presaved(ws: WebSocketUpgrade, mut session: Session<Account>) -> impl IntoResponse {
    session.set_user(Some("socket".to_owned()));
    let saved = session.save().await;
    assert!(saved.is_ok(), "{saved:?}");
    ws.on_upgrade(move |socket| socket_loop(socket, session))
}

#[derive(serde::Deserialize)]
pub struct SpawnQuery {
    save: bool,
}

/// Moves the handle into a task that writes after the response (and saves if asked).
async fn spawn(
    State(state): Shared,
    mut session: Session<Account>,
    Query(query): Query<SpawnQuery>,
) -> &'static str {
    tokio::spawn(async move {
        state.release.notified().await;
        session.set_step(99);
        let report = if query.save {
            outcome(session.save().await)
        } else {
            "not saved".to_owned()
        };
        drop(session);
        *state.report.lock().unwrap() = report;
        state.done.notify_one();
    });
    "spawned"
}

/// The handler-API app with `layer` in front of every route.
pub fn api_app(layer: SessionLayer<Account>) -> (Router, Arc<ApiState>) {
    let state = Arc::new(ApiState::default());
    let router = Router::new()
        .route("/read", get(read))
        .route("/visit", get(visit))
        .route("/login/{name}", post(login))
        .route("/forget-me", post(forget_me))
        .route("/end-at/{ms}", post(end_at))
        .route("/logout", post(logout))
        .route("/reset/{note}", post(reset))
        .route("/reset-to-defaults", post(reset_to_defaults))
        .route("/renew-only", post(renew_only))
        .route("/save/visit-then-step", post(save_visit_then_step))
        .route("/save/visit-then-back", post(save_visit_then_back))
        .route("/reset-keeping-user", post(reset_keeping_user))
        .route("/save/logout-then-note/{note}", post(save_logout_then_note))
        .route("/save/login/{name}", post(save_login))
        .route("/ws", get(ws))
        .route("/ws-presaved", get(ws_presaved))
        .route("/spawn", get(spawn))
        .with_state(Arc::clone(&state))
        .layer(layer);
    (router, state)
}
