//! The SQLite store on real SQLite files, one in a temporary directory per test: the
//! store-behaviour suite, every request-lifecycle guarantee over real HTTP, the migration
//! and concurrency suites, the file layout, sessions surviving a restart of the app,
//! concurrent writers without "database is locked", `migrate()`, the sweeper, and a file
//! that cannot be written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use integration_tests::sql_stores::sqlite as store;
use integration_tests::sql_stores::sqlite_patient as patient;

integration_tests::server_store_suites!(
    guarded: super::store(),
    concurrency: super::patient()
);

/// Shared by the tests below: the test app over a SQLite store, and a browser.
mod support {
    use integration_tests::app::{app, TestSession};
    use integration_tests::server::{browser, cookie_value, TestServer};
    use session_runtime::{SessionId, SessionLayer, SqliteStore};

    pub(crate) struct Running {
        pub(crate) http: TestServer,
        pub(crate) client: reqwest::Client,
    }

    impl Running {
        pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
            self.client.get(self.http.url(path)).send().await.unwrap()
        }

        /// Starts a session with one visit and returns its id.
        pub(crate) async fn visit(&self) -> SessionId {
            let response = self.get("/visit").await;
            assert_eq!(response.status(), 200);
            SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap()
        }
    }

    /// The test app over `store`, with a browser of its own.
    pub(crate) async fn serve(
        store: SqliteStore,
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
    ) -> Running {
        serve_for(store, configure, browser()).await
    }

    /// The test app over `store`, for `client` (a browser that may have visited before).
    pub(crate) async fn serve_for(
        store: SqliteStore,
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
        client: reqwest::Client,
    ) -> Running {
        let layer = configure(SessionLayer::<TestSession>::new(store).secure(false));
        let (router, _state) = app(layer);
        Running {
            http: TestServer::start(router).await,
            client,
        }
    }

    /// One connection to the file at `url`, for looking at it directly.
    pub(crate) async fn sqlite(url: &str) -> sqlx::SqliteConnection {
        use sqlx::Connection as _;
        sqlx::SqliteConnection::connect(url).await.unwrap()
    }
}

mod layout {
    //! What is in the file.

    use integration_tests::temp::TempDir;
    use session_runtime::SqliteStore;
    use sqlx::Row as _;

    use super::support::*;

