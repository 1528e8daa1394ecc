//! Review of fab541b / d21f3ab: each test asserts the behaviour a finding claims. A test that
//! PASSES here demonstrates the bug (the assertions describe the wrong behaviour).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::routing;
use axum::Router;
use integration_tests::app::{app, TestSession};
use integration_tests::counting::Counting;
use integration_tests::hardening::{get, layer, read, start_at};
use integration_tests::migration::{Profile, ProfileV1};
use integration_tests::server::{bare_client, browser, cookie_value, set_cookies, TestServer};
use session_runtime::clock::ManualClock;
use session_runtime::{MemoryStore, Session, SessionLayer};

const MIN: Duration = Duration::from_secs(60);

/// A memory-store test server with a manual clock.
async fn memory_server() -> TestServer {
    TestServer::start(app(layer(MemoryStore::new(), &ManualClock::new())).0).await
}

/// More cookies of the session's name than are looked at (4): none is trusted, so planting
/// three garbage cookies in front of a live one cannot push the victim's cookie out of
/// sight and select the attacker's session.
#[tokio::test]
async fn more_than_four_session_cookies_trust_none() {
    let server = memory_server().await;
    let attacker = start_at(&server, "/set-a/666").await;
    let victim = start_at(&server, "/set-a/1").await;
    // Sanity: with both live and nothing else, neither is used.
    let body = read(&server, &format!("{attacker}; {victim}")).await;
    assert!(body.contains("new: true"), "{body}");
    // Browsers send longer paths first: a sibling subdomain plants Path=/x, /x/, /x/y ...
    let cookie = format!("session=g1; session=g2; session=g3; {attacker}; {victim}");
    let body = read(&server, &cookie).await;
    assert!(body.contains("new: true"), "no session is trusted: {body}");
}

/// Four garbage cookies in front of the victim's live one: a fresh session, and no removal
/// cookie that would erase the victim's real one.
#[tokio::test]
async fn planted_garbage_cookies_never_get_the_victims_cookie_removed() {
    let server = memory_server().await;
    let victim = start_at(&server, "/set-a/1").await;
    let cookie = format!("session=g1; session=g2; session=g3; session=g4; {victim}");
    let response = get(&server, "/read", &cookie).await;
    let removal = set_cookies(&response).join("\n");
    let body = response.text().await.unwrap();
    assert!(body.contains("new: true"), "{body}");
    assert!(removal.is_empty(), "{removal}");
}

async fn visit_v3(mut session: Session<Profile>) -> String {
    session.set_visits(session.visits + 1);
    format!("visits={}", session.visits)
}

async fn read_v3(session: Session<Profile>) -> String {
    format!("visits={} new={}", session.visits, session.is_new())
}

async fn read_v1(session: Session<ProfileV1>) -> String {
    format!("visits={} new={}", session.visits, session.is_new())
}

/// A record this deploy cannot decode (a newer schema: rolling deploy or rollback) is not a
/// dead token: a read-only request to the old deploy keeps the cookie, and the newer
/// deploy still serves the session.
#[tokio::test]
async fn an_undecodable_record_keeps_its_cookie_for_the_deploy_that_can_read_it() {
    let store = Counting::new(MemoryStore::new());
    let v3 = TestServer::start(
        Router::new()
            .route("/visit", routing::get(visit_v3))
            .route("/read", routing::get(read_v3))
            .layer(SessionLayer::<Profile>::new(store.clone()).secure(false)),
    )
    .await;
    let v1 = TestServer::start(
        Router::new()
            .route("/read", routing::get(read_v1))
            .layer(SessionLayer::<ProfileV1>::new(store.clone()).secure(false)),
    )
    .await;
    let client = browser();
    client.get(v3.url("/visit")).send().await.unwrap();
    let response = client.get(v1.url("/read")).send().await.unwrap();
    let removal = set_cookies(&response).join("\n");
    assert!(removal.is_empty(), "{removal}");
    assert_eq!(
        store.counts.writes(),
        1,
        "no store write: the session is still there"
    );
    let body = client
        .get(v3.url("/read"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "visits=1 new=false");
}

/// After `without_idle_timeout()`, a session stored with an idle deadline gets the deadline
/// the current configuration gives (written once), so an active reader is not logged out
/// at the old idle deadline.
#[tokio::test]
async fn dropping_the_idle_timeout_keeps_an_active_reader() {
    let clock = ManualClock::new();
    let store = MemoryStore::new();
    let before =
        TestServer::start(app(layer(store.clone(), &clock).idle_timeout(30 * MIN)).0).await;
    let cookie = start_at(&before, "/visit").await;
    let after = TestServer::start(app(layer(store, &clock).without_idle_timeout()).0).await;
    let mut last = String::new();
    for _ in 0..4 {
        clock.advance(10 * MIN);
        last = read(&after, &cookie).await;
    }
    assert!(last.contains("new: false"), "used every 10 minutes: {last}");
}

/// The documented limit of tightening an idle timeout (SECURITY.md): the last use is not
/// stored, so at the first request after the change a deadline is cut to now plus the new
/// idle timeout; a session idle for less than the old timeout is admitted that once.
#[tokio::test]
async fn a_tightened_idle_timeout_cuts_from_the_first_request_after_the_change() {
    let clock = ManualClock::new();
    let store = MemoryStore::new();
    let day =
        TestServer::start(app(layer(store.clone(), &clock).idle_timeout(24 * 60 * MIN)).0).await;
    let cookie = start_at(&day, "/visit").await;
    clock.advance(5 * 60 * MIN);
    let strict = TestServer::start(app(layer(store, &clock).idle_timeout(30 * MIN)).0).await;
    let body = read(&strict, &cookie).await;
    assert!(body.contains("new: false"), "admitted once, cut: {body}");
    clock.advance(31 * MIN);
    let body = read(&strict, &cookie).await;
    assert!(body.contains("new: true"), "{body}");
}

/// Two instances whose clocks differ by less than a quarter of the idle timeout do not make
/// every read write a touch.
#[tokio::test]
async fn clock_skew_between_instances_does_not_make_every_read_write() {
    let ahead = ManualClock::new();
    let behind = ManualClock::at_ms(ahead.now_ms_for_test() - 9 * 60_000);
    let store = Counting::new(MemoryStore::new());
    let idle = 40 * MIN;
    let a = TestServer::start(app(layer(store.clone(), &ahead).idle_timeout(idle)).0).await;
    let b = TestServer::start(app(layer(store.clone(), &behind).idle_timeout(idle)).0).await;
    let cookie = start_at(&a, "/visit").await;
    let touches = store.counts.touch.load(Ordering::SeqCst);
    for _ in 0..5 {
        ahead.advance(Duration::from_secs(1));
        behind.advance(Duration::from_secs(1));
        assert!(read(&b, &cookie).await.contains("new: false"));
        assert!(read(&a, &cookie).await.contains("new: false"));
    }
    assert_eq!(store.counts.touch.load(Ordering::SeqCst) - touches, 0);
}

trait NowForTest {
    fn now_ms_for_test(&self) -> u64;
}
impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> u64 {
        session_runtime::clock::Clock::now_ms(self)
    }
}

