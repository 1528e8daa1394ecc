//! The handler API of issue 17 over real HTTP and real WebSockets, for every store: remember
//! me, fixed ends, explicit saves, resets in place, handles moved into tasks. Each store's
//! test file runs them with [`session_api_suite!`](macro@crate::session_api_suite); the
//! parts only a server-side store can do (counted store operations, sessions loaded by id
//! outside a request) are in [`server_api_suite!`](macro@crate::server_api_suite).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use session_runtime::clock::{Clock, ManualClock};
use session_runtime::store::SessionStore;
use session_runtime::{
    DatabagHandle, LoadError, SaveError, SessionBackend, SessionDigest, SessionId, SessionLayer,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::api_app::{api_app, Account, ApiState};
use crate::counting::{Counting, Op, Place};
use crate::server::{bare_client, browser, cookie_value, set_cookies, TestServer};

/// Whether the store keeps sessions on the server or in the client's cookie: where the
/// behaviour differs by design, the suite asserts each side's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ServerSide,
    ClientSide,
}

/// Runs every handler-API test as a named `#[tokio::test]`, given the store's [`Kind`] and
/// an async expression that makes a fresh store (any `SessionBackend`);
/// `session_api_suite!(kind, guarded: async { .. })` takes one making `(guard, store)`.
#[macro_export]
macro_rules! session_api_suite {
    ($kind:expr, guarded: $setup:expr) => {
        $crate::session_api_suite!(@names [guarded $kind, $setup]);
    };
    ($kind:expr, $make:expr) => {
        $crate::session_api_suite!(@names [plain $kind, $make]);
    };
    (@names $setup:tt) => {
        $crate::session_api_suite!(@tests $setup;
            remember_me_makes_the_cookie_persistent_and_back
            a_remembered_session_outlives_the_layers_idle_timeout
            the_layers_absolute_timeout_caps_remembered_sessions_unless_it_allows_longer
            the_remember_duration_is_capped_by_the_layer
            a_fixed_end_expires_the_session_and_bounds_the_cookie
            writes_after_destroy_start_a_fresh_session_in_place
            a_reset_in_place_restarts_the_absolute_timeout
            destroy_then_only_default_writes_stores_nothing
            renewing_a_new_session_without_writes_stores_and_sends_nothing
            save_of_a_new_session_sends_its_token_with_the_response
            save_then_more_writes_keeps_both
            a_value_set_back_after_a_save_is_written
            a_reset_in_place_stores_values_equal_to_the_old_sessions
            save_after_destroy_then_writes_start_a_fresh_session
            save_after_renew_sends_the_new_token_once
            websocket_changes_after_the_upgrade_are_saved_where_the_store_allows
            websocket_save_of_a_session_never_stored_is_refused_after_the_upgrade
            websocket_session_saved_before_the_upgrade_gets_its_token_with_the_101
            a_handle_moved_into_a_task_keeps_only_what_it_saves
        );
    };
    (@tests [plain $kind:expr, $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::session_api::$name(store, $kind).await;
            }
        )*
    };
    (@tests [guarded $kind:expr, $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::session_api::$name(store, $kind).await;
            }
        )*
    };
}

/// Runs the handler-API tests that need a server-side store (`S: SessionStore + Clone`),
/// counted: explicit saves' store operations and errors, sessions outside a request.
#[macro_export]
macro_rules! server_api_suite {
    (guarded: $setup:expr) => {
        $crate::server_api_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::server_api_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::server_api_suite!(@tests $setup;
            the_commit_after_a_save_writes_only_what_changed_since
            a_failed_save_returns_the_store_error_and_the_commit_writes_the_changes
            remember_me_is_one_field_level_save_of_an_internal_field
            a_session_loaded_by_id_is_changed_and_saved_field_by_field
            a_background_save_keeps_a_concurrent_requests_change
            a_background_save_never_resurrects_a_destroyed_session
            destroy_outside_a_request_revokes_the_session_and_runs_on_deleted
            renewal_outside_a_request_is_refused_and_writes_nothing
            unknown_or_expired_ids_load_as_none
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::session_api::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::session_api::$name(store).await;
            }
        )*
    };
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A layer for plain-HTTP tests (no `Secure`).
fn layer(store: impl SessionBackend) -> SessionLayer<Account> {
    SessionLayer::<Account>::new(store).secure(false)
}

