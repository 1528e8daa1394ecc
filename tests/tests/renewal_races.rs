//! Renewal racing logouts, double submits, dropped responses and failures at the worst
//! moment (first written by an adversarial review of the renewal; each case pins the outcome
//! SECURITY.md promises, "Logout during a renewal").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::Router;
use integration_tests::app::{app, AppState, TestSession};
use integration_tests::counting::{Counting, Op, Place};
use integration_tests::server::{bare_client, browser, cookie_value, TestServer};
use integration_tests::settle::{settle_records, wait_until};
use session_runtime::{MemoryStore, SessionLayer};
use tower::ServiceExt;

const BEFORE_LOGIN: &str = "visits: 1 user: guest new: false a: 5 b: 0";
const STALL: Duration = Duration::from_millis(1_500);

struct App {
    store: Counting<MemoryStore>,
    router: Router,
    state: AppState,
    http: TestServer,
    client: reqwest::Client,
}

async fn start(
    configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
) -> App {
    let store = Counting::new(MemoryStore::new());
    let layer = configure(SessionLayer::<TestSession>::new(store.clone()).secure(false));
    let (router, state) = app(layer);
    App {
        store,
        http: TestServer::start(router.clone()).await,
        router,
        state,
        client: bare_client(),
    }
}

/// POSTs to `url` with `token` as the session cookie.
async fn post(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: &str,
) -> reqwest::Response {
    client
        .post(url)
        .header("cookie", format!("session={token}"))
        .send()
        .await
        .unwrap()
}

impl App {
    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.http.url(path))
            .header("cookie", format!("session={token}"))
            .send()
            .await
            .unwrap()
    }

    async fn start_session(&self) -> String {
        let first = self
            .client
            .get(self.http.url("/visit"))
            .send()
            .await
            .unwrap();
        let token = cookie_value(&first, "session").unwrap();
        assert_eq!(self.get("/set-a/5", &token).await.status(), 200);
        assert_eq!(self.read(&token).await, BEFORE_LOGIN);
        token
    }

    async fn read(&self, token: &str) -> String {
        self.get("/read", token).await.text().await.unwrap()
    }

    async fn records(&self, expected: usize) -> usize {
        let inner = self.store.inner.clone();
        settle_records(&self.store.counts, expected, || {
            let len = inner.len();
            async move { len }
        })
        .await
    }

    /// `POST /login/ada` through `oneshot`, dropped after `outer` (an outer timeout).
    async fn login_dropped_after(&self, old: &str, outer: Duration) {
        let request = axum::http::Request::post("/login/ada")
            .header("cookie", format!("session={old}"))
            .body(Body::empty())
            .unwrap();
        let outcome = tokio::time::timeout(outer, self.router.clone().oneshot(request)).await;
        assert!(outcome.is_err(), "login finished before the outer timeout");
    }
}

/// README guarantee 9 / SECURITY "a response dropped mid-renewal puts the session back
/// under the old id". Here the take stalls past the store timeout and the response is
/// dropped meanwhile: the take is retried on a task of its own and the session put back,
/// so the old cookie keeps its session and one record is left.
#[tokio::test]
async fn take_timeout_after_the_response_was_dropped_keeps_the_old_session() {
    let app = start(|layer| layer.store_timeout(Duration::from_millis(250))).await;
    let old = app.start_session().await;
    app.store
        .faults
        .stall_next(Op::Take, Place::BeforeStore, STALL);
    app.login_dropped_after(&old, Duration::from_millis(100))
        .await;
    let records = app.records(1).await;
    let body = app.read(&old).await;
    assert!(
        records == 1 && body == BEFORE_LOGIN,
        "expected the old cookie to keep its session; {records} record(s) left, old cookie \
         reads {body:?} (the remaining record is under an id no client holds)"
    );
}

