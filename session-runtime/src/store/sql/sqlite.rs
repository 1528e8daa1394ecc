//! [`SqliteStore`]: sessions in a SQLite file (feature `sqlite`), one statement (so one
//! transaction) per operation, in WAL mode.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row as _;

use super::{
    bounded, checked_name, failed, fields_json, loaded_or_warn, to_sql_ms, Row, SqlConnectError,
    SqlOptions, CLEAR_BATCH, SWEEP_BATCH,
};
use crate::clock::Clock;
use crate::id::SessionDigest;
use crate::record::{OwnerField, Record};
use crate::store::removals::{Removals, Removed};
use crate::store::sweeper::{Sweep, Sweeper};
use crate::store::{
    CreateOutcome, Loaded, RemovalListener, RemovalWatch, SaveOutcome, SessionMeta, SessionStore,
    StoreError, Watchers,
};

const STORE: &str = "sqlite";
/// Attempts at opening a new file in WAL mode: switching a file to WAL takes a lock the
/// busy timeout does not wait for, so processes opening a new file at once may be refused.
const WAL_ATTEMPTS: u32 = 50;

/// Sessions in a SQLite file: embedded (no server to run), persistent across restarts of
/// the app, for one machine.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use session_runtime::{Databag, Session, SessionLayer, SqliteStore};
///
/// #[derive(Databag)]
/// struct Visits { count: u32 }
///
/// async fn index(mut session: Session<Visits>) -> String {
///     session.set_count(session.count + 1);
///     format!("visit #{}", session.count)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::connect("sqlite://sessions.db").await?; // created if missing
/// store.migrate().await?;
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::<Visits>::new(store));
/// # Ok(()) }
/// ```
///
/// # Layout
///
/// One table (default `http_sessions`, see [`SqliteStoreBuilder::table`]), `WITHOUT ROWID`,
/// one row per session: `id BLOB PRIMARY KEY` (the SHA-256 digest of the session id: the
/// file holds no usable token), `version`, `created_ms`, `expires_ms`, `absolute_ms`
/// (`INTEGER`, ms since the Unix epoch; `NULL` deadlines never expire) and `fields` (`TEXT`,
/// a JSON object: wire key -> base64 of the field's MessagePack value), `owner` (`TEXT`,
/// the record's owner key, `#[databag(owner)]`; `NULL`: no owner), `seen_ms` (the last use;
/// `NULL` in rows from before layout 3, read as the creation time) and `sweep_ms`, the
/// indexed column the sweeper searches, with a partial index on `owner` for
/// [`owned_by`](SessionStore::owned_by). [`migrate`](Self::migrate) creates it (or upgrades
/// it from an earlier layout) and records the layout's version in `<table>_migrations`.
///
/// **Why a sweep column.** SQLite rewrites the index entry of every indexed column an
/// `UPDATE` names, even when the value does not change; an index on `expires_ms`, which
/// every save moves, cost each save an index write (23.6 µs against 8.8 µs per `UPDATE`).
/// `sweep_ms` is a lower bound of the deadline (the deadline as it was when the bound was
/// last set; `i64::MAX` for a session that never expires), and saves and touches do not
/// name it while the deadline stays at or above it, which is every save that moves the
/// deadline later. A save that moves it earlier sets the bound too (a second statement,
/// run only then). The sweeper reads the lowest bounds up to now, 1,000 at a time in the
/// index's order (so each statement costs a batch, a backlog of expired rows included):
/// it deletes the expired rows among them and moves the bounds of the live ones up to
/// their deadlines (at most once per idle timeout for an active session). Every expired
/// row has a bound in the past, so every expired row is found.
///
/// # Owners, counting, clearing, removal watches
///
/// As for [`PostgresStore`](crate::PostgresStore) when the `postgres` feature is on: the
/// `owner` column follows the record's owner in the statement of each write (`create` from
/// the whole record; `save` only when the changes carry the owner, still one `UPDATE`);
/// `owned_by` is one `SELECT` searching the owner index (checked with `EXPLAIN QUERY PLAN`
/// on the store's own statement by a unit test), so listing k sessions reads k rows; `count`
/// reads every live row; `clear` deletes 10,000 rows per statement, so that other writers
/// wait for one batch at most (never longer than the busy timeout), and reports nothing to
/// `on_deleted`. [`watch_removal`](SessionStore::watch_removal) resolves when this store
/// value (or a clone) takes, deletes, sweeps or clears the session; removals by another
/// process, or another store value on the same file, are not delivered. Upgrading from
/// a layout before 3 adds the columns `NULL` (no row rewritten); sessions stored before are in no
/// list until a write carries their owner (the layer writes it when the owner field
/// changes, at login, and for a session whose entry disagrees with its owner field at its next request).
/// A save names `owner` only when its changes move the owner, for the reason above.
///
/// # Statements per request
///
/// As for [`PostgresStore`](crate::PostgresStore) when the `postgres` feature is on: one
/// `SELECT` to read; one `UPDATE` that merges only the changed fields into the stored object
/// (`json_patch`), only if the row is still live and not of a newer schema version; one
/// `UPDATE` of the deadlines for a touch (each followed by a second `UPDATE` that sets the
/// sweep bound only when the first found no row it could update without moving it: the
/// deadline moved earlier, or the row is gone); `INSERT .. ON CONFLICT .. DO UPDATE .. WHERE`
/// expired to create (never over a live session); `DELETE .. RETURNING` to take. Each is
/// one statement, so one transaction, which SQLite runs atomically (a save's or touch's
/// second `UPDATE` is a complete save of its own, with every condition of the first).
///
/// **Concurrency.** [`connect`](Self::connect) opens the file in WAL mode (readers never
/// wait for the writer) with `synchronous = NORMAL` (durable across an app crash; a power
/// loss may lose the last commits) and a busy timeout equal to the query timeout, so that
/// concurrent writes queue behind each other instead of failing with "database is locked".
/// Each statement that writes takes the write lock when it starts, so a transaction never
/// has to upgrade a read lock (the case where SQLite gives up at once). Processes opening a
/// new file at once are safe too: the switch to WAL, which needs a lock the busy timeout
/// does not wait for, is retried.
///
/// # Expiry and faults
///
/// Expired rows are never returned; the sweeper deletes them in batches of 1,000 every 60
/// seconds by default ([`SqliteStoreBuilder::sweep_interval`]), reports each to the layers'
/// `on_deleted` hooks, and stops when the last clone of the store is dropped. Every
/// operation is bounded by the query timeout (default 2 seconds); a failure (the file is
/// not writable, the disk is full) or a timeout is logged and becomes a [`StoreError`],
/// which the layer answers with an opaque 503.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    sql: Statements,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    removals: Removals,
    sweeper: Sweeper,
    /// Who waits on the removal of which session (removals through this store value).
    watchers: Watchers,
}