async fn serve(layer: SessionLayer<Account>) -> (TestServer, Arc<ApiState>) {
    let (router, state) = api_app(layer);
    (TestServer::start(router).await, state)
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.unwrap()
}

async fn get(client: &reqwest::Client, server: &TestServer, path: &str) -> reqwest::Response {
    client.get(server.url(path)).send().await.unwrap()
}

async fn post(client: &reqwest::Client, server: &TestServer, path: &str) -> reqwest::Response {
    client.post(server.url(path)).send().await.unwrap()
}

/// GET `path` with `cookie` as the session cookie, and nothing else.
async fn get_with(server: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    bare_client()
        .get(server.url(path))
        .header("cookie", format!("session={cookie}"))
        .send()
        .await
        .unwrap()
}

/// The `Max-Age` of the `session` cookie a response sets: `Some(None)` for a cookie that
/// ends with the browser session, `None` when no session cookie is set.
fn max_age(response: &reqwest::Response) -> Option<Option<u64>> {
    let header = set_cookies(response)
        .into_iter()
        .find(|cookie| cookie.starts_with("session="))?;
    Some(header.split(';').find_map(|part| {
        part.trim()
            .strip_prefix("Max-Age=")
            .map(|secs| secs.parse().unwrap())
    }))
}

fn token(response: &reqwest::Response) -> String {
    cookie_value(response, "session").expect("the response sets the session cookie")
}

/// The id a login's response hands the browser (hooks hear only its digest).
fn logged_in_id(response: &reqwest::Response) -> SessionId {
    SessionId::parse(&token(response)).expect("the cookie holds a session id")
}

pub async fn remember_me_makes_the_cookie_persistent_and_back<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store).idle_timeout(Duration::from_secs(30 * 60))).await;
    let client = browser();
    // An ordinary login: a cookie that ends with the browser session.
    let plain = post(&client, &server, "/login/ada").await;
    assert_eq!(max_age(&plain), Some(None));
    // Remember me for 30 days: the cookie persists as long as the session.
    let remembered = post(&client, &server, "/login/ada?days=30").await;
    let secs = max_age(&remembered).unwrap().unwrap();
    assert!((29 * 86_400..=30 * 86_400).contains(&secs), "{secs}");
    assert!(text(remembered).await.contains("remembered=Some(2592000)"));
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("remembered=Some(2592000)"), "{body}");
    // And back: the cookie is sent again, without Max-Age.
    let forgotten = post(&client, &server, "/forget-me").await;
    assert_eq!(max_age(&forgotten), Some(None));
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=Some(\"ada\")") && body.contains("remembered=None"),
        "{body}"
    );
}

pub async fn a_remembered_session_outlives_the_layers_idle_timeout<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let clock = ManualClock::new();
    let (server, _) = serve(
        layer(store)
            .idle_timeout(Duration::from_secs(30 * 60))
            .clock(clock.clone()),
    )
    .await;
    let (remembered, ordinary) = (browser(), browser());
    post(&remembered, &server, "/login/ada?days=7").await;
    post(&ordinary, &server, "/login/bob").await;
    clock.advance(Duration::from_secs(2 * 3600));
    let body = text(get(&remembered, &server, "/read").await).await;
    assert!(body.contains("user=Some(\"ada\")"), "{body}");
    let body = text(get(&ordinary, &server, "/read").await).await;
    assert!(
        body.contains("new=true"),
        "the layer's 30 minutes apply: {body}"
    );
    // Seven days without use end the remembered one too.
    clock.advance(7 * DAY + Duration::from_secs(1));
    let body = text(get(&remembered, &server, "/read").await).await;
    assert!(body.contains("new=true"), "{body}");
}

pub async fn the_layers_absolute_timeout_caps_remembered_sessions_unless_it_allows_longer<
    B: SessionBackend,