    #[tokio::test]
    async fn a_session_is_one_row_keyed_by_a_digest_in_a_wal_mode_file() {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("app.db");
        let store = SqliteStore::builder()
            .table("app_sessions")
            .connect(&url)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        let id = app.visit().await;
        app.get("/set-a/5").await;

        let mut db = sqlite(&url).await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let rows = sqlx::query("SELECT id, fields, expires_ms FROM app_sessions")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let key: Vec<u8> = rows[0].get(0);
        assert_eq!(key, id.digest().as_bytes());
        let fields: String = rows[0].get(1);
        assert!(
            fields.contains("\"visits\"") && fields.contains("\"a\""),
            "{fields}"
        );
        let expires: Option<i64> = rows[0].get(2);
        assert!(expires.is_some());
        // The token is nowhere in the file.
        drop(db);
        drop(app);
        let token = id.expose_token();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes
                .windows(token.len())
                .any(|window| window == token.as_bytes()));
        }
        let mut db = sqlite(&url).await;
        let index: Vec<String> = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'app_sessions' AND sql IS NOT NULL",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert!(
            index.iter().any(|sql| sql.contains("(sweep_ms)")),
            "{index:?}"
        );
        assert!(
            !index.iter().any(|sql| sql.contains("(expires_ms)")),
            "a save would write the deadline index: {index:?}"
        );
        assert!(
            index.iter().any(|sql| sql.contains("(owner)")),
            "the owner index: {index:?}"
        );
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM app_sessions_migrations")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
    }

    /// Layout version 1, as `migrate()` made it before version 2 (the sweep column).
    const VERSION_1: [&str; 4] = [
        "CREATE TABLE http_sessions_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        "CREATE TABLE \"http_sessions\" (id BLOB PRIMARY KEY NOT NULL, version INTEGER NOT NULL, \
         created_ms INTEGER NOT NULL, expires_ms INTEGER, absolute_ms INTEGER, \
         fields TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID",
        "CREATE INDEX \"http_sessions_expires_idx\" ON \"http_sessions\" (expires_ms) WHERE expires_ms IS NOT NULL",
        "INSERT INTO http_sessions_migrations (version, applied_ms) VALUES (1, 0)",
    ];

    #[tokio::test]
    async fn migrating_from_layout_version_1_keeps_the_sessions_and_sweeps_the_expired() {
        use session_runtime::SessionId;

        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let live = SessionId::generate().unwrap();
        let expired = SessionId::generate().unwrap();
        {
            let mut db = sqlite(&format!("{url}?mode=rwc")).await;
            for statement in VERSION_1 {
                sqlx::query(statement).execute(&mut db).await.unwrap();
            }
            // As version 1 wrote them: `visits` = 5 (MessagePack 0x05, base64 "BQ").
            for (id, expires) in [(&live, now + 3_600_000), (&expired, now - 1)] {
                sqlx::query(
                    "INSERT INTO http_sessions (id, version, created_ms, expires_ms, fields) \
                     VALUES (?1, 1, ?2, ?3, '{\"visits\":\"BQ\"}')",
                )
                .bind(id.digest().as_bytes().as_slice())
                .bind(now - 10_000)
                .bind(expires)
                .execute(&mut db)
                .await
                .unwrap();
            }
        }

        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap(); // idempotent
        let app = serve(store.clone(), |layer| layer).await;
        let client = integration_tests::server::bare_client();
        let get = |path: &'static str, id: &SessionId| {
            client
                .get(app.http.url(path))
                .header("cookie", format!("session={}", id.expose_token()))
                .send()
        };
        let body = get("/read", &live).await.unwrap().text().await.unwrap();
        assert!(body.starts_with("visits: 5 "), "{body}");
        assert!(body.contains("new: false"), "{body}");
        // A save on an upgraded row.
        assert_eq!(get("/visit", &live).await.unwrap().status(), 200);
        let body = get("/read", &live).await.unwrap().text().await.unwrap();
        assert!(body.starts_with("visits: 6 "), "{body}");
        // The expired one is never served, and the sweeper finds it.
        let body = get("/read", &expired).await.unwrap().text().await.unwrap();
        assert!(body.contains("new: true"), "{body}");
        assert_eq!(store.sweep().await.unwrap(), 1);

        let mut db = sqlite(&url).await;
        let left: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id FROM http_sessions")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(left, [live.digest().as_bytes().to_vec()]);
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM http_sessions_migrations")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'http_sessions' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            ["http_sessions_owner_idx", "http_sessions_sweep_idx"]
        );
    }

    #[tokio::test]
    async fn sessions_survive_a_restart_of_the_app() {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let client = integration_tests::server::browser();
        {
            let store = SqliteStore::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            let app = serve_for(store, |layer| layer, client.clone()).await;
            app.visit().await;
            app.get("/visit").await;
            app.get("/set-a/3").await;
        }
        // A new process would open the file the same way: a new pool, a new server, the
        // same browser.
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let app = serve_for(store, |layer| layer, client).await;
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 2 "), "{body}");
        assert!(!body.contains("new: true"), "{body}");
    }
}

mod contention {
    //! Many writers at once on one file.

    use integration_tests::logs;
    use integration_tests::server::browser;
    use session_runtime::SqliteStore;

    use super::support::*;

    // One runtime thread, so that the log capture (per thread) hears every handler; the
    // writes still contend, each pooled connection being a thread of its own in sqlx.
    #[tokio::test]
    async fn concurrent_writers_never_see_database_is_locked() {
        let (logs, _capturing) = logs::capture();
        let dir = integration_tests::temp::TempDir::new("sqlite");
        // Long query and store timeouts: this counts failures, not how fast a loaded machine is.
        let store = SqliteStore::builder()
            .query_timeout(integration_tests::concurrency::PATIENT)
            .connect(&dir.sqlite_url("sessions.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| {
            layer.store_timeout(integration_tests::concurrency::PATIENT)
        })
        .await;
        let url = app.http.url("/visit");
        // 32 browsers, each writing its own session 20 times, all at once: every write
        // is a transaction on the one file.
        let mut writers = Vec::new();
        for _ in 0..32 {
            let url = url.clone();
            writers.push(tokio::spawn(async move {
                let client = browser();
                for _ in 0..20 {
                    let response = client.get(&url).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                }
                client
                    .get(url.replace("/visit", "/read"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }));
        }
        for writer in writers {
            let body = writer.await.unwrap();
            assert!(body.starts_with("visits: 20 "), "{body}");
        }
        let logged = logs.take();
        assert!(!logged.contains("locked"), "{logged}");
        assert!(!logged.contains("ERROR"), "{logged}");
    }

    #[tokio::test]
    async fn migrate_from_several_processes_at_once_is_safe() {
        let dir = integration_tests::temp::TempDir::new("sqlite");
        let url = dir.sqlite_url("shared.db");
        let mut starting = Vec::new();
        for _ in 0..6 {
            let url = url.clone();
            starting.push(tokio::spawn(async move {
                let store = SqliteStore::connect(&url).await.unwrap();
                store.migrate().await.unwrap();
                store.migrate().await.unwrap();
                store
            }));
        }
        let mut stores = Vec::new();
        for started in starting {
            stores.push(started.await.unwrap());
        }
        let mut db = sqlite(&url).await;
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM http_sessions_migrations")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        let app = serve(stores.pop().unwrap(), |layer| layer).await;
        app.visit().await;
    }
}

mod in_memory {
    //! `sqlite::memory:`: a database that lives as long as the store.

    use session_runtime::SqliteStore;

    use super::support::*;

    #[tokio::test]
    async fn an_in_memory_database_serves_sessions() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        app.visit().await;
        app.get("/visit").await;
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 2 "), "{body}");
    }
}

mod garbage {
    //! Rows this store did not write, including values of the wrong type (SQLite keeps
    //! any value in any column).