struct Statements {
    /// The table's name, unquoted.
    name: String,
    load: String,
    create: String,
    save: String,
    /// The save when `save` found no row it could update without moving `sweep_ms`.
    save_moved: Option<String>,
    /// `save` and `save_moved` for changes that move the owner: they also set `owner`.
    save_owner: String,
    save_owner_moved: Option<String>,
    touch: String,
    touch_moved: Option<String>,
    take: String,
    delete: String,
    /// Gives rows without a sweep bound (written before the column) their deadline as one.
    fill: String,
    /// Moves the passed bounds of the live rows among the lowest bounds up to their deadlines.
    refresh: String,
    /// Deletes the expired rows among the lowest bounds.
    sweep: String,
    owned_by: String,
    count: String,
    clear: String,
    exists: String,
}

/// Versions of the layout, in order; `migrate` applies those not yet recorded. `{table}` is
/// the quoted table name, `{index}` the quoted name of version 1's deadline index,
/// `{sweep_index}` the quoted name of the sweep index that replaced it in version 2,
/// `{owner_index}` that of the owner index (version 3).
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS {table} (
            id BLOB PRIMARY KEY NOT NULL,
            version INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER,
            absolute_ms INTEGER,
            fields TEXT NOT NULL DEFAULT '{}'
        ) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_ms) WHERE expires_ms IS NOT NULL",
        ],
    ),
    // The sweeper finds rows by `sweep_ms`, a lower bound of the deadline that a save does
    // not move, instead of by the deadline that every save moves (one index write less per
    // save: see "Why a sweep column" in the store's docs).
    (
        2,
        &[
            "ALTER TABLE {table} ADD COLUMN sweep_ms INTEGER",
            "UPDATE {table} SET sweep_ms = coalesce(expires_ms, 9223372036854775807)",
            "DROP INDEX IF EXISTS {index}",
            "CREATE INDEX IF NOT EXISTS {sweep_index} ON {table} (sweep_ms)",
        ],
    ),
    // The owner index (issue 14) and the last use. Both columns start NULL: no rewrite of
    // existing rows (a NULL `seen_ms` reads as the creation time; a NULL owner is in no
    // list until the next write that carries the owner), and the partial index starts empty.
    (
        3,
        &[
            "ALTER TABLE {table} ADD COLUMN owner TEXT",
            "ALTER TABLE {table} ADD COLUMN seen_ms INTEGER",
            "CREATE INDEX IF NOT EXISTS {owner_index} ON {table} (owner) WHERE owner IS NOT NULL",
        ],
    ),
];