>(
    store: B,
    _kind: Kind,
) {
    let clock = ManualClock::new();
    let capped = layer(store)
        .absolute_timeout(Duration::from_secs(8 * 3600))
        .clock(clock.clone());
    let allowed = capped.clone().remembered_absolute_timeout(90 * DAY);
    let (capped, _) = serve(capped).await;
    let (allowed, _) = serve(allowed).await;
    let (a, b) = (browser(), browser());
    let login = post(&a, &capped, "/login/ada?days=30").await;
    let secs = max_age(&login).unwrap().unwrap();
    assert!(
        secs <= 8 * 3600,
        "Max-Age follows the capped deadline: {secs}"
    );
    post(&b, &allowed, "/login/ada?days=30").await;
    clock.advance(Duration::from_secs(9 * 3600));
    let body = text(get(&a, &capped, "/read").await).await;
    assert!(body.contains("new=true"), "the 8-hour cap holds: {body}");
    let body = text(get(&b, &allowed, "/read").await).await;
    assert!(body.contains("user=Some(\"ada\")"), "{body}");
}

pub async fn the_remember_duration_is_capped_by_the_layer<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store).max_remember(14 * DAY)).await;
    let login = post(&browser(), &server, "/login/ada?days=365").await;
    let secs = max_age(&login).unwrap().unwrap();
    assert!((13 * 86_400..=14 * 86_400).contains(&secs), "{secs}");
}

pub async fn a_fixed_end_expires_the_session_and_bounds_the_cookie<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let clock = ManualClock::new();
    let (server, _) = serve(layer(store).clock(clock.clone())).await;
    let client = browser();
    post(&client, &server, "/login/ada?days=30").await;
    let end = clock.now_ms() + 10 * 60 * 1000;
    let response = post(&client, &server, &format!("/end-at/{end}")).await;
    let secs = max_age(&response).unwrap().unwrap();
    assert!(
        (9 * 60..=10 * 60).contains(&secs),
        "Max-Age follows the end: {secs}"
    );
    // Busy until the end: use does not extend it.
    for _ in 0..9 {
        clock.advance(Duration::from_secs(60));
        let body = text(get(&client, &server, "/visit").await).await;
        assert!(body.contains("user=Some(\"ada\")"), "{body}");
    }
    clock.advance(Duration::from_secs(61));
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("new=true"), "{body}");
}

pub async fn writes_after_destroy_start_a_fresh_session_in_place<B: SessionBackend>(
    store: B,
    kind: Kind,
) {
    let started = Arc::new(Mutex::new(Vec::new()));
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let (on_started, on_deleted) = (Arc::clone(&started), Arc::clone(&deleted));
    let (server, _) = serve(
        layer(store)
            .on_started(move |id, data| on_started.lock().unwrap().push((*id, data.notes.clone())))
            .on_deleted(move |id, data| on_deleted.lock().unwrap().push((*id, data.user.clone()))),
    )
    .await;
    let client = browser();
    let old = token(&post(&client, &server, "/login/ada").await);
    get(&client, &server, "/visit").await;
    let response = post(&client, &server, "/reset/hello").await;
    let new = token(&response);
    assert_ne!(new, old);
    let body = text(response).await;
    assert!(
        body.contains("after destroy: user=None visits=0 step=0 notes=[]")
            && body.contains("id changed: true"),
        "reads after destroy() see defaults and the new id: {body}"
    );
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=None visits=0 step=0 notes=[\"hello\"]") && body.contains("new=false"),
        "only the new writes are stored: {body}"
    );
    // on_deleted ran with the old data, on_started for the fresh session.
    let deleted = deleted.lock().unwrap().clone();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].1, Some("ada".to_owned()));
    let started = started.lock().unwrap().clone();
    assert_eq!(started.last().unwrap().1, vec!["hello".to_owned()]);
    let body = text(get_with(&server, "/read", &old).await).await;
    match kind {
        Kind::ServerSide => assert!(body.contains("new=true"), "old token is dead: {body}"),
        // The cookie store keeps nothing: a replayed cookie still opens what it sealed.
        Kind::ClientSide => assert!(body.contains("user=Some(\"ada\")"), "{body}"),
    }
}

