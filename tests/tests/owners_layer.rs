//! How the layer keeps the owner index (issue 14), over real HTTP with the memory store: the
//! index follows logins (renewal), owner changes made outside a request, and sessions stored
//! before their type had an owner field (at their next request, even a read); setting the owner it already has writes nothing;
//! the device and address are taken from the request that started the session, and a
//! forwarded address only from a trusted proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::IpAddr;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use integration_tests::counting::Counting;
use integration_tests::server::{browser, cookie_value, TestServer};
use session_runtime::client::ClientAddress;
use session_runtime::{Databag, MemoryStore, Session, SessionId, SessionLayer, Sessions};

#[derive(Databag, Debug)]
struct Account {
    #[databag(owner)]
    user: Option<u64>,
    visits: u32,
}

/// The same record layout, from before the type had an owner field.
#[derive(Databag, Debug)]
struct AccountBefore {
    user: Option<u64>,
    visits: u32,
}

async fn login(Path(user): Path<u64>, mut session: Session<Account>) {
    session.renew();
    session.set_user(Some(user));
}

async fn set_user(Path(user): Path<u64>, mut session: Session<Account>) {
    session.set_user(Some(user));
}

async fn read(session: Session<Account>) -> String {
    session.visits.to_string()
}

async fn visit(mut session: Session<Account>) -> String {
    session.set_visits(session.visits + 1);
    session.visits.to_string()
}

fn routes() -> Router<()> {
    Router::new()
        .route("/login/{user}", post(login))
        .route("/user/{user}", post(set_user))
        .route("/visit", get(visit))
        .route("/read", get(read))
}

fn layer<S: session_runtime::store::SessionStore>(store: S) -> SessionLayer<Account> {
    SessionLayer::<Account>::new(store)
        .secure(false)
        .cookie_name("session")
}

async fn listed(sessions: &Sessions<Account>, user: u64) -> Vec<String> {
    let mut ids: Vec<String> = sessions
        .list(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.id.to_hex())
        .collect();
    ids.sort();
    ids
}

fn digest_hex(response: &reqwest::Response) -> String {
    let token = cookie_value(response, "session").expect("a session cookie");
    SessionId::parse(&token).unwrap().digest().to_hex()
}

#[tokio::test]
async fn a_login_renews_the_id_and_the_list_holds_the_new_id_only() {
    let layer = layer(MemoryStore::new());
    let sessions = layer.sessions();
    let server = TestServer::start(routes().layer(layer)).await;
    let client = browser();
    let anonymous = client.get(server.url("/visit")).send().await.unwrap();
    let before = digest_hex(&anonymous);
    assert!(listed(&sessions, 42).await.is_empty(), "no owner yet");
    let logged_in = client.post(server.url("/login/42")).send().await.unwrap();
    let after = digest_hex(&logged_in);
    assert_ne!(before, after, "the login renewed the id");
    assert_eq!(listed(&sessions, 42).await, vec![after.clone()]);
    // Moving to another owner in a later request moves the entry.
    client.post(server.url("/user/43")).send().await.unwrap();
    assert!(listed(&sessions, 42).await.is_empty());
    assert_eq!(listed(&sessions, 43).await, vec![after]);
}

#[tokio::test]
async fn setting_the_owner_it_already_has_writes_nothing() {
    let store = Counting::new(MemoryStore::new());
    let counts = std::sync::Arc::clone(&store.counts);
    let server = TestServer::start(routes().layer(layer(store))).await;
    let client = browser();
    client.post(server.url("/login/42")).send().await.unwrap();
    let writes = counts.writes();
    let response = client.post(server.url("/user/42")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(counts.writes(), writes, "no store write");
    assert!(
        cookie_value(&response, "session").is_none(),
        "no Set-Cookie"
    );
}

#[tokio::test]
async fn a_session_stored_before_the_owner_field_existed_is_indexed_at_its_next_request() {
    let store = MemoryStore::new();
    // The old deploy: no owner field.
    async fn old_login(mut session: Session<AccountBefore>) {
        session.set_user(Some(7));
    }
    let old = Router::new().route("/login", post(old_login)).layer(
        SessionLayer::<AccountBefore>::new(store.clone())
            .secure(false)
            .cookie_name("session"),
    );
    let old = TestServer::start(old).await;
    let new_layer = layer(store);
    let sessions = new_layer.sessions();
    let new = TestServer::start(routes().layer(new_layer)).await;
    let client = browser();
    let response = client.post(old.url("/login")).send().await.unwrap();
    let id = digest_hex(&response);
    assert!(
        listed(&sessions, 7).await.is_empty(),
        "stored without an index entry"
    );
    // The new deploy reads it (no write: still not listed), then writes anything.
    let token = cookie_value(&response, "session").unwrap();
    let loaded = sessions
        .load(&SessionId::parse(&token).unwrap())
        .await
        .unwrap();
    assert_eq!(loaded.unwrap().user, Some(7));
    assert!(listed(&sessions, 7).await.is_empty());
    // Its next request, even one that only reads, writes the owner entry (once): a
    // session that keeps reading must not escape "log out everywhere".
    let read = client.get(new.url("/read")).send().await.unwrap();
    assert_eq!(read.text().await.unwrap(), "0");
    assert_eq!(listed(&sessions, 7).await, vec![id]);
}

#[tokio::test]
async fn an_owner_changed_outside_a_request_moves_the_session() {
    let layer = layer(MemoryStore::new());
    let sessions = layer.sessions();
    let server = TestServer::start(routes().layer(layer)).await;
    let response = browser()
        .post(server.url("/login/42"))
        .send()
        .await
        .unwrap();
    let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
    let mut session = sessions.load(&id).await.unwrap().unwrap();
    session.set_user(Some(9));
    session.save().await.unwrap();
    assert!(listed(&sessions, 42).await.is_empty());
    assert_eq!(listed(&sessions, 9).await, vec![id.digest().to_hex()]);
}

#[tokio::test]
async fn the_device_and_address_come_from_the_request_that_started_the_session() {
    let layer = layer(MemoryStore::new())
        .track_devices()
        .track_client_address(ClientAddress::BehindProxies(vec!["127.0.0.1"
            .parse()
            .unwrap()]));
    let sessions = layer.sessions();
    let server = TestServer::start(routes().layer(layer)).await;
    let client = browser();
    client
        .post(server.url("/login/42"))
        .header("user-agent", "TestBrowser/1.0")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .send()
        .await
        .unwrap();
    // Later requests from another device string write nothing of it.
    client
        .get(server.url("/visit"))
        .header("user-agent", "Other/2.0")
        .send()
        .await
        .unwrap();
    let list = sessions.list(&42).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].device.as_deref(), Some("TestBrowser/1.0"));
    let expected: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(
        list[0].address,
        Some(expected),
        "the right-most untrusted entry"
    );
    assert!(list[0].last_seen >= list[0].created);
    assert!(list[0].expires.is_some());
}

#[tokio::test]
async fn without_a_trusted_proxy_the_forwarded_header_is_ignored() {
    let layer = layer(MemoryStore::new()).track_client_address(ClientAddress::Peer);
    let sessions = layer.sessions();
    let server = TestServer::start(routes().layer(layer)).await;
    browser()
        .post(server.url("/login/42"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let list = sessions.list(&42).await.unwrap();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(list[0].address, Some(loopback));
    assert_eq!(list[0].device, None, "devices are not tracked unless asked");
}
