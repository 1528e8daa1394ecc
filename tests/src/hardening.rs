//! Hardening guarantees over real HTTP, for any server-side store (issue 12): timeouts that
//! tighten, unambiguous cookies, uncacheable tokens, no store growth from defaults, stale
//! tokens forgotten. Each store's test file runs them with
//! [`hardening_suite!`](macro@crate::hardening_suite).

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::header::{CACHE_CONTROL, VARY};
use session_runtime::clock::ManualClock;
use session_runtime::store::SessionStore;
use session_runtime::{SessionId, SessionLayer};

use crate::app::{app, TestSession};
use crate::counting::Counting;
use crate::guarantees::now;
use crate::server::{bare_client, cookie_value, set_cookies, TestServer};

/// Runs every hardening guarantee as a named `#[tokio::test]`; the same forms as
/// [`guarantee_suite!`](macro@crate::guarantee_suite).
#[macro_export]
macro_rules! hardening_suite {
    (guarded: $setup:expr) => {
        $crate::hardening_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::hardening_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::hardening_suite!(@tests $setup;
            a_session_past_a_tightened_absolute_timeout_is_expired
            an_idle_deadline_beyond_a_tightened_idle_timeout_is_cut_and_written
            a_session_stored_without_an_idle_deadline_gets_one
            a_planted_cookie_before_or_after_the_real_one_does_not_shadow_it
            two_cookies_naming_live_sessions_are_both_ignored
            token_responses_are_not_cacheable_and_session_responses_vary
            a_new_session_holding_only_defaults_is_not_stored
            a_dead_token_is_forgotten_without_a_store_write
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::hardening::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::hardening::$name(store).await;
            }
        )*
    };
}

const MIN: Duration = Duration::from_secs(60);

/// A plain-HTTP layer on `store` whose deadlines follow `clock`.
pub fn layer<S: SessionStore>(store: S, clock: &ManualClock) -> SessionLayer<TestSession> {
    SessionLayer::<TestSession>::new(store)
        .secure(false)
        .clock(clock.clone())
}

/// GET `path` with `cookie` as the whole Cookie header (none when empty).
pub async fn get(server: &TestServer, path: &str, cookie: &str) -> reqwest::Response {
    let request = bare_client().get(server.url(path));
    let request = if cookie.is_empty() {
        request
    } else {
        request.header("cookie", cookie)
    };
    request.send().await.unwrap()
}

/// The body of `/read` with `cookie`.
pub async fn read(server: &TestServer, cookie: &str) -> String {
    get(server, "/read", cookie).await.text().await.unwrap()
}

/// A session started on `server`, as a `session=<token>` cookie header.
async fn start(server: &TestServer) -> String {
    start_at(server, "/visit").await
}

/// A session started by GET `path` on `server`, as a `session=<token>` cookie header.
pub async fn start_at(server: &TestServer, path: &str) -> String {
    let response = get(server, path, "").await;
    format!("session={}", cookie_value(&response, "session").unwrap())
}

pub async fn a_session_past_a_tightened_absolute_timeout_is_expired<S: SessionStore + Clone>(
    store: S,
) {
    let clock = ManualClock::new();
    let lax = TestServer::start(app(layer(store.clone(), &clock).without_idle_timeout()).0).await;
    let cookie = start(&lax).await;
    let strict = TestServer::start(
        app(layer(store, &clock)
            .idle_timeout(30 * MIN)
            .absolute_timeout(8 * 60 * MIN))
        .0,
    )
    .await;
    clock.advance(7 * 60 * MIN);
    assert!(read(&strict, &cookie).await.contains("new: false"));
    clock.advance(61 * MIN);
    let body = read(&strict, &cookie).await;
    assert!(
        body.contains("new: true"),
        "aged 8 h 1 min under an 8 h absolute timeout: {body}"
    );
}

pub async fn an_idle_deadline_beyond_a_tightened_idle_timeout_is_cut_and_written<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = ManualClock::new();
    let store = Counting::new(store);
    let day =
        TestServer::start(app(layer(store.clone(), &clock).idle_timeout(24 * 60 * MIN)).0).await;
    let cookie = start(&day).await;
    let quarter =
        TestServer::start(app(layer(store.clone(), &clock).idle_timeout(15 * MIN)).0).await;
    clock.advance(MIN);
    let touches = store.counts.touch.load(Ordering::SeqCst);
    assert!(read(&quarter, &cookie).await.contains("new: false"));
    assert_eq!(
        store.counts.touch.load(Ordering::SeqCst),
        touches + 1,
        "the tightened deadline is written at once"
    );
    clock.advance(16 * MIN);
    let body = read(&day, &cookie).await;
    assert!(
        body.contains("new: true"),
        "idle 16 min after a 15 min deadline: {body}"
    );
}

pub async fn a_session_stored_without_an_idle_deadline_gets_one<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let never = TestServer::start(app(layer(store.clone(), &clock).without_idle_timeout()).0).await;
    let cookie = start(&never).await;
    let idle = TestServer::start(app(layer(store, &clock).idle_timeout(30 * MIN)).0).await;
    clock.advance(365 * 24 * 60 * MIN);
    assert!(
        read(&idle, &cookie).await.contains("new: false"),
        "no deadline was stored"
    );
    clock.advance(31 * MIN);
    let body = read(&never, &cookie).await;
    assert!(
        body.contains("new: true"),
        "31 min idle after getting a 30 min deadline: {body}"
    );
}

