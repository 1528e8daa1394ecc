//! CSRF protection over real HTTP, against the `forms` example app itself
//! (`examples/src/forms.rs`), for every store: tokens per render, the 403s (missing, wrong,
//! another session's, replayed after logout or renewal, cross-origin, cross-site), what
//! passes (a valid post, a token in the header, safe methods, trusted origins, exempt
//! paths), the body limit, logging, and the cost (no second store read). Each store's test
//! file runs them with [`csrf_suite!`](macro@crate::csrf_suite); the counted test with
//! [`csrf_server_suite!`](macro@crate::csrf_server_suite).

use std::sync::atomic::Ordering;

use axum::routing::{get, post};
use examples::forms::{self, FormSession};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{redirect, Client, StatusCode};
use session_runtime::store::SessionStore;
use session_runtime::{CsrfLayer, CsrfToken, Session, SessionBackend, SessionLayer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::counting::Counting;
use crate::server::TestServer;

/// Runs every CSRF test as a named `#[tokio::test]`, given an async expression that makes
/// a fresh store; `csrf_suite!(guarded: async { .. })` takes one making `(guard, store)`.
#[macro_export]
macro_rules! csrf_suite {
    (guarded: $setup:expr) => {
        $crate::csrf_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::csrf_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::csrf_suite!(@tests $setup;
            a_valid_post_stores_flashes_and_redirects_303
            each_render_gives_a_different_token_and_each_is_valid
            a_missing_token_is_refused_with_403_saying_so
            a_wrong_token_is_refused
            a_token_of_another_session_is_refused
            a_token_replayed_after_logout_is_refused
            a_token_rendered_before_renew_is_refused_after
            a_post_without_a_session_is_refused
            a_cross_origin_origin_is_refused_even_with_a_valid_token
            same_origin_and_trusted_origins_pass
            sec_fetch_site_cross_site_is_refused_and_same_origin_passes
            a_token_in_the_header_passes_and_the_body_reaches_the_handler
            safe_methods_pass_without_a_token
            a_form_body_over_the_limit_is_413
            exempt_paths_skip_the_check
            every_refusal_is_logged
            a_csrf_token_after_a_live_session_handle_is_a_500_that_says_why
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::csrf_suite::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::csrf_suite::$name(store).await;
            }
        )*
    };
}

/// The CSRF tests that count store operations (server-side stores).
#[macro_export]
macro_rules! csrf_server_suite {
    (guarded: $setup:expr) => {
        #[tokio::test]
        async fn the_check_costs_no_second_store_read() {
            let (_guard, store) = $setup.await;
            $crate::csrf_suite::the_check_costs_no_second_store_read(store).await;
        }
    };
    ($make:expr) => {
        #[tokio::test]
        async fn the_check_costs_no_second_store_read() {
            let store = $make.await;
            $crate::csrf_suite::the_check_costs_no_second_store_read(store).await;
        }
    };
}

/// The forms example over plain http.
async fn serve(store: impl SessionBackend) -> TestServer {
    TestServer::start(forms::protect(forms::routes(), store, false)).await
}

