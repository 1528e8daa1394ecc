//! Schema evolution end to end: two deploys of one app, sharing a store. `/v1` runs the
//! first version of the session struct, `/v2` the next; a session written by `/v1` is
//! migrated the first time `/v2` reads it.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use session_runtime::{Databag, MemoryStore, Session, SessionLayer};

/// The session as first deployed.
#[derive(Databag, Debug)]
pub struct SessionV1 {
    /// The visitor's name.
    #[databag(default = "guest".to_owned())]
    pub name: String,
    /// Visits counted by the v1 app.
    pub visits: u32,
}

/// The next deploy: `visits` widened to `u64`, `name` renamed in Rust only (the wire key
/// stays `name`), and a new field with a default.
#[derive(Databag, Debug)]
#[databag(version = 2, migrate_from = SessionV1)]
pub struct SessionV2 {
    /// The visitor's name, still stored under `name`.
    #[databag(rename = "name", default = "guest".to_owned())]
    pub display_name: String,
    /// Visits, now 64-bit.
    pub visits: u64,
    /// New in version 2.
    #[databag(default = "light".to_owned())]
    pub theme: String,
}

/// The migration: how a version-1 session becomes a version-2 one.
impl From<SessionV1> for SessionV2 {
    fn from(old: SessionV1) -> Self {
        tracing::info!(visits = old.visits, "migrating a session from v1 to v2");
        Self {
            display_name: old.name,
            visits: old.visits.into(),
            theme: "light".to_owned(),
        }
    }
}

async fn v1(mut session: Session<SessionV1>) -> Html<String> {
    session.set_visits(session.visits + 1);
    Html(format!(
        "<p>v1 app: {} has visited {} times.</p><p>Now open <a href=\"/v2\">/v2</a>.</p>",
        crate::escape_html(&session.name),
        session.visits
    ))
}

async fn v2(mut session: Session<SessionV2>) -> Html<String> {
    session.set_visits(session.visits + 1);
    Html(format!(
        "<p>v2 app: {} has visited {} times, theme {}.</p>\
         <p>Back to <a href=\"/v1\">/v1</a> (a rolled-back deploy): it cannot read a v2 \
         session and starts a fresh one, with a warning in the log.</p>",
        crate::escape_html(&session.display_name),
        session.visits,
        crate::escape_html(&session.theme),
    ))
}

/// Both deploys over one store, as during a rolling upgrade.
pub fn app() -> Router {
    let store = MemoryStore::new();
    let v1_app = Router::new()
        .route("/v1", get(v1))
        .layer(SessionLayer::<SessionV1>::new(store.clone()).secure(false));
    let v2_app = Router::new()
        .route("/v2", get(v2))
        .layer(SessionLayer::<SessionV2>::new(store).secure(false));
    v1_app.merge(v2_app)
}
