//! The cookie store over real HTTP: sealing, tampering, keys and rotation, purpose binding,
//! deadlines, size limits, and the request-lifecycle guarantees that apply to a client-side
//! store.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use integration_tests::app::{app, TestSession};
use integration_tests::server::{bare_client, browser, cookie_value, set_cookies, TestServer};
use reqwest::StatusCode;
use session_runtime::clock::ManualClock;
use session_runtime::{CookieStore, Key, KeyRing, SessionLayer};

fn key(byte: u8) -> Key {
    Key::from_bytes(&[byte; 64]).unwrap()
}

fn layer(keys: impl Into<KeyRing>) -> SessionLayer<TestSession> {
    SessionLayer::<TestSession>::new(CookieStore::new(keys)).secure(false)
}

async fn serve(layer: SessionLayer<TestSession>) -> TestServer {
    TestServer::start(app(layer).0).await
}

/// GET `path` with `cookie` as the whole Cookie header.
async fn get_with(server: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    bare_client()
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn body(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

/// A session with 3 visits and its cookie value.
async fn three_visits(server: &TestServer) -> String {
    let client = browser();
    let mut last = None;
    for _ in 0..3 {
        last = Some(client.get(server.url("/visit")).send().await.unwrap());
    }
    cookie_value(&last.unwrap(), "session").unwrap()
}

#[tokio::test]
async fn session_round_trips_through_the_cookie() {
    let server = serve(layer(key(1))).await;
    let token = three_visits(&server).await;
    let response = get_with(&server, "/read", &format!("session={token}")).await;
    assert!(
        set_cookies(&response).is_empty(),
        "unchanged session re-sent"
    );
    assert!(body(response)
        .await
        .starts_with("visits: 3 user: guest new: false"));
}

#[tokio::test]
async fn setting_a_field_to_its_value_sends_no_cookie() {
    let server = serve(layer(key(1))).await;
    let token = three_visits(&server).await;
    let cookie = format!("session={token}");
    let response = get_with(&server, "/set-a/7", &cookie).await;
    let sealed = cookie_value(&response, "session").expect("a real change is sealed");
    let cookie = format!("session={sealed}");
    // `a` is 7 already: nothing to seal again, nothing to send.
    let response = get_with(&server, "/set-a/7", &cookie).await;
    assert!(
        set_cookies(&response).is_empty(),
        "an unchanged value was resealed"
    );
    // One real change among unchanged ones: sealed, with both values.
    let response = get_with(&server, "/set-ab/7/9", &cookie).await;
    let sealed = cookie_value(&response, "session").expect("a real change is sealed");
    let response = get_with(&server, "/read", &format!("session={sealed}")).await;
    assert!(body(response).await.ends_with("a: 7 b: 9"));
}

#[tokio::test]
async fn cookie_does_not_reveal_the_session_data() {
    let server = serve(layer(key(1))).await;
    let client = browser();
    let response = client
        .post(server.url("/login/VerySecretName"))
        .send()
        .await
        .unwrap();
    let token = cookie_value(&response, "session").unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .unwrap();
    assert!(!raw.windows(14).any(|w| w == b"VerySecretName"));
    assert!(!token.contains("VerySecretName"));
}

#[tokio::test]
async fn tampering_with_any_single_byte_gives_a_fresh_session() {
    let server = serve(layer(key(1))).await;
    let token = three_visits(&server).await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let raw = engine.decode(&token).unwrap();
    for index in 0..raw.len() {
        let mut tampered = raw.clone();
        tampered[index] ^= 0x01;
        let cookie = format!("session={}", engine.encode(&tampered));
        let response = get_with(&server, "/read", &cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "byte {index}");
        let text = body(response).await;
        assert!(
            text.starts_with("visits: 0 user: guest new: true"),
            "byte {index}: {text}"
        );
    }
}

#[tokio::test]
async fn wrong_key_gives_a_fresh_session() {
    let sealer = serve(layer(key(1))).await;
    let token = three_visits(&sealer).await;
    let other = serve(layer(key(2))).await;
    let text = body(get_with(&other, "/read", &format!("session={token}")).await).await;
    assert!(text.contains("new: true"), "{text}");
}

#[tokio::test]
async fn rotated_key_is_accepted_and_the_cookie_resealed_with_the_newest() {
    let old_server = serve(layer(key(1))).await;
    let old_token = three_visits(&old_server).await;

    let rotated = serve(layer(KeyRing::new(key(2), [key(1)]))).await;
    let response = get_with(&rotated, "/read", &format!("session={old_token}")).await;
    let resealed = cookie_value(&response, "session").expect("cookie sealed again");
    assert!(body(response).await.starts_with("visits: 3 "));

    // The new cookie opens with the new key alone: the old key can be retired.
    let new_only = serve(layer(key(2))).await;
    let text = body(get_with(&new_only, "/read", &format!("session={resealed}")).await).await;
    assert!(text.starts_with("visits: 3 "), "{text}");
}

#[tokio::test]
async fn value_moved_to_another_cookie_name_is_rejected() {
    let first = serve(layer(key(1)).cookie_name("cart")).await;
    let client = browser();
    let response = client.get(first.url("/visit")).send().await.unwrap();
    let token = cookie_value(&response, "cart").unwrap();
    // Same key, other cookie name: the seal is bound to the name.
    let second = serve(layer(key(1)).cookie_name("prefs")).await;
    let text = body(get_with(&second, "/read", &format!("prefs={token}")).await).await;
    assert!(text.contains("new: true"), "{text}");
    let same = body(get_with(&first, "/read", &format!("cart={token}")).await).await;
    assert!(same.starts_with("visits: 1 "), "{same}");
}

#[tokio::test]
async fn expired_deadline_inside_the_cookie_gives_a_fresh_session() {
    let clock = ManualClock::new();
    let server = serve(
        layer(key(1))
            .idle_timeout(Duration::from_secs(600))
            .clock(clock.clone()),
    )
    .await;
    let client = browser();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    let replayed = cookie_value(&first, "session").unwrap();
    // Later use slides the deadline of the new cookie, not of the copy taken before.
    clock.advance(Duration::from_secs(300));
    client.get(server.url("/visit")).send().await.unwrap();
    clock.advance(Duration::from_secs(301));
    let text = body(get_with(&server, "/read", &format!("session={replayed}")).await).await;
    assert!(
        text.contains("new: true"),
        "replayed cookie outlived its deadline: {text}"
    );
    let current = body(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(current.starts_with("visits: 2 "), "{current}");
}

#[tokio::test]
async fn absolute_deadline_is_never_extended() {
    let clock = ManualClock::new();
    let server = serve(
        layer(key(1))
            .idle_timeout(Duration::from_secs(600))
            .absolute_timeout(Duration::from_secs(1800))
            .clock(clock.clone()),
    )
    .await;
    let client = browser();
    for _ in 0..6 {
        client.get(server.url("/visit")).send().await.unwrap();
        clock.advance(Duration::from_secs(299));
    }
    clock.advance(Duration::from_secs(10));
    let text = body(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(text.contains("new: true"), "{text}");
}

#[tokio::test]
async fn oversize_session_is_refused_at_save_with_a_500_and_no_cookie() {
    let server = serve(layer(key(1))).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let huge = "x".repeat(5000);
    let response = client
        .post(server.url(&format!("/login/{huge}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    // The previous cookie still works.
    let text = body(client.get(server.url("/read")).send().await.unwrap()).await;
    assert!(text.starts_with("visits: 1 user: guest"), "{text}");
}

#[tokio::test]
async fn oversize_incoming_cookie_gives_a_fresh_session() {
    let server = serve(layer(key(1))).await;
    let cookie = format!("session={}", "A".repeat(5000));
    let response = get_with(&server, "/visit", &cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "visits: 1");
}

#[tokio::test]
async fn unchanged_session_sends_no_set_cookie() {
    let server = serve(layer(key(1))).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    for path in ["/read", "/ignore", "/id"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert!(set_cookies(&response).is_empty(), "{path}");
    }
    let fresh = browser().get(server.url("/read")).send().await.unwrap();
    assert!(
        set_cookies(&fresh).is_empty(),
        "an untouched new session was sent"
    );
}

#[tokio::test]
async fn destroy_sends_a_removal_cookie_with_matching_attributes() {
    let server = serve(
        layer(key(1))
            .path("/")
            .domain("127.0.0.1")
            .same_site(session_runtime::SameSite::Strict),
    )
    .await;
    let token = three_visits(&server).await;
    let response = bare_client()
        .post(server.url("/logout"))
        .header("cookie", format!("session={token}"))
        .send()
        .await
        .unwrap();
    integration_tests::guarantees::assert_removal_cookie(&response);
}

#[tokio::test]
async fn server_error_response_is_not_saved() {
    let server = serve(layer(key(1))).await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let response = client.get(server.url("/fail")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn renew_gives_a_new_id_and_hooks_fire() {
    let started = Arc::new(Mutex::new(0));
    let deleted = Arc::new(Mutex::new(0));
    let (s, d) = (Arc::clone(&started), Arc::clone(&deleted));
    let server = serve(
        layer(key(1))
            .on_started(move |_, _| *s.lock().unwrap() += 1)
            .on_deleted(move |_, _| *d.lock().unwrap() += 1),
    )
    .await;
    let client = browser();
    client.get(server.url("/visit")).send().await.unwrap();
    let before = body(client.get(server.url("/id")).send().await.unwrap()).await;
    client.post(server.url("/login/ada")).send().await.unwrap();
    let after = body(client.get(server.url("/id")).send().await.unwrap()).await;
    assert_ne!(before, after);
    assert!(after.starts_with("sid:"));
    client.post(server.url("/logout")).send().await.unwrap();
    assert_eq!((*started.lock().unwrap(), *deleted.lock().unwrap()), (1, 1));
}

#[tokio::test]
async fn header_transport_round_trip_with_the_cookie_store() {
    let layer = layer(key(1)).header(http::HeaderName::from_static("x-session-token"));
    let server = serve(layer).await;
    let client = bare_client();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    assert!(
        set_cookies(&first).is_empty(),
        "header transport set a cookie"
    );
    let token = first.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let second = client
        .get(server.url("/visit"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    let renewed = second.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(body(second).await, "visits: 2");
    let unchanged = client
        .get(server.url("/read"))
        .header("x-session-token", &renewed)
        .send()
        .await
        .unwrap();
    assert!(unchanged.headers().get("x-session-token").is_none());
    assert!(body(unchanged).await.starts_with("visits: 2 "));
}

#[tokio::test]
async fn websocket_upgrade_handler_extracts_the_cookie_session() {
    let server = serve(layer(key(1))).await;
    let login = browser()
        .post(server.url("/login/ws"))
        .send()
        .await
        .unwrap();
    let token = cookie_value(&login, "session").unwrap();
    let (status, greeting) =
        integration_tests::guarantees::websocket_greeting(&server, &format!("session={token}"))
            .await;
    assert_eq!(status, 101);
    assert_eq!(greeting, "visits: 1 user: ws");
}

mod migration {
    use integration_tests::migration::SharedCookieKey;
    integration_tests::migration_suite!(async { SharedCookieKey(super::key(9)) });
}

/// Issue 12: a cookie sealed under laxer timeouts obeys the current ones. Sealed with no
/// idle timeout, it is expired once its creation plus the current absolute timeout has
/// passed, and an idle deadline it never had is given to it (and sealed into a new cookie)
/// at once.
#[tokio::test]
async fn a_cookie_sealed_under_laxer_timeouts_obeys_the_current_ones() {
    let clock = ManualClock::new();
    let lax = serve(layer(key(1)).without_idle_timeout().clock(clock.clone())).await;
    let token = three_visits(&lax).await;
    let cookie = format!("session={token}");
    let strict = serve(
        layer(key(1))
            .idle_timeout(Duration::from_secs(30 * 60))
            .absolute_timeout(Duration::from_secs(8 * 3600))
            .clock(clock.clone()),
    )
    .await;
    // Within both: read, and a new cookie carries the deadlines the old one lacked.
    clock.advance(Duration::from_secs(60));
    let response = get_with(&strict, "/read", &cookie).await;
    let resealed = cookie_value(&response, "session").expect("the tightened cookie is resent");
    assert!(body(response).await.starts_with("visits: 3 "));
    // The resealed cookie idles out after 30 minutes, even on the lax layer.
    clock.advance(Duration::from_secs(31 * 60));
    let response = get_with(&lax, "/read", &format!("session={resealed}")).await;
    assert!(body(response).await.contains("new: true"));
    // The original cookie, a year later, is past the 8 h absolute timeout.
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    let response = get_with(&strict, "/read", &cookie).await;
    assert!(body(response).await.contains("new: true"));
}

/// Issue 12: a planted cookie next to the real one never shadows it, in either order, and
/// two cookies that each open to a live session are both ignored.
#[tokio::test]
async fn several_session_cookies_never_let_one_shadow_the_other() {
    let server = serve(layer(key(1))).await;
    let victim = three_visits(&server).await;
    let other_key = serve(layer(key(2))).await;
    let forged = three_visits(&other_key).await;
    for cookie in [
        format!("session=garbage; session={victim}"),
        format!("session={victim}; session=garbage"),
        format!("session={forged}; session={victim}"),
    ] {
        let response = get_with(&server, "/read", &cookie).await;
        assert!(body(response).await.starts_with("visits: 3 "), "{cookie}");
    }
    let attacker = three_visits(&server).await;
    for cookie in [
        format!("session={attacker}; session={victim}"),
        format!("session={victim}; session={attacker}"),
    ] {
        let response = get_with(&server, "/read", &cookie).await;
        assert!(set_cookies(&response).is_empty(), "no removal of either");
        assert!(body(response).await.contains("new: true"), "{cookie}");
    }
}

/// Issue 12: the cookie store cannot tell a replayed logout from the first one, so each
/// request that destroys a session it carries runs `on_deleted` (documented in the
/// `CookieStore` docs and the README).
#[tokio::test]
async fn each_replayed_logout_runs_on_deleted_with_the_cookie_store() {
    let deleted = Arc::new(Mutex::new(0));
    let sink = Arc::clone(&deleted);
    let server = serve(layer(key(1)).on_deleted(move |_, _| *sink.lock().unwrap() += 1)).await;
    let token = three_visits(&server).await;
    for _ in 0..3 {
        let response = bare_client()
            .post(server.url("/logout"))
            .header("cookie", format!("session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(*deleted.lock().unwrap(), 3);
}

/// Issue 17, behaviour note "the cookie store's replayed cookies": the store keeps nothing,
/// so a cookie copied before a change (or before a logout or a reset in place) still opens
/// to the state it sealed until its own deadline. Server-side stores do not have this.
#[tokio::test]
async fn a_replayed_cookie_brings_back_the_state_it_sealed() {
    let server = serve(layer(key(1))).await;
    let copied = three_visits(&server).await;
    let later = get_with(&server, "/visit", &format!("session={copied}")).await;
    let newer = cookie_value(&later, "session").unwrap();
    assert!(
        body(get_with(&server, "/read", &format!("session={newer}")).await)
            .await
            .starts_with("visits: 4 ")
    );
    // The copy taken before the change reads as it was.
    assert!(
        body(get_with(&server, "/read", &format!("session={copied}")).await)
            .await
            .starts_with("visits: 3 ")
    );
}

mod session_api {
    use integration_tests::session_api::Kind;
    use session_runtime::{CookieStore, Key};

    integration_tests::session_api_suite!(Kind::ClientSide, async {
        CookieStore::new(Key::generate().unwrap())
    });

    #[tokio::test]
    async fn sessions_of_a_cookie_store_cannot_be_loaded_by_id() {
        integration_tests::session_api::sessions_of_a_cookie_store_cannot_be_loaded_by_id(
            CookieStore::new(Key::generate().unwrap()),
        )
        .await;
    }
}

/// The cookie store cannot list, revoke one session, count, clear, watch or load by id:
/// every `Sessions` call fails with `LoadError::ClientSide` (README: "Every session of a
/// user").
#[tokio::test]
async fn the_cookie_store_cannot_list_or_revoke() {
    integration_tests::owners_suite::the_cookie_store_cannot_list_or_revoke().await;
}
