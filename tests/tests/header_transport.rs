//! The header transport with a server-side store: the token travels in `x-session-token`.
#![allow(clippy::unwrap_used)]

use integration_tests::app::{app, TestSession};
use integration_tests::server::{bare_client, set_cookies, TestServer};
use session_runtime::{MemoryStore, SessionLayer};

#[tokio::test]
async fn header_transport_round_trip_with_the_memory_store() {
    let layer = SessionLayer::<TestSession>::new(MemoryStore::new())
        .header(http::HeaderName::from_static("x-session-token"));
    let server = TestServer::start(app(layer).0).await;
    let client = bare_client();
    let first = client.get(server.url("/visit")).send().await.unwrap();
    assert!(set_cookies(&first).is_empty());
    let token = first.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 32);
    // The same id stays valid: no header when the token does not change.
    let second = client
        .get(server.url("/visit"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert!(second.headers().get("x-session-token").is_none());
    assert_eq!(second.text().await.unwrap(), "visits: 2");
    // A cookie is not read when the layer uses a header.
    let cookie_only = client
        .get(server.url("/read"))
        .header("cookie", format!("session={token}"))
        .send()
        .await
        .unwrap();
    assert!(cookie_only.text().await.unwrap().contains("new: true"));
    // Login renews: the new token comes back in the header.
    let login = client
        .post(server.url("/login/api"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    let renewed = login.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, token);
    // Logout: an empty header tells the client to drop its token.
    let logout = client
        .post(server.url("/logout"))
        .header("x-session-token", &renewed)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.headers()["x-session-token"], "");
}
