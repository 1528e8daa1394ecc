//! Schema evolution over real HTTP: an app at one version of the session struct writes, an
//! app at another version reads the same session (through a shared store, or the client's
//! cookie). Each backend's test file runs every check with
//! [`migration_suite!`](macro@crate::migration_suite).

use axum::routing::get;
use axum::Router;
use session_runtime::store::SessionStore;
use session_runtime::{CookieStore, Databag, Key, Session, SessionLayer};

use crate::counting::Counting;
use crate::server::{browser, set_cookies, TestServer};

/// Version 1 as first deployed.
#[derive(Databag, Debug)]
pub struct ProfileV1 {
    pub name: String,
    pub visits: u32,
    pub legacy_flag: bool,
}

/// Version 2: `name` renamed in Rust (the wire key stays), `visits` widened,
/// `legacy_flag` removed.
#[derive(Databag, Debug)]
#[databag(version = 2, migrate_from = ProfileV1)]
pub struct ProfileV2 {
    #[databag(rename = "name")]
    pub display_name: String,
    pub visits: u64,
}

impl From<ProfileV1> for ProfileV2 {
    fn from(old: ProfileV1) -> Self {
        Self {
            display_name: old.name,
            visits: old.visits.into(),
        }
    }
}

/// Version 3: a field added, with its default.
#[derive(Databag, Debug)]
#[databag(version = 3, migrate_from = ProfileV2)]
pub struct Profile {
    #[databag(rename = "name")]
    pub display_name: String,
    pub visits: u64,
    #[databag(default = "light".to_owned())]
    pub theme: String,
}

impl From<ProfileV2> for Profile {
    fn from(old: ProfileV2) -> Self {
        Self {
            display_name: old.display_name,
            visits: old.visits,
            theme: "light".to_owned(),
        }
    }
}

/// Version 1 again, as a later deploy that added a field without changing the version.
#[derive(Databag, Debug)]
pub struct ProfileV1Added {
    pub name: String,
    pub visits: u32,
    pub legacy_flag: bool,
    #[databag(default = 42)]
    pub answer: u32,
}

/// Version 1 again, as a later deploy that dropped a field without changing the version.
#[derive(Databag, Debug)]
pub struct ProfileV1Removed {
    pub name: String,
    pub visits: u32,
}

/// Storage that several apps, each with its own session type, share.
pub trait SharedBackend: Send + Sync + 'static {
    /// A layer for session type `T` over the shared storage.
    fn layer<T: Databag>(&self) -> SessionLayer<T>;
    /// Store writes so far (0 for the cookie store, whose writes are `Set-Cookie`s).
    fn store_writes(&self) -> usize;
}

impl<S: SessionStore + Clone> SharedBackend for Counting<S> {
    fn layer<T: Databag>(&self) -> SessionLayer<T> {
        SessionLayer::<T>::new(self.clone()).secure(false)
    }

    fn store_writes(&self) -> usize {
        self.counts.writes()
    }
}

/// The cookie store: apps share the key, and the client carries the session.
pub struct SharedCookieKey(pub Key);

impl SharedBackend for SharedCookieKey {
    fn layer<T: Databag>(&self) -> SessionLayer<T> {
        SessionLayer::<T>::new(CookieStore::new(self.0.clone())).secure(false)
    }

    fn store_writes(&self) -> usize {
        0
    }
}

/// Runs every check as a named `#[tokio::test]`, given an async expression that makes a
/// fresh [`SharedBackend`]; with `guarded:`, one that makes `(guard, backend)`, the guard
/// (a test server) living as long as the test.
#[macro_export]
macro_rules! migration_suite {
    (guarded: $setup:expr) => {
        $crate::migration_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::migration_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::migration_suite!(@tests $setup;
            v1_record_is_migrated_to_v3_and_written_back_once
            field_added_with_a_default_reads_old_records
            field_removed_is_ignored_in_old_records
            field_renamed_with_rename_keeps_its_data
            newer_version_record_gives_a_fresh_session_and_a_warning
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let backend = $make.await;
                $crate::migration::$name(&backend).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, backend) = $setup.await;
                $crate::migration::$name(&backend).await;
            }
        )*
    };
}

async fn write_v1(mut session: Session<ProfileV1>) -> &'static str {
    session.set_name("ada".to_owned());
    session.set_visits(7);
    session.set_legacy_flag(true);
    "written"
}

async fn read_v1(session: Session<ProfileV1>) -> String {
    format!(
        "name={} visits={} new={}",
        session.name,
        session.visits,
        session.is_new()
    )
}

async fn read_v2(session: Session<ProfileV2>) -> String {
    format!("name={} visits={}", session.display_name, session.visits)
}