    use integration_tests::logs;
    use integration_tests::server::bare_client;
    use integration_tests::temp::TempDir;
    use session_runtime::SqliteStore;

    use super::support::*;

    #[tokio::test]
    async fn a_garbage_row_gives_a_fresh_session_and_a_warning() {
        let (logs, _capturing) = logs::capture();
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        let mut db = sqlite(&url).await;
        let garbage = [
            "version = -1",
            "created_ms = 'yesterday'",
            "expires_ms = 'x'",
            "fields = '[1, 2]'",
            "fields = X'00FF'",
            "fields = '{\"visits\": 5}'",
            "fields = '{\"visits\": \"not base64!\"}'",
        ];
        for change in garbage {
            let id = app.visit().await;
            let updated = sqlx::query(&format!("UPDATE http_sessions SET {change} WHERE id = ?1"))
                .bind(id.digest().as_bytes().as_slice())
                .execute(&mut db)
                .await
                .unwrap();
            assert_eq!(updated.rows_affected(), 1, "{change}");
            logs.take();
            let response = bare_client()
                .get(app.http.url("/read"))
                .header("cookie", format!("session={}", id.expose_token()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{change}");
            let body = response.text().await.unwrap();
            assert!(
                body.contains("visits: 0 user: guest new: true"),
                "{change}: {body}"
            );
            let logged = logs.take();
            assert!(
                logged.contains("WARN") && logged.contains("garbage"),
                "{change}: no warning in {logged:?}"
            );
        }
    }
}

mod sweeper {
    //! Expired rows: deleted by the sweeper in batches, reported once.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use integration_tests::app::TestSession;
    use integration_tests::temp::TempDir;
    use session_runtime::clock::ManualClock;
    use session_runtime::{SessionDigest, SessionId, SessionLayer, SqliteStore};

    use super::support::*;

    #[tokio::test]
    async fn the_sweeper_deletes_expired_rows_in_batches_and_reports_each_once() {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let store = SqliteStore::builder()
            .clock(clock.clone())
            .connect(&url)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let deleted: Arc<Mutex<Vec<SessionDigest>>> = Arc::default();
        let sink = Arc::clone(&deleted);
        let app = serve(store.clone(), |layer: SessionLayer<TestSession>| {
            layer
                .clock(clock.clone())
                .idle_timeout(Duration::from_secs(60))
                .on_deleted(move |digest, _| sink.lock().unwrap().push(*digest))
        })
        .await;
        let expired = app.visit().await;
        let mut db = sqlite(&url).await;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
             INSERT INTO http_sessions (id, version, created_ms, expires_ms, fields) \
             SELECT randomblob(32), 1, 0, 1, '{}' FROM n",
        )
        .execute(&mut db)
        .await
        .unwrap();
        clock.advance(Duration::from_secs(61));
        let live = app.visit().await;

        assert_eq!(store.sweep().await.unwrap(), 2_501);
        assert_eq!(store.sweep().await.unwrap(), 0);
        let reported = deleted.lock().unwrap().clone();
        assert_eq!(reported.len(), 2_501);
        assert!(reported.contains(&expired.digest()));
        assert!(!reported.contains(&live.digest()));
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM http_sessions")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(left, 1);
    }

    /// The row's deadline and sweep bound.
    async fn deadlines(db: &mut sqlx::SqliteConnection, id: &SessionId) -> (i64, i64) {
        sqlx::query_as("SELECT expires_ms, sweep_ms FROM http_sessions WHERE id = ?1")
            .bind(id.digest().as_bytes().as_slice())
            .fetch_one(db)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn saves_leave_the_sweep_bound_alone_and_the_sweeper_catches_up() {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let store = SqliteStore::builder()
            .clock(clock.clone())
            .connect(&url)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store.clone(), |layer: SessionLayer<TestSession>| {
            layer
                .clock(clock.clone())
                .idle_timeout(Duration::from_secs(60))
        })
        .await;
        let id = app.visit().await;
        let mut db = sqlite(&url).await;
        let (created_deadline, bound) = deadlines(&mut db, &id).await;
        assert_eq!(bound, created_deadline);

        // Saves move the deadline later; the bound (and its index entry) stays.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(40));
            assert_eq!(app.get("/visit").await.status(), 200);
        }
        let (deadline, bound) = deadlines(&mut db, &id).await;
        assert_eq!(deadline, created_deadline + 120_000);
        assert_eq!(bound, created_deadline);

        // Past the bound, the session is live: a sweep keeps it and moves its bound up.
        assert_eq!(store.sweep().await.unwrap(), 0);
        assert_eq!(deadlines(&mut db, &id).await, (deadline, deadline));
        clock.advance(Duration::from_secs(61));
        assert_eq!(store.sweep().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_deadline_moved_earlier_is_swept_by_it() {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let store = SqliteStore::builder()
            .clock(clock.clone())
            .connect(&url)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let timeout = |secs| {
            let clock = clock.clone();
            move |layer: SessionLayer<TestSession>| {
                layer.clock(clock).idle_timeout(Duration::from_secs(secs))
            }
        };
        // Written by an app with a one-hour idle timeout, then saved by one with a minute
        // (a redeploy that shortened it): the bound must follow the deadline down.
        let client = integration_tests::server::browser();
        let long = serve_for(store.clone(), timeout(3_600), client.clone()).await;
        let id = long.visit().await;
        let short = serve_for(store.clone(), timeout(60), client).await;
        assert_eq!(short.get("/visit").await.status(), 200);
        let mut db = sqlite(&url).await;
        let (deadline, bound) = deadlines(&mut db, &id).await;
        assert_eq!(deadline, 1_700_000_000_000 + 60_000);
        assert!(bound <= deadline);

        clock.advance(Duration::from_secs(61));
        assert_eq!(store.sweep().await.unwrap(), 1);
    }

    /// Waits, counting polls, until a sweeper deleted the rows expired at 1 ms.
    async fn swept(db: &mut sqlx::SqliteConnection) -> bool {
        for _ in 0..500 {
            let rows: i64 =
                sqlx::query_scalar("SELECT count(*) FROM http_sessions WHERE expires_ms = 1")
                    .fetch_one(&mut *db)
                    .await
                    .unwrap();
            if rows == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[test]
    fn the_sweeper_starts_again_in_a_new_runtime() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let insert_expired =
            "INSERT INTO http_sessions (id, version, created_ms, expires_ms, sweep_ms) \
                              VALUES (randomblob(32), 1, 0, 1, 1)";
        let store = runtime().block_on(async {
            let store = SqliteStore::builder()
                .sweep_interval(Duration::from_millis(20))
                .connect(&url)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            store
        });
        // First used in a runtime that then shuts down.
        let first = runtime();
        first.block_on(async {
            let app = serve(store.clone(), |layer| layer).await;
            app.visit().await;
            let mut db = sqlite(&url).await;
            sqlx::query(insert_expired).execute(&mut db).await.unwrap();
            assert!(swept(&mut db).await, "the sweeper never ran");
        });
        drop(first);
        // Then in another: its first use starts a sweeper there.
        runtime().block_on(async {
            let mut db = sqlite(&url).await;
            sqlx::query(insert_expired).execute(&mut db).await.unwrap();
            let app = serve(store.clone(), |layer| layer).await;
            app.visit().await;
            assert!(swept(&mut db).await, "no sweeper in the new runtime");
        });
    }
}

mod faults {
    //! A file that cannot be written.

    use std::path::Path;
    use std::process::Command;

    use integration_tests::logs;

    use super::support::*;

    /// Makes the database file and its write-ahead log immutable (`chattr +i`: writes are
    /// refused even to root, and even through files already open, which a read-only mode
    /// is not), and mutable again when dropped. The shared-memory index (`-shm`) is left
    /// alone: SQLite maps it into memory, and a mapping that cannot be written is a crash
    /// of the process, not an error a store can report.
    struct Immutable(Vec<std::path::PathBuf>);

    impl Immutable {
        fn set(dir: &Path) -> Self {
            let files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|file| !file.to_string_lossy().ends_with("-shm"))
                .collect();
            for file in &files {
                let status = Command::new("chattr")
                    .arg("+i")
                    .arg(file)
                    .status()
                    .expect("chattr not found: install it with `apt-get install e2fsprogs`");
                assert!(
                    status.success(),
                    "chattr +i {} failed: the test needs a file system with the immutable \
                     attribute (ext4, xfs, btrfs) and CAP_LINUX_IMMUTABLE",
                    file.display()
                );
            }
            Self(files)
        }
    }

    impl Drop for Immutable {
        fn drop(&mut self) {
            for file in &self.0 {
                let _ = Command::new("chattr").arg("-i").arg(file).status();
            }
        }
    }

    #[tokio::test]
    async fn an_unwritable_file_gives_a_503_and_a_logged_error() {
        let (logs, _capturing) = logs::capture();
        let (dir, store) = super::store().await;
        let app = serve(store, |layer| layer).await;
        app.visit().await;
        let immutable = Immutable::set(dir.path());
        logs.take();
        let response = app.get("/visit").await;
        assert_eq!(response.status(), 503);
        let body = response.text().await.unwrap().to_lowercase();
        assert!(
            !body.contains("sqlite") && !body.contains("readonly"),
            "{body}"
        );
        let logged = logs.take();
        assert!(
            logged.contains("ERROR") && logged.contains("sqlite"),
            "the failure was not logged: {logged}"
        );
        // Reads still work meanwhile.
        assert_eq!(app.get("/read").await.status(), 200);

        // Writable again: the app recovers by itself.
        drop(immutable);
        let mut status = 0;
        for _ in 0..100 {
            status = app.get("/visit").await.status().as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            status, 200,
            "the app did not recover once the file was writable"
        );
    }
}

mod owner_index {
    //! The owner column on files from before it existed. (The plan of a listing is checked
    //! by the store's unit test `listing_an_owner_searches_the_owner_index`, on the store's
    //! own statement text.)

    use integration_tests::sql_stores::listed_once_a_save_carries_the_owner;
    use integration_tests::store_suite::NOW;
    use integration_tests::temp::TempDir;
    use session_runtime::store::SessionStore;
    use session_runtime::{SessionId, SqliteStore};

    use super::support::*;

    /// A file migrated by the previous version (layout 1, no owner column) keeps its
    /// sessions through `migrate`; they read their creation time as their last use, and
    /// are in no list until a write carries their owner (the layer writes it when the
    /// owner field changes: at login).
    #[tokio::test]
    async fn upgrading_a_version_1_file_keeps_its_sessions_and_lists_them_once_their_owner_is_written(
    ) {
        let dir = TempDir::new("sqlite");
        let url = dir.sqlite_url("sessions.db");
        let mut db = sqlite(&format!("{url}?mode=rwc")).await;
        // Layout 1 exactly as the previous version's `migrate` made it, with one session.
        let id = SessionId::generate().unwrap().digest();
        for statement in [
            "CREATE TABLE http_sessions (
                id BLOB PRIMARY KEY NOT NULL,
                version INTEGER NOT NULL,
                created_ms INTEGER NOT NULL,
                expires_ms INTEGER,
                absolute_ms INTEGER,
                fields TEXT NOT NULL DEFAULT '{}'
            ) WITHOUT ROWID",
            "CREATE INDEX http_sessions_expires_idx ON http_sessions (expires_ms) \
             WHERE expires_ms IS NOT NULL",
            "CREATE TABLE http_sessions_migrations \
             (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
            "INSERT INTO http_sessions_migrations VALUES (1, 0)",
        ] {
            sqlx::query(statement).execute(&mut db).await.unwrap();
        }
        // `data` = [1] (base64 "AQ"), as the previous version wrote fields.
        sqlx::query(
            "INSERT INTO http_sessions (id, version, created_ms, expires_ms, fields) \
             VALUES (?1, 1, ?2, ?3, '{\"data\": \"AQ\"}')",
        )
        .bind(id.as_bytes().as_slice())
        .bind(i64::try_from(NOW - 1_000).unwrap())
        .bind(i64::try_from(NOW + 3_600_000).unwrap())
        .execute(&mut db)
        .await
        .unwrap();

        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM http_sessions_migrations ORDER BY version")
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        let loaded = store.load(&id, NOW).await.unwrap().expect("kept");
        assert_eq!(loaded.record.get("data"), Some(&[1u8][..]));
        assert_eq!(loaded.meta.seen_ms, NOW - 1_000, "the creation time");

        listed_once_a_save_carries_the_owner(&store, &id).await;
    }
}
