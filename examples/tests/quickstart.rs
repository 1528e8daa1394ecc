//! The quickstart app over real HTTP, as a visitor with a browser would use it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use reqwest::redirect::Policy;

async fn start(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

#[tokio::test]
async fn quickstart_counts_visits_logs_in_and_out() {
    let (base, _server) = start(examples::quickstart::app()).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = |path: &'static str| {
        let (browser, base) = (browser.clone(), base.clone());
        async move {
            let response = browser.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let first = page("/").await;
    assert!(
        first.contains("visits: 1") && first.contains("guest"),
        "{first}"
    );
    assert!(page("/").await.contains("visits: 2"));

    let login = browser
        .post(format!("{base}/login"))
        .form(&[("username", "Ada <script>")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let after = page("/").await;
    assert!(after.contains("visits: 3"), "{after}");
    assert!(
        after.contains("Ada &lt;script&gt;"),
        "name not escaped: {after}"
    );

    browser.post(format!("{base}/logout")).send().await.unwrap();
    let fresh = page("/").await;
    assert!(
        fresh.contains("visits: 1") && fresh.contains("guest"),
        "{fresh}"
    );
}
