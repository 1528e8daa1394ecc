//! The SQL stores as the shared suites get them: a SQLite file in a directory of its own,
//! or a schema of its own on the test binary's PostgreSQL, each migrated.

use session_runtime::{PostgresStore, SqliteStore};

use crate::postgres_harness::shared;
use crate::temp::TempDir;

/// A store on a new SQLite file (removed with the guard), migrated.
pub async fn sqlite() -> (TempDir, SqliteStore) {
    let dir = TempDir::new("sqlite");
    let store = SqliteStore::connect(&dir.sqlite_url("sessions.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

/// A store on the shared PostgreSQL, in a schema no other test uses, migrated.
pub async fn postgres() -> ((), PostgresStore) {
    let database = shared().await;
    let schema = database.fresh_schema().await;
    let store = PostgresStore::builder()
        .schema(schema)
        .connect(database.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    ((), store)
}
