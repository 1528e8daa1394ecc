//! The request-lifecycle guarantees of DESIGN.md section 3, over real HTTP, for any
//! server-side store. Each store's test file runs them all with
//! [`guarantee_suite!`](macro@crate::guarantee_suite).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use session_runtime::clock::ManualClock;
use session_runtime::store::SessionStore;
use session_runtime::{SessionId, SessionLayer};

use crate::app::{app, TestSession};
use crate::counting::Counting;
use crate::server::{bare_client, browser, cookie_value, set_cookies, TestServer};

/// Runs every guarantee as a named `#[tokio::test]`, given an async expression that makes a
/// fresh store (`S: SessionStore + Clone`).
///
/// `guarantee_suite!(guarded: async { .. })` takes one that makes `(guard, store)` instead,
/// where the guard (a Redis server, say) is kept alive until the test ends.
#[macro_export]
macro_rules! guarantee_suite {
    (guarded: $setup:expr) => {
        $crate::guarantee_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::guarantee_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::guarantee_suite!(@tests $setup;
            handler_without_session_costs_no_store_operation
            at_most_one_store_read_per_request
            unknown_token_gives_fresh_session_and_nothing_is_stored_under_it
            malformed_token_gives_fresh_session
            unchanged_session_sends_no_set_cookie_and_writes_nothing
            new_untouched_session_is_never_stored
            changed_session_writes_only_the_changed_fields
            setting_fields_to_the_values_they_have_writes_nothing
            server_error_response_is_not_saved
            idle_timeout_slides_with_a_throttled_touch
            absolute_timeout_is_never_extended
            concurrent_changes_to_different_fields_are_both_kept
            destroyed_session_is_not_resurrected_by_a_slow_writer
            renew_moves_the_session_to_a_new_id_and_deletes_the_old_one
            renew_racing_a_logout_never_brings_the_session_back
            renew_keeps_fields_other_requests_saved_meanwhile
            on_deleted_fires_once_when_two_requests_destroy_the_session
            destroy_deletes_the_session_and_sends_a_removal_cookie
            on_started_fires_once_when_the_session_is_first_stored
            on_deleted_fires_on_destroy
            two_handlers_see_the_same_session
            store_down_gives_503_and_the_app_recovers
            store_too_slow_gives_503_within_the_timeout
            id_collision_on_create_draws_a_new_id
            websocket_upgrade_handler_extracts_the_session
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::guarantees::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::guarantees::$name(store).await;
            }
        )*
    };
}

/// A layer for plain-HTTP tests (no `Secure`, which a client would not send back over
/// `http://`).
fn layer<S: SessionStore>(store: S) -> SessionLayer<TestSession> {
    SessionLayer::<TestSession>::new(store).secure(false)
}

async fn serve(layer: SessionLayer<TestSession>) -> TestServer {
    TestServer::start(app(layer).0).await
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

pub async fn handler_without_session_costs_no_store_operation<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let before = store.counts.total();
    let response = client.get(server.url("/ignore")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(
        store.counts.total(),
        before,
        "an ignored session touched the store"
    );
}

pub async fn at_most_one_store_read_per_request<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let loads = store.counts.load.load(Ordering::SeqCst);
    // The middleware extracts the session, drops it, and the handler extracts it again.
    let response = client.get(server.url("/peek/visit")).send().await.unwrap();
    assert_eq!(response.headers()["x-visits-seen-by-middleware"], "1");
    assert_eq!(text(response).await, "visits: 2");
    assert_eq!(store.counts.load.load(Ordering::SeqCst), loads + 1);
}

pub async fn unknown_token_gives_fresh_session_and_nothing_is_stored_under_it<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let server = serve(layer(store.clone())).await;
    let forged = SessionId::generate().unwrap();
    let response = bare_client()
        .get(server.url("/visit"))
        .header("cookie", format!("session={}", forged.expose_token()))
        .send()
        .await
        .unwrap();
    let issued = cookie_value(&response, "session").expect("a new session cookie");
    assert_eq!(text(response).await, "visits: 1");
    assert_ne!(
        issued,
        forged.expose_token(),
        "the server adopted the client's id"
    );
    assert_eq!(store.load(&forged.digest(), now()).await.unwrap(), None);
    let issued = SessionId::parse(&issued).unwrap();
    assert!(store.load(&issued.digest(), now()).await.unwrap().is_some());
}