pub async fn a_planted_cookie_before_or_after_the_real_one_does_not_shadow_it<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = ManualClock::new();
    let store = Counting::new(store);
    let server = TestServer::start(app(layer(store.clone(), &clock)).0).await;
    let victim = start(&server).await;
    let unknown = format!("session={}", SessionId::generate().unwrap().expose_token());
    for planted in [unknown.as_str(), "session=garbage"] {
        for cookie in [
            format!("{planted}; {victim}"),
            format!("{victim}; {planted}"),
        ] {
            let body = read(&server, &cookie).await;
            assert!(body.contains("new: false"), "{cookie}: {body}");
            let creates = store.counts.create.load(Ordering::SeqCst);
            let response = get(&server, "/visit", &cookie).await;
            assert!(
                set_cookies(&response).is_empty(),
                "the victim's cookie is not overwritten: {:?}",
                set_cookies(&response)
            );
            assert_eq!(store.counts.create.load(Ordering::SeqCst), creates);
        }
    }
    assert!(read(&server, &victim).await.starts_with("visits: 5 "));
}

pub async fn two_cookies_naming_live_sessions_are_both_ignored<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let server = TestServer::start(app(layer(store.clone(), &clock)).0).await;
    let attacker = start(&server).await;
    let victim = start(&server).await;
    for cookie in [
        format!("{attacker}; {victim}"),
        format!("{victim}; {attacker}"),
    ] {
        let body = read(&server, &cookie).await;
        assert!(body.contains("new: true"), "{cookie}: {body}");
        // A write starts a new session: nothing is written under either id.
        let response = get(&server, "/visit", &cookie).await;
        let issued = cookie_value(&response, "session").unwrap();
        assert!(!cookie.contains(&issued));
    }
    for cookie in [&attacker, &victim] {
        assert!(read(&server, cookie).await.starts_with("visits: 1 "));
        let id = SessionId::parse(cookie.trim_start_matches("session=")).unwrap();
        assert!(store.load(&id.digest(), now()).await.unwrap().is_some());
    }
}

pub async fn token_responses_are_not_cacheable_and_session_responses_vary<
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = ManualClock::new();
    let server = TestServer::start(app(layer(store, &clock)).0).await;
    let first = get(&server, "/visit", "").await;
    assert_eq!(first.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(first.headers()[VARY], "cookie");
    let cookie = format!("session={}", cookie_value(&first, "session").unwrap());
    let read_only = get(&server, "/read", &cookie).await;
    assert!(set_cookies(&read_only).is_empty());
    assert_eq!(
        read_only.headers().get(CACHE_CONTROL),
        None,
        "no token, no no-store"
    );
    assert_eq!(read_only.headers()[VARY], "cookie");
    let ignored = get(&server, "/ignore", &cookie).await;
    assert_eq!(
        ignored.headers().get(VARY),
        None,
        "the session was not used"
    );
    let logout = bare_client()
        .post(server.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.headers()[CACHE_CONTROL], "no-store");
}

pub async fn a_new_session_holding_only_defaults_is_not_stored<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let store = Counting::new(store);
    let server = TestServer::start(app(layer(store.clone(), &clock)).0).await;
    // `a` is 0 by default: writing 0 changes nothing worth storing.
    let response = get(&server, "/set-a/0", "").await;
    assert_eq!(response.status(), 200);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(store.counts.writes(), 0);
    let response = get(&server, "/set-a/1", "").await;
    assert!(cookie_value(&response, "session").is_some());
    assert_eq!(store.counts.create.load(Ordering::SeqCst), 1);
}

pub async fn a_dead_token_is_forgotten_without_a_store_write<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::new();
    let store = Counting::new(store);
    let lax = TestServer::start(app(layer(store.clone(), &clock).without_idle_timeout()).0).await;
    let expired = start(&lax).await;
    let server =
        TestServer::start(app(layer(store.clone(), &clock).absolute_timeout(60 * MIN)).0).await;
    clock.advance(61 * MIN);
    let writes = store.counts.writes();
    // Malformed, or naming a session expired under the current timeouts: dead for good.
    for cookie in ["session=garbage", expired.as_str()] {
        let response = get(&server, "/read", cookie).await;
        let removal = set_cookies(&response).join("\n");
        assert!(
            removal.contains("session=;") && removal.contains("Max-Age=0"),
            "{cookie}: {removal}"
        );
    }
    assert_eq!(store.counts.writes(), writes);
    // An id the store does not know may have just been renewed by a concurrent request:
    // it is not proof of a dead token, and is kept.
    let unknown = format!("session={}", SessionId::generate().unwrap().expose_token());
    assert!(set_cookies(&get(&server, "/read", &unknown).await).is_empty());
    // A handler that ignores the session does not look at the token at all.
    let response = get(&server, "/ignore", "session=garbage").await;
    assert!(set_cookies(&response).is_empty());
}
