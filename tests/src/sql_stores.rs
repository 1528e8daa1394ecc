//! The SQL stores as the shared suites get them: a SQLite file in a directory of its own,
//! or a schema of its own on the test binary's PostgreSQL, each migrated.

use session_runtime::record::{Record, RecordField};
use session_runtime::store::{SessionMeta, SessionStore};
use session_runtime::{PostgresStore, SessionDigest, SqliteStore};

use crate::postgres_harness::shared;
use crate::store_suite::NOW;
use crate::temp::TempDir;

/// A store on a new SQLite file (removed with the guard), migrated.
pub async fn sqlite() -> (TempDir, SqliteStore) {
    sqlite_with(SqliteStore::builder()).await
}

/// [`sqlite`] with a query timeout a loaded machine cannot reach: for suites that count
/// failures under contention, not how fast the machine is.
pub async fn sqlite_patient() -> (TempDir, SqliteStore) {
    sqlite_with(SqliteStore::builder().query_timeout(crate::concurrency::PATIENT)).await
}

async fn sqlite_with(builder: session_runtime::SqliteStoreBuilder) -> (TempDir, SqliteStore) {
    let dir = TempDir::new("sqlite");
    let store = builder
        .connect(&dir.sqlite_url("sessions.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

/// A store on the shared PostgreSQL, in a schema no other test uses, migrated.
pub async fn postgres() -> ((), PostgresStore) {
    postgres_with(PostgresStore::builder()).await
}

/// [`postgres`] with a query timeout a loaded machine cannot reach: for suites that count
/// failures under contention, not how fast the machine is.
pub async fn postgres_patient() -> ((), PostgresStore) {
    postgres_with(PostgresStore::builder().query_timeout(crate::concurrency::PATIENT)).await
}

async fn postgres_with(builder: session_runtime::PostgresStoreBuilder) -> ((), PostgresStore) {
    let database = shared().await;
    let schema = database.fresh_schema().await;
    let store = builder
        .schema(schema)
        .connect(database.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    ((), store)
}

/// The session `id` (stored without an owner) enters `ada`'s list with the first save
/// whose changes carry the owner, not before.
pub async fn listed_once_a_save_carries_the_owner(store: &impl SessionStore, id: &SessionDigest) {
    assert!(store.owned_by("ada", NOW).await.unwrap().is_empty());
    let meta = SessionMeta {
        created_ms: NOW - 1_000,
        seen_ms: NOW,
        expires_ms: Some(NOW + 3_600_000),
        absolute_ms: None,
    };
    let data = Record {
        version: 1,
        fields: vec![RecordField {
            key: "data".into(),
            value: vec![2],
        }],
    };
    store.save(id, &data, &meta, NOW).await.unwrap();
    assert!(store.owned_by("ada", NOW).await.unwrap().is_empty());
    let mut owner = Vec::new();
    rmp::encode::write_str(&mut owner, "ada").unwrap();
    let login = Record {
        version: 1,
        fields: vec![RecordField {
            key: "__owner".into(),
            value: owner,
        }],
    };
    store.save(id, &login, &meta, NOW).await.unwrap();
    let listed = store.owned_by("ada", NOW).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].0, id);
    assert_eq!(listed[0].1.meta, meta);
    assert_eq!(listed[0].1.record.get("data"), Some(&[2u8][..]));
}
