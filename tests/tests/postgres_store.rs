//! The PostgreSQL store against a real PostgreSQL that the tests start for themselves: the
//! store-behaviour suite, every request-lifecycle guarantee over real HTTP, the migration
//! and concurrency suites, the statements and round trips each operation costs (counted by
//! a proxy that decodes the wire protocol), the table layout, `migrate()`, the sweeper, and
//! PostgreSQL stopped and restarted under load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use integration_tests::sql_stores::postgres as store;
use integration_tests::sql_stores::postgres_patient as patient;

integration_tests::server_store_suites!(
    guarded: super::store(),
    concurrency: super::patient()
);

/// Shared by the tests below: the test app over a PostgreSQL store, and a browser.
mod support {
    use integration_tests::app::{app, AppState, TestSession};
    use integration_tests::server::{browser, cookie_value, TestServer};
    use session_runtime::{PostgresStore, SessionId, SessionLayer};

    pub(crate) struct Running {
        pub(crate) store: PostgresStore,
        pub(crate) http: TestServer,
        #[allow(dead_code)]
        pub(crate) state: AppState,
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

    /// The plan of the one statement prepared on `connection` whose text is `like`, executed
    /// with `arguments`.
    pub(crate) async fn plan_of(
        connection: &mut sqlx::PgConnection,
        like: &str,
        arguments: &str,
    ) -> String {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pg_prepared_statements WHERE statement LIKE $1")
                .bind(like)
                .fetch_all(&mut *connection)
                .await
                .unwrap();
        assert_eq!(names.len(), 1, "{like}: {names:?}");
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN EXECUTE {}({arguments})", names[0]))
                .fetch_all(&mut *connection)
                .await
                .unwrap();
        plan.join("\n")
    }

    /// A sweep interval no test outlives: the store sweeps only when a test asks.
    pub(crate) const NO_BACKGROUND_SWEEP: std::time::Duration =
        std::time::Duration::from_secs(365 * 24 * 3600);

    /// A store on the shared server, in `schema`, on `clock`, migrated.
    pub(crate) async fn migrated_in(
        schema: &str,
        clock: session_runtime::clock::ManualClock,
    ) -> PostgresStore {
        let database = integration_tests::postgres_harness::shared().await;
        // Sweeps only when a test asks: the tests using this check bounds and counts that
        // a background sweep would change.
        let store = PostgresStore::builder()
            .schema(schema)
            .clock(clock)
            .sweep_interval(NO_BACKGROUND_SWEEP)
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// The test app over `store`.
    pub(crate) async fn serve(
        store: PostgresStore,
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
    ) -> Running {
        let layer = configure(SessionLayer::<TestSession>::new(store.clone()).secure(false));
        let (router, state) = app(layer);
        Running {
            store,
            http: TestServer::start(router).await,
            state,
            client: browser(),
        }
    }

    /// One connection to `url`, for looking at the tables directly.
    pub(crate) async fn psql(url: &str) -> sqlx::PgConnection {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(url).await.unwrap()
    }
}

mod statements {
    //! What each operation and each request costs, counted on the wire: the statements the
    //! client executes and the round trips it waits for.

    use integration_tests::postgres_harness::{shared, WireCounter};
    use integration_tests::store_suite::{record, NOW};
    use session_runtime::record::{Record, RecordField};
    use session_runtime::store::{SaveOutcome, SessionMeta, SessionStore};
    use session_runtime::{PostgresStore, SessionId};
    use sqlx::postgres::PgPoolOptions;

    use super::support::*;

    /// A store that goes through the counting proxy over one connection (so that every
    /// statement is prepared once, by the warm-up), in a fresh schema.
    async fn counted() -> (WireCounter, PostgresStore) {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let proxy = WireCounter::start(database.port()).await;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect(&proxy.url("postgres"))
            .await
            .unwrap();
        let store = PostgresStore::builder().schema(schema).build(pool).unwrap();
        store.migrate().await.unwrap();
        // Warm-up: each statement prepared once on the one connection.
        let id = SessionId::generate().unwrap();
        let meta = SessionMeta {
            created_ms: NOW,
            seen_ms: NOW,
            expires_ms: Some(NOW + 60_000),
            absolute_ms: None,
        };
        let data = record(&[("a", &[1])]);
        store.create(&id.digest(), &data, &meta, NOW).await.unwrap();
        store.load(&id.digest(), NOW).await.unwrap();
        store.save(&id.digest(), &data, &meta, NOW).await.unwrap();
        // A save that moves the owner is its own statement (naming the owner column).
        store
            .save(&id.digest(), &owned_by("nobody", &data), &meta, NOW)
            .await
            .unwrap();
        store.touch(&id.digest(), &meta, NOW).await.unwrap();
        store.owned_by("nobody", NOW).await.unwrap();
        store.take(&id.digest(), NOW).await.unwrap();
        store.delete(&id.digest()).await.unwrap();
        proxy.take();
        (proxy, store)
    }

    /// `data` with the owner field the layer writes (`__owner`, a MessagePack string).
    fn owned_by(owner: &str, data: &Record) -> Record {
        let mut value = Vec::new();
        rmp::encode::write_str(&mut value, owner).unwrap();
        let mut record = data.clone();
        record.fields.push(RecordField {
            key: "__owner".into(),
            value,
        });
        record
    }

