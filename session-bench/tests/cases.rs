//! The benchmark cases measure what their names say: every router answers as expected,
//! the read case writes nothing to the store, the write case writes one field once, and the
//! codec and store fixtures work. (The library's own guarantee that an unchanged session
//! writes nothing is `unchanged_session_sends_no_set_cookie_and_writes_nothing` in
//! `tests/src/guarantees.rs`, run for every server-side store.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::Ordering;

use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use integration_tests::counting::Counting;
use session_bench::apps::{self, body_text, call, login, request};
use session_bench::cases::{end_to_end, Codec, Sent, Stores};
use session_runtime::{MemoryStore, SessionLayer};

#[tokio::test]
async fn read_case_writes_nothing_and_write_case_saves_one_field() {
    let store = Counting::new(MemoryStore::new());
    let counts = std::sync::Arc::clone(&store.counts);
    let router = apps::ours(SessionLayer::new(store.clone()));
    let cookie = login(&router).await.unwrap();
    let (loads, writes) = (counts.load.load(Ordering::SeqCst), counts.writes());

    for _ in 0..10 {
        let response = call(&router, request("/read", Some(&cookie))).await;
        assert!(response.headers().get(SET_COOKIE).is_none());
        assert_eq!(body_text(response).await, "ada lovelace #1");
    }
    assert_eq!(counts.writes(), writes, "a read wrote");
    assert_eq!(counts.load.load(Ordering::SeqCst), loads + 10);

    let response = call(&router, request("/plain", Some(&cookie))).await;
    assert_eq!(body_text(response).await, "hello");
    assert_eq!(
        counts.load.load(Ordering::SeqCst),
        loads + 10,
        "unused layer loaded"
    );

    let response = call(&router, request("/write", Some(&cookie))).await;
    assert_eq!(body_text(response).await, "ada lovelace #2");
    assert_eq!(counts.writes(), writes + 1);
    assert_eq!(
        counts.last_save_fields.load(Ordering::SeqCst),
        1,
        "the write case changes one field"
    );
}

#[tokio::test]
async fn every_end_to_end_case_answers_as_expected() {
    for case in end_to_end().await.unwrap() {
        let mut targets = vec![("ours", case.ours.clone()), ("baseline", case.baseline)];
        targets.extend(case.peer.map(|peer| ("peer", peer)));
        for (who, target) in targets {
            let response = target.call().await;
            assert_eq!(response.status(), StatusCode::OK, "{} {who}", case.name);
            let body = body_text(response).await;
            let expected_start = match (case.name, who) {
                (_, "baseline") | ("e2e_layer_unused", _) => "hello",
                _ => "ada lovelace #",
            };
            assert!(
                body.starts_with(expected_start),
                "{} {who}: {body}",
                case.name
            );
        }
    }
}

#[tokio::test]
async fn codec_fixture_steps_differ_by_the_codec_only() {
    // `Codec::new` checks every request of every step (the read opens and writes nothing,
    // the write seals, the tampered cookie gives a fresh session) and fails otherwise.
    let codec = Codec::new(300).await.unwrap();
    assert_eq!(codec.record_len(), 300);
    assert!(codec.token_len() > 300 * 4 / 3, "{}", codec.token_len());

    // The read opens the cookie; the plain route never does.
    let read = body_text(codec.ours_open.with.call().await).await;
    let plain = body_text(codec.ours_open.without.call().await).await;
    assert_eq!((read.as_str(), plain.as_str()), ("42", "hello"));

    // The write seals the whole session again, at the size of the cookie it came with.
    let response = codec.ours_seal.with.call().await;
    let sealed = response
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let sealed = cookie::Cookie::parse(sealed).unwrap();
    assert_eq!(sealed.name(), codec.cookie_name());
    assert_eq!(sealed.value().len(), codec.token_len());
    assert_eq!(sealed.http_only(), Some(true));
    assert!(codec
        .ours_seal
        .without
        .call()
        .await
        .headers()
        .get(SET_COOKIE)
        .is_none());

    // The tampered cookie and no cookie both give a fresh session and no new token; the
    // tampered one may be cleared.
    let response = codec.ours_tampered.with.call().await;
    assert!(matches!(Sent::of(&response), Sent::Nothing | Sent::Removal));
    assert_eq!(body_text(response).await, "0");
    let response = codec.ours_tampered.without.call().await;
    assert_eq!(Sent::of(&response), Sent::Nothing);
    assert_eq!(body_text(response).await, "0");
}

#[tokio::test]
async fn codec_fixture_fits_every_size_the_benches_use() {
    for bytes in [64, 256, 1024, 2900] {
        let codec = Codec::new(bytes).await.unwrap();
        assert!(codec.record_len() <= bytes && codec.record_len() + 2 >= bytes);
        assert!(codec.cookie_name().len() + 1 + codec.token_len() <= 4096);
    }
}

#[tokio::test]
async fn store_fixture_loads_and_saves_in_both_stores() {
    let stores = Stores::new(100).await.unwrap();
    assert_eq!(stores.len(), 100);
    for index in [0, 7_919, 123_456] {
        assert!(stores.ours_load(index).await);
        assert!(stores.ours_save(index).await);
        assert!(stores.peer_load(index).await);
        assert!(stores.peer_save(index).await);
    }
}

/// The servers of the `http` benchmark: every variant over every store (SQLite and
/// PostgreSQL included, started here as the benchmark starts them) answers its routes
/// as the routers in process do, with the logged-in session the benchmark sends, and ours
/// writes nothing to the cookie on a read.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn every_http_bench_server_answers_with_its_session() {
    use session_bench::redis::RedisServer;
    use session_bench::servers::{prepare, Store, Variant};

    let redis = RedisServer::start().unwrap();
    let postgres = integration_tests::postgres_harness::PostgresServer::start().await;
    let sqlite = integration_tests::temp::TempDir::new("bench-http-servers");
    for store in Store::ALL {
        for variant in [Variant::None, Variant::Ours, Variant::Peer] {
            // Each store's URL, as the benchmark passes it (a SQLite file per server).
            let url = match store {
                Store::Memory | Store::Cookie => None,
                Store::Redis => Some(redis.url()),
                Store::Sqlite => Some(sqlite.sqlite_url(&format!("{}.db", variant.name()))),
                Store::Postgres => Some(postgres.url("postgres")),
            };
            let prepared = prepare(variant, store, url.as_deref()).await.unwrap();
            let expected = match variant {
                Variant::None => "hello",
                _ => "ada lovelace #1",
            };
            let response = call(&prepared.router, request("/read", Some(&prepared.cookie))).await;
            assert_eq!(response.status(), StatusCode::OK);
            if variant == Variant::Ours {
                assert!(response.headers().get(SET_COOKIE).is_none());
            }
            assert_eq!(body_text(response).await, expected, "{variant:?} {store:?}");
            let response = call(&prepared.router, request("/write", Some(&prepared.cookie))).await;
            assert_eq!(response.status(), StatusCode::OK, "{variant:?} {store:?}");
        }
    }
}
