//! Every session of a user: log in from several browsers, list them ("your devices"),
//! revoke one, all the others, or log out; a WebSocket that the server closes when its
//! session ends.
//!
//! A demo of the session API, not of authentication: anyone logs in under any name,
//! without a password.
//!
//! Routes:
//! - `GET /`: the login form (or who is logged in, with links).
//! - `POST /login` (form field `username`): renews the session id and sets the owner.
//! - `GET /api/sessions`: the caller's sessions as JSON, the most recently used first (see
//!   [`SessionView`]); 401 when the session has no owner.
//! - `POST /api/sessions/revoke-others`: revokes every other session of the caller.
//! - `POST /api/sessions/{id}/revoke`: revokes one of the caller's sessions by its id (the
//!   digest's hex from the list); 404 when the caller has no session with that id (one of
//!   another user's included), 400 when the id is malformed.
//! - `POST /logout`: ends the session.
//! - `GET /account/sessions`: the same list as an HTML page, with a revoke button per
//!   session (forms posting to the routes above).
//! - `GET /api/csrf`: the session's CSRF token for JSON clients (`{"csrf_token": ".."}`).
//! - `GET /ws`: a WebSocket (logged in only) that answers each text message with
//!   `echo: <message>` and is closed by the server, with code 1008 and reason
//!   [`ENDED_REASON`], when its session ends (revoked, logged out, renewed, expired).
//!
//! CSRF: every POST is checked by [`CsrfLayer`], the API's included: its cookie-carried
//! session makes it as exposed to cross-site requests as the forms. HTML forms carry the
//! token in a hidden `csrf_token` field; JSON clients send it in the `x-csrf-token`
//! header, read from `GET /api/csrf` (a same-origin read: another site's page cannot read
//! the answer). Logging in needs a token too (against login CSRF): `GET /` renders it.
//!
//! A POST whose body is a form (the page's buttons) is answered with a 303 back to the
//! page; any other POST with JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use session_runtime::client::ClientAddress;
use session_runtime::store::RemovalWatch;
use session_runtime::{
    CsrfLayer, CsrfToken, Databag, LoadError, Session, SessionBackend, SessionDigest, SessionInfo,
    SessionLayer, Sessions,
};

use crate::escape_html;

/// The reason of the close frame a WebSocket gets when its session ends.
pub const ENDED_REASON: &str = "session ended";

/// What the app keeps about a visitor: who is logged in. The owner field is what
/// [`Sessions`] lists and revokes by.
#[derive(Databag, Debug)]
pub struct Account {
    /// The user name, set by `POST /login`; `None` before.
    #[databag(owner)]
    pub user: Option<String>,
}

/// One session as `GET /api/sessions` shows it. Times are RFC 3339 in UTC with
/// milliseconds (`2026-11-24T05:03:54.123Z`, see [`rfc3339`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The session's fingerprint: its digest in hex (never the token), the id the revoke
    /// route takes.
    pub id: String,
    /// Whether it is the session of the request that listed it.
    pub current: bool,
    /// When it was started: its first visit (renewal at login keeps the creation time).
    pub created: String,
    /// When it was last used, at the layer's touch granularity.
    pub last_seen: String,
    /// When it expires if not used again.
    pub expires: Option<String>,
    /// The User-Agent of the browser that logged in (truncated).
    pub device: Option<String>,
    /// The address of the client that logged in.
    pub address: Option<String>,
}

impl SessionView {
    /// What the API shows of `info`.
    #[must_use]
    pub fn of(info: &SessionInfo) -> Self {
        Self {
            id: info.id.to_hex(),
            current: info.current,
            created: rfc3339(info.created),
            last_seen: rfc3339(info.last_seen),
            expires: info.expires.map(rfc3339),
            device: info.device.clone(),
            address: info.address.map(|address| address.to_string()),
        }
    }
}