    #[tokio::test]
    async fn every_operation_is_one_statement_in_one_round_trip() {
        let (proxy, store) = counted().await;
        let id = SessionId::generate().unwrap();
        let meta = SessionMeta {
            created_ms: NOW,
            seen_ms: NOW,
            expires_ms: Some(NOW + 60_000),
            absolute_ms: Some(NOW + 120_000),
        };
        let data = record(&[("a", &[1]), ("b", &[2])]);
        let cases: Vec<(&str, &str)> = vec![
            ("create", "INSERT"),
            ("load", "SELECT"),
            ("save", "UPDATE"),
            ("save moving the owner", "UPDATE"),
            ("owned_by", "SELECT"),
            ("touch", "UPDATE"),
            ("take", "DELETE"),
            ("delete", "DELETE"),
        ];
        for (operation, statement) in cases {
            match operation {
                "create" => drop(store.create(&id.digest(), &data, &meta, NOW).await.unwrap()),
                "load" => assert!(store.load(&id.digest(), NOW).await.unwrap().is_some()),
                "save" => drop(store.save(&id.digest(), &data, &meta, NOW).await.unwrap()),
                "save moving the owner" => {
                    let changes = owned_by("ada", &record(&[("a", &[3])]));
                    let saved = store.save(&id.digest(), &changes, &meta, NOW).await;
                    assert_eq!(saved.unwrap(), SaveOutcome::Saved);
                }
                "owned_by" => {
                    let listed = store.owned_by("ada", NOW).await.unwrap();
                    assert_eq!(listed.len(), 1, "the save moved the owner");
                }
                "touch" => drop(store.touch(&id.digest(), &meta, NOW).await.unwrap()),
                "take" => assert!(store.take(&id.digest(), NOW).await.unwrap().is_some()),
                _ => assert!(!store.delete(&id.digest()).await.unwrap()),
            }
            let (statements, round_trips) = proxy.statements();
            assert_eq!(statements, [statement], "{operation}");
            assert_eq!(round_trips, 1, "{operation}");
        }
    }

    #[tokio::test]
    async fn each_request_costs_the_statements_the_docs_list() {
        let (proxy, store) = counted().await;
        let app = serve(store, |layer| layer).await;

        let cases: [(&str, &[&str]); 6] = [
            ("/ignore", &[]),
            ("/visit", &["INSERT"]),
            ("/read", &["SELECT"]),
            ("/visit", &["SELECT", "UPDATE"]),
            ("/set-a/7", &["SELECT", "UPDATE"]),
            ("/read", &["SELECT"]),
        ];
        for (path, expected) in cases {
            assert_eq!(app.get(path).await.status(), 200, "{path}");
            let (statements, round_trips) = proxy.statements();
            assert_eq!(statements, expected, "{path}");
            assert_eq!(round_trips, expected.len(), "{path}");
        }
        let response = app
            .client
            .post(app.http.url("/logout"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        assert_eq!(
            proxy.statements(),
            (vec!["SELECT".into(), "DELETE".into()], 2)
        );
    }

    #[tokio::test]
    async fn renewal_is_one_insert_and_one_delete_after_the_load() {
        let (proxy, store) = counted().await;
        let app = serve(store, |layer| layer).await;
        app.visit().await;
        proxy.take();
        let response = app
            .client
            .post(app.http.url("/login/ada"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let (statements, round_trips) = proxy.statements();
        assert_eq!(statements, ["SELECT", "INSERT", "DELETE"]);
        assert_eq!(round_trips, 3);
    }
}

mod layout {
    //! What is in the database.

    use integration_tests::postgres_harness::shared;
    use session_runtime::PostgresStore;
    use sqlx::Row as _;

    use super::support::*;

    #[tokio::test]
    async fn a_session_is_one_row_keyed_by_a_digest_that_holds_no_token() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let store = PostgresStore::builder()
            .schema(&schema)
            .table("app_sessions")
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        let id = app.visit().await;
        app.get("/set-a/5").await;

        let mut db = psql(database.url()).await;
        let rows = sqlx::query(&format!(
            "SELECT id, version, created_ms, expires_ms, absolute_ms, fields::text FROM {schema}.app_sessions"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        let key: Vec<u8> = rows[0].get(0);
        assert_eq!(key, id.digest().as_bytes());
        let fields: String = rows[0].get(5);
        assert!(!fields.contains(&id.expose_token()));
        assert!(
            fields.contains("\"visits\"") && fields.contains("\"a\""),
            "{fields}"
        );
        let expires: Option<i64> = rows[0].get(3);
        assert!(expires.is_some(), "the idle deadline is a column");
        // Nothing anywhere in the schema holds the token.
        let dump: String = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, ' ') FROM {schema}.app_sessions t"
        ))
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert!(!dump.contains(&id.expose_token()));

        // The sweeper's index is on the sweep bound, none on the deadline (saves must
        // change no indexed column), pages keep room for HOT updates, and the migration is
        // recorded.
        assert_eq!(
            indexes(&mut db, &schema, "app_sessions").await,
            [
                "app_sessions_owner_idx (owner) WHERE (owner IS NOT NULL)",
                "app_sessions_pkey (id)",
                "app_sessions_sweep_idx (sweep_ms)",
            ]
        );
        let options: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(c.reloptions) FROM pg_class c JOIN pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'app_sessions'",
        )
        .bind(&schema)
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(options, ["fillfactor=80"]);
        let versions: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {schema}.app_sessions_migrations"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        let bound: Option<i64> =
            sqlx::query_scalar(&format!("SELECT sweep_ms FROM {schema}.app_sessions"))
                .fetch_one(&mut db)
                .await
                .unwrap();
        // The deadline when the session was created: the save moved the deadline, not it.
        assert!(bound.is_some() && bound <= expires, "{bound:?} {expires:?}");
    }

    /// The indexes of `schema.table`, by name, with what they index: `name (columns) ..`.
    pub(crate) async fn indexes(
        db: &mut sqlx::PgConnection,
        schema: &str,
        table: &str,
    ) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT indexname || ' ' || substring(indexdef from '\\(.*$') FROM pg_indexes \
             WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(db)
        .await
        .unwrap()
    }

