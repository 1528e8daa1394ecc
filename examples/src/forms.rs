//! A page with a form, protected against CSRF, with a flash message after each post:
//! `GET /` renders the form (the session's masked token in a hidden `csrf_token` field),
//! `POST /name` stores the name, flashes "saved" and redirects (303) to `/`, which shows the
//! flash once. `POST /login` renews the session (tokens rendered before stop working) and
//! `POST /logout` ends it.

use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};
use session_runtime::{
    CsrfLayer, CsrfToken, Databag, EncodeError, MemoryStore, Session, SessionBackend, SessionLayer,
};

use crate::escape_html;

/// What the app keeps about a visitor.
#[derive(Databag, Debug)]
pub struct FormSession {
    /// Set by `POST /name`.
    pub name: Option<String>,
}

/// The flash messages of the app: typed, so a page renders each one as it likes.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The name was stored.
    Saved,
    /// The session was renewed.
    LoggedIn,
}

impl Notice {
    /// The text shown on the page.
    #[must_use]
    pub fn text(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::LoggedIn => "logged in",
        }
    }
}

// `CsrfToken` comes before `Session`: it reads the session while no handle is out.
async fn index(token: CsrfToken<FormSession>, mut session: Session<FormSession>) -> Html<String> {
    let flashes: String = session
        .take_flash::<Notice>()
        .into_iter()
        .map(|notice| format!("<p class=\"flash\">{}</p>", notice.text()))
        .collect();
    let name = session.name.as_deref().unwrap_or("nobody");
    let token = token.as_str();
    Html(format!(
        r#"<!doctype html>
<html><head><title>forms</title><meta name="csrf-token" content="{token}"></head>
<body>
{flashes}
<p>name: <span id="name">{name}</span></p>
<form id="name-form" method="post" action="/name">
  <input type="hidden" name="csrf_token" value="{token}">
  <input name="name" autofocus> <button>Save</button>
</form>
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{token}"><button>Log in (renew)</button></form>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{token}"><button>Log out</button></form>
</body></html>
"#,
        name = escape_html(name),
    ))
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

// The body still holds `csrf_token`: CsrfLayer read it and handed the body on unchanged;
// `Form` ignores the field it does not know.
async fn save_name(
    mut session: Session<FormSession>,
    Form(form): Form<NameForm>,
) -> Result<Redirect, EncodeError> {
    session.set_name(Some(form.name));
    session.flash(Notice::Saved)?;
    Ok(Redirect::to("/"))
}

async fn login(mut session: Session<FormSession>) -> Result<Redirect, EncodeError> {
    // Against fixation; it also replaces the CSRF secret.
    session.renew();
    session.flash(Notice::LoggedIn)?;
    Ok(Redirect::to("/"))
}

async fn logout(mut session: Session<FormSession>) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

/// The routes, without layers.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/name", post(save_name))
        .route("/login", post(login))
        .route("/logout", post(logout))
}

/// Wraps `routes` in the CSRF check and the session layer over `store`. `secure`: whether
/// the site is served over HTTPS (`false` for plain http on localhost).
pub fn protect(routes: Router, store: impl SessionBackend, secure: bool) -> Router {
    routes
        .layer(CsrfLayer::<FormSession>::new().secure(secure))
        .layer(SessionLayer::<FormSession>::new(store).secure(secure))
}

/// The whole app over plain http, with sessions in memory.
pub fn app() -> Router {
    protect(routes(), MemoryStore::new(), false)
}