pub async fn a_reset_in_place_restarts_the_absolute_timeout<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let clock = ManualClock::new();
    let (server, _) = serve(
        layer(store)
            .absolute_timeout(Duration::from_secs(3600))
            .clock(clock.clone()),
    )
    .await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    clock.advance(Duration::from_secs(50 * 60));
    post(&client, &server, "/reset/fresh").await;
    // 20 minutes later the old session would be past its hour; the fresh one is not.
    clock.advance(Duration::from_secs(20 * 60));
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("notes=[\"fresh\"]"), "{body}");
    clock.advance(Duration::from_secs(41 * 60));
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("new=true"), "{body}");
}

pub async fn destroy_then_only_default_writes_stores_nothing<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    let old = token(&post(&client, &server, "/login/ada").await);
    let response = post(&client, &server, "/reset-to-defaults").await;
    let cookies = set_cookies(&response).join("\n");
    assert!(cookies.contains("Max-Age=0"), "only a removal: {cookies}");
    assert_eq!(set_cookies(&response).len(), 1, "{cookies}");
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("new=true"), "{body}");
    assert!(!old.is_empty());
}

pub async fn renewing_a_new_session_without_writes_stores_and_sends_nothing<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let response = post(&bare_client(), &server, "/renew-only").await;
    assert!(
        set_cookies(&response).is_empty(),
        "{:?}",
        set_cookies(&response)
    );
}

pub async fn save_of_a_new_session_sends_its_token_with_the_response<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    let response = post(&client, &server, "/save/visit-then-step").await;
    assert_eq!(set_cookies(&response).len(), 1, "one cookie, the latest");
    let body = text(response).await;
    assert_eq!(body, "saved: ok; new after save: false");
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("visits=1 step=1"), "{body}");
}

pub async fn save_then_more_writes_keeps_both<B: SessionBackend>(store: B, _kind: Kind) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    for round in 1..=3 {
        let body = text(post(&client, &server, "/save/visit-then-step").await).await;
        assert_eq!(body, "saved: ok; new after save: false");
        let body = text(get(&client, &server, "/read").await).await;
        assert!(
            body.contains(&format!("visits={round} step={round}")),
            "{body}"
        );
    }
}

/// Only real changes are written (a field set to the value it was loaded with is none), but
/// the comparison is with what the store holds: after an explicit save, setting a field
/// back to its loaded value is a change.
pub async fn a_value_set_back_after_a_save_is_written<B: SessionBackend>(store: B, _kind: Kind) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    get(&client, &server, "/visit").await;
    let body = text(post(&client, &server, "/save/visit-then-back").await).await;
    assert_eq!(body, "saved: ok");
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("visits=1 "),
        "the value set back was not written: {body}"
    );
}

/// After `destroy()`, the fresh session stores what is set, even a value equal to what the
/// old session held.
pub async fn a_reset_in_place_stores_values_equal_to_the_old_sessions<B: SessionBackend>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    let old = token(&post(&client, &server, "/login/ada").await);
    let response = post(&client, &server, "/reset-keeping-user").await;
    assert_eq!(response.status(), 200);
    let new = token(&response);
    assert_ne!(old, new);
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=Some(\"ada\")") && body.contains("new=false"),
        "{body}"
    );
}

pub async fn save_after_destroy_then_writes_start_a_fresh_session<B: SessionBackend>(
    store: B,
    kind: Kind,
) {
    let deleted = Arc::new(Mutex::new(0));
    let sink = Arc::clone(&deleted);
    let (server, _) = serve(layer(store).on_deleted(move |_, _| *sink.lock().unwrap() += 1)).await;
    let client = browser();
    let old = token(&post(&client, &server, "/login/ada").await);
    let response = post(&client, &server, "/save/logout-then-note/after").await;
    let new = token(&response);
    assert_ne!(new, old);
    assert_eq!(text(response).await, "saved: ok");
    assert_eq!(*deleted.lock().unwrap(), 1, "the save deleted it, once");
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=None") && body.contains("notes=[\"after\"]"),
        "{body}"
    );
    if kind == Kind::ServerSide {
        let body = text(get_with(&server, "/read", &old).await).await;
        assert!(body.contains("new=true"), "{body}");
    }
}