/// `time` as RFC 3339 in UTC with milliseconds, e.g. `2026-11-24T05:03:54.123Z` (times
/// before 1970 print as the epoch).
#[must_use]
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// What a handler answers when it cannot go on.
enum Refusal {
    /// The session has no owner.
    NotLoggedIn,
    /// The store failed.
    Store(LoadError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::NotLoggedIn => (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({ "error": "not logged in" })),
            )
                .into_response(),
            // A store that keeps no index (the cookie store) is the app's mistake: 500.
            Self::Store(error @ LoadError::ClientSide) => {
                tracing::error!(%error, "this store cannot list or revoke sessions");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            // Down or slow: try again later, as the layer answers.
            Self::Store(error) => {
                tracing::error!(%error, "the session store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": "the session store failed" })),
                )
                    .into_response()
            }
        }
    }
}

impl From<LoadError> for Refusal {
    fn from(error: LoadError) -> Self {
        Self::Store(error)
    }
}

fn owner(session: &Session<Account>) -> Result<String, Refusal> {
    session.user.clone().ok_or(Refusal::NotLoggedIn)
}

/// Whether the request was a form post (a button of the page): it gets a redirect back.
fn from_a_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
}

fn answer(headers: &HeaderMap, json: serde_json::Value) -> Response {
    if from_a_form(headers) {
        Redirect::to("/account/sessions").into_response()
    } else {
        Json(json).into_response()
    }
}

// `CsrfToken` comes before `Session`: it reads the session while no handle is out.
async fn index(token: CsrfToken<Account>, session: Session<Account>) -> Html<String> {
    let token = token.as_str();
    let body = match &session.user {
        Some(user) => format!(
            r#"<p>Logged in as <b id="user">{user}</b>.</p>
<p><a href="/account/sessions">Your sessions</a></p>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{token}"><button>Log out</button></form>"#,
            user = escape_html(user),
        ),
        None => format!(
            r#"<form id="login" method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{token}">
  <input name="username" placeholder="user name" required autofocus>
  <button>Log in</button>
</form>"#
        ),
    };
    Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>devices</title><meta name="csrf-token" content="{token}"></head>
<body>
{body}
</body></html>
"#
    ))
}

#[derive(Deserialize)]
struct Login {
    username: String,
}

async fn login(mut session: Session<Account>, Form(form): Form<Login>) -> Response {
    let username = form.username.trim();
    if username.is_empty() {
        return (StatusCode::BAD_REQUEST, "a user name is needed").into_response();
    }
    // A new id whenever privileges change: a session id planted before login is useless.
    // The new id is what the device list shows from now on (the old one is gone).
    session.renew();
    session.set_user(Some(username.to_owned()));
    Redirect::to("/account/sessions").into_response()
}

async fn logout(mut session: Session<Account>) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

async fn csrf(token: CsrfToken<Account>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "csrf_token": token.as_str() }))
}

async fn list(
    session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<Json<Vec<SessionView>>, Refusal> {
    owner(&session)?;
    let listed = sessions.list_for(&session).await?;
    Ok(Json(listed.iter().map(SessionView::of).collect()))
}

async fn revoke_others(
    headers: HeaderMap,
    session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<Response, Refusal> {
    owner(&session)?;
    let revoked = sessions.revoke_others(&session).await?;
    Ok(answer(&headers, serde_json::json!({ "revoked": revoked })))
}

async fn revoke(
    headers: HeaderMap,
    Path(id): Path<String>,
    session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<Response, Refusal> {
    let owner = owner(&session)?;
    let Some(id) = SessionDigest::parse_hex(&id) else {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "malformed session id" })),
        )
            .into_response());
    };
    // Only the caller's own sessions: an id of anyone else's revokes nothing and looks
    // like an id that does not exist.
    if !sessions.revoke_of(&owner, &id).await? {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "no such session" })),
        )
            .into_response());
    }
    Ok(answer(&headers, serde_json::json!({ "revoked": 1 })))
}