pub async fn malformed_token_gives_fresh_session<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let long = format!("session={}", "A".repeat(4096));
    let cookies: [&[u8]; 6] = [
        b"session=",
        b"session=x",
        b"session=not base64 !!",
        long.as_bytes(),
        b"session=\xff\xfe\x80 invalid utf-8",
        b"session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ];
    for cookie in cookies {
        let token = String::from_utf8_lossy(cookie);
        let response = bare_client()
            .get(server.url("/visit"))
            .header("cookie", http::HeaderValue::from_bytes(cookie).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "token {token:?}");
        assert!(cookie_value(&response, "session").is_some());
        assert_eq!(text(response).await, "visits: 1");
    }
    // Malformed tokens are rejected before the store is asked.
    assert_eq!(store.counts.load.load(Ordering::SeqCst), 0);
}

pub async fn unchanged_session_sends_no_set_cookie_and_writes_nothing<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let writes = store.counts.writes();
    let response = client.get(server.url("/read")).send().await.unwrap();
    assert!(set_cookies(&response).is_empty());
    assert!(text(response).await.starts_with("visits: 1"));
    assert_eq!(store.counts.writes(), writes);
}

pub async fn new_untouched_session_is_never_stored<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let response = browser().get(server.url("/read")).send().await.unwrap();
    assert!(set_cookies(&response).is_empty());
    assert!(text(response).await.contains("new: true"));
    assert_eq!(store.counts.writes(), 0);
}

pub async fn changed_session_writes_only_the_changed_fields<S: SessionStore + Clone>(store: S) {
    let server = serve(layer(store.clone())).await;
    let client = browser();
    let response = client.get(server.url("/visit")).send().await.unwrap();
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    client.get(server.url("/set-a/7")).send().await.unwrap();
    let loaded = store.load(&id.digest(), now()).await.unwrap().unwrap();
    // Created with every field; the save merged in `a` and left the others as they were.
    let keys: Vec<&str> = loaded
        .record
        .fields
        .iter()
        .map(|f| f.key.as_str())
        .collect();
    for key in ["visits", "username", "a", "b"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    assert!(text(client.get(server.url("/read")).send().await.unwrap())
        .await
        .contains("a: 7"));
}

/// Setting a field to the value it already has is no change: a request whose every write
/// leaves the session as it was stores nothing and sends no cookie, and a request that
/// also changes another field saves that field alone.
pub async fn setting_fields_to_the_values_they_have_writes_nothing<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    client.get(server.url("/set-a/7")).send().await.unwrap();
    let writes = store.counts.writes();
    for _ in 0..3 {
        let response = client.get(server.url("/set-a/7")).send().await.unwrap();
        assert!(set_cookies(&response).is_empty());
        assert_eq!(text(response).await, "a: 7");
    }
    assert_eq!(
        store.counts.writes(),
        writes,
        "an unchanged value was written"
    );
    let saves = store.counts.save.load(Ordering::SeqCst);
    client.get(server.url("/set-ab/7/9")).send().await.unwrap();
    assert_eq!(store.counts.writes(), writes + 1);
    assert_eq!(store.counts.save.load(Ordering::SeqCst), saves + 1);
    assert_eq!(store.counts.last_save_fields.load(Ordering::SeqCst), 1);
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.ends_with("a: 7 b: 9"), "{body}");
}

pub async fn server_error_response_is_not_saved<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let writes = store.counts.writes();
    let response = client.get(server.url("/fail")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(store.counts.writes(), writes);
    assert!(text(client.get(server.url("/read")).send().await.unwrap())
        .await
        .starts_with("visits: 1 "));
}

