//! The SQLite store on real SQLite files, one in a temporary directory per test: the
//! store-behaviour suite, every request-lifecycle guarantee over real HTTP, the migration
//! and concurrency suites, the file layout, sessions surviving a restart of the app,
//! concurrent writers without "database is locked", `migrate()`, the sweeper, and a file
//! that cannot be written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use integration_tests::sql_stores::sqlite as store;

integration_tests::server_store_suites!(guarded: super::store());

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
            index.iter().any(|sql| sql.contains("(expires_ms)")),
            "{index:?}"
        );
        assert!(
            index.iter().any(|sql| sql.contains("(owner)")),
            "the owner index: {index:?}"
        );
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM app_sessions_migrations")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(versions, [1, 2]);
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
        // A long query timeout: this counts failures, not how fast a loaded machine is.
        let store = SqliteStore::builder()
            .query_timeout(std::time::Duration::from_secs(60))
            .connect(&dir.sqlite_url("sessions.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
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
        assert_eq!(versions, [1, 2]);
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
    use session_runtime::{SessionDigest, SessionLayer, SqliteStore};

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

mod owners {
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
        assert_eq!(versions, [1, 2]);
        let loaded = store.load(&id, NOW).await.unwrap().expect("kept");
        assert_eq!(loaded.record.get("data"), Some(&[1u8][..]));
        assert_eq!(loaded.meta.seen_ms, NOW - 1_000, "the creation time");

        listed_once_a_save_carries_the_owner(&store, &id).await;
    }
}