pub async fn save_after_renew_sends_the_new_token_once<B: SessionBackend>(store: B, kind: Kind) {
    let (server, _) = serve(layer(store)).await;
    let client = browser();
    let old = token(&get(&client, &server, "/visit").await);
    let response = post(&client, &server, "/save/login/ada").await;
    assert_eq!(set_cookies(&response).len(), 1);
    let new = token(&response);
    assert_ne!(new, old);
    assert_eq!(text(response).await, "saved: ok");
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=Some(\"ada\") visits=2"),
        "both saves' data: {body}"
    );
    if kind == Kind::ServerSide {
        let body = text(get_with(&server, "/read", &old).await).await;
        assert!(body.contains("new=true"), "the old id is gone: {body}");
    }
}

/// Opens `path` as a WebSocket with `cookie` (if any): the upgrade response and the socket.
async fn connect(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    http::Response<Option<Vec<u8>>>,
) {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", format!("session={cookie}").parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    (socket, response)
}

/// Sends "visit" and returns the reply.
async fn ws_visit<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket.send(Message::Text("visit".into())).await.unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    reply.into_text().unwrap().as_str().to_owned()
}

pub async fn websocket_changes_after_the_upgrade_are_saved_where_the_store_allows<
    B: SessionBackend,
>(
    store: B,
    kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let cookie = token(&post(&bare_client(), &server, "/login/ada").await);
    let (mut socket, response) = connect(&server, "/ws", Some(&cookie)).await;
    assert_eq!(response.status().as_u16(), 101);
    for visits in 1..=3 {
        let reply = ws_visit(&mut socket).await;
        match kind {
            Kind::ServerSide => assert_eq!(reply, format!("visits={visits} saved: ok")),
            // The cookie store's token is the session: no response can carry it any more.
            Kind::ClientSide => {
                assert_eq!(reply, format!("visits={visits} saved: undeliverable"));
            }
        }
    }
    // Seen by an ordinary request while the socket is still open.
    let body = text(get_with(&server, "/read", &cookie).await).await;
    match kind {
        Kind::ServerSide => assert!(body.contains("visits=3"), "{body}"),
        Kind::ClientSide => assert!(body.contains("visits=0"), "{body}"),
    }
}

pub async fn websocket_save_of_a_session_never_stored_is_refused_after_the_upgrade<
    B: SessionBackend,
>(
    store: B,
    _kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let (mut socket, response) = connect(&server, "/ws", None).await;
    assert!(response.headers().get("set-cookie").is_none());
    // A new session's token cannot reach the client any more: nothing is written.
    assert_eq!(ws_visit(&mut socket).await, "visits=1 saved: undeliverable");
}

pub async fn websocket_session_saved_before_the_upgrade_gets_its_token_with_the_101<
    B: SessionBackend,
>(
    store: B,
    kind: Kind,
) {
    let (server, _) = serve(layer(store)).await;
    let (mut socket, response) = connect(&server, "/ws-presaved", None).await;
    assert_eq!(response.status().as_u16(), 101);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .expect("the 101 carries the token of the session saved before the upgrade")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie
        .strip_prefix("session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let reply = ws_visit(&mut socket).await;
    let body = text(get_with(&server, "/read", &cookie).await).await;
    assert!(body.contains("user=Some(\"socket\")"), "{body}");
    match kind {
        Kind::ServerSide => {
            assert_eq!(reply, "visits=1 saved: ok");
            assert!(body.contains("visits=1"), "{body}");
        }
        Kind::ClientSide => assert_eq!(reply, "visits=1 saved: undeliverable"),
    }
}

pub async fn a_handle_moved_into_a_task_keeps_only_what_it_saves<B: SessionBackend>(
    store: B,
    kind: Kind,
) {
    let (server, state) = serve(layer(store)).await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    for save in [false, true] {
        let response = get(&client, &server, &format!("/spawn?save={save}")).await;
        assert_eq!(text(response).await, "spawned");
        // The task writes after the response was sent.
        state.release.notify_one();
        state.done.notified().await;
        let report = state.report.lock().unwrap().clone();
        let body = text(get(&client, &server, "/read").await).await;
        match (save, kind) {
            (false, _) => {
                assert_eq!(report, "not saved");
                assert!(body.contains("step=0"), "dropped without save: {body}");
            }
            (true, Kind::ServerSide) => {
                assert_eq!(report, "ok");
                assert!(body.contains("step=99"), "{body}");
            }
            (true, Kind::ClientSide) => {
                assert_eq!(report, "undeliverable");
                assert!(body.contains("step=0"), "{body}");
            }
        }
    }
}

// ---- server-side stores only -------------------------------------------------------

fn counted_layer<S: SessionStore + Clone>(store: &Counting<S>) -> SessionLayer<Account> {
    layer(store.clone())
}

pub async fn the_commit_after_a_save_writes_only_what_changed_since<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, _) = serve(counted_layer(&store)).await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    let saves = store.counts.save.load(Ordering::SeqCst);
    post(&client, &server, "/save/visit-then-step").await;
    // One save of `visits` by the handler, one of `step` by the commit: one field each.
    assert_eq!(store.counts.save.load(Ordering::SeqCst), saves + 2);
    assert_eq!(store.counts.last_save_fields.load(Ordering::SeqCst), 1);
}

