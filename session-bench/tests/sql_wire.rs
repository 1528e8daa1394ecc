//! What a request costs on the wire to PostgreSQL, ours against tower-sessions' sqlx store
//! over the same pool: statements, round trips and bytes sent, counted by a proxy that
//! decodes the protocol (no timing: the same numbers on any machine). The table is printed
//! (`cargo test -p session-bench --test sql_wire -- --nocapture`) and BENCHMARKS.md quotes
//! it; the assertions hold what we claim: never more statements or round trips than the
//! peer, and fewer bytes for a write (only the changed field travels).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use integration_tests::postgres_harness::{PostgresServer, WireCounter};
use session_bench::apps::{self, call, login, request};
use session_runtime::{PostgresStore, SessionLayer};
use sqlx::postgres::PgPoolOptions;

struct Cost {
    statements: usize,
    round_trips: usize,
    bytes: usize,
}

async fn cost(
    proxy: &WireCounter,
    router: &Router,
    path: &str,
    cookie: &axum::http::HeaderValue,
) -> Cost {
    proxy.take();
    proxy.take_bytes();
    let response = call(router, request(path, Some(cookie))).await;
    assert!(response.status().is_success(), "{path}");
    let (statements, round_trips) = proxy.statements();
    Cost {
        statements: statements.len(),
        round_trips,
        bytes: proxy.take_bytes(),
    }
}

#[tokio::test]
async fn a_request_costs_no_more_statements_than_the_peer_and_a_write_sends_fewer_bytes() {
    let server = PostgresServer::start().await;
    let proxy = WireCounter::start(server.port()).await;
    // One connection: every statement is prepared once, by the warm-up below.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&proxy.url("postgres"))
        .await
        .unwrap();
    let ours_store = PostgresStore::from_pool(pool.clone());
    ours_store.migrate().await.unwrap();
    let peer_store = tower_sessions_sqlx_store::PostgresStore::new(pool);
    peer_store.migrate().await.unwrap();
    let ours = apps::ours(SessionLayer::new(ours_store));
    let peer = apps::peer(peer_store);

    let mut rows = Vec::new();
    for (who, router) in [("ours", &ours), ("tower-sessions", &peer)] {
        let cookie = login(router).await.unwrap();
        for _ in 0..3 {
            call(router, request("/read", Some(&cookie))).await;
            call(router, request("/write", Some(&cookie))).await;
        }
        let read = cost(&proxy, router, "/read", &cookie).await;
        let write = cost(&proxy, router, "/write", &cookie).await;
        rows.push((who, read, write));
    }
    println!("| store | read: statements | round trips | bytes sent | write: statements | round trips | bytes sent |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (who, read, write) in &rows {
        println!(
            "| {who} | {} | {} | {} | {} | {} | {} |",
            read.statements,
            read.round_trips,
            read.bytes,
            write.statements,
            write.round_trips,
            write.bytes
        );
    }
    let (ours, peer) = (&rows[0], &rows[1]);
    assert!(ours.1.statements <= peer.1.statements && ours.1.round_trips <= peer.1.round_trips);
    assert!(ours.2.statements <= peer.2.statements && ours.2.round_trips <= peer.2.round_trips);
    assert!(
        ours.2.bytes < peer.2.bytes,
        "a write sent {} bytes, the peer's {}",
        ours.2.bytes,
        peer.2.bytes
    );
}
