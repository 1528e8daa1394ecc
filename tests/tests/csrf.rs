//! CSRF protection over real HTTP, against the `forms` example app, for the memory store,
//! the cookie store, a real Redis server, a SQLite file and a real PostgreSQL (the suite is in `tests/src/csrf_suite.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod memory {
    use session_runtime::MemoryStore;

    integration_tests::csrf_suite!(async { MemoryStore::new() });
    integration_tests::csrf_server_suite!(async { MemoryStore::new() });

    #[tokio::test]
    async fn a_csrf_layer_outside_the_session_layer_is_a_500_that_says_how_to_fix_it() {
        integration_tests::csrf_suite::a_csrf_layer_outside_the_session_layer_is_a_500_that_says_how_to_fix_it(
            MemoryStore::new(),
        )
        .await;
    }
}

/// A WebSocket handshake is a GET that opens a channel able to change the session: its
/// origin is checked (it carries no token).
mod websocket_handshake {
    use axum::routing::get;
    use axum::Router;
    use integration_tests::app::TestSession;
    use integration_tests::server::{bare_client, TestServer};
    use session_runtime::{CsrfLayer, MemoryStore, SessionLayer};

    async fn server() -> TestServer {
        let router = Router::new()
            .route("/ws", get(|| async { "open" }))
            .route("/api/ws", get(|| async { "open" }))
            .layer(CsrfLayer::<TestSession>::new().secure(false).exempt("/api"))
            .layer(SessionLayer::<TestSession>::new(MemoryStore::new()).secure(false));
        TestServer::start(router).await
    }

    async fn handshake(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut request = bare_client()
            .get(server.url(path))
            .header("upgrade", "websocket");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn a_websocket_handshake_from_another_origin_is_refused() {
        let server = server().await;
        let own = server.url("").trim_end_matches('/').to_owned();
        let elsewhere = own.replace("127.0.0.1", "localhost");
        assert_eq!(
            handshake(&server, "/ws", &[("origin", &elsewhere)]).await,
            403
        );
        assert_eq!(handshake(&server, "/ws", &[("origin", "null")]).await, 403);
        assert_eq!(
            handshake(&server, "/ws", &[("sec-fetch-site", "cross-site")]).await,
            403
        );
        assert_eq!(handshake(&server, "/ws", &[("origin", &own)]).await, 200);
        assert_eq!(handshake(&server, "/ws", &[]).await, 200);
        // An exempt path is exempt from this check too; `/api` does not exempt `/apix`.
        assert_eq!(
            handshake(&server, "/api/ws", &[("origin", &elsewhere)]).await,
            200
        );
    }
}

mod cookie {
    use session_runtime::{CookieStore, Key};

    integration_tests::csrf_suite!(async { CookieStore::new(Key::generate().unwrap()) });
}

mod redis {
    use integration_tests::redis_harness::RedisServer;
    use session_runtime::RedisStore;

    async fn single() -> (RedisServer, RedisStore) {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url()).await.unwrap();
        (server, store)
    }

    integration_tests::csrf_suite!(guarded: single());
    integration_tests::csrf_server_suite!(guarded: single());
}

mod sqlite {
    integration_tests::csrf_suite!(guarded: integration_tests::sql_stores::sqlite());
    integration_tests::csrf_server_suite!(guarded: integration_tests::sql_stores::sqlite());
}

mod postgres {
    integration_tests::csrf_suite!(guarded: integration_tests::sql_stores::postgres());
    integration_tests::csrf_server_suite!(guarded: integration_tests::sql_stores::postgres());
}