/// The documented limit (SECURITY.md, "Logout during a renewal"): a login whose response
/// was dropped after its take is undone, putting the session back under the old id as it
/// was before the login. A logout sent with the old cookie in that window deletes nothing
/// (the session is between ids), so the pre-login session comes back, with no privilege
/// the login granted.
#[tokio::test]
async fn a_logout_during_an_undone_login_leaves_the_pre_login_session() {
    let app = start(|layer| layer).await;
    let old = app.start_session().await;
    app.store
        .faults
        .stall_next(Op::Take, Place::AfterStore, STALL);
    app.login_dropped_after(&old, Duration::from_millis(200))
        .await;
    assert_eq!(app.store.faults.fired(Op::Take), 1);
    let logout = post(&app.client, app.http.url("/logout"), &old).await;
    assert_eq!(logout.status(), 200);
    assert_eq!(cookie_value(&logout, "session").as_deref(), Some(""));
    // Let the renewal task finish (stall + move_back).
    wait_until("the stalled take to answer", Duration::from_secs(5), || {
        app.store.faults.pending() == 0
    })
    .await;
    assert_eq!(app.records(1).await, 1);
    assert_eq!(
        app.read(&old).await,
        BEFORE_LOGIN,
        "pre-login data, not logged in"
    );
}

/// README guarantee 9 "a renewal never loses the session". A double-submitted login: the
/// second submit completes first (new cookie), the first one then finds the old id taken
/// and answers with a removal cookie, which erases the new cookie in the browser.
#[tokio::test]
async fn double_submitted_login_keeps_the_user_logged_in() {
    let app = start(|layer| layer).await;
    let jar = browser();
    assert_eq!(
        jar.get(app.http.url("/visit"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let first = tokio::spawn({
        let (jar, url) = (jar.clone(), app.http.url("/held/login/ada"));
        async move { jar.post(url).send().await.unwrap() }
    });
    app.state.gate.loaded.notified().await;
    let second = jar.post(app.http.url("/login/ada")).send().await.unwrap();
    assert_eq!(second.status(), 200);
    app.state.gate.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status(), 200);
    let records = app.records(1).await;
    let body = jar
        .get(app.http.url("/read"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("user: ada new: false"),
        "after two login submits the browser is logged out ({body:?}); the store still \
         holds {records} record(s) (the winner's session, under an id the browser forgot)"
    );
}

/// The cookie store needs no I/O, and in 1c1ba8f loading it used no Tokio timer. Now
/// `extract::load` wraps every backend load in `tokio::time::timeout_at`.
#[test]
fn cookie_store_loads_without_a_tokio_runtime() {
    use futures_util::FutureExt;
    let key = session_runtime::Key::generate().unwrap();
    let layer =
        SessionLayer::<TestSession>::new(session_runtime::CookieStore::new(key)).secure(false);
    let (router, _) = app(layer);
    let first = router
        .clone()
        .oneshot(
            axum::http::Request::get("/visit")
                .body(Body::empty())
                .unwrap(),
        )
        .now_or_never()
        .expect("no I/O")
        .unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        router
            .oneshot(
                axum::http::Request::get("/visit")
                    .header("cookie", pair)
                    .body(Body::empty())
                    .unwrap(),
            )
            .now_or_never()
    }));
    assert!(
        second.is_ok(),
        "loading a cookie-store session panicked outside a Tokio runtime"
    );
}

/// A logout ends the session while a login holds it, and the login's take then fails: the
/// login cannot tell whether the old id is still there, keeps the session under its new id
/// and sends the new token, so the outcome is as if the logout had come first and the login
/// after it (SECURITY.md, "Logout during a renewal"). Only that login's client holds the new
/// token.
#[tokio::test]
async fn a_login_whose_take_fails_after_a_logout_ends_as_if_it_came_after_the_logout() {
    let app = start(|layer| layer).await;
    let old = app.start_session().await;
    let login = tokio::spawn({
        let (client, url, old) = (
            app.client.clone(),
            app.http.url("/held/login/mallory"),
            old.clone(),
        );
        async move { post(&client, url, &old).await }
    });
    app.state.gate.loaded.notified().await;
    let logout = post(&app.client, app.http.url("/logout"), &old).await;
    assert_eq!(logout.status(), 200);
    app.store.faults.fail_next(Op::Take, Place::BeforeStore);
    app.state.gate.release.notify_one();
    let login = login.await.unwrap();
    assert_eq!(login.status(), 200);
    let new = cookie_value(&login, "session").filter(|token| !token.is_empty());
    let new = new.expect("the login sends its new token");
    assert_eq!(app.records(1).await, 1);
    assert!(app.read(&new).await.contains("user: mallory new: false"));
    assert!(
        app.read(&old).await.contains("new: true"),
        "the old token stays dead"
    );
}

