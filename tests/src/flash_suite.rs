//! Flash messages over real HTTP for every store: shown once on the next request that
//! reads them, kept until then, typed, ordered, and costing no write when nothing is
//! flashed or read. Each store's test file runs them with
//! [`flash_suite!`](macro@crate::flash_suite); the counted tests with
//! [`flash_server_suite!`](macro@crate::flash_server_suite).

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use session_runtime::store::SessionStore;
use session_runtime::{Databag, EncodeError, Session, SessionBackend, SessionLayer};

use crate::counting::Counting;
use crate::server::{browser, set_cookies, TestServer};

/// Runs every flash test as a named `#[tokio::test]`, given an async expression that makes
/// a fresh store; `flash_suite!(guarded: async { .. })` takes one making `(guard, store)`.
#[macro_export]
macro_rules! flash_suite {
    (guarded: $setup:expr) => {
        $crate::flash_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::flash_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::flash_suite!(@tests $setup;
            a_flash_is_read_once_by_the_next_request
            a_flash_waits_for_the_request_that_reads_it
            typed_messages_come_back_in_order
            a_request_that_neither_flashes_nor_reads_sends_no_cookie
            flashes_move_with_a_renewed_session_and_die_with_a_destroyed_one
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::flash_suite::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::flash_suite::$name(store).await;
            }
        )*
    };
}

/// The flash tests that count store writes (server-side stores).
#[macro_export]
macro_rules! flash_server_suite {
    (guarded: $setup:expr) => {
        #[tokio::test]
        async fn no_store_write_without_a_flash_or_a_read() {
            let (_guard, store) = $setup.await;
            $crate::flash_suite::no_store_write_without_a_flash_or_a_read(store).await;
        }
    };
    ($make:expr) => {
        #[tokio::test]
        async fn no_store_write_without_a_flash_or_a_read() {
            let store = $make.await;
            $crate::flash_suite::no_store_write_without_a_flash_or_a_read(store).await;
        }
    };
}

/// The session of the flash test app.
#[derive(Databag, Debug)]
pub struct FlashSession {
    pub visits: u32,
}

/// A typed flash message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub level: Level,
    pub text: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Alert,
}

async fn flash(
    mut session: Session<FlashSession>,
    Path(text): Path<String>,
) -> Result<&'static str, EncodeError> {
    let level = if text.starts_with('!') {
        Level::Alert
    } else {
        Level::Info
    };
    session.flash(Notice { level, text })?;
    Ok("flashed")
}

async fn read(mut session: Session<FlashSession>) -> Json<Vec<Notice>> {
    Json(session.take_flash())
}

async fn visit(mut session: Session<FlashSession>) -> String {
    session.set_visits(session.visits + 1);
    session.visits.to_string()
}

async fn look(session: Session<FlashSession>) -> String {
    session.visits.to_string()
}

async fn renew(mut session: Session<FlashSession>) {
    session.renew();
}

async fn destroy(mut session: Session<FlashSession>) {
    session.destroy();
}

/// The flash test app over `store`.
pub fn app(store: impl SessionBackend) -> Router {
    Router::new()
        .route("/flash/{text}", post(flash))
        .route("/read", get(read))
        .route("/visit", post(visit))
        .route("/look", get(look))
        .route("/renew", post(renew))
        .route("/destroy", post(destroy))
        .layer(SessionLayer::<FlashSession>::new(store).secure(false))
}

async fn read_flashes(server: &TestServer, client: &reqwest::Client) -> Vec<Notice> {
    let response = client.get(server.url("/read")).send().await.unwrap();
    assert!(response.status().is_success());
    response.json().await.unwrap()
}

async fn send(server: &TestServer, client: &reqwest::Client, path: &str) -> reqwest::Response {
    let response = client.post(server.url(path)).send().await.unwrap();
    assert!(response.status().is_success(), "{path}");
    response
}

fn info(text: &str) -> Notice {
    Notice {
        level: Level::Info,
        text: text.to_owned(),
    }
}

pub async fn a_flash_is_read_once_by_the_next_request(store: impl SessionBackend) {
    let server = TestServer::start(app(store)).await;
    let client = browser();
    send(&server, &client, "/flash/saved").await;
    assert_eq!(read_flashes(&server, &client).await, [info("saved")]);
    assert_eq!(
        read_flashes(&server, &client).await,
        [],
        "removed once read"
    );
}

pub async fn a_flash_waits_for_the_request_that_reads_it(store: impl SessionBackend) {
    let server = TestServer::start(app(store)).await;
    let client = browser();
    send(&server, &client, "/flash/later").await;
    send(&server, &client, "/visit").await;
    client.get(server.url("/look")).send().await.unwrap();
    assert_eq!(read_flashes(&server, &client).await, [info("later")]);
}

pub async fn typed_messages_come_back_in_order(store: impl SessionBackend) {
    let server = TestServer::start(app(store)).await;
    let client = browser();
    for text in ["one", "!two", "three"] {
        send(&server, &client, &format!("/flash/{text}")).await;
    }
    let read = read_flashes(&server, &client).await;
    assert_eq!(
        read,
        [
            info("one"),
            Notice {
                level: Level::Alert,
                text: "!two".to_owned()
            },
            info("three")
        ]
    );
    // Another client's session has its own queue.
    assert_eq!(read_flashes(&server, &browser()).await, []);
}

pub async fn a_request_that_neither_flashes_nor_reads_sends_no_cookie(store: impl SessionBackend) {
    let server = TestServer::start(app(store)).await;
    let client = browser();
    send(&server, &client, "/visit").await;
    // Reading an empty queue, or not touching it, changes nothing.
    let response = client.get(server.url("/read")).send().await.unwrap();
    assert_eq!(set_cookies(&response), Vec::<String>::new());
    let response = client.get(server.url("/look")).send().await.unwrap();
    assert_eq!(set_cookies(&response), Vec::<String>::new());
    // Flashing and then reading do change the session.
    send(&server, &client, "/flash/x").await;
    assert_eq!(read_flashes(&server, &client).await, [info("x")]);
}

pub async fn flashes_move_with_a_renewed_session_and_die_with_a_destroyed_one(
    store: impl SessionBackend,
) {
    let server = TestServer::start(app(store)).await;
    let client = browser();
    send(&server, &client, "/flash/kept").await;
    send(&server, &client, "/renew").await;
    assert_eq!(read_flashes(&server, &client).await, [info("kept")]);
    send(&server, &client, "/flash/gone").await;
    send(&server, &client, "/destroy").await;
    assert_eq!(read_flashes(&server, &client).await, []);
}

pub async fn no_store_write_without_a_flash_or_a_read<S: SessionStore + Clone>(store: S) {
    let counted = Counting::new(store);
    let counts = counted.counts.clone();
    let server = TestServer::start(app(counted)).await;
    let client = browser();
    send(&server, &client, "/visit").await;
    let writes = counts.writes();
    client.get(server.url("/look")).send().await.unwrap();
    assert_eq!(read_flashes(&server, &client).await, []);
    assert_eq!(
        counts.writes(),
        writes,
        "no flash, no read of one: no write"
    );
    send(&server, &client, "/flash/x").await;
    assert_eq!(counts.writes(), writes + 1, "a flash is one write");
    assert_eq!(
        counts
            .last_save_fields
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "field level: only the queue"
    );
    assert_eq!(read_flashes(&server, &client).await, [info("x")]);
    assert_eq!(
        counts.writes(),
        writes + 2,
        "reading it removes it: one write"
    );
    assert_eq!(read_flashes(&server, &client).await, []);
    assert_eq!(counts.writes(), writes + 2);
}