async fn account_page(
    token: CsrfToken<Account>,
    session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<Response, Refusal> {
    let Some(user) = session.user.clone() else {
        return Ok(Redirect::to("/").into_response());
    };
    let listed = sessions.list_for(&session).await?;
    let token = token.as_str();
    let rows: String = listed
        .iter()
        .map(|info| {
            let view = SessionView::of(info);
            let device = escape_html(view.device.as_deref().unwrap_or("unknown device"));
            let address = escape_html(view.address.as_deref().unwrap_or("unknown address"));
            let (class, action) = if view.current {
                (
                    "session current",
                    "<span class=\"this\">this browser</span>".to_owned(),
                )
            } else {
                (
                    "session",
                    format!(
                        r#"<form method="post" action="/api/sessions/{id}/revoke"><input type="hidden" name="csrf_token" value="{token}"><button class="revoke">Revoke</button></form>"#,
                        id = view.id
                    ),
                )
            };
            format!(
                r#"<li class="{class}" data-id="{id}"><span class="device">{device}</span> from {address}, since {created}, last seen {last_seen} {action}</li>
"#,
                id = view.id,
                created = view.created,
                last_seen = view.last_seen,
            )
        })
        .collect();
    Ok(Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>your sessions</title><meta name="csrf-token" content="{token}"></head>
<body>
<h1>Sessions of {user}</h1>
<p id="count">{count} sessions</p>
<ul id="sessions">
{rows}</ul>
<form method="post" action="/api/sessions/revoke-others"><input type="hidden" name="csrf_token" value="{token}"><button id="revoke-others">Log out all other sessions</button></form>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{token}"><button id="logout">Log out</button></form>
</body></html>
"#,
        user = escape_html(&user),
        count = listed.len(),
    ))
    .into_response())
}

async fn live(
    upgrade: WebSocketUpgrade,
    session: Session<Account>,
    sessions: Sessions<Account>,
) -> Result<Response, Refusal> {
    owner(&session)?;
    let ended = sessions.watch(&session.id().digest()).await?;
    // Only the id is needed from here on; the handle ends with the request.
    drop(session);
    Ok(upgrade.on_upgrade(move |socket| follow(socket, ended)))
}

/// Echoes text messages until the client leaves or the session ends; then closes the
/// socket with a close frame that says why.
async fn follow(mut socket: WebSocket, mut ended: RemovalWatch) {
    loop {
        tokio::select! {
            () = &mut ended => {
                let frame = CloseFrame {
                    code: close_code::POLICY,
                    reason: ENDED_REASON.into(),
                };
                let _ = socket.send(Message::Close(Some(frame))).await;
                return;
            }
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let echo = format!("echo: {}", text.as_str());
                    if socket.send(Message::Text(echo.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The routes, without layers.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/csrf", get(csrf))
        .route("/api/sessions", get(list))
        .route("/api/sessions/revoke-others", post(revoke_others))
        .route("/api/sessions/{id}/revoke", post(revoke))
        .route("/account/sessions", get(account_page))
        .route("/ws", get(live))
}

/// The session layer of the app over `store`: devices (User-Agent) and the connection's
/// peer address are tracked for the list. Served over plain http on localhost; keep the
/// default `Secure` in production.
pub fn sessions(store: impl SessionBackend) -> SessionLayer<Account> {
    SessionLayer::<Account>::new(store)
        .secure(false)
        .idle_timeout(std::time::Duration::from_secs(30 * 60))
        .track_devices()
        .track_client_address(ClientAddress::Peer)
        .on_deleted(|id, account| tracing::info!(%id, user = ?account.user, "session ended"))
}

/// Wraps `routes` in the CSRF check and `layer`.
pub fn protect(routes: Router, layer: SessionLayer<Account>) -> Router {
    routes
        .layer(CsrfLayer::<Account>::new().secure(false))
        .layer(layer)
}

/// The whole app over `store`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` ([`crate::serve`] does) so that
/// client addresses are known.
pub fn app(store: impl SessionBackend) -> Router {
    protect(routes(), sessions(store))
}