pub async fn idle_timeout_slides_with_a_throttled_touch<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let clock = ManualClock::new();
    let idle = Duration::from_secs(40 * 60);
    let server = serve(layer(store.clone()).idle_timeout(idle).clock(clock.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();

    // Reads within a quarter of the idle timeout do not touch the store.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(60));
        client.get(server.url("/read")).send().await.unwrap();
    }
    assert_eq!(store.counts.touch.load(Ordering::SeqCst), 0);
    // Past a quarter: one touch, which slides the deadline.
    clock.advance(Duration::from_secs(6 * 60));
    client.get(server.url("/read")).send().await.unwrap();
    assert_eq!(store.counts.touch.load(Ordering::SeqCst), 1);
    client.get(server.url("/read")).send().await.unwrap();
    assert_eq!(store.counts.touch.load(Ordering::SeqCst), 1);

    // 39 minutes after the touch the session is alive (it would be dead without it)...
    clock.advance(Duration::from_secs(39 * 60));
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.starts_with("visits: 1 "), "{body}");
    // ...and after the idle timeout without use, it is gone.
    clock.advance(idle + Duration::from_secs(1));
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.contains("new: true"), "{body}");
}

pub async fn absolute_timeout_is_never_extended<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let server = serve(
        layer(store)
            .idle_timeout(Duration::from_secs(600))
            .absolute_timeout(Duration::from_secs(3600))
            .clock(clock.clone()),
    )
    .await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    // Busy all hour: every 5 minutes a write, which slides the idle deadline...
    for _ in 0..11 {
        clock.advance(Duration::from_secs(300));
        let body = text(client.get(server.url("/visit")).send().await.unwrap()).await;
        assert_ne!(body, "visits: 1", "session ended early");
    }
    // ...but never past one hour after the start.
    clock.advance(Duration::from_secs(301));
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.contains("new: true"), "{body}");
}

pub async fn concurrent_changes_to_different_fields_are_both_kept<S: SessionStore + Clone>(
    store: S,
) {
    let (router, state) = app(layer(store));
    let server = TestServer::start(router).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    // Request 1 loads the session and sets `a`, then waits; request 2 loads the same
    // session, sets `b` and commits; then request 1 commits.
    let held = tokio::spawn({
        let (client, url) = (client.clone(), server.url("/held/set-a/11"));
        async move { client.get(url).send().await.unwrap().status() }
    });
    state.gate.loaded.notified().await;
    client.get(server.url("/set-b/22")).send().await.unwrap();
    state.gate.release.notify_one();
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.contains("a: 11 b: 22"), "{body}");
}

pub async fn destroyed_session_is_not_resurrected_by_a_slow_writer<S: SessionStore + Clone>(
    store: S,
) {
    let (router, state) = app(layer(store.clone()));
    let server = TestServer::start(router).await;
    let client = browser();
    let response = client.get(server.url("/visit")).send().await.unwrap();
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    let held = tokio::spawn({
        let (client, url) = (client.clone(), server.url("/held/set-a/11"));
        async move { client.get(url).send().await.unwrap().status() }
    });
    state.gate.loaded.notified().await;
    let logout = client.post(server.url("/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    state.gate.release.notify_one();
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    assert_eq!(
        store.load(&id.digest(), now()).await.unwrap(),
        None,
        "session came back"
    );
}

pub async fn renew_moves_the_session_to_a_new_id_and_deletes_the_old_one<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let server = serve(layer(store.clone())).await;
    let client = browser();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    let old = SessionId::parse(&cookie_value(&first, "session").unwrap()).unwrap();
    let login = client.post(server.url("/login/ada")).send().await.unwrap();
    let new = SessionId::parse(&cookie_value(&login, "session").expect("renewed cookie")).unwrap();
    assert_ne!(old, new);
    assert_eq!(store.load(&old.digest(), now()).await.unwrap(), None);
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.starts_with("visits: 1 user: ada new: false"), "{body}");
    // The old token no longer works: a fixated id is useless after login.
    let replay = bare_client()
        .get(server.url("/read"))
        .header("cookie", format!("session={}", old.expose_token()))
        .send()
        .await
        .unwrap();
    assert!(text(replay).await.contains("user: guest new: true"));
}

