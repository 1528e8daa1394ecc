//! The routers of the end-to-end cases, all called in process through `tower::ServiceExt`.
//!
//! Every session router has the same four routes, so that a case differs only in who
//! manages the session:
//!
//! | route | handler |
//! |---|---|
//! | `/plain` | ignores the session (the "layer present but unused" case) |
//! | `/read` | reads two fields |
//! | `/write` | increments `visits` (one small field changes) |
//! | `/login` | fills every field (used once, to make the session the other routes use) |
//!
//! The baseline router has the same routes and no session layer; every case's baseline is
//! its `/plain` route called with the same request (cookie included).
//!
//! The cookie codec cases use the same four routes over a session of a chosen size
//! ([`Blob`]): `/read` reads `user_id` (the layer opens the cookie), `/write` increments it
//! (the layer opens the cookie and seals it again, at the same size), `/plain` ignores the
//! session (nothing is opened) and `/login` stores the whole blob.

use axum::body::Body;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use session_runtime::{Session, SessionLayer};
use tower::ServiceExt as _;

use crate::data::{logged_in, BenchSession, Blob, PeerBlob, PeerSession, PEER_KEY};

/// The cookie the cookie peer keeps its sessions in (ours use the layer's default name).
pub const COOKIE_NAME: &str = "session";

async fn plain() -> &'static str {
    "hello"
}

/// The no-session baseline: the same routes, no layer, no session.
pub fn baseline() -> Router {
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(plain))
        .route("/write", get(plain))
        .route("/login", get(plain))
}

/// The baseline behind a layer that does nothing (`tower::layer::util::Identity`): the floor
/// of what any layer added with `Router::layer` costs in axum (per-route wrapping and a boxed
/// future), before the layer does any work.
pub fn identity_layered() -> Router {
    baseline().layer(tower::layer::util::Identity::new())
}

// ---------------------------------------------------------------------------------------
// Ours: the same routes for every store.

async fn ours_read(session: Session<BenchSession>) -> String {
    format!("{} #{}", session.username, session.visits)
}

async fn ours_write(mut session: Session<BenchSession>) -> String {
    session.set_visits(session.visits + 1);
    format!("{} #{}", session.username, session.visits)
}

async fn ours_login(mut session: Session<BenchSession>) -> &'static str {
    let data = BenchSession::from(logged_in());
    session.set_user_id(data.user_id);
    session.set_username(data.username);
    session.set_visits(data.visits);
    session.set_theme(data.theme);
    session.set_cart(data.cart);
    "welcome"
}

/// Our routes behind `layer`: any store (memory, cookie, Redis).
pub fn ours(layer: SessionLayer<BenchSession>) -> Router {
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(ours_read))
        .route("/write", get(ours_write))
        .route("/login", get(ours_login))
        .layer(layer)
}

/// Our codec routes over a [`Blob`] session behind `layer` (a `CookieStore`); `/login`
/// stores `blob`.
pub fn ours_blob(layer: SessionLayer<Blob>, blob: Blob) -> Router {
    async fn read(session: Session<Blob>) -> String {
        session.user_id.to_string()
    }
    async fn write(mut session: Session<Blob>) -> String {
        let next = session.user_id.wrapping_add(1);
        session.set_user_id(next);
        next.to_string()
    }
    let login = move |mut session: Session<Blob>| {
        let blob = blob.clone();
        async move {
            session.set_user_id(blob.user_id);
            session.set_note(blob.note);
            "welcome"
        }
    };
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .layer(layer)
}

// ---------------------------------------------------------------------------------------
// tower-sessions: the same routes, with a typed struct under one key.

async fn peer_data(session: &tower_sessions::Session) -> Result<PeerSession, StatusCode> {
    match session.get::<PeerSession>(PEER_KEY).await {
        Ok(data) => Ok(data.unwrap_or_default()),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn peer_read(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let data = peer_data(&session).await?;
    Ok(format!("{} #{}", data.username, data.visits))
}

async fn peer_write(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let mut data = peer_data(&session).await?;
    data.visits += 1;
    session
        .insert(PEER_KEY, &data)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!("{} #{}", data.username, data.visits))
}

async fn peer_login(session: tower_sessions::Session) -> Result<&'static str, StatusCode> {
    session
        .insert(PEER_KEY, logged_in())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("welcome")
}

/// tower-sessions' routes behind its `SessionManagerLayer` over `store`.
pub fn peer<S: tower_sessions::SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(peer_read))
        .route("/write", get(peer_write))
        .route("/login", get(peer_login))
        .layer(tower_sessions::SessionManagerLayer::new(store))
}