pub async fn a_failed_save_returns_the_store_error_and_the_commit_writes_the_changes<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, _) = serve(counted_layer(&store)).await;
    let client = browser();
    post(&client, &server, "/login/ada").await;
    store.faults.fail_next(Op::Save, Place::BeforeStore);
    let body = text(post(&client, &server, "/save/visit-then-step").await).await;
    assert!(
        body.starts_with("saved: error: the session store failed"),
        "the handler got the store's error: {body}"
    );
    // The handle kept its changes: the commit after the handler wrote them with the rest.
    assert_eq!(store.counts.last_save_fields.load(Ordering::SeqCst), 2);
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("visits=1 step=1"), "{body}");
}

pub async fn remember_me_is_one_field_level_save_of_an_internal_field<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, _) = serve(counted_layer(&store)).await;
    let client = browser();
    let id = SessionId::parse(&token(&post(&client, &server, "/login/ada").await)).unwrap();
    post(&client, &server, "/forget-me").await; // nothing to forget: no write
    let writes = store.counts.writes();
    let response = post(&client, &server, "/login/ada?days=30").await;
    let id2 = SessionId::parse(&token(&response)).unwrap();
    assert_ne!(id, id2);
    assert_eq!(
        store.counts.writes(),
        writes + 2,
        "a renewal: create and take"
    );
    let writes = store.counts.writes();
    post(&client, &server, "/forget-me").await;
    assert_eq!(store.counts.writes(), writes + 1);
    assert_eq!(store.counts.last_save_fields.load(Ordering::SeqCst), 1);
    let loaded = store
        .inner
        .load(&id2.digest(), crate::guarantees::now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        loaded.record.get("__remember").is_some(),
        "{:?}",
        loaded.record
    );
}

/// An app over `store` that reports the ids it starts, and its sessions handle.
async fn with_sessions<S: SessionStore + Clone>(
    store: &Counting<S>,
) -> (
    TestServer,
    session_runtime::Sessions<Account>,
    Arc<Mutex<Vec<SessionDigest>>>,
    Arc<Mutex<Vec<(SessionDigest, Option<String>)>>>,
) {
    let started = Arc::new(Mutex::new(Vec::new()));
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let (on_started, on_deleted) = (Arc::clone(&started), Arc::clone(&deleted));
    let layer = counted_layer(store)
        .on_started(move |id, _| on_started.lock().unwrap().push(*id))
        .on_deleted(move |id, data| on_deleted.lock().unwrap().push((*id, data.user.clone())));
    let sessions = layer.sessions();
    let (server, _) = serve(layer).await;
    (server, sessions, started, deleted)
}

pub async fn a_session_loaded_by_id_is_changed_and_saved_field_by_field<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, sessions, started, _) = with_sessions(&store).await;
    let client = browser();
    let id = logged_in_id(&post(&client, &server, "/login/ada").await);
    assert_eq!(started.lock().unwrap().last(), Some(&id.digest()));
    let mut session = sessions.load(&id).await.unwrap().expect("the session");
    assert_eq!(session.user.as_deref(), Some("ada"));
    assert!(!session.is_new());
    session.notes_mut().push("from a job".to_owned());
    session.save().await.unwrap();
    assert_eq!(store.counts.last_save_fields.load(Ordering::SeqCst), 1);
    // Saving again with nothing changed writes nothing.
    let writes = store.counts.writes();
    session.save().await.unwrap();
    assert_eq!(store.counts.writes(), writes);
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("user=Some(\"ada\")") && body.contains("[\"from a job\"]"),
        "{body}"
    );
}

