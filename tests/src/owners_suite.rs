//! Every session of a user over real HTTP, against the `devices` example app itself
//! (`examples/src/devices.rs`), for every server store: several browsers (each a reqwest
//! client with its own cookie jar and User-Agent) log in as one user and one as another;
//! listing, revoking one (own sessions only), the others, or all (a password change),
//! logout, re-login, `on_deleted` counted per revoked session, `count()` and `clear()`.
//! Each store's test file runs them with [`owners_suite!`](macro@crate::owners_suite).
//! The WebSocket tests ([`socket_closes_when_another_browser_revokes_it`],
//! [`socket_closes_when_its_session_logs_out_elsewhere`]) take the URLs of the app serving
//! the socket and of the app revoking, so that two instances over one store can run them.
//! No timing assertions: everything is counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use examples::devices::{self, Account, SessionView};
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::{redirect, StatusCode, Url};
use session_runtime::{
    CookieStore, Key, LoadError, Session, SessionBackend, SessionDigest, SessionId, SessionLayer,
    Sessions,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::server::TestServer;

/// Runs every owner test as a named `#[tokio::test]`, given an async expression that makes
/// a fresh store; `owners_suite!(guarded: async { .. })` takes one making `(guard, store)`.
#[macro_export]
macro_rules! owners_suite {
    (guarded: $setup:expr) => {
        $crate::owners_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::owners_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::owners_suite!(@tests $setup;
            the_list_shows_each_session_of_the_user_with_the_current_one_marked
            a_session_without_an_owner_gets_401
            revoke_others_leaves_only_the_caller_and_the_others_start_afresh
            revoking_one_by_id_ends_only_that_session
            an_id_of_another_users_session_is_refused_and_stays_alive
            two_revocations_of_one_session_report_it_once
            logout_removes_the_session_from_the_list
            a_re_login_replaces_the_old_entry
            revoke_all_ends_every_session_and_the_callers_commit_writes_nothing
            count_and_clear_cover_every_session
            the_page_lists_the_sessions_escaped_and_its_buttons_revoke
            a_post_without_a_csrf_token_revokes_nothing
            websocket_follows_revocation_and_logout
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::owners_suite::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::owners_suite::$name(store).await;
            }
        )*
    };
}

/// A hang guard, not a performance bound: a socket that has said nothing for this long
/// is stuck, and the test fails saying so instead of hanging the suite.
const STUCK: Duration = Duration::from_secs(60);

/// The devices app over a store, with `on_deleted` counted, and the layer's [`Sessions`]
/// for admin calls outside a request.
pub struct OwnersApp {
    pub server: TestServer,
    pub sessions: Sessions<Account>,
    deleted: Arc<Mutex<Vec<SessionDigest>>>,
}

impl OwnersApp {
    /// The example's routes and layers over `store`, plus `POST /test/password-changed`
    /// (revokes every session of the caller's user, the caller's own included, then
    /// changes the caller's session: its commit must write nothing). Served with peer
    /// addresses recorded.
    pub async fn start(store: impl SessionBackend) -> Self {
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&deleted);
        let layer: SessionLayer<Account> =
            devices::sessions(store).on_deleted(move |id, _| sink.lock().unwrap().push(*id));
        let sessions = layer.sessions();
        let routes = devices::routes().route("/test/password-changed", post(password_changed));
        let server = TestServer::start_with_peers(devices::protect(routes, layer)).await;
        Self {
            server,
            sessions,
            deleted,
        }
    }

    pub fn base(&self) -> String {
        self.server.url("")
    }

    /// The sessions `on_deleted` was called for, in order.
    pub fn deleted(&self) -> Vec<SessionDigest> {
        self.deleted.lock().unwrap().clone()
    }

    /// A browser of this app sending `agent` as its User-Agent.
    pub fn browser(&self, agent: &str) -> Browser {
        Browser::new(&self.base(), agent)
    }
}

async fn password_changed(
    mut session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<String, StatusCode> {
    let user = session.user.clone().ok_or(StatusCode::UNAUTHORIZED)?;
    let revoked = sessions
        .revoke_all(&user)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    // The session is gone: this change must not bring it back.
    session.set_user(Some(format!("{user}-after")));
    Ok(revoked.to_string())
}

/// One browser: a cookie jar of its own, a User-Agent of its own, redirects not followed.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
    pub agent: String,
}