    /// Layout version 2 exactly as the previous version's `migrate` made it in `schema`.
    fn version_2(schema: &str) -> [String; 7] {
        let t = format!("{schema}.http_sessions");
        [
            format!(
                "CREATE TABLE {t} (id BYTEA PRIMARY KEY, version BIGINT NOT NULL, \
                 created_ms BIGINT NOT NULL, expires_ms BIGINT, absolute_ms BIGINT, \
                 fields JSONB NOT NULL DEFAULT '{{}}'::jsonb)"
            ),
            format!(
                "CREATE INDEX http_sessions_expires_idx ON {t} (expires_ms) \
                 WHERE expires_ms IS NOT NULL"
            ),
            format!("ALTER TABLE {t} ADD COLUMN owner TEXT"),
            format!("ALTER TABLE {t} ADD COLUMN seen_ms BIGINT"),
            format!("CREATE INDEX http_sessions_owner_idx ON {t} (owner) WHERE owner IS NOT NULL"),
            format!(
                "CREATE TABLE {t}_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            ),
            format!("INSERT INTO {t}_migrations VALUES (1, 0), (2, 0)"),
        ]
    }

    /// Upgrading from layout 2 (an index on the deadline) to 3 (on the sweep bound) rewrites
    /// no row: the table keeps its file and every row its place, the bounds start `NULL`.
    /// The rows keep working; a save gives its row a bound (`least` ignores `NULL`); the
    /// first sweep gives every other row its bound, in batches, and deletes the expired
    /// ones, more than a batch of them.
    #[tokio::test]
    async fn upgrading_a_version_2_table_rewrites_no_row_and_its_expired_rows_are_swept() {
        use integration_tests::store_suite::{record, NOW};
        use session_runtime::clock::ManualClock;
        use session_runtime::store::{SaveOutcome, SessionMeta, SessionStore};
        use session_runtime::SessionId;

        let database = shared().await;
        let schema = database.fresh_schema().await;
        let t = format!("{schema}.http_sessions");
        let mut db = psql(database.url()).await;
        for statement in version_2(&schema) {
            sqlx::query(&statement).execute(&mut db).await.unwrap();
        }
        // 2,500 expired sessions, and three live ones, as version 2 wrote them.
        sqlx::query(&format!(
            "INSERT INTO {t} (id, version, created_ms, expires_ms, fields) \
             SELECT sha256(i::text::bytea), 1, 0, 1, '{{}}' FROM generate_series(1, 2500) i"
        ))
        .execute(&mut db)
        .await
        .unwrap();
        let hour = i64::try_from(NOW + 3_600_000).unwrap();
        let (live, never, saved) = (
            SessionId::generate().unwrap().digest(),
            SessionId::generate().unwrap().digest(),
            SessionId::generate().unwrap().digest(),
        );
        for (id, expires) in [(&live, Some(hour)), (&never, None), (&saved, Some(hour))] {
            sqlx::query(&format!(
                "INSERT INTO {t} (id, version, created_ms, expires_ms, fields, seen_ms) \
                 VALUES ($1, 1, 0, $2, '{{\"data\": \"AQ\"}}', 0)"
            ))
            .bind(id.as_bytes().as_slice())
            .bind(expires)
            .execute(&mut db)
            .await
            .unwrap();
        }
        let places = format!(
            "SELECT (SELECT relfilenode::text FROM pg_class WHERE oid = '{t}'::regclass) \
             || ' ' || string_agg(ctid::text, ' ' ORDER BY id) FROM {t}"
        );
        let before: String = sqlx::query_scalar(&places)
            .fetch_one(&mut db)
            .await
            .unwrap();

        let store = migrated_in(&schema, ManualClock::at_ms(NOW)).await;
        store.migrate().await.unwrap(); // idempotent
        let after: String = sqlx::query_scalar(&places)
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(after, before, "a row was rewritten");
        let bounds: i64 = sqlx::query_scalar(&format!("SELECT count(sweep_ms) FROM {t}"))
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(bounds, 0);
        assert_eq!(
            indexes(&mut db, &schema, "http_sessions").await,
            [
                "http_sessions_owner_idx (owner) WHERE (owner IS NOT NULL)",
                "http_sessions_pkey (id)",
                "http_sessions_sweep_idx (sweep_ms)",
            ]
        );
        let versions: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {t}_migrations ORDER BY version"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 3]);

        let bound = |id: session_runtime::SessionDigest| {
            let query = format!("SELECT sweep_ms FROM {t} WHERE id = $1");
            async move {
                let mut db = psql(database.url()).await;
                sqlx::query_scalar::<_, Option<i64>>(&query)
                    .bind(id.as_bytes().as_slice())
                    .fetch_one(&mut db)
                    .await
                    .unwrap()
            }
        };
        let meta = SessionMeta {
            created_ms: 0,
            seen_ms: NOW,
            expires_ms: Some(NOW + 7_200_000),
            absolute_ms: None,
        };
        let changes = record(&[("data", &[2])]);
        let outcome = store.save(&saved, &changes, &meta, NOW).await;
        assert_eq!(outcome.unwrap(), SaveOutcome::Saved);
        assert_eq!(bound(saved).await, Some(hour + 3_600_000));
        assert_eq!(bound(live).await, None);

        assert_eq!(store.sweep().await.unwrap(), 2_500);
        assert_eq!(bound(live).await, Some(hour));
        assert_eq!(bound(never).await, Some(i64::MAX));
        assert_eq!(bound(saved).await, Some(hour + 3_600_000));
        for id in [&live, &never, &saved] {
            assert!(store.load(id, NOW).await.unwrap().is_some());
        }
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(left, 3);
        assert_eq!(store.sweep().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_bad_table_or_schema_name_is_refused() {
        let database = shared().await;
        for builder in [
            PostgresStore::builder().table("sessions; DROP TABLE x"),
            PostgresStore::builder().schema("a\"b"),
            PostgresStore::builder().table(""),
        ] {
            let error = builder.connect(database.url()).await.unwrap_err();
            assert!(error.to_string().contains("invalid SQL name"), "{error}");
        }
    }
}

mod migrate {
    //! `migrate()`: idempotent, and safe when several instances run it at once.

    use integration_tests::postgres_harness::shared;
    use session_runtime::PostgresStore;

    use super::support::*;

    #[tokio::test]
    async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
        let database = shared().await;
        let schema = format!("{}_new", database.fresh_schema().await);
        // Eight instances start at once on a schema that does not exist yet.
        let mut starting = Vec::new();
        for _ in 0..8 {
            let schema = schema.clone();
            let url = database.url().to_owned();
            starting.push(tokio::spawn(async move {
                let store = PostgresStore::builder()
                    .schema(schema)
                    .connect(&url)
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                store
            }));
        }
        let mut stores = Vec::new();
        for started in starting {
            stores.push(started.await.unwrap());
        }
        // And again: nothing to do.
        stores[0].migrate().await.unwrap();
        let mut db = psql(database.url()).await;
        let versions: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {schema}.http_sessions_migrations"
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(versions, [1, 2, 3]);
        // The store works.
        let app = serve(stores.pop().unwrap(), |layer| layer).await;
        app.visit().await;
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 1 "), "{body}");
    }

    #[tokio::test]
    async fn migrate_needs_no_rights_to_create_tables_when_they_are_up_to_date() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let owner = PostgresStore::builder()
            .schema(&schema)
            .connect(database.url())
            .await
            .unwrap();
        owner.migrate().await.unwrap();
        // The app's role may read and write rows, nothing more.
        let role = format!("{schema}_app");
        let mut db = psql(database.url()).await;
        for statement in [
            format!("CREATE ROLE {role} LOGIN"),
            format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ),
        ] {
            sqlx::query(&statement).execute(&mut db).await.unwrap();
        }
        let url = database.url().replace("postgres@", &format!("{role}@"));
        let store = PostgresStore::builder()
            .schema(&schema)
            .connect(&url)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        app.visit().await;
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 1 "), "{body}");
    }