/// A logout that reaches the store between a login's create and its take ends the session
/// for good: the take finds nothing, the login deletes its new id, and sends no token.
#[tokio::test]
async fn a_logout_before_the_renewal_takes_the_old_id_is_final() {
    let app = start(|layer| layer).await;
    let old = app.start_session().await;
    let (client, url, token) = (app.client.clone(), app.http.url("/logout"), old.clone());
    app.store
        .faults
        .run_next(Op::Take, Place::BeforeStore, move || async move {
            let logout = post(&client, url, &token).await;
            assert_eq!(logout.status(), 200);
        });
    let login = post(&app.client, app.http.url("/login/ada"), &old).await;
    assert_eq!(app.store.faults.fired(Op::Take), 1);
    assert_eq!(login.status(), 200);
    assert_eq!(
        cookie_value(&login, "session"),
        None,
        "no token for an ended session"
    );
    assert_eq!(app.records(0).await, 0);
    assert!(app.read(&old).await.contains("new: true"));
}

/// A logout that reaches the store after the login's take finds the session already moved:
/// it clears the token it was sent with, and the session lives on under the new id, which
/// only the login's response carries (as if the logout had come first).
#[tokio::test]
async fn a_logout_after_the_renewal_took_the_old_id_leaves_the_renewed_session() {
    let app = start(|layer| layer).await;
    let old = app.start_session().await;
    let (client, url, token) = (app.client.clone(), app.http.url("/logout"), old.clone());
    app.store
        .faults
        .run_next(Op::Take, Place::AfterStore, move || async move {
            let logout = post(&client, url, &token).await;
            assert_eq!(logout.status(), 200);
            assert_eq!(cookie_value(&logout, "session").as_deref(), Some(""));
        });
    let login = post(&app.client, app.http.url("/login/ada"), &old).await;
    assert_eq!(app.store.faults.fired(Op::Take), 1);
    let new = cookie_value(&login, "session").expect("the login sends its new token");
    assert_eq!(app.records(1).await, 1);
    assert!(app.read(&new).await.contains("user: ada new: false"));
    assert!(app.read(&old).await.contains("new: true"));
}

/// README guarantee 9 "leaves exactly one of the two ids alive". The response is dropped
/// after the take; putting the session back under the old id is applied but its answer is
/// lost: the old id is read to learn it landed, and the new id is deleted (one record).
#[tokio::test]
async fn move_back_whose_create_answer_is_lost_leaves_one_record() {
    let app = start(|layer| layer).await;
    let old = app.start_session().await;
    app.store
        .faults
        .stall_next(Op::Take, Place::AfterStore, STALL);
    app.login_dropped_after(&old, Duration::from_millis(200))
        .await;
    assert_eq!(app.store.faults.fired(Op::Take), 1);
    // The login's own create is done; the next create is move_back's.
    app.store.faults.fail_next(Op::Create, Place::AfterStore);
    wait_until("move_back's create", Duration::from_secs(5), || {
        app.store.faults.fired(Op::Create) == 1
    })
    .await;
    let records = app.records(1).await;
    let body = app.read(&old).await;
    assert!(
        records == 1 && body == BEFORE_LOGIN,
        "{records} record(s) left (the logged-in copy under an id no client holds); old \
         cookie reads {body:?}"
    );
}