/// `sweep_ms` of a row that never expires: after every deadline.
const NEVER: &str = "9223372036854775807";
const LIVE: &str = "(expires_ms IS NULL OR expires_ms > ?2)";
/// Rows from before the last use was kept (version 1) read their creation time as it.
const COLUMNS: &str =
    "version, created_ms, expires_ms, absolute_ms, fields, coalesce(seen_ms, created_ms)";

impl Statements {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        // The sweep bound a row gets when its deadline is `?5`.
        let bound = format!("coalesce(?5, {NEVER})");
        let save_set = "fields = json_patch(fields, ?7), version = ?3, created_ms = ?4, \
                        expires_ms = ?5, absolute_ms = ?6, seen_ms = ?8";
        let save_where = format!("id = ?1 AND {LIVE} AND version <= ?3");
        let touch_set = "created_ms = ?3, expires_ms = ?4, absolute_ms = ?5, seen_ms = ?6";
        let touch_bound = format!("coalesce(?4, {NEVER})");
        Self {
            load: format!("SELECT {COLUMNS} FROM {t} WHERE id = ?1 AND {LIVE}"),
            create: format!(
                "INSERT INTO {t} (id, version, created_ms, expires_ms, absolute_ms, fields, \
                 sweep_ms, seen_ms, owner) \
                 VALUES (?1, ?3, ?4, ?5, ?6, ?7, {bound}, ?8, ?9) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                 created_ms = excluded.created_ms, expires_ms = excluded.expires_ms, \
                 absolute_ms = excluded.absolute_ms, fields = excluded.fields, \
                 sweep_ms = excluded.sweep_ms, seen_ms = excluded.seen_ms, owner = excluded.owner \
                 WHERE {t}.expires_ms IS NOT NULL AND {t}.expires_ms <= ?2"
            ),
            // `sweep_ms` is not named unless it must move: SQLite rewrites the index entry
            // of every indexed column a `SET` names, even to the value it had.
            save: format!("UPDATE {t} SET {save_set} WHERE {save_where} AND sweep_ms <= {bound}"),
            save_moved: Some(format!(
                "UPDATE {t} SET {save_set}, sweep_ms = {bound} WHERE {save_where}"
            )),
            // A save whose changes move the owner (`?9`) names the owner column; no other does.
            save_owner: format!(
                "UPDATE {t} SET {save_set}, owner = ?9 WHERE {save_where} AND sweep_ms <= {bound}"
            ),
            save_owner_moved: Some(format!(
                "UPDATE {t} SET {save_set}, owner = ?9, sweep_ms = {bound} WHERE {save_where}"
            )),
            touch: format!(
                "UPDATE {t} SET {touch_set} WHERE id = ?1 AND {LIVE} AND sweep_ms <= {touch_bound}"
            ),
            touch_moved: Some(format!(
                "UPDATE {t} SET {touch_set}, sweep_ms = {touch_bound} WHERE id = ?1 AND {LIVE}"
            )),
            take: format!("DELETE FROM {t} WHERE id = ?1 AND {LIVE} RETURNING {COLUMNS}"),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            // The sweeper's statements (see `sweep` in `sql/mod.rs`). Each reads one window:
            // the `?2` lowest bounds up to now, in the sweep index's order, so that a batch
            // costs a batch whatever the table holds.
            fill: format!(
                "UPDATE {t} SET sweep_ms = coalesce(expires_ms, {NEVER}) WHERE id IN \
                 (SELECT id FROM {t} WHERE sweep_ms IS NULL LIMIT ?1)"
            ),
            refresh: format!(
                "UPDATE {t} SET sweep_ms = coalesce(expires_ms, {NEVER}) WHERE id IN \
                 (SELECT id FROM {t} WHERE sweep_ms <= ?1 ORDER BY sweep_ms LIMIT ?2) \
                 AND (expires_ms IS NULL OR expires_ms > ?1)"
            ),
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE sweep_ms <= ?1 \
                 ORDER BY sweep_ms LIMIT ?2) AND expires_ms <= ?1 RETURNING id, {COLUMNS}"
            ),
            owned_by: format!("SELECT id, {COLUMNS} FROM {t} WHERE owner = ?1 AND {LIVE}"),
            count: format!("SELECT count(*) FROM {t} WHERE expires_ms IS NULL OR expires_ms > ?1"),
            clear: format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} LIMIT ?1)"),
            exists: format!("SELECT 1 FROM {t} WHERE id = ?1"),
            name: table.to_owned(),
        }
    }

    fn table(&self) -> String {
        format!("\"{}\"", self.name)
    }

    fn migrations(&self) -> String {
        format!("\"{}_migrations\"", self.name)
    }

    fn migration(&self, statement: &str) -> String {
        statement
            .replace("{table}", &self.table())
            .replace("{index}", &format!("\"{}_expires_idx\"", self.name))
            .replace("{sweep_index}", &format!("\"{}_sweep_idx\"", self.name))
            .replace("{owner_index}", &format!("\"{}_owner_idx\"", self.name))
    }
}