/// tower-sessions' routes over a [`PeerBlob`] under [`PEER_KEY`] behind its
/// `SessionManagerLayer` over `store`: the same routes as [`ours_blob`] (`/write` changes
/// `user_id`; tower-sessions writes the whole record again); `/login` stores `blob`.
pub fn peer_blob<S: tower_sessions::SessionStore + Clone>(store: S, blob: PeerBlob) -> Router {
    async fn data(session: &tower_sessions::Session) -> Result<PeerBlob, StatusCode> {
        match session.get::<PeerBlob>(PEER_KEY).await {
            Ok(data) => Ok(data.unwrap_or_default()),
            Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
    async fn read(session: tower_sessions::Session) -> Result<String, StatusCode> {
        Ok(data(&session).await?.user_id.to_string())
    }
    async fn write(session: tower_sessions::Session) -> Result<String, StatusCode> {
        let mut blob = data(&session).await?;
        blob.user_id = blob.user_id.wrapping_add(1);
        session
            .insert(PEER_KEY, &blob)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(blob.user_id.to_string())
    }
    let login = move |session: tower_sessions::Session| {
        let blob = blob.clone();
        async move {
            session
                .insert(PEER_KEY, &blob)
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            Ok::<_, StatusCode>("welcome")
        }
    };
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .layer(tower_sessions::SessionManagerLayer::new(store))
}

// ---------------------------------------------------------------------------------------
// The cookie peer: axum-extra's PrivateCookieJar (AES-256-GCM) holding the data as JSON.

fn jar_data<T: serde::de::DeserializeOwned + Default>(jar: &PrivateCookieJar) -> T {
    jar.get(COOKIE_NAME)
        .and_then(|cookie| serde_json::from_str(cookie.value()).ok())
        .unwrap_or_default()
}

fn jar_cookie<T: serde::Serialize>(data: &T) -> Result<Cookie<'static>, StatusCode> {
    let json = serde_json::to_string(data).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    // The same attributes as our default cookie.
    Ok(Cookie::build((COOKIE_NAME, json))
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .build())
}

async fn jar_read(jar: PrivateCookieJar) -> String {
    let data: PeerSession = jar_data(&jar);
    format!("{} #{}", data.username, data.visits)
}

async fn jar_write(jar: PrivateCookieJar) -> Result<(PrivateCookieJar, String), StatusCode> {
    let mut data: PeerSession = jar_data(&jar);
    data.visits += 1;
    let body = format!("{} #{}", data.username, data.visits);
    Ok((jar.add(jar_cookie(&data)?), body))
}

async fn jar_login(jar: PrivateCookieJar) -> Result<(PrivateCookieJar, &'static str), StatusCode> {
    Ok((jar.add(jar_cookie(&logged_in())?), "welcome"))
}

/// The same routes keeping the session in a private (encrypted) cookie with axum-extra.
pub fn peer_cookie(key: axum_extra::extract::cookie::Key) -> Router {
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(jar_read))
        .route("/write", get(jar_write))
        .route("/login", get(jar_login))
        .with_state(key)
}

/// The cookie peer's codec routes over the same data as [`ours_blob`], as JSON; `/login`
/// stores `blob`.
pub fn peer_blob_cookie(key: axum_extra::extract::cookie::Key, blob: PeerBlob) -> Router {
    async fn read(jar: PrivateCookieJar) -> String {
        jar_data::<PeerBlob>(&jar).user_id.to_string()
    }
    async fn write(jar: PrivateCookieJar) -> Result<(PrivateCookieJar, String), StatusCode> {
        let mut data: PeerBlob = jar_data(&jar);
        data.user_id = data.user_id.wrapping_add(1);
        let body = data.user_id.to_string();
        Ok((jar.add(jar_cookie(&data)?), body))
    }
    let login = move |jar: PrivateCookieJar| {
        let cookie = jar_cookie(&blob);
        async move { Ok::<_, StatusCode>((jar.add(cookie?), "welcome")) }
    };
    Router::new()
        .route("/plain", get(plain))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/login", get(login))
        .with_state(key)
}

// ---------------------------------------------------------------------------------------
// Requests.

/// A `GET path` request carrying `cookie` as its `Cookie` header.
#[must_use]
pub fn request(path: &str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = axum::http::Uri::try_from(path).unwrap_or_default();
    if let Some(cookie) = cookie {
        request.headers_mut().insert(COOKIE, cookie.clone());
    }
    request
}

/// Calls `router` in process, as a server would (a clone per request).
pub async fn call(router: &Router, request: Request<Body>) -> Response<Body> {
    match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
}

/// Why a router could not be prepared for a case.
#[derive(Debug)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// What `/read` answers on the bench session once logged in.
pub const LOGGED_IN_READ: &str = "ada lovelace #1";

/// Logs in on `router` and returns the `Cookie` header that carries the new session, after
/// checking that `/read` sees it.
///
/// # Errors
/// If login sets no cookie or the session does not read back: the case would measure
/// nothing useful.
pub async fn login(router: &Router) -> Result<HeaderValue, SetupError> {
    login_expecting(router, LOGGED_IN_READ).await
}

/// [`login`] on a router whose `/read` answers `expected` once logged in.
///
/// # Errors
/// As [`login`].
pub async fn login_expecting(router: &Router, expected: &str) -> Result<HeaderValue, SetupError> {
    let response = call(router, request("/login", None)).await;
    let pairs: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .collect();
    if response.status() != StatusCode::OK || pairs.is_empty() {
        return Err(SetupError(format!(
            "login answered {} with no session cookie",
            response.status()
        )));
    }
    let cookie = HeaderValue::from_str(&pairs.join("; "))
        .map_err(|error| SetupError(format!("bad session cookie: {error}")))?;
    let body = body_text(call(router, request("/read", Some(&cookie))).await).await;
    if body != expected {
        return Err(SetupError(format!(
            "the session did not read back: {body:?}"
        )));
    }
    Ok(cookie)
}

/// The body of `response` as text (empty if it is not UTF-8).
pub async fn body_text(response: Response<Body>) -> String {
    match axum::body::to_bytes(response.into_body(), 1 << 20).await {
        Ok(bytes) => String::from_utf8(bytes.to_vec()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}