/// A browser-like client (cookie jar) that does not follow redirects.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `csrf_token` hidden field of a page.
pub fn token_in(page: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("the page has a csrf_token field") + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// GET `/` and the token on it.
async fn render(server: &TestServer, client: &Client) -> (String, String) {
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    (token_in(&page), page)
}

/// POST a urlencoded form.
async fn post_form(
    server: &TestServer,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn refused(response: reqwest::Response, says: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = response.text().await.unwrap();
    assert!(body.contains(says), "the 403 says {says:?}: {body}");
}

/// The name shown on `/`.
async fn shown_name(server: &TestServer, client: &Client) -> String {
    let (_, page) = render(server, client).await;
    let start = page.find(r#"<span id="name">"#).unwrap() + r#"<span id="name">"#.len();
    page[start..start + page[start..].find('<').unwrap()].to_owned()
}

pub async fn a_valid_post_stores_flashes_and_redirects_303(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (token, page) = render(&server, &client).await;
    assert!(!page.contains("class=\"flash\""));
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "Ada")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    let (_, page) = render(&server, &client).await;
    assert!(page.contains("<p class=\"flash\">saved</p>"), "{page}");
    assert!(page.contains(r#"<span id="name">Ada</span>"#));
    let (_, again) = render(&server, &client).await;
    assert!(
        !again.contains("class=\"flash\""),
        "the flash is shown once"
    );
    assert!(again.contains(r#"<span id="name">Ada</span>"#));
}

pub async fn each_render_gives_a_different_token_and_each_is_valid(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (first, _) = render(&server, &client).await;
    let (second, _) = render(&server, &client).await;
    assert_ne!(first, second, "masked anew on every render");
    for (token, name) in [(&first, "one"), (&second, "two")] {
        let response = post_form(
            &server,
            &client,
            "/name",
            &[("csrf_token", token), ("name", name)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(shown_name(&server, &client).await, name);
    }
}

pub async fn a_missing_token_is_refused_with_403_saying_so(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    render(&server, &client).await;
    let response = post_form(&server, &client, "/name", &[("name", "Mallory")]).await;
    refused(response, "token missing").await;
    assert_eq!(shown_name(&server, &client).await, "nobody");
}

pub async fn a_wrong_token_is_refused(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", "garbage"), ("name", "x")],
    )
    .await;
    refused(response, "malformed token").await;
    // A well-formed token with one byte of its masked half changed.
    let mut bytes = token.into_bytes();
    bytes[60] = if bytes[60] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &flipped), ("name", "x")],
    )
    .await;
    refused(response, "does not belong to this session").await;
    assert_eq!(shown_name(&server, &client).await, "nobody");
}

pub async fn a_token_of_another_session_is_refused(store: impl SessionBackend) {
    let server = serve(store).await;
    let (victim, attacker) = (browser(), browser());
    render(&server, &victim).await;
    let (attackers_token, _) = render(&server, &attacker).await;
    let response = post_form(
        &server,
        &victim,
        "/name",
        &[("csrf_token", &attackers_token), ("name", "x")],
    )
    .await;
    refused(response, "does not belong to this session").await;
    assert_eq!(shown_name(&server, &victim).await, "nobody");
}

pub async fn a_token_replayed_after_logout_is_refused(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let response = post_form(&server, &client, "/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "x")],
    )
    .await;
    refused(response, "no CSRF token").await;
    // A fresh render after logout works again.
    let (fresh, _) = render(&server, &client).await;
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &fresh), ("name", "back")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // Once the new session has a secret, the old token is another secret's.
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "x")],
    )
    .await;
    refused(response, "does not belong to this session").await;
}

pub async fn a_token_rendered_before_renew_is_refused_after(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (before, _) = render(&server, &client).await;
    let response = post_form(&server, &client, "/login", &[("csrf_token", &before)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &before), ("name", "x")],
    )
    .await;
    refused(response, "no CSRF token").await;
    let (after, page) = render(&server, &client).await;
    assert!(
        page.contains("logged in"),
        "the renewed session kept its flash"
    );
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &after), ("name", "y")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &before), ("name", "x")],
    )
    .await;
    refused(response, "does not belong to this session").await;
    assert_eq!(shown_name(&server, &client).await, "y");
}

pub async fn a_post_without_a_session_is_refused(store: impl SessionBackend) {
    let server = serve(store).await;
    let (_, other) = render(&server, &browser()).await;
    let response = post_form(
        &server,
        &browser(),
        "/name",
        &[("csrf_token", &other), ("name", "x")],
    )
    .await;
    refused(response, "no CSRF token").await;
}

