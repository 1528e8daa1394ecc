//! The `forms` example in headless Chromium: a real browser submits the form (its hidden
//! token, its cookie, its `Origin`) and sees the flash once; a form on another origin
//! (another port of the same host, so the session cookie is sent along) posting to the app
//! is refused with a 403 and changes nothing. The `devices` example: a user logged in from
//! two browsers revokes the other one from the account page.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use examples::{devices, forms};
use integration_tests::chromium::Chromium;
use integration_tests::server::TestServer;
use session_runtime::MemoryStore;

/// Opens the app's page and submits the form with `name`, landing back on `/`.
async fn submit_name(browser: &mut Chromium, app: &TestServer, name: &str) {
    browser.open(&app.url("/")).await;
    browser
        .eval_and_wait(&format!(
            "document.querySelector('#name-form input[name=name]').value = '{name}';\
             document.querySelector('#name-form').submit()"
        ))
        .await;
}

#[tokio::test]
async fn submitting_the_form_saves_and_shows_the_flash_once() {
    let app = TestServer::start(forms::app()).await;
    let mut browser = Chromium::start().await;

    browser.open(&app.url("/")).await;
    assert!(browser.text().await.contains("name: nobody"));
    submit_name(&mut browser, &app, "Ada").await;
    assert_eq!(browser.url().await, app.url("/"), "303 back to /");
    let text = browser.text().await;
    assert!(text.contains("saved"), "the flash shows: {text}");
    assert!(text.contains("name: Ada"), "{text}");
    browser.open(&app.url("/")).await;
    let text = browser.text().await;
    assert!(!text.contains("saved"), "the flash shows once: {text}");
    assert!(text.contains("name: Ada"));
}

#[tokio::test]
async fn a_form_on_another_origin_posting_to_the_app_is_refused() {
    let app = TestServer::start(forms::app()).await;
    let mut browser = Chromium::start().await;
    submit_name(&mut browser, &app, "Ada").await;
    assert!(browser.text().await.contains("name: Ada"));

    // The attacker even has a valid token of the victim's session (leaked somehow): the
    // Origin check alone refuses the post.
    let leaked = browser
        .eval("document.querySelector('meta[name=csrf-token]').content")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let target = app.url("/name");
    let attacker = TestServer::start(Router::new().route(
        "/",
        get(move || async move {
            Html(format!(
                r#"<!doctype html><form id="evil" method="post" action="{target}">
                   <input type="hidden" name="csrf_token" value="{leaked}">
                   <input type="hidden" name="name" value="Mallory"></form>"#
            ))
        }),
    ))
    .await;
    assert_ne!(attacker.addr.port(), app.addr.port());
    browser.open(&attacker.url("/")).await;
    browser
        .eval_and_wait("document.getElementById('evil').submit()")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("CSRF check failed: cross-origin request refused"),
        "the browser lands on the 403: {text}"
    );
    browser.open(&app.url("/")).await;
    assert!(
        browser.text().await.contains("name: Ada"),
        "nothing changed"
    );
}

/// Logs in as `user` with the login form of the devices app, landing on the account page.
async fn log_in(browser: &mut Chromium, app: &TestServer, user: &str) {
    browser.open(&app.url("/")).await;
    browser
        .eval_and_wait(&format!(
            "document.querySelector('#login input[name=username]').value = '{user}';\
             document.querySelector('#login').submit()"
        ))
        .await;
    assert_eq!(browser.url().await, app.url("/account/sessions"));
}

#[tokio::test]
async fn revoking_the_other_browser_from_the_account_page() {
    let app = TestServer::start_with_peers(devices::app(MemoryStore::new())).await;
    let mut laptop = Chromium::start().await;
    let mut phone = Chromium::start().await;
    log_in(&mut laptop, &app, "ada").await;
    log_in(&mut phone, &app, "ada").await;

    laptop.open(&app.url("/account/sessions")).await;
    let text = laptop.text().await;
    assert!(text.contains("2 sessions"), "{text}");
    assert!(text.contains("HeadlessChrome"), "the device label: {text}");
    assert!(text.contains("this browser"), "{text}");
    let rows = |current: &str| format!("document.querySelectorAll('li.session{current}').length");
    assert_eq!(laptop.eval(&rows("")).await, 2);
    assert_eq!(laptop.eval(&rows(".current")).await, 1);
    // The phone's row is the one with a button.
    laptop
        .eval_and_wait("document.querySelector('li.session:not(.current) button.revoke').click()")
        .await;
    assert_eq!(laptop.url().await, app.url("/account/sessions"), "303 back");
    let text = laptop.text().await;
    assert!(text.contains("1 sessions"), "{text}");
    assert_eq!(laptop.eval(&rows("")).await, 1);
    assert_eq!(laptop.eval(&rows(".current")).await, 1);

    // The phone's next request is logged out: the account page sends it to the login form.
    phone.open(&app.url("/account/sessions")).await;
    assert_eq!(phone.url().await, app.url("/"));
    assert_eq!(
        phone
            .eval("document.querySelectorAll('#login').length")
            .await,
        1
    );
    // And the laptop is still logged in.
    laptop.open(&app.url("/")).await;
    assert!(laptop.text().await.contains("Logged in as ada"));
}