/// The settings of a new [`SqliteStore`]; see [`SqliteStore::builder`].
#[derive(Clone, Default)]
#[must_use = "a builder does nothing until `.connect(..)` or `.build(..)`"]
pub struct SqliteStoreBuilder {
    options: SqlOptions,
}

super::builder_options!(SqliteStoreBuilder);

impl SqliteStoreBuilder {
    /// Opens the database at `url` (`sqlite://path/to/file.db`, or `sqlite::memory:` for
    /// a database that lives as long as the store), creating the file if it does not
    /// exist, in WAL mode, with a pool of up to 8 connections that are kept open. A write
    /// waits for another's at most the query timeout (SQLite's busy timeout), so a write
    /// the store gave up on is not applied much later.
    ///
    /// # Errors
    /// An invalid table name, an invalid URL, or a file that cannot be opened.
    pub async fn connect(self, url: &str) -> Result<SqliteStore, SqlConnectError> {
        checked_name(&self.options.table)?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(SqlConnectError::InvalidUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(self.options.query_timeout());
        let address = options.get_filename().display().to_string();
        let unreachable = |source| SqlConnectError::Unreachable {
            address: address.clone(),
            source,
        };
        // The switch to WAL first, on one connection, retried while another process holds
        // the lock it needs; the pool's connections then find the file in WAL mode already.
        let mut attempt = 0;
        loop {
            match <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await {
                Ok(connection) => {
                    let _ = sqlx::Connection::close(connection).await;
                    break;
                }
                Err(error) if attempt < WAL_ATTEMPTS && is_busy(&error) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(unreachable(error)),
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // Kept open: an in-memory database lives as long as a connection to it.
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(self.options.acquire_timeout())
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        self.build(pool)
    }

    /// A store over an existing pool (the app's own). Its settings are yours: WAL mode and
    /// a busy timeout are what keep concurrent requests from failing with "database is
    /// locked".
    ///
    /// # Errors
    /// An invalid table name.
    pub fn build(self, pool: SqlitePool) -> Result<SqliteStore, SqlConnectError> {
        checked_name(&self.options.table)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&self.options.table),
                timeout: self.options.query_timeout(),
                clock: self.options.clock,
                removals: Removals::default(),
                sweeper: Sweeper::new(self.options.sweep_interval),
                watchers: Watchers::new(),
            }),
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.inner.sql.name)
            .field("query_timeout", &self.inner.timeout)
            .field("sweep_interval", &self.inner.sweeper.interval())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Settings other than the defaults: table, timeouts.
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// Opens the database with the default settings; see [`SqliteStoreBuilder::connect`].
    ///
    /// # Errors
    /// An invalid URL, or a file that cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, SqlConnectError> {
        Self::builder().connect(url).await
    }

    /// A store over an existing pool, with the default settings.
    pub fn from_pool(pool: SqlitePool) -> Self {
        let options = SqlOptions::default();
        Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&options.table),
                timeout: options.query_timeout(),
                clock: options.clock,
                removals: Removals::default(),
                sweeper: Sweeper::new(options.sweep_interval),
                watchers: Watchers::new(),
            }),
        }
    }

    /// The pool the store uses.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Creates the tables, or brings them up to this version's layout. Idempotent, and safe
    /// when several processes run it at once: it runs in one `BEGIN IMMEDIATE` transaction
    /// (one writer at a time) and applies only the versions not yet recorded in
    /// `<table>_migrations`. A database migrated by a newer version of this crate is left as
    /// it is.
    ///
    /// # Errors
    /// The database refused a statement (for example, the file is read-only).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let sql = &self.inner.sql;
        let run = async {
            // Rolled back if this future is dropped or a statement fails.
            let mut connection = self.inner.pool.begin_with("BEGIN IMMEDIATE").await?;
            {
                sqlx::query(&format!(
                    "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
                    sql.migrations()
                ))
                .execute(&mut *connection)
                .await?;
                let applied: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT max(version) FROM {}", sql.migrations()))
                        .fetch_one(&mut *connection)
                        .await?;
                for (version, statements) in MIGRATIONS {
                    if applied.is_some_and(|applied| applied >= *version) {
                        continue;
                    }
                    for statement in *statements {
                        sqlx::query(&sql.migration(statement))
                            .execute(&mut *connection)
                            .await?;
                    }
                    sqlx::query(&format!(
                        "INSERT INTO {} (version, applied_ms) VALUES (?1, ?2)",
                        sql.migrations()
                    ))
                    .bind(version)
                    .bind(to_sql_ms(self.inner.clock.now_ms()))
                    .execute(&mut *connection)
                    .await?;
                }
            }
            connection.commit().await
        };
        run.await.map_err(|error| failed(STORE, "migrate", error))
    }

    /// Deletes every session expired now, in batches, reports each to the layers'
    /// `on_deleted` hooks, and returns how many it deleted. The sweeper calls this.
    ///
    /// # Errors
    /// A statement failed or timed out; the sessions deleted before it are reported.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.inner.sweep().await
    }
}