    #[tokio::test]
    async fn a_store_used_before_migrate_fails_with_a_503_not_a_panic() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let store = PostgresStore::builder()
            .schema(schema)
            .connect(database.url())
            .await
            .unwrap();
        let app = serve(store, |layer| layer).await;
        assert_eq!(app.get("/visit").await.status(), 503);
        app.store.migrate().await.unwrap();
        assert_eq!(app.get("/visit").await.status(), 200);
    }
}

mod sweeper {
    //! Expired rows: never returned, deleted by the sweeper in batches, reported once.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use integration_tests::app::TestSession;
    use integration_tests::postgres_harness::shared;
    use session_runtime::clock::ManualClock;
    use session_runtime::{PostgresStore, SessionDigest, SessionLayer};

    use super::support::*;

    #[tokio::test]
    async fn the_sweeper_deletes_expired_rows_in_batches_and_reports_each_once() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let store = migrated_in(&schema, clock.clone()).await;
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
        // 2,500 more expired sessions, written straight into the table: three batches.
        let mut db = psql(database.url()).await;
        sqlx::query(&format!(
            "INSERT INTO {schema}.http_sessions (id, version, created_ms, expires_ms, fields) \
             SELECT sha256(i::text::bytea), 1, 0, 1, '{{}}' FROM generate_series(1, 2500) i"
        ))
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
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.http_sessions"))
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(left, 1);
    }

    /// The row's deadline and sweep bound.
    async fn deadlines(
        db: &mut sqlx::PgConnection,
        schema: &str,
        id: &session_runtime::SessionId,
    ) -> (i64, i64) {
        sqlx::query_as(&format!(
            "SELECT expires_ms, sweep_ms FROM {schema}.http_sessions WHERE id = $1"
        ))
        .bind(id.digest().as_bytes().as_slice())
        .fetch_one(db)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn saves_leave_the_sweep_bound_alone_and_the_sweeper_catches_up() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let store = migrated_in(&schema, clock.clone()).await;
        let app = serve(store.clone(), |layer: SessionLayer<TestSession>| {
            layer
                .clock(clock.clone())
                .idle_timeout(Duration::from_secs(60))
        })
        .await;
        let id = app.visit().await;
        let mut db = psql(database.url()).await;
        let (created_deadline, bound) = deadlines(&mut db, &schema, &id).await;
        assert_eq!(bound, created_deadline);

        // Saves move the deadline later; the bound (and its index entry) stays.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(40));
            assert_eq!(app.get("/visit").await.status(), 200);
        }
        let (deadline, bound) = deadlines(&mut db, &schema, &id).await;
        assert_eq!(deadline, created_deadline + 120_000);
        assert_eq!(bound, created_deadline);

