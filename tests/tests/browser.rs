//! The `forms` example in headless Chromium: a real browser submits the form (its hidden
//! token, its cookie, its `Origin`) and sees the flash once; a form on another origin
//! (another port of the same host, so the session cookie is sent along) posting to the app
//! is refused with a 403 and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use examples::forms;
use integration_tests::chromium::Chromium;
use integration_tests::server::TestServer;

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