async fn read_v3(session: Session<Profile>) -> String {
    format!(
        "name={} visits={} theme={} new={}",
        session.display_name,
        session.visits,
        session.theme,
        session.is_new()
    )
}

async fn visit_v3(mut session: Session<Profile>) -> String {
    session.set_visits(session.visits + 1);
    format!("visits={}", session.visits)
}

async fn read_added(session: Session<ProfileV1Added>) -> String {
    format!("name={} answer={}", session.name, session.answer)
}

async fn read_removed(session: Session<ProfileV1Removed>) -> String {
    format!("name={} visits={}", session.name, session.visits)
}

async fn app_v1(backend: &impl SharedBackend) -> TestServer {
    let router = Router::new()
        .route("/write", get(write_v1))
        .route("/read", get(read_v1))
        .layer(backend.layer::<ProfileV1>());
    TestServer::start(router).await
}

async fn app_of<T: Databag>(
    backend: &impl SharedBackend,
    read: axum::routing::MethodRouter,
) -> TestServer {
    let router = Router::new()
        .route("/read", read)
        .route("/visit", get(visit_v3))
        .layer(backend.layer::<T>());
    TestServer::start(router).await
}

async fn get_text(client: &reqwest::Client, url: String) -> (String, usize) {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(&response).len();
    (response.text().await.unwrap(), cookies)
}

/// Both servers are on 127.0.0.1, so one cookie jar carries the session between them.
async fn session_written_by_v1(backend: &impl SharedBackend) -> reqwest::Client {
    let client = browser();
    let v1 = app_v1(backend).await;
    let (text, _) = get_text(&client, v1.url("/write")).await;
    assert_eq!(text, "written");
    client
}

pub async fn v1_record_is_migrated_to_v3_and_written_back_once(backend: &impl SharedBackend) {
    let client = session_written_by_v1(backend).await;
    let v3 = app_of::<Profile>(backend, get(read_v3)).await;

    let writes = backend.store_writes();
    let (text, cookies) = get_text(&client, v3.url("/read")).await;
    assert_eq!(text, "name=ada visits=7 theme=light new=false");
    let first = backend.store_writes() - writes + cookies;
    assert!(first >= 1, "the migrated session was not written back");

    // Written back in version 3: a second read migrates nothing and writes nothing...
    let writes = backend.store_writes();
    let (text, cookies) = get_text(&client, v3.url("/read")).await;
    assert_eq!(text, "name=ada visits=7 theme=light new=false");
    assert_eq!(
        backend.store_writes() - writes + cookies,
        0,
        "migrated twice"
    );
    // ...and the v3 app keeps working on it.
    assert_eq!(get_text(&client, v3.url("/visit")).await.0, "visits=8");
    // The v2 app sees a record newer than it knows.
    let v2 = app_of::<ProfileV2>(backend, get(read_v2)).await;
    assert_eq!(get_text(&client, v2.url("/read")).await.0, "name= visits=0");
}

pub async fn field_added_with_a_default_reads_old_records(backend: &impl SharedBackend) {
    let client = session_written_by_v1(backend).await;
    let added = app_of::<ProfileV1Added>(backend, get(read_added)).await;
    assert_eq!(
        get_text(&client, added.url("/read")).await.0,
        "name=ada answer=42"
    );
}

pub async fn field_removed_is_ignored_in_old_records(backend: &impl SharedBackend) {
    let client = session_written_by_v1(backend).await;
    let removed = app_of::<ProfileV1Removed>(backend, get(read_removed)).await;
    assert_eq!(
        get_text(&client, removed.url("/read")).await.0,
        "name=ada visits=7"
    );
}

pub async fn field_renamed_with_rename_keeps_its_data(backend: &impl SharedBackend) {
    let client = session_written_by_v1(backend).await;
    let v2 = app_of::<ProfileV2>(backend, get(read_v2)).await;
    assert_eq!(
        get_text(&client, v2.url("/read")).await.0,
        "name=ada visits=7"
    );
}

pub async fn newer_version_record_gives_a_fresh_session_and_a_warning(
    backend: &impl SharedBackend,
) {
    let client = browser();
    let v3 = app_of::<Profile>(backend, get(read_v3)).await;
    assert_eq!(get_text(&client, v3.url("/visit")).await.0, "visits=1");
    // A rolled-back deploy: the v1 app meets a v3 record.
    let v1 = app_v1(backend).await;
    let (logs, _guard) = crate::logs::capture();
    let response = client.get(v1.url("/read")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "name= visits=0 new=true");
    let logged = logs.take();
    assert!(
        logged.contains("WARN") && logged.contains("version 3") && logged.contains("version 1"),
        "no warning naming the versions: {logged}"
    );
}