pub async fn a_background_save_keeps_a_concurrent_requests_change<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, sessions, started, _) = with_sessions(&store).await;
    let client = browser();
    let id = logged_in_id(&post(&client, &server, "/login/ada").await);
    assert_eq!(started.lock().unwrap().last(), Some(&id.digest()));
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    // A request changes `visits` after the job loaded the session.
    get(&client, &server, "/visit").await;
    session.set_step(7);
    session.save().await.unwrap();
    let body = text(get(&client, &server, "/read").await).await;
    assert!(
        body.contains("visits=1 step=7"),
        "both changes kept: {body}"
    );
}

pub async fn a_background_save_never_resurrects_a_destroyed_session<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, sessions, started, _) = with_sessions(&store).await;
    let client = browser();
    let id = logged_in_id(&post(&client, &server, "/login/ada").await);
    assert_eq!(started.lock().unwrap().last(), Some(&id.digest()));
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    post(&client, &server, "/logout").await;
    session.set_step(7);
    assert!(matches!(session.save().await, Err(SaveError::Ended)));
    assert!(sessions.load(&id).await.unwrap().is_none());
}

pub async fn destroy_outside_a_request_revokes_the_session_and_runs_on_deleted<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, sessions, started, deleted) = with_sessions(&store).await;
    let client = browser();
    let id = logged_in_id(&post(&client, &server, "/login/ada").await);
    assert_eq!(started.lock().unwrap().last(), Some(&id.digest()));
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    session.destroy();
    session.save().await.unwrap();
    assert_eq!(
        *deleted.lock().unwrap(),
        vec![(id.digest(), Some("ada".to_owned()))]
    );
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("new=true"), "{body}");
    // Writes after destroy() would need a new token: refused, nothing written.
    let writes = store.counts.writes();
    session.set_step(1);
    assert!(matches!(
        session.save().await,
        Err(SaveError::TokenUndeliverable)
    ));
    assert_eq!(store.counts.writes(), writes);
}

pub async fn renewal_outside_a_request_is_refused_and_writes_nothing<S: SessionStore + Clone>(
    store: S,
) {
    let store = Counting::new(store);
    let (server, sessions, started, _) = with_sessions(&store).await;
    let client = browser();
    let id = logged_in_id(&post(&client, &server, "/login/ada").await);
    assert_eq!(started.lock().unwrap().last(), Some(&id.digest()));
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    let writes = store.counts.writes();
    DatabagHandle::renew(&mut session);
    assert!(matches!(
        session.save().await,
        Err(SaveError::TokenUndeliverable)
    ));
    assert_eq!(store.counts.writes(), writes);
    let body = text(get(&client, &server, "/read").await).await;
    assert!(body.contains("user=Some(\"ada\")"), "{body}");
}

pub async fn unknown_or_expired_ids_load_as_none<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let store = Counting::new(store);
    let layer = counted_layer(&store)
        .idle_timeout(Duration::from_secs(60))
        .clock(clock.clone());
    let sessions = layer.sessions();
    let (server, _) = serve(layer).await;
    assert!(sessions
        .load(&SessionId::generate().unwrap())
        .await
        .unwrap()
        .is_none());
    let id = logged_in_id(&post(&browser(), &server, "/login/ada").await);
    assert!(sessions.load(&id).await.unwrap().is_some());
    clock.advance(Duration::from_secs(61));
    assert!(sessions.load(&id).await.unwrap().is_none());
}

/// The cookie store keeps nothing on the server: nothing can be loaded by id.
pub async fn sessions_of_a_cookie_store_cannot_be_loaded_by_id(store: impl SessionBackend) {
    let sessions = layer(store).sessions();
    let id = SessionId::generate().unwrap();
    assert!(matches!(
        sessions.load(&id).await,
        Err(LoadError::ClientSide)
    ));
}