impl Browser {
    pub fn new(base: &str, agent: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .user_agent(agent)
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            jar,
            base: base.trim_end_matches('/').to_owned(),
            agent: agent.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The session token in this browser's jar, if any.
    pub fn token(&self) -> Option<String> {
        let url = Url::parse(&self.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "session").then(|| value.to_owned())
        })
    }

    /// The digest (hex) of the session in this browser's jar.
    pub fn digest(&self) -> String {
        let token = self.token().expect("the browser has a session cookie");
        SessionId::parse(&token).unwrap().digest().to_hex()
    }

    /// The same browser talking to another instance of the app (`base`): the same User-Agent
    /// and a copy of its session cookie.
    pub fn at(&self, base: &str) -> Self {
        let other = Self::new(base, &self.agent);
        if let Some(token) = self.token() {
            let url = Url::parse(&other.base).unwrap();
            other.jar.add_cookie_str(&format!("session={token}"), &url);
        }
        other
    }

    /// The session's CSRF token, for the `x-csrf-token` header.
    pub async fn csrf(&self) -> String {
        let response = self.client.get(self.url("/api/csrf")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        body["csrf_token"].as_str().unwrap().to_owned()
    }

    /// Logs in as `user` with the login form (its token rendered by `GET /`).
    pub async fn login(&self, user: &str) {
        let page = self.client.get(self.url("/")).send().await.unwrap();
        let page = page.text().await.unwrap();
        let token = hidden_token(&page);
        let response = self
            .client
            .post(self.url("/login"))
            .form(&[("username", user), ("csrf_token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {user}");
    }

    /// `GET /api/sessions`: the status and, on 200, the list.
    pub async fn list(&self) -> (StatusCode, Vec<SessionView>) {
        let response = self
            .client
            .get(self.url("/api/sessions"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status != StatusCode::OK {
            return (status, Vec::new());
        }
        (status, response.json().await.unwrap())
    }

    /// The ids of the listed sessions; fails unless the list answers 200.
    pub async fn ids(&self) -> Vec<String> {
        let (status, list) = self.list().await;
        assert_eq!(status, StatusCode::OK, "{} is logged in", self.agent);
        list.into_iter().map(|view| view.id).collect()
    }

    /// A JSON POST with the session's CSRF token in the header: the status and the body.
    pub async fn post(&self, path: &str) -> (StatusCode, String) {
        let token = self.csrf().await;
        let response = self
            .client
            .post(self.url(path))
            .header("x-csrf-token", token)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// A page's text; fails unless it answers 200.
    pub async fn page(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    /// Opens `GET /ws` with this browser's session cookie.
    pub async fn socket(&self) -> Socket {
        let url = self.url("/ws").replacen("http://", "ws://", 1);
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = self.token() {
            request
                .headers_mut()
                .insert("cookie", format!("session={token}").parse().unwrap());
        }
        request
            .headers_mut()
            .insert("user-agent", self.agent.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        Socket(socket)
    }
}

/// The first hidden `csrf_token` field of a page.
pub fn hidden_token(page: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("the page has a csrf_token field") + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// A WebSocket client of `GET /ws`.
pub struct Socket(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Socket {
    async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(STUCK, self.0.next())
            .await
            .expect("the socket is stuck")
            .map(Result::unwrap)
    }

    /// Sends `text` and returns the answer: the socket is open and served.
    pub async fn echo(&mut self, text: &str) -> String {
        self.0.send(Message::text(text)).await.unwrap();
        loop {
            match self.next().await {
                Some(Message::Text(answer)) => return answer.as_str().to_owned(),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected an echo of {text:?}, got {other:?}"),
            }
        }
    }

    /// Waits for the server's close frame and returns its code and reason.
    pub async fn closed(&mut self) -> (CloseCode, String) {
        loop {
            match self.next().await {
                Some(Message::Close(Some(frame))) => {
                    return (frame.code, frame.reason.as_str().to_owned())
                }
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

/// Three browsers of ada (A, B, C) and one of bob, logged in.
struct Cast {
    a: Browser,
    b: Browser,
    c: Browser,
    bob: Browser,
}

const AGENTS: [&str; 4] = [
    "Firefox/140.0 (ada's laptop)",
    "Chromium/141.0 (ada's phone)",
    "Safari/18.0 (ada's tablet)",
    "curl/8.0 (bob)",
];

async fn cast(app: &OwnersApp) -> Cast {
    let [a, b, c, bob] = AGENTS.map(|agent| app.browser(agent));
    for browser in [&a, &b, &c] {
        browser.login("ada").await;
    }
    bob.login("bob").await;
    Cast { a, b, c, bob }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn digests(browsers: &[&Browser]) -> Vec<String> {
    sorted(browsers.iter().map(|browser| browser.digest()).collect())
}

fn digest(hex: &str) -> SessionDigest {
    SessionDigest::parse_hex(hex).unwrap()
}

// ---------------------------------------------------------------------------------------

/// Each of ada's three browsers lists exactly her three sessions, with its own marked
/// current, each labelled with the User-Agent that browser sent and the peer address; bob
/// lists only his. The listing never shows a token: ids are digests.
pub async fn the_list_shows_each_session_of_the_user_with_the_current_one_marked(
    store: impl SessionBackend,
) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let ada = digests(&[&cast.a, &cast.b, &cast.c]);
    for browser in [&cast.a, &cast.b, &cast.c] {
        let (status, list) = browser.list().await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(sorted(list.iter().map(|v| v.id.clone()).collect()), ada);
        let current: Vec<_> = list.iter().filter(|view| view.current).collect();
        assert_eq!(current.len(), 1, "one current session: {list:?}");
        assert_eq!(current[0].id, browser.digest());
        assert_eq!(current[0].device.as_deref(), Some(browser.agent.as_str()));
        for view in &list {
            let owner = [&cast.a, &cast.b, &cast.c]
                .into_iter()
                .find(|b| b.digest() == view.id)
                .unwrap();
            assert_eq!(view.device.as_deref(), Some(owner.agent.as_str()));
            assert_eq!(view.address.as_deref(), Some("127.0.0.1"));
            assert!(view.created.ends_with('Z') && view.last_seen.ends_with('Z'));
            assert!(view.created <= view.last_seen, "{view:?}");
            assert!(view.expires.is_some(), "the app has an idle timeout");
        }
        // Never a token: not in the JSON, not even a prefix of one.
        let body = browser
            .client
            .get(browser.url("/api/sessions"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for other in [&cast.a, &cast.b, &cast.c, &cast.bob] {
            let token = other.token().unwrap();
            assert!(!body.contains(&token[..16]), "a token in {body}");
        }
    }
    let (status, list) = cast.bob.list().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.len(), 1);
    assert!(list[0].current);
    assert_eq!(list[0].device.as_deref(), Some(AGENTS[3]));
    assert_eq!(app.sessions.list(&"ada".to_owned()).await.unwrap().len(), 3);
    assert!(app
        .sessions
        .list(&"nobody".to_owned())
        .await
        .unwrap()
        .is_empty());
}

/// A visitor who never logged in (no session, then a session with no owner) gets 401 from
/// the list and every revoke route, and a socket is refused.
pub async fn a_session_without_an_owner_gets_401(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let visitor = app.browser("visitor");
    assert_eq!(visitor.list().await.0, StatusCode::UNAUTHORIZED);
    visitor.page("/").await; // now a session, with no owner
    assert!(visitor.token().is_some());
    assert_eq!(visitor.list().await.0, StatusCode::UNAUTHORIZED);
    let any = "0".repeat(64);
    for path in [
        "/api/sessions/revoke-others".to_owned(),
        format!("/api/sessions/{any}/revoke"),
    ] {
        assert_eq!(
            visitor.post(&path).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let handshake = visitor
        .client
        .get(visitor.url("/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status(), StatusCode::UNAUTHORIZED);
    assert!(app.deleted().is_empty());
}

/// "Log out my other devices": the caller alone is left; each other browser's next request
/// is a fresh session (401: no owner); bob is untouched; `on_deleted` ran once for each of
/// the two revoked sessions and for nothing else.
pub async fn revoke_others_leaves_only_the_caller_and_the_others_start_afresh(
    store: impl SessionBackend,
) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let (b, c) = (cast.b.digest(), cast.c.digest());
    let (status, body) = cast.a.post("/api/sessions/revoke-others").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, r#"{"revoked":2}"#);
    assert_eq!(cast.a.ids().await, vec![cast.a.digest()]);
    for browser in [&cast.b, &cast.c] {
        assert_eq!(browser.list().await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(cast.bob.ids().await.len(), 1);
    assert_eq!(
        sorted(app.deleted().iter().map(SessionDigest::to_hex).collect()),
        sorted(vec![b, c])
    );
}

/// Revoking one session by the id from the list ends that session only.
pub async fn revoking_one_by_id_ends_only_that_session(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let b = cast.b.digest();
    let (status, _) = cast.a.post(&format!("/api/sessions/{b}/revoke")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sorted(cast.a.ids().await),
        digests(&[&cast.a, &cast.c]),
        "B is gone, A and C stay"
    );
    assert_eq!(cast.b.list().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(cast.c.ids().await.len(), 2);
    assert_eq!(app.deleted(), vec![digest(&b)]);
    // Revoked already: nothing left to revoke.
    let (status, _) = cast.a.post(&format!("/api/sessions/{b}/revoke")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.deleted().len(), 1);
}

/// A user cannot revoke another user's session by its id: the answer is the 404 of an id
/// that does not exist, and the session stays alive and listed. A malformed id is a 400.
pub async fn an_id_of_another_users_session_is_refused_and_stays_alive(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let bob = cast.bob.digest();
    let (status, body) = cast.a.post(&format!("/api/sessions/{bob}/revoke")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(cast.bob.ids().await, vec![bob.clone()]);
    let unknown = "ab".repeat(32);
    assert_eq!(
        cast.a
            .post(&format!("/api/sessions/{unknown}/revoke"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for malformed in ["zz", "abc", &"g".repeat(64), &"a".repeat(65)] {
        assert_eq!(
            cast.a
                .post(&format!("/api/sessions/{malformed}/revoke"))
                .await
                .0,
            StatusCode::BAD_REQUEST,
            "{malformed}"
        );
    }
    // The session token itself is not an id either (ids are digests).
    let token = cast.bob.token().unwrap();
    let (status, _) = cast.a.post(&format!("/api/sessions/{token}/revoke")).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    assert_eq!(cast.bob.ids().await, vec![bob]);
    assert_eq!(cast.a.ids().await.len(), 3);
    assert!(app.deleted().is_empty());
}

/// Two browsers revoking the same session at once: one revokes it, the other finds nothing,
/// and `on_deleted` runs once.
pub async fn two_revocations_of_one_session_report_it_once(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let b = cast.b.digest();
    let path = format!("/api/sessions/{b}/revoke");
    let (first, second) = tokio::join!(cast.a.post(&path), cast.c.post(&path));
    let mut statuses = vec![first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::NOT_FOUND]);
    assert_eq!(app.deleted(), vec![digest(&b)]);
}

/// Logging out removes the session from the list (and reports it to `on_deleted` once).
pub async fn logout_removes_the_session_from_the_list(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let b = cast.b.digest();
    let (status, _) = cast.b.post("/logout").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(sorted(cast.a.ids().await), digests(&[&cast.a, &cast.c]));
    assert_eq!(cast.b.list().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.deleted(), vec![digest(&b)]);
}

/// Logging in again renews the id: the list shows the new id as current and not the old
/// one.
pub async fn a_re_login_replaces_the_old_entry(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let old = cast.a.digest();
    cast.a.login("ada").await;
    let new = cast.a.digest();
    assert_ne!(old, new);
    let (_, list) = cast.a.list().await;
    let ids = sorted(list.iter().map(|view| view.id.clone()).collect());
    assert_eq!(ids, digests(&[&cast.a, &cast.b, &cast.c]));
    assert!(!ids.contains(&old), "the old id is gone");
    assert!(list.iter().any(|view| view.id == new && view.current));
    // Logging in as someone else moves the session to that user's list.
    cast.c.login("bob").await;
    assert_eq!(cast.a.ids().await.len(), 2);
    assert_eq!(sorted(cast.bob.ids().await), digests(&[&cast.bob, &cast.c]));
}

/// `Sessions::revoke_all` (a password change) from one of the user's own requests ends
/// every session of the user, the caller's included: the caller's own commit afterwards
/// (the handler changed its session) writes nothing, so nothing of ada is left, under her
/// name or the new one; bob is untouched.
pub async fn revoke_all_ends_every_session_and_the_callers_commit_writes_nothing(
    store: impl SessionBackend,
) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let ada = digests(&[&cast.a, &cast.b, &cast.c]);
    let (status, body) = cast.a.post("/test/password-changed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "3");
    assert_eq!(
        sorted(app.deleted().iter().map(SessionDigest::to_hex).collect()),
        ada
    );
    assert!(app
        .sessions
        .list(&"ada".to_owned())
        .await
        .unwrap()
        .is_empty());
    assert!(
        app.sessions
            .list(&"ada-after".to_owned())
            .await
            .unwrap()
            .is_empty(),
        "the caller's commit wrote its session back"
    );
    assert_eq!(app.sessions.count().await.unwrap(), 1, "only bob's is left");
    for browser in [&cast.a, &cast.b, &cast.c] {
        assert_eq!(browser.list().await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(cast.bob.ids().await.len(), 1);
    // From admin code too: bob's single session.
    assert_eq!(app.sessions.revoke_all(&"bob".to_owned()).await.unwrap(), 1);
    assert_eq!(cast.bob.list().await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.deleted().len(), 4);
}

/// `count()` counts every live session (of every owner, and of none); `clear()` removes
/// them all, logging everyone out, without calling `on_deleted`.
pub async fn count_and_clear_cover_every_session(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    assert_eq!(app.sessions.count().await.unwrap(), 0);
    let cast = cast(&app).await;
    assert_eq!(app.sessions.count().await.unwrap(), 4);
    let visitor = app.browser("visitor");
    visitor.page("/").await; // a session with a CSRF secret and no owner
    assert_eq!(app.sessions.count().await.unwrap(), 5);
    assert_eq!(app.sessions.clear().await.unwrap(), 5);
    assert_eq!(app.sessions.count().await.unwrap(), 0);
    for browser in [&cast.a, &cast.b, &cast.c, &cast.bob] {
        assert_eq!(browser.list().await.0, StatusCode::UNAUTHORIZED);
    }
    assert!(app
        .sessions
        .list(&"ada".to_owned())
        .await
        .unwrap()
        .is_empty());
    assert!(app.deleted().is_empty(), "clear() does not call on_deleted");
}

/// `GET /account/sessions` shows the same sessions, with the device labels escaped, a
/// revoke button (a form with the CSRF token) for each session but the current one; a
/// button's form post revokes that session and leads back to the page.
pub async fn the_page_lists_the_sessions_escaped_and_its_buttons_revoke(
    store: impl SessionBackend,
) {
    let app = OwnersApp::start(store).await;
    let a = app.browser("Firefox/140.0");
    let b = app.browser("Evil <script>alert(1)</script> & \"quotes\"");
    a.login("ada").await;
    b.login("ada").await;
    let page = a.page("/account/sessions").await;
    assert!(page.contains("2 sessions"), "{page}");
    assert!(!page.contains("<script>alert"), "not escaped: {page}");
    assert!(
        page.contains("Evil &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
        "{page}"
    );
    let forms = page.matches("/revoke\"><input type=\"hidden\" name=\"csrf_token\"");
    assert_eq!(
        forms.count(),
        1,
        "a button for the other session only: {page}"
    );
    assert!(page.contains(&format!("action=\"/api/sessions/{}/revoke\"", b.digest())));
    assert!(page.contains(&format!("data-id=\"{}\"", a.digest())));
    // Press the button: the form's own fields, as a browser sends them.
    let response = a
        .client
        .post(a.url(&format!("/api/sessions/{}/revoke", b.digest())))
        .form(&[("csrf_token", hidden_token(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/account/sessions");
    let page = a.page("/account/sessions").await;
    assert!(page.contains("1 sessions"), "{page}");
    assert_eq!(b.list().await.0, StatusCode::UNAUTHORIZED);
    // Logged out, the page sends the visitor to the login form.
    let response = b
        .client
        .get(b.url("/account/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

/// Every POST is CSRF-checked, the JSON API's included: without the token nothing is
/// revoked (403).
pub async fn a_post_without_a_csrf_token_revokes_nothing(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    let cast = cast(&app).await;
    let b = cast.b.digest();
    for path in [
        "/api/sessions/revoke-others".to_owned(),
        format!("/api/sessions/{b}/revoke"),
        "/logout".to_owned(),
    ] {
        let response = cast.a.client.post(cast.a.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(cast.a.ids().await.len(), 3);
    assert!(app.deleted().is_empty());
}

/// The WebSocket tests of [`socket_closes_when_another_browser_revokes_it`] and
/// [`socket_closes_when_its_session_logs_out_elsewhere`] against one app over `store`.
pub async fn websocket_follows_revocation_and_logout(store: impl SessionBackend) {
    let app = OwnersApp::start(store).await;
    socket_closes_when_another_browser_revokes_it(&app.base(), &app.base()).await;
    socket_closes_when_its_session_logs_out_elsewhere(&app.base(), &app.base()).await;
}

/// A socket opened with a session (on the app at `socket_base`) is closed by the server,
/// with a close frame saying why, when another browser of the same user logs out its
/// other devices (on the app at `revoking_base`: the same app, or another instance over
/// the same store); the revoking browser's own socket, and another user's, stay open and
/// answer. Each call uses users of its own.
pub async fn socket_closes_when_another_browser_revokes_it(socket_base: &str, revoking_base: &str) {
    let user = format!("ws-{}", SessionId::generate().unwrap().digest().to_hex());
    let revoked = Browser::new(socket_base, "Firefox (revoked)");
    let keeper = Browser::new(revoking_base, "Chromium (keeper)");
    let other = Browser::new(socket_base, "Safari (someone else)");
    revoked.login(&user).await;
    keeper.login(&user).await;
    other.login(&format!("{user}-other")).await;
    let mut revoked_socket = revoked.socket().await;
    let mut keeper_socket = keeper.socket().await;
    let mut other_socket = other.socket().await;
    // Both served before the revocation.
    assert_eq!(revoked_socket.echo("hello").await, "echo: hello");
    assert_eq!(keeper_socket.echo("hello").await, "echo: hello");

    let (status, body) = keeper.post("/api/sessions/revoke-others").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"revoked":1}"#)
    );
    let (code, reason) = revoked_socket.closed().await;
    assert_eq!(code, CloseCode::Policy);
    assert_eq!(reason, devices::ENDED_REASON);
    assert_eq!(keeper_socket.echo("still here").await, "echo: still here");
    assert_eq!(other_socket.echo("me too").await, "echo: me too");
}

/// A socket opened with a session (on the app at `socket_base`) is closed by the server
/// when that same session logs out in another request (sent to the app at `other_base`).
pub async fn socket_closes_when_its_session_logs_out_elsewhere(
    socket_base: &str,
    other_base: &str,
) {
    let user = format!("ws-{}", SessionId::generate().unwrap().digest().to_hex());
    let browser = Browser::new(socket_base, "Firefox (logs out)");
    let bystander = Browser::new(socket_base, "Chromium (stays)");
    browser.login(&user).await;
    bystander.login(&user).await;
    let mut socket = browser.socket().await;
    let mut bystander_socket = bystander.socket().await;
    assert_eq!(socket.echo("hello").await, "echo: hello");
    let (status, _) = browser.at(other_base).post("/logout").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (code, reason) = socket.closed().await;
    assert_eq!(code, CloseCode::Policy);
    assert_eq!(reason, devices::ENDED_REASON);
    assert_eq!(
        bystander_socket.echo("still here").await,
        "echo: still here"
    );
}

/// The cookie store keeps sessions in clients' cookies: none can be listed, revoked one by
/// one, counted, cleared, watched or loaded: every call fails with
/// [`LoadError::ClientSide`], outside a request and inside one.
pub async fn the_cookie_store_cannot_list_or_revoke() {
    let layer = devices::sessions(CookieStore::new(Key::generate().unwrap()));
    let sessions = layer.sessions();
    let ada = "ada".to_owned();
    let id = SessionId::generate().unwrap();
    let digest = id.digest();
    let client_side = |result: Result<(), LoadError>| {
        assert!(matches!(result, Err(LoadError::ClientSide)), "{result:?}");
    };
    client_side(sessions.list(&ada).await.map(drop));
    client_side(sessions.revoke(&digest).await.map(drop));
    client_side(sessions.revoke_of(&ada, &digest).await.map(drop));
    client_side(sessions.revoke_all(&ada).await.map(drop));
    client_side(sessions.count().await.map(drop));
    client_side(sessions.clear().await.map(drop));
    client_side(sessions.watch(&digest).await.map(drop));
    client_side(sessions.load(&id).await.map(drop));

    // In a request: the app's list answers the store error (500), it does not pretend.
    let server = TestServer::start_with_peers(devices::protect(devices::routes(), layer)).await;
    let browser = Browser::new(&server.url(""), "Firefox");
    browser.login("ada").await;
    assert_eq!(
        browser.list().await.0,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the cookie store cannot list"
    );
    let (status, _) = browser.post("/api/sessions/revoke-others").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}
