//! Flash messages over real HTTP, for the memory store,
//! the cookie store, a real Redis server, a SQLite file and a real PostgreSQL (the suite is in `tests/src/flash_suite.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod memory {
    use session_runtime::MemoryStore;

    integration_tests::flash_suite!(async { MemoryStore::new() });
    integration_tests::flash_server_suite!(async { MemoryStore::new() });
}

mod cookie {
    use session_runtime::{CookieStore, Key};

    integration_tests::flash_suite!(async { CookieStore::new(Key::generate().unwrap()) });
}

mod redis {
    use integration_tests::redis_harness::RedisServer;
    use session_runtime::RedisStore;

    async fn single() -> (RedisServer, RedisStore) {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url()).await.unwrap();
        (server, store)
    }

    integration_tests::flash_suite!(guarded: single());
    integration_tests::flash_server_suite!(guarded: single());
}

mod sqlite {
    integration_tests::flash_suite!(guarded: integration_tests::sql_stores::sqlite());
    integration_tests::flash_server_suite!(guarded: integration_tests::sql_stores::sqlite());
}

mod postgres {
    integration_tests::flash_suite!(guarded: integration_tests::sql_stores::postgres());
    integration_tests::flash_server_suite!(guarded: integration_tests::sql_stores::postgres());
}