pub async fn a_cross_origin_origin_is_refused_even_with_a_valid_token(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let response = client
        .post(server.url("/name"))
        .header("origin", "http://evil.example")
        .form(&[("csrf_token", token.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    refused(
        response,
        "cross-origin request refused (Origin `http://evil.example`",
    )
    .await;
    // Another port of the same host is another origin.
    let other_port = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    let response = client
        .post(server.url("/name"))
        .header("origin", other_port)
        .form(&[("csrf_token", token.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    refused(response, "cross-origin").await;
    let response = client
        .post(server.url("/name"))
        .header("origin", "null")
        .form(&[("csrf_token", token.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    refused(response, "cross-origin").await;
    assert_eq!(shown_name(&server, &client).await, "nobody");
}

pub async fn same_origin_and_trusted_origins_pass(store: impl SessionBackend) {
    let app = forms::routes()
        .layer(
            CsrfLayer::<FormSession>::new()
                .secure(false)
                .trust_origin("https://admin.example.com/"),
        )
        .layer(SessionLayer::<FormSession>::new(store).secure(false));
    let server = TestServer::start(app).await;
    let client = browser();
    let own = format!("http://{}", server.addr);
    for (origin, name) in [
        (own.as_str(), "same"),
        ("https://ADMIN.example.com", "trusted"),
    ] {
        let (token, _) = render(&server, &client).await;
        let response = client
            .post(server.url("/name"))
            .header("origin", origin)
            .form(&[("csrf_token", token.as_str()), ("name", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{origin}");
        assert_eq!(shown_name(&server, &client).await, name);
    }
    // A trusted origin still needs the token.
    let response = client
        .post(server.url("/name"))
        .header("origin", "https://admin.example.com")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    refused(response, "token missing").await;
}

pub async fn sec_fetch_site_cross_site_is_refused_and_same_origin_passes(
    store: impl SessionBackend,
) {
    let server = serve(store).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    for (value, passes) in [
        ("cross-site", false),
        ("same-site", false),
        ("same-origin", true),
    ] {
        let response = client
            .post(server.url("/name"))
            .header("sec-fetch-site", value)
            .form(&[("csrf_token", token.as_str()), ("name", value)])
            .send()
            .await
            .unwrap();
        if passes {
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
        } else {
            refused(
                response,
                &format!("cross-site request refused (Sec-Fetch-Site: {value})"),
            )
            .await;
        }
    }
    assert_eq!(shown_name(&server, &client).await, "same-origin");
}

pub async fn a_token_in_the_header_passes_and_the_body_reaches_the_handler(
    store: impl SessionBackend,
) {
    // An extra route echoes the body the handler receives.
    let routes = forms::routes().route("/echo", post(|body: String| async move { body }));
    let server = TestServer::start(forms::protect(routes, store, false)).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let response = client
        .post(server.url("/name"))
        .header("x-csrf-token", &token)
        .form(&[("name", "from-header")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(shown_name(&server, &client).await, "from-header");
    // A form body with the token in it reaches the handler byte for byte.
    let body = format!("a=1&csrf_token={token}&b=%C3%A9+x");
    let response = client
        .post(server.url("/echo"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), body);
    // Other methods are checked too, and a JSON body with the header passes untouched.
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
    ] {
        let response = client
            .request(method.clone(), server.url("/echo"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method}");
    }
    let response = client
        .post(server.url("/echo"))
        .header("x-csrf-token", &token)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"json":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), r#"{"json":true}"#);
}

pub async fn safe_methods_pass_without_a_token(store: impl SessionBackend) {
    let server = serve(store).await;
    let client = browser();
    let response = client
        .get(server.url("/"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client.head(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

pub async fn a_form_body_over_the_limit_is_413(store: impl SessionBackend) {
    let app = forms::routes()
        .layer(
            CsrfLayer::<FormSession>::new()
                .secure(false)
                .body_limit(1024),
        )
        .layer(SessionLayer::<FormSession>::new(store).secure(false));
    let server = TestServer::start(app).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let long = "n".repeat(2000);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", &long)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("larger than 1024 bytes"));
    // Chunked, without a Content-Length: the same limit (checked before the session is
    // loaded, so no cookie is needed here).
    let head = format!(
        "POST /name HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        server.addr
    );
    let chunk = format!("csrf_token={token}&name={}", "n".repeat(400));
    let mut request = head.into_bytes();
    for _ in 0..4 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Under the limit, the same form passes.
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "short")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

pub async fn exempt_paths_skip_the_check(store: impl SessionBackend) {
    let routes = forms::routes().route("/api/hook", post(|| async { "hooked" }));
    let app = routes
        .layer(
            CsrfLayer::<FormSession>::new()
                .secure(false)
                .exempt("/api/"),
        )
        .layer(SessionLayer::<FormSession>::new(store).secure(false));
    let server = TestServer::start(app).await;
    let client = browser();
    let response = client.post(server.url("/api/hook")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "hooked");
    let response = post_form(&server, &client, "/name", &[("name", "x")]).await;
    refused(response, "token missing").await;
}

pub async fn every_refusal_is_logged(store: impl SessionBackend) {
    let (logs, _capturing) = crate::logs::capture();
    let server = serve(store).await;
    let client = browser();
    render(&server, &client).await;
    let response = post_form(&server, &client, "/name", &[("name", "x")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let logged = logs.take();
    assert!(logged.contains("CSRF check refused a request"), "{logged}");
    assert!(logged.contains("token missing"), "{logged}");
    assert!(logged.contains("/name"), "{logged}");
}

pub async fn a_csrf_token_after_a_live_session_handle_is_a_500_that_says_why(
    store: impl SessionBackend,
) {
    async fn wrong_order(_session: Session<FormSession>, _token: CsrfToken<FormSession>) {}
    async fn right_order(token: CsrfToken<FormSession>, _session: Session<FormSession>) -> String {
        token.into_string()
    }
    let routes = forms::routes()
        .route("/wrong", get(wrong_order))
        .route("/right", get(right_order));
    let server = TestServer::start(forms::protect(routes, store, false)).await;
    let client = browser();
    let response = client.get(server.url("/wrong")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("put CsrfToken before Session<") && body.contains("session.csrf_token()"),
        "{body}"
    );
    let response = client.get(server.url("/right")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token = response.text().await.unwrap();
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "ok")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

pub async fn a_csrf_layer_outside_the_session_layer_is_a_500_that_says_how_to_fix_it(
    store: impl SessionBackend,
) {
    // The layers in the wrong order: the CSRF check runs before the session layer.
    let app = forms::routes()
        .layer(SessionLayer::<FormSession>::new(store).secure(false))
        .layer(CsrfLayer::<FormSession>::new().secure(false));
    let server = TestServer::start(app).await;
    let response = post_form(
        &server,
        &browser(),
        "/name",
        &[("csrf_token", "x"), ("name", "x")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("needs a SessionLayer::<") && body.contains("before"),
        "{body}"
    );
}

pub async fn the_check_costs_no_second_store_read<S: SessionStore + Clone>(store: S) {
    let counted = Counting::new(store);
    let counts = counted.counts.clone();
    let server = serve(counted).await;
    let client = browser();
    let (token, _) = render(&server, &client).await;
    let loads = counts.load.load(Ordering::SeqCst);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token), ("name", "x")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        counts.load.load(Ordering::SeqCst) - loads,
        1,
        "the check and the handler share one load"
    );
    // A refused token costs that one read and no write; a refused origin not even the read.
    let writes = counts.writes();
    let loads = counts.load.load(Ordering::SeqCst);
    let response = post_form(
        &server,
        &client,
        "/name",
        &[("csrf_token", &token[..10]), ("name", "x")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(counts.load.load(Ordering::SeqCst) - loads, 1);
    let response = client
        .post(server.url("/name"))
        .header("origin", "http://evil.example")
        .form(&[("csrf_token", token.as_str()), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        counts.load.load(Ordering::SeqCst) - loads,
        1,
        "the origin is checked first"
    );
    assert_eq!(counts.writes(), writes, "refusals write nothing");
}