pub async fn renew_racing_a_logout_never_brings_the_session_back<S: SessionStore + Clone>(
    store: S,
) {
    let (router, state) = app(layer(store.clone()));
    let server = TestServer::start(router).await;
    let client = bare_client();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    let cookie = format!("session={}", cookie_value(&first, "session").unwrap());
    // A slow login loads the session and renews it; a logout ends the session meanwhile.
    let login = tokio::spawn({
        let (client, url, cookie) = (
            client.clone(),
            server.url("/held/login/mallory"),
            cookie.clone(),
        );
        async move {
            client
                .post(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    });
    state.gate.loaded.notified().await;
    let logout = client
        .post(server.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    state.gate.release.notify_one();
    let login = login.await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    // The login was too late: no new session and no token (the old one is dead, and a
    // concurrent renewal's response may carry a newer one the client must keep).
    let cookies = set_cookies(&login).join("\n");
    assert!(cookies.is_empty(), "{cookies}");
    let old = SessionId::parse(cookie.trim_start_matches("session=")).unwrap();
    assert_eq!(store.load(&old.digest(), now()).await.unwrap(), None);
}

pub async fn renew_keeps_fields_other_requests_saved_meanwhile<S: SessionStore + Clone>(store: S) {
    let (router, state) = app(layer(store));
    let server = TestServer::start(router).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let login = tokio::spawn({
        let (client, url) = (client.clone(), server.url("/held/login/ada"));
        async move { client.post(url).send().await.unwrap().status() }
    });
    state.gate.loaded.notified().await;
    // Saved under the old id while the login holds the session.
    client.get(server.url("/set-b/7")).send().await.unwrap();
    state.gate.release.notify_one();
    assert_eq!(login.await.unwrap(), StatusCode::OK);
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(
        body.starts_with("visits: 1 user: ada new: false a: 0 b: 7"),
        "{body}"
    );
}

pub async fn on_deleted_fires_once_when_two_requests_destroy_the_session<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let deleted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&deleted);
    let (router, state) = app(layer(store).on_deleted(move |_, _| {
        count.fetch_add(1, Ordering::SeqCst);
    }));
    let server = TestServer::start(router).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), server.url("/held/logout"));
        async move { client.post(url).send().await.unwrap().status() }
    });
    state.gate.loaded.notified().await;
    client.post(server.url("/logout")).send().await.unwrap();
    state.gate.release.notify_one();
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    assert_eq!(deleted.load(Ordering::SeqCst), 1);
}

pub async fn destroy_deletes_the_session_and_sends_a_removal_cookie<S: SessionStore + Clone>(
    store: S,
) {
    let server = serve(
        layer(store.clone())
            .path("/")
            .domain("127.0.0.1")
            .same_site(session_runtime::SameSite::Strict),
    )
    .await;
    let client = bare_client();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    let token = cookie_value(&first, "session").unwrap();
    let id = SessionId::parse(&token).unwrap();
    let logout = client
        .post(server.url("/logout"))
        .header("cookie", format!("session={token}"))
        .send()
        .await
        .unwrap();
    assert_removal_cookie(&logout);
    assert_eq!(store.load(&id.digest(), now()).await.unwrap(), None);
}

/// The response removes the `session` cookie set with `Path=/`, `Domain=127.0.0.1` and
/// `SameSite=Strict`: same attributes, empty value, `Max-Age=0`.
pub fn assert_removal_cookie(response: &reqwest::Response) {
    let removal = set_cookies(response).join("\n");
    for attribute in [
        "session=;",
        "Max-Age=0",
        "Path=/",
        "Domain=127.0.0.1",
        "SameSite=Strict",
        "HttpOnly",
    ] {
        assert!(removal.contains(attribute), "{removal} lacks {attribute}");
    }
}