/// A cookie of another name with non-ASCII bytes does not hide the session cookie in the
/// same header line.
#[tokio::test]
async fn a_non_ascii_cookie_of_another_name_does_not_hide_the_session_cookie() {
    let server = memory_server().await;
    let victim = start_at(&server, "/set-a/1").await;
    let mut value = b"planted=\xc3\xa9; ".to_vec();
    value.extend_from_slice(victim.as_bytes());
    let header = http::HeaderValue::from_bytes(&value).unwrap();
    let body = bare_client()
        .get(server.url("/read"))
        .header("cookie", header)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("new: false") && body.contains("a: 1"),
        "{body}"
    );
}

/// The documented cost of refusing ambiguous cookies (SECURITY.md): with a cookie name an
/// attacker can plant (not `__Host-`), one planted live cookie makes every request of the
/// victim ambiguous, so the victim cannot stay logged in until the planted cookie is gone.
/// The victim is never put in the attacker's session.
#[tokio::test]
async fn a_planted_live_cookie_denies_service_but_never_shares_a_session() {
    let server = memory_server().await;
    let attacker = start_at(&server, "/set-a/666").await;
    let victim = start_at(&server, "/set-a/1").await;
    let login = bare_client()
        .post(server.url("/login/alice"))
        .header("cookie", format!("{attacker}; {victim}"))
        .send()
        .await
        .unwrap();
    let fresh = format!("session={}", cookie_value(&login, "session").unwrap());
    // The browser replaced the victim's cookie (same name/domain/path) with `fresh`.
    let body = read(&server, &format!("{attacker}; {fresh}")).await;
    assert!(
        body.contains("user: guest") && body.contains("new: true"),
        "{body}"
    );
}

/// Cookie store: two sealed cookies of the same session (left at two paths or domains after a
/// cookie-attribute change) are one session, not two: the user stays logged in, in the seal
/// that lasts longer (the later one: the clock moves a minute between the two writes, so the
/// two idle deadlines differ; on the wall clock two requests can fall in one millisecond).
#[tokio::test]
async fn two_seals_of_one_cookie_store_session_are_one_session() {
    let key = session_runtime::Key::from_bytes(&[7; 64]).unwrap();
    let clock = ManualClock::new();
    let layer = SessionLayer::<TestSession>::new(session_runtime::CookieStore::new(key))
        .secure(false)
        .clock(clock.clone());
    let server = TestServer::start(app(layer).0).await;
    let first = start_at(&server, "/visit").await;
    clock.advance(MIN);
    let second = get(&server, "/visit", &first).await;
    let second = format!("session={}", cookie_value(&second, "session").unwrap());
    assert_ne!(first, second);
    let body = read(&server, &format!("{first}; {second}")).await;
    assert!(
        body.starts_with("visits: 2 ") && body.contains("new: false"),
        "{body}"
    );
}

/// A read still carrying the pre-login token, served after the login moved the session,
/// gets no removal cookie: it would erase the login's new cookie if its response reached
/// the browser last. An unknown id is not proof of a dead token.
#[tokio::test]
async fn a_read_racing_a_login_never_erases_the_new_login_cookie() {
    let server = memory_server().await;
    let before = start_at(&server, "/visit").await;
    let login = bare_client()
        .post(server.url("/login/alice"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    let after = cookie_value(&login, "session").unwrap();
    assert!(!before.contains(&after));
    // The XHR sent before the login response arrived, served after the take:
    let late = get(&server, "/read", &before).await;
    let removal = set_cookies(&late).join("\n");
    assert!(removal.is_empty(), "{removal}");
}