/// Whether SQLite said "database is locked" (`SQLITE_BUSY`, code 5).
fn is_busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.code().as_deref() == Some("5"))
}

super::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteArguments<'q>,
    SqliteRow
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

    /// SQLite's plan of `statement` with the arguments `bind` gives it, a line per step.
    async fn plan_of(
        store: &SqliteStore,
        statement: &str,
        bind: impl for<'q> FnOnce(Query<'q>) -> Query<'q>,
    ) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        // Each row of the plan: id, parent, unused, detail.
        let plan: Vec<String> = bind(sqlx::query(&explain))
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(3))
            .collect();
        plan.join("\n")
    }

    /// The store's own `owned_by` statement, planned by SQLite over a table of 20,000
    /// sessions of 2,000 owners: a search of the owner index, never a scan of the table, so
    /// listing k sessions reads k rows.
    #[tokio::test]
    async fn listing_an_owner_searches_the_owner_index() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO http_sessions (id, version, created_ms, expires_ms, fields, owner) \
             SELECT randomblob(32), 1, 0, i, '{}', 'user-' || (i % 2000) FROM n",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
        let plan = plan_of(&store, &store.inner.sql.owned_by, |query| {
            query.bind("user-7").bind(0_i64)
        })
        .await;
        assert!(
            plan.contains("USING INDEX http_sessions_owner_idx (owner=?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN"), "{plan}");
        let listed = store.owned_by("user-7", 0).await.unwrap();
        assert_eq!(listed.len(), 10);
    }

    /// The sweeper's statements, planned by SQLite over a backlog (20,000 rows whose bound
    /// has passed, two in three expired): each reads a window of the lowest bounds through
    /// the sweep index and looks its rows up by key, never a scan of the table; and one
    /// sweep deletes every expired row and moves every live row's bound, whatever the mix
    /// in each window.
    #[tokio::test]
    async fn the_sweeper_reads_a_window_of_the_sweep_index_at_a_time() {
        let now: i64 = 1_700_000_000_000;
        let store = SqliteStore::builder()
            .clock(crate::clock::ManualClock::at_ms(now.unsigned_abs()))
            .connect("sqlite::memory:")
            .await
            .unwrap();
        store.migrate().await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 21000) \
             INSERT INTO http_sessions (id, version, created_ms, expires_ms, fields, sweep_ms) \
             SELECT randomblob(32), 1, 0, \
             CASE WHEN i % 3 = 0 OR i > 20000 THEN ?1 + 3600000 + i ELSE ?1 + (i - 20000) * 1000 END, \
             '{}', ?1 + (i - 20000) * 1000 FROM n",
        )
        .bind(now)
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
        let sql = &store.inner.sql;
        for (name, statement, arguments) in [
            ("fill", &sql.fill, 1),
            ("refresh", &sql.refresh, 2),
            ("sweep", &sql.sweep, 2),
        ] {
            let plan = plan_of(&store, statement, |query| {
                if arguments == 1 {
                    query.bind(SWEEP_BATCH)
                } else {
                    query.bind(now).bind(SWEEP_BATCH)
                }
            })
            .await;
            assert!(plan.contains("http_sessions_sweep_idx"), "{name}: {plan}");
            assert!(plan.contains("USING PRIMARY KEY (id=?)"), "{name}: {plan}");
            assert!(!plan.contains("SCAN"), "{name}: {plan}");
        }
        assert_eq!(store.sweep().await.unwrap(), 13_334);
        let count =
            |condition: &str| format!("SELECT count(*) FROM http_sessions WHERE {condition}");
        let passed: i64 = sqlx::query_scalar(&count("sweep_ms <= ?1"))
            .bind(now)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(passed, 0, "every live row's bound moved up to its deadline");
        let live: i64 = sqlx::query_scalar(&count("expires_ms > ?1"))
            .bind(now)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(live, 7_666, "no live row deleted");
    }
}
