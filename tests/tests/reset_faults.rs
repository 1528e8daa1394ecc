//! Reset in place (`destroy()` followed by writes, Rails' `reset_session`) when the store
//! fails or the response is dropped between its two store steps: the fresh session is
//! created first, then the old one deleted, so the client is never left with neither.
//!
//! The store is a real [`MemoryStore`] behind [`Counting`], whose one-shot faults hit one
//! operation before the real store is called or after it answered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::body::Body;
use integration_tests::api_app::{api_app, Account};
use integration_tests::counting::{Counting, Op, Place};
use integration_tests::server::{bare_client, cookie_value, TestServer};
use integration_tests::settle::settle_records;
use reqwest::StatusCode;
use session_runtime::{MemoryStore, SessionLayer};
use tower::ServiceExt as _;

struct App {
    store: Counting<MemoryStore>,
    router: axum::Router,
    http: TestServer,
}

async fn start() -> App {
    let store = Counting::new(MemoryStore::new());
    let (router, _) = api_app(SessionLayer::<Account>::new(store.clone()).secure(false));
    App {
        store,
        http: TestServer::start(router.clone()).await,
        router,
    }
}

impl App {
    async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = bare_client().post(self.http.url(path));
        if let Some(token) = token {
            request = request.header("cookie", format!("session={token}"));
        }
        request.send().await.unwrap()
    }

    async fn read(&self, token: &str) -> String {
        bare_client()
            .get(self.http.url("/read"))
            .header("cookie", format!("session={token}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A logged-in session's token.
    async fn login(&self) -> String {
        let response = self.post("/login/ada", None).await;
        cookie_value(&response, "session").unwrap()
    }

    async fn settled_records(&self, expected: usize) -> usize {
        let inner = self.store.inner.clone();
        settle_records(&self.store.counts, expected, || {
            let len = inner.len();
            async move { len }
        })
        .await
    }
}

fn new_token(response: &reqwest::Response) -> Option<String> {
    cookie_value(response, "session").filter(|token| !token.is_empty())
}

#[tokio::test]
async fn reset_whose_create_fails_keeps_the_old_session() {
    let app = start().await;
    let old = app.login().await;
    app.store.faults.fail_next(Op::Create, Place::BeforeStore);
    let response = app.post("/reset/fresh", Some(&old)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(new_token(&response), None);
    // The logout did not happen: the old session is intact, and it is the only record.
    assert_eq!(app.settled_records(1).await, 1);
    assert!(app.read(&old).await.contains("user=Some(\"ada\")"));
}

#[tokio::test]
async fn reset_whose_delete_fails_sends_the_new_token_and_deletes_the_old_id_again() {
    let app = start().await;
    let old = app.login().await;
    app.store.faults.fail_next(Op::Delete, Place::BeforeStore);
    let response = app.post("/reset/fresh", Some(&old)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let new = new_token(&response).expect("the fresh session's token");
    // The old id is deleted again in the background: one record left, the fresh one.
    assert_eq!(app.settled_records(1).await, 1);
    assert!(app.read(&new).await.contains("notes=[\"fresh\"]"));
    assert!(app.read(&old).await.contains("new=true"));
}

/// The response is dropped (an outer timeout) while the create stalls: the client never
/// got the fresh token, so the fresh session is deleted and the old one stays.
#[tokio::test]
async fn reset_dropped_during_the_create_keeps_the_old_session_and_leaves_no_orphan() {
    let app = start().await;
    let old = app.login().await;
    app.store
        .faults
        .stall_next(Op::Create, Place::AfterStore, Duration::from_millis(1_500));
    let request = axum::http::Request::post("/reset/fresh")
        .header("cookie", format!("session={old}"))
        .body(Body::empty())
        .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_millis(200),
        app.router.clone().oneshot(request),
    )
    .await;
    assert!(outcome.is_err(), "finished before the outer timeout");
    assert_eq!(app.store.faults.fired(Op::Create), 1);
    assert_eq!(app.settled_records(1).await, 1);
    assert!(app.read(&old).await.contains("user=Some(\"ada\")"));
}