pub async fn on_started_fires_once_when_the_session_is_first_stored<S: SessionStore + Clone>(
    store: S,
) {
    let started = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&started);
    let server = serve(layer(store).on_started(move |id, data| {
        sink.lock().unwrap().push((*id, data.visits));
    }))
    .await;
    let client = browser();
    client.get(server.url("/read")).send().await.unwrap();
    assert!(
        started.lock().unwrap().is_empty(),
        "fired for an unstored session"
    );
    let response = client.get(server.url("/visit")).send().await.unwrap();
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    client.get(server.url("/visit")).send().await.unwrap();
    assert_eq!(*started.lock().unwrap(), vec![(id.digest(), 1)]);
}

pub async fn on_deleted_fires_on_destroy<S: SessionStore + Clone>(store: S) {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&deleted);
    let server = serve(layer(store).on_deleted(move |id, data| {
        sink.lock().unwrap().push((*id, data.visits));
    }))
    .await;
    let client = browser();
    let response = client.get(server.url("/visit")).send().await.unwrap();
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    client.post(server.url("/logout")).send().await.unwrap();
    assert_eq!(*deleted.lock().unwrap(), vec![(id.digest(), 1)]);
}

pub async fn two_handlers_see_the_same_session<S: SessionStore + Clone>(store: S) {
    let server = serve(layer(store)).await;
    let client = browser();
    client
        .post(server.url("/login/grace"))
        .send()
        .await
        .unwrap();
    client.get(server.url("/visit")).send().await.unwrap();
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.starts_with("visits: 1 user: grace"), "{body}");
}

pub async fn store_down_gives_503_and_the_app_recovers<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    store.faults.down.store(true, Ordering::SeqCst);
    for path in ["/read", "/visit"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = text(response).await;
        assert!(!body.contains("injected"), "store error leaked: {body}");
    }
    // A route that does not use the session is not affected.
    let ignored = client.get(server.url("/ignore")).send().await.unwrap();
    assert_eq!(ignored.status(), StatusCode::OK);
    store.faults.down.store(false, Ordering::SeqCst);
    let body = text(client.get(server.url("/visit")).send().await.unwrap()).await;
    assert_eq!(body, "visits: 2");
}

pub async fn store_too_slow_gives_503_within_the_timeout<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let timeout = Duration::from_millis(200);
    let server = serve(layer(store.clone()).store_timeout(timeout)).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    store.faults.delay_ms.store(5_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let response = client.get(server.url("/visit")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Generous bound: the point is that the request does not wait for the 5 s store.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

pub async fn id_collision_on_create_draws_a_new_id<S: SessionStore + Clone>(store: S) {
    let store = Counting::new(store);
    let server = serve(layer(store.clone())).await;
    store.faults.fake_collisions.store(1, Ordering::SeqCst);
    let client = browser();
    let response = client.get(server.url("/visit")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(store.counts.create.load(Ordering::SeqCst), 2);
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    assert!(store.load(&id.digest(), now()).await.unwrap().is_some());
}

pub async fn websocket_upgrade_handler_extracts_the_session<S: SessionStore + Clone>(store: S) {
    let server = serve(layer(store)).await;
    let client = browser();
    let login = client
        .post(server.url("/login/ws-user"))
        .send()
        .await
        .unwrap();
    let token = cookie_value(&login, "session").unwrap();
    let (status, greeting) = websocket_greeting(&server, &format!("session={token}")).await;
    assert_eq!(status, 101);
    assert_eq!(greeting, "visits: 1 user: ws-user");
    // The change made in the upgrade handler was saved with the 101 response.
    let body = text(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(body.starts_with("visits: 1 user: ws-user"), "{body}");
}

/// Opens the test app's WebSocket with `cookie`: the upgrade status and the first message.
pub async fn websocket_greeting(server: &TestServer, cookie: &str) -> (u16, String) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let message = socket.next().await.unwrap().unwrap();
    (
        response.status().as_u16(),
        message.into_text().unwrap().as_str().to_owned(),
    )
}

/// The wall-clock time the layer uses by default.
pub fn now() -> u64 {
    use session_runtime::clock::Clock;
    session_runtime::clock::SystemClock.now_ms()
}