        // Past the bound, the session is live: a sweep keeps it and moves its bound up.
        assert_eq!(store.sweep().await.unwrap(), 0);
        assert_eq!(deadlines(&mut db, &schema, &id).await, (deadline, deadline));
        clock.advance(Duration::from_secs(61));
        assert_eq!(store.sweep().await.unwrap(), 1);
    }

    /// A save that moves the deadline earlier (an app redeployed with a shorter idle
    /// timeout) moves the bound down with it, in the same statement: the sweeper finds the
    /// session by its new deadline.
    #[tokio::test]
    async fn a_deadline_moved_earlier_is_swept_by_it() {
        use integration_tests::store_suite::{record, NOW};
        use session_runtime::store::{SaveOutcome, SessionMeta, SessionStore};
        use session_runtime::SessionId;

        let database = shared().await;
        let schema = database.fresh_schema().await;
        let clock = ManualClock::at_ms(NOW);
        let store = migrated_in(&schema, clock.clone()).await;
        let (saved, touched) = (
            SessionId::generate().unwrap(),
            SessionId::generate().unwrap(),
        );
        let meta = |idle: u64| SessionMeta {
            created_ms: NOW,
            seen_ms: NOW,
            expires_ms: Some(NOW + idle),
            absolute_ms: None,
        };
        let data = record(&[("a", &[1])]);
        for id in [&saved, &touched] {
            let hour = meta(3_600_000);
            store.create(&id.digest(), &data, &hour, NOW).await.unwrap();
        }
        let outcome = store.save(&saved.digest(), &data, &meta(60_000), NOW).await;
        assert_eq!(outcome.unwrap(), SaveOutcome::Saved);
        let outcome = store.touch(&touched.digest(), &meta(60_000), NOW).await;
        assert_eq!(outcome.unwrap(), SaveOutcome::Saved);
        let mut db = psql(database.url()).await;
        for id in [&saved, &touched] {
            let deadline = i64::try_from(NOW + 60_000).unwrap();
            assert_eq!(deadlines(&mut db, &schema, id).await, (deadline, deadline));
        }

        clock.advance(Duration::from_secs(61));
        assert_eq!(store.sweep().await.unwrap(), 2);
    }

    /// The store's own prepared sweeper statements, planned by PostgreSQL over a table
    /// whose statistics say most bounds have passed (a backlog: 20,000 expired rows, with
    /// 10,000 live rows whose bound has passed between them, and 1,000 live rows ahead),
    /// read the lowest bounds a window at a time through the sweep index (a `Limit` over an
    /// index scan: never a scan of the table, never a bitmap of every passed bound; the
    /// window's rows are then looked up by their key), so
    /// each statement costs a batch whatever the backlog; and one sweep then deletes every
    /// expired row and moves every live row's bound, whatever the mix in each window.
    #[tokio::test]
    async fn sweeping_searches_the_sweep_index_not_the_table() {
        use integration_tests::store_suite::NOW;
        use sqlx::postgres::PgPoolOptions;

        let database = shared().await;
        let schema = database.fresh_schema().await;
        // One connection: the statements the store prepares are the ones looked at below.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(database.url())
            .await
            .unwrap();
        let store = PostgresStore::builder()
            .schema(&schema)
            .clock(ManualClock::at_ms(NOW))
            .sweep_interval(NO_BACKGROUND_SWEEP)
            .build(pool.clone())
            .unwrap();
        store.migrate().await.unwrap();
        // Prepares the sweeper's statements on the one connection.
        assert_eq!(store.sweep().await.unwrap(), 0);
        // i = 1..=30,000: bounds all passed, one a second up to now; every third row is
        // live (deadline an hour ahead), the others expired at their bound. Then 1,000
        // rows whose bound is ahead.
        let t = format!("{schema}.http_sessions");
        let statements = [
            format!(
                "INSERT INTO {t} (id, version, created_ms, expires_ms, fields, sweep_ms) \
                 SELECT sha256(i::text::bytea), 1, 0, \
                 CASE WHEN i % 3 = 0 OR i > 30000 THEN {NOW} + 3600000 + i ELSE b END, '{{}}', b \
                 FROM generate_series(1, 31000) i, \
                 LATERAL (SELECT {NOW} + (i - 30000) * 1000 AS b) d"
            ),
            // Statistics that say every bound is NULL (as right after the upgrade to
            // layout 3, before the next `ANALYZE`), while none is: `fill` must not become
            // a scan of the table looking for the NULLs.
            format!("CREATE TABLE {schema}.bounds AS SELECT id, sweep_ms FROM {t}"),
            format!("UPDATE {t} SET sweep_ms = NULL"),
            format!("ANALYZE {t}"),
            format!(
                "UPDATE {t} SET sweep_ms = b.sweep_ms FROM {schema}.bounds b WHERE {t}.id = b.id"
            ),
        ];
        for statement in &statements {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        let mut connection = pool.acquire().await.unwrap();
        let fill = plan_of(&mut connection, "UPDATE %WHERE sweep_ms IS NULL%", "1000").await;
        sqlx::query(&format!("ANALYZE {t}"))
            .execute(&mut *connection)
            .await
            .unwrap();
        let window = format!("{NOW}, 1000");
        let refresh = plan_of(
            &mut connection,
            "UPDATE %SET sweep_ms = %WHERE sweep_ms <= $1%",
            &window,
        )
        .await;
        let sweep = plan_of(
            &mut connection,
            "DELETE FROM %WHERE sweep_ms <= $1%",
            &window,
        )
        .await;
        for (statement, plan, condition) in [
            ("fill", &fill, "Index Cond: (sweep_ms IS NULL)"),
            ("refresh", &refresh, "Index Cond: (sweep_ms <= "),
            ("sweep", &sweep, "Index Cond: (sweep_ms <= "),
        ] {
            assert!(
                plan.contains("Index Scan") && plan.contains("using http_sessions_sweep_idx"),
                "{statement}: {plan}"
            );
            assert!(plan.contains(condition), "{statement}: {plan}");
            assert!(plan.contains("Limit"), "{statement}: {plan}");
            assert!(plan.contains("http_sessions_pkey"), "{statement}: {plan}");
            assert!(!plan.contains("Seq Scan"), "{statement}: {plan}");
            assert!(!plan.contains("Sort"), "{statement}: {plan}");
            assert!(
                !plan.contains("Bitmap Index Scan on http_sessions_sweep_idx"),
                "{statement}: {plan}"
            );
        }
        drop(connection);

        assert_eq!(store.sweep().await.unwrap(), 20_000);
        let count = |condition: &str| {
            format!("SELECT count(*) FROM {schema}.http_sessions WHERE {condition}")
        };
        let passed: i64 = sqlx::query_scalar(&count(&format!("sweep_ms <= {NOW}")))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(passed, 0, "every live row's bound moved up to its deadline");
        let left: i64 = sqlx::query_scalar(&count(&format!("expires_ms > {NOW}")))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(left, 11_000, "no live row deleted");
    }

    #[tokio::test]
    async fn the_sweeper_runs_by_itself_and_stops_with_the_store() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let store = PostgresStore::builder()
            .schema(&schema)
            .sweep_interval(Duration::from_millis(20))
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let mut db = psql(database.url()).await;
        let insert_expired = format!(
            "INSERT INTO {schema}.http_sessions (id, version, created_ms, expires_ms, fields) \
             VALUES (sha256(random()::text::bytea), 1, 0, 1, '{{}}')"
        );
        let count = format!("SELECT count(*) FROM {schema}.http_sessions WHERE expires_ms = 1");
        sqlx::query(&insert_expired).execute(&mut db).await.unwrap();
        // The first store operation starts the sweeper.
        let app = serve(store, |layer| layer).await;
        app.visit().await;
        let mut rows = 1;
        for _ in 0..500 {
            rows = sqlx::query_scalar::<_, i64>(&count)
                .fetch_one(&mut db)
                .await
                .unwrap();
            if rows == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(rows, 0, "the sweeper never ran");

        drop(app);
        // The server's connection tasks may hold the router (and the store) a moment after
        // the app is dropped: the sweeper must stop once they let go. Each round inserts an
        // expired row and gives the sweeper ten intervals; a round in which the row stays
        // shows it stopped. A sweeper that outlives its store fails every round.
        let mut stopped = false;
        for _ in 0..50 {
            sqlx::query(&insert_expired).execute(&mut db).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let rows: i64 = sqlx::query_scalar(&count).fetch_one(&mut db).await.unwrap();
            if rows > 0 {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "a sweeper outlived its store");
    }
}

mod garbage {
    //! Rows this store did not write.

    use integration_tests::logs;
    use integration_tests::postgres_harness::shared;
    use integration_tests::server::bare_client;

    use super::support::*;

    #[tokio::test]
    async fn a_garbage_row_gives_a_fresh_session_and_a_warning() {
        let (logs, _capturing) = logs::capture();
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let store = session_runtime::PostgresStore::builder()
            .schema(&schema)
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        let mut db = psql(database.url()).await;
        let garbage = [
            "version = -1",
            "created_ms = -5",
            "fields = '[1, 2]'::jsonb",
            "fields = '{\"visits\": 5}'::jsonb",
            "fields = '{\"visits\": \"not base64!\"}'::jsonb",
        ];
        for change in garbage {
            let id = app.visit().await;
            let updated = sqlx::query(&format!(
                "UPDATE {schema}.http_sessions SET {change} WHERE id = $1"
            ))
            .bind(id.digest().as_bytes().as_slice())
            .execute(&mut db)
            .await
            .unwrap();
            assert_eq!(updated.rows_affected(), 1);
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

mod faults {
    //! PostgreSQL down, restarted, or unreachable.

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use integration_tests::logs;
    use integration_tests::postgres_harness::PostgresServer;
    use session_runtime::{PostgresStore, SqlConnectError};

    use super::support::*;

    const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
    /// Scheduling slack on a loaded 2-core CI machine: the traffic, the server and the
    /// test share one thread. With it, the bound stays under the layer's 3 s store timeout,
    /// so the query timeout is still what each bounded request proves.
    const MARGIN: Duration = Duration::from_millis(1_500);

    #[tokio::test]
    async fn postgres_stopped_under_load_gives_503s_within_the_timeout_and_the_app_recovers() {
        let (logs, _capturing) = logs::capture();
        let mut server = PostgresServer::start().await;
        let store = PostgresStore::builder()
            .query_timeout(QUERY_TIMEOUT)
            .connect(&server.url("postgres"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let app = serve(store, |layer| layer).await;
        app.visit().await;

        // Steady load from 8 clients across the stop and the restart: every answer is a 200
        // or an opaque 503, never a hang, a 500 or a dropped connection.
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, unavailable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let traffic: Vec<_> = (0..8)
            .map(|_| {
                let (client, url) = (app.client.clone(), app.http.url("/visit"));
                let (stop, ok, unavailable) = (stop.clone(), ok.clone(), unavailable.clone());
                let slowest = slowest.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        let response = client.get(&url).send().await.unwrap();
                        let elapsed = started.elapsed();
                        {
                            let mut worst = slowest.lock().unwrap();
                            *worst = (*worst).max(elapsed);
                        }
                        match response.status().as_u16() {
                            200 => ok.fetch_add(1, Ordering::SeqCst),
                            503 => unavailable.fetch_add(1, Ordering::SeqCst),
                            other => panic!("unexpected status {other}"),
                        };
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;

        server.stop().await;
        for path in ["/read", "/visit", "/set-a/1"] {
            let started = Instant::now();
            let response = app.get(path).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 503, "{path}");
            let body = response.text().await.unwrap().to_lowercase();
            for secret in ["postgres", "refused", "connect", "127.0.0.1", "sqlx"] {
                assert!(!body.contains(secret), "the 503 tells {secret:?}: {body}");
            }
            assert!(elapsed < QUERY_TIMEOUT + MARGIN, "{path} took {elapsed:?}");
        }
        assert_eq!(app.get("/ignore").await.status(), 200);
        let logged = logs.take();
        assert!(
            logged.contains("ERROR") && logged.contains("postgres"),
            "the outage was not logged: {logged}"
        );

        let server = server.restart().await;
        let started = Instant::now();
        loop {
            let status = app.get("/read").await.status();
            if status == 200 {
                break;
            }
            assert_eq!(status, 503);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the app did not recover after PostgreSQL came back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("recovered {:?} after the restart", started.elapsed());
        // The data survived the restart: the session is still there.
        let body = app.get("/read").await.text().await.unwrap();
        assert!(!body.contains("new: true"), "{body}");

        stop.store(true, Ordering::SeqCst);
        for client in traffic {
            client.await.unwrap();
        }
        let slowest = *slowest.lock().unwrap();
        eprintln!(
            "steady load: {} successes, {} opaque 503s, slowest answer {slowest:?}",
            ok.load(Ordering::SeqCst),
            unavailable.load(Ordering::SeqCst)
        );
        assert!(ok.load(Ordering::SeqCst) > 0);
        assert!(
            unavailable.load(Ordering::SeqCst) > 0,
            "the traffic never saw the outage"
        );
        assert!(
            slowest < QUERY_TIMEOUT + MARGIN,
            "a request took {slowest:?}"
        );
        drop(server);
    }

    #[tokio::test]
    async fn unreachable_postgres_at_start_up_is_a_clear_error() {
        let server = PostgresServer::start().await;
        let url = server.url("postgres");
        let port = server.port();
        drop(server);
        let error = PostgresStore::connect(&url).await.unwrap_err();
        assert!(
            matches!(error, SqlConnectError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
        let error = PostgresStore::connect("postgres://app@localhost:notaport/db")
            .await
            .unwrap_err();
        assert!(matches!(error, SqlConnectError::InvalidUrl(_)), "{error:?}");
    }
}

mod owner_index {
    //! The owner column: the plan of a listing, and tables from before it existed.

    use integration_tests::postgres_harness::shared;
    use integration_tests::sql_stores::listed_once_a_save_carries_the_owner;
    use integration_tests::store_suite::NOW;
    use session_runtime::store::SessionStore;
    use session_runtime::{PostgresStore, SessionId};
    use sqlx::postgres::PgPoolOptions;

    use super::support::*;

    /// The store's own prepared `owned_by` statement, planned by PostgreSQL over 20,000
    /// sessions of 2,000 owners: an index scan of the owner index, never a scan of the
    /// table, so listing k sessions reads k rows.
    #[tokio::test]
    async fn listing_an_owner_uses_the_owner_index_not_a_scan() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        // One connection: the statement the store prepares is the one looked at below.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(database.url())
            .await
            .unwrap();
        let store = PostgresStore::builder()
            .schema(&schema)
            .build(pool.clone())
            .unwrap();
        store.migrate().await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO {schema}.http_sessions (id, version, created_ms, expires_ms, fields, owner) \
             SELECT sha256(i::text::bytea), 1, 0, {}, '{{}}', 'user-' || (i % 2000) \
             FROM generate_series(1, 20000) i",
            NOW + 3_600_000
        ))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(&format!("ANALYZE {schema}.http_sessions"))
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(store.owned_by("user-7", NOW).await.unwrap().len(), 10);

        let mut connection = pool.acquire().await.unwrap();
        let plan = plan_of(
            &mut connection,
            "SELECT id, %WHERE owner = $1%",
            &format!("'user-7', {NOW}"),
        )
        .await;
        assert!(plan.contains("http_sessions_owner_idx"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    /// A table migrated by the previous version (layout 1, no owner column) keeps its
    /// sessions through `migrate`; they read their creation time as their last use, and
    /// are in no list until a write carries their owner (the layer writes it when the
    /// owner field changes: at login).
    #[tokio::test]
    async fn upgrading_a_version_1_table_keeps_its_sessions_and_lists_them_once_their_owner_is_written(
    ) {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let mut db = psql(database.url()).await;
        // Layout 1 exactly as the previous version's `migrate` made it, with one session.
        let id = SessionId::generate().unwrap().digest();
        for statement in [
            format!(
                "CREATE TABLE {schema}.http_sessions (
                    id BYTEA PRIMARY KEY,
                    version BIGINT NOT NULL,
                    created_ms BIGINT NOT NULL,
                    expires_ms BIGINT,
                    absolute_ms BIGINT,
                    fields JSONB NOT NULL DEFAULT '{{}}'::jsonb
                )"
            ),
            format!(
                "CREATE INDEX http_sessions_expires_idx ON {schema}.http_sessions (expires_ms) \
                 WHERE expires_ms IS NOT NULL"
            ),
            format!(
                "CREATE TABLE {schema}.http_sessions_migrations \
                 (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)"
            ),
            format!("INSERT INTO {schema}.http_sessions_migrations VALUES (1, 0)"),
        ] {
            sqlx::query(&statement).execute(&mut db).await.unwrap();
        }
        // `data` = [1] (base64 "AQ"), as the previous version wrote fields.
        sqlx::query(&format!(
            "INSERT INTO {schema}.http_sessions (id, version, created_ms, expires_ms, fields) \
             VALUES ($1, 1, $2, $3, '{{\"data\": \"AQ\"}}')"
        ))
        .bind(id.as_bytes().as_slice())
        .bind(i64::try_from(NOW - 1_000).unwrap())
        .bind(i64::try_from(NOW + 3_600_000).unwrap())
        .execute(&mut db)
        .await
        .unwrap();

        let store = PostgresStore::builder()
            .schema(&schema)
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let versions: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT version FROM {schema}.http_sessions_migrations ORDER BY version"
        ))
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

mod hot {
    //! Saves and touches are HOT updates: the new row version goes on the same page and
    //! no index gets an entry for it (PostgreSQL does this only when no indexed column
    //! changes). Read off the pages themselves with `pageinspect`, not timed.

    use integration_tests::postgres_harness::shared;
    use integration_tests::store_suite::{record, NOW};
    use session_runtime::store::{SaveOutcome, SessionMeta, SessionStore};
    use session_runtime::{PostgresStore, SessionId};

    use super::support::*;

    /// `HEAP_ONLY_TUPLE` in `t_infomask2`: a row version no index points at.
    const HEAP_ONLY_TUPLE: i32 = 0x8000;

    /// Whether the current version of the row `id` is heap-only, i.e. written by a HOT
    /// update.
    async fn heap_only(db: &mut sqlx::PgConnection, table: &str, id: &SessionId) -> bool {
        let (block, item): (i64, i32) = sqlx::query_as(&format!(
            "SELECT (ctid::text::point)[0]::bigint, (ctid::text::point)[1]::int FROM {table} \
             WHERE id = $1"
        ))
        .bind(id.digest().as_bytes().as_slice())
        .fetch_one(&mut *db)
        .await
        .unwrap();
        let infomask: i32 = sqlx::query_scalar(&format!(
            "SELECT t_infomask2 FROM heap_page_items(get_raw_page('{table}', $1)) WHERE lp = $2"
        ))
        .bind(block)
        .bind(item)
        .fetch_one(&mut *db)
        .await
        .unwrap();
        infomask & HEAP_ONLY_TUPLE != 0
    }

    /// The entries in every index of `table`, counted on their pages (every page after
    /// the metapage; the indexes here are a page or two).
    async fn index_entries(db: &mut sqlx::PgConnection, table: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT coalesce(sum((SELECT count(*) \
               FROM generate_series(1, pg_relation_size(i.indexrelid) \
                 / current_setting('block_size')::bigint - 1) AS block, \
               LATERAL bt_page_items(get_raw_page(i.indexrelid::regclass::text, block)))), 0)::bigint \
             FROM pg_index i WHERE i.indrelid = '{table}'::regclass"
        ))
        .fetch_one(db)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_save_and_a_touch_of_a_live_session_are_hot_updates_that_write_no_index_entry() {
        let database = shared().await;
        let schema = database.fresh_schema().await;
        let table = format!("{schema}.http_sessions");
        let mut db = psql(database.url()).await;
        // The test server's user is a superuser; only this test installs the extension.
        if let Err(error) = sqlx::query("CREATE EXTENSION IF NOT EXISTS pageinspect")
            .execute(&mut db)
            .await
        {
            panic!(
                "this test reads pages with PostgreSQL's pageinspect extension, which the \
                 server could not load ({error}): install the PostgreSQL contrib modules \
                 (Debian's `postgresql` package has them; elsewhere `postgresql-contrib`)"
            );
        }
        let store = PostgresStore::builder()
            .schema(&schema)
            .connect(database.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let id = SessionId::generate().unwrap();
        let meta = |now: u64, idle: u64| SessionMeta {
            created_ms: NOW,
            seen_ms: now,
            expires_ms: Some(now + idle),
            absolute_ms: Some(NOW + 86_400_000),
        };
        let data = record(&[("a", &[1]), ("b", &[2])]);
        store
            .create(&id.digest(), &data, &meta(NOW, 60_000), NOW)
            .await
            .unwrap();
        let entries = index_entries(&mut db, &table).await;
        assert!(entries >= 2, "the primary key and the sweeper's index");

        // A save of a live session: the deadline moves later, a field changes.
        let now = NOW + 10_000;
        let saved = store
            .save(
                &id.digest(),
                &record(&[("a", &[3])]),
                &meta(now, 60_000),
                now,
            )
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
        assert!(heap_only(&mut db, &table, &id).await, "the save is not HOT");
        assert_eq!(index_entries(&mut db, &table).await, entries, "save");

        // A touch: the deadlines move later.
        let now = NOW + 30_000;
        let touched = store.touch(&id.digest(), &meta(now, 60_000), now).await;
        assert_eq!(touched.unwrap(), SaveOutcome::Saved);
        assert!(
            heap_only(&mut db, &table, &id).await,
            "the touch is not HOT"
        );
        assert_eq!(index_entries(&mut db, &table).await, entries, "touch");
        let loaded = store.load(&id.digest(), now).await.unwrap().unwrap();
        assert_eq!(loaded.record.get("a"), Some(&[3u8][..]));
        assert_eq!(loaded.meta.expires_ms, Some(now + 60_000));

        // The check sees a non-HOT update: a save that moves the deadline earlier (a
        // shorter idle timeout) moves the sweep bound with it, which writes index entries.
        let saved = store
            .save(
                &id.digest(),
                &record(&[("a", &[4])]),
                &meta(now, 1_000),
                now,
            )
            .await;
        assert_eq!(saved.unwrap(), SaveOutcome::Saved);
        assert!(!heap_only(&mut db, &table, &id).await);
        assert!(index_entries(&mut db, &table).await > entries);
    }
}
