//! [`PostgresStore`]: sessions in PostgreSQL (feature `postgres`), one statement per
//! operation.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
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

const STORE: &str = "postgres";
/// A pooled connection idle for longer is pinged before use (see
/// [`PostgresStoreBuilder::connect`]).
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Sessions in PostgreSQL, shared by every process of the app and kept across restarts.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use session_runtime::{Databag, PostgresStore, Session, SessionLayer};
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
/// // Fails here, naming the server, when PostgreSQL cannot be reached at start-up.
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app").await?;
/// store.migrate().await?; // creates or upgrades the table; safe from several instances
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::<Visits>::new(store));
/// # Ok(()) }
/// ```
///
/// # Layout
///
/// One table (default `http_sessions`, see [`PostgresStoreBuilder::table`] and
/// [`PostgresStoreBuilder::schema`]), one row per session:
///
/// | column | type | holds |
/// |---|---|---|
/// | `id` | `BYTEA PRIMARY KEY` | the SHA-256 digest of the session id: the table holds no usable token |
/// | `version` | `BIGINT` | the record's schema version |
/// | `created_ms`, `expires_ms`, `absolute_ms` | `BIGINT` | creation, idle deadline (capped by the absolute one), absolute deadline: ms since the Unix epoch; `NULL` deadlines never expire |
/// | `fields` | `JSONB` | the fields: wire key -> base64 of its MessagePack value |
/// | `owner` | `TEXT` | whose session it is (the record's owner key, `#[databag(owner)]`); `NULL`: no owner |
/// | `seen_ms` | `BIGINT` | the last use (a save or a touch); `NULL` in rows from before layout 2: the creation time stands in |
/// | `sweep_ms` | `BIGINT` | a lower bound of `expires_ms`, which the sweeper searches (`i64::MAX`: never expires); `NULL` in rows from before layout 3 until the sweeper or a save fills it in |
///
/// An index on `sweep_ms` (`<table>_sweep_idx`) serves the sweeper, and a partial one on
/// `owner` (rows with an owner only) serves [`owned_by`](SessionStore::owned_by); there is
/// no index on `expires_ms`. The table's `fillfactor` is 80. Why a row per session with a
/// merged JSON column rather than a row per field: see the notes in the crate's README
/// ("SQL stores"). [`migrate`](Self::migrate) creates the table and a `<table>_migrations`
/// table recording which versions of the layout were applied.
///
/// **Why a sweep column.** PostgreSQL writes a new row version for every `UPDATE`; when
/// no indexed column changes value and the page has room, the new version is a HOT
/// ("heap-only tuple") update: it goes on the same page and no index gets a new entry.
/// Every save and touch moves the idle deadline, so an index on `expires_ms` made every
/// one of them write an entry into each index (primary key, deadline, owner): index
/// bloat, vacuum work and WAL. `sweep_ms` holds the deadline as it was when the bound was
/// last set, and a save or touch sets it to `least(sweep_ms, <new deadline>)` in the same
/// `UPDATE`: unchanged whenever the deadline moves later (every save of a live session
/// with the same idle timeout), so the update is HOT; lowered (an index write) only when
/// the deadline moved earlier, for example after the idle timeout was shortened. The
/// sweeper reads the lowest bounds up to now, 1,000 at a time in the index's order: it
/// deletes the expired rows among them and moves the bounds of the live ones up to their
/// deadlines. Every expired row has a bound in the past, so every expired row is found;
/// moving a live row's bound is one non-HOT `UPDATE` (an entry in each index), at most
/// once per idle timeout for an active session, against one index entry per save before.
/// A `fillfactor` of 80 leaves a fifth of each page free when rows are inserted, so that
/// the new versions of a page's rows fit on it (a HOT update needs room on the same page;
/// PostgreSQL prunes dead versions of a page as it fills): a session row is a few hundred
/// bytes, so an 8 KiB page keeps room for several new versions, for 25 % more table space.
/// Checked on the pages themselves (`pageinspect`) by the test
/// `hot::a_save_and_a_touch_of_a_live_session_are_hot_updates_that_write_no_index_entry`.
///
/// # Statements per request
///
/// | the handler | statements (one round trip each) |
/// |---|---|
/// | ignores the session | none |
/// | reads it | one `SELECT` |
/// | changes fields | `SELECT`, then one `UPDATE` merging only the changed fields (`fields \|\| $changes`), only if the row is still live and not of a newer schema version; a HOT update |
/// | reads it after a quarter of the idle timeout | `SELECT`, then one `UPDATE` of the deadlines only; a HOT update |
/// | destroys it | `SELECT`, then one `DELETE` |
/// | renews it | `SELECT`, then one `INSERT .. ON CONFLICT` for the new id and one `DELETE .. RETURNING` taking the old |
///
/// Creating never overwrites a live session (`ON CONFLICT .. DO UPDATE .. WHERE` the stored
/// one has expired); saving and touching never re-create a deleted or expired session (the
/// `UPDATE` finds no live row); each is one statement, so atomic under PostgreSQL's row
/// locks. Statements are prepared once per connection (sqlx's statement cache).
///
/// **Pool.** [`connect`](Self::connect) makes a sqlx pool that does not ping a connection
/// before handing it out (`test_before_acquire(false)`), so that an operation costs one
/// round trip; sqlx still checks a connection when it goes back to the pool (a lone `Sync`,
/// after the answer is back, outside the request's latency). With
/// [`from_pool`](Self::from_pool), the pool is yours to configure.
///
/// # Owners, counting, clearing, removal watches
///
/// The `owner` column follows the record's owner in the statement of each write: `create`
/// sets it from the whole record; `save` sets it only when the changes carry the owner
/// (the layer sends it when the owner field changed), to the new key or `NULL`, and leaves
/// it otherwise (a save that moves the owner is the same `UPDATE` naming `owner` too: still
/// one statement, and not a HOT update, since the owner index gets the new key);
/// `take`, `delete` and the sweeper remove the row and with it the entry.
/// [`owned_by`](SessionStore::owned_by) is one `SELECT .. WHERE owner = $1` and live, an
/// index scan of the owner index (checked with `EXPLAIN` by the test
/// `owner_index::listing_an_owner_uses_the_owner_index_not_a_scan`), so listing k sessions reads
/// k rows (plus the owner's expired rows not swept yet). [`count`](SessionStore::count)
/// reads every live row (it counts exactly; it is not for every request);
/// [`clear`](SessionStore::clear) deletes every row, 10,000 per statement so that each stays
/// within the query timeout and requests meanwhile wait for one batch at most, and reports
/// no removals to `on_deleted`.
///
/// [`watch_removal`](SessionStore::watch_removal) resolves when **this store value** (or a
/// clone of it) takes, deletes, sweeps or clears the session. Removals made by other
/// processes, or by another store value on the same table, are not delivered (there is no
/// `LISTEN`/`NOTIFY` yet): a WebSocket watching its session in one instance does not close
/// when another instance revokes it, until something in this instance removes or sweeps
/// it. A row that has expired but is not swept yet still counts as stored: its watch
/// resolves when the sweeper deletes it.
///
/// **Upgrading** from layout 1: `migrate` adds the two columns `NULL` (a catalog change: no
/// row is rewritten) and builds the owner index (a read of the table, under a lock that
/// holds requests back meanwhile). Sessions stored before keep working; they are in no list
/// until a write carries their owner: records written before owners existed do not hold
/// one, and the layer writes it when the owner field changes (at login). Filling the
/// column from the `fields` JSON is not done: the owner is stored there as base64 of a
/// MessagePack string, which SQL does not decode, and old records do not hold it anyway.
///
/// **Upgrading** from layout 2: `migrate` adds `sweep_ms` `NULL` (no row is rewritten),
/// builds the sweep index (a read of the table, under a lock that holds requests back
/// meanwhile: in one transaction with the column, which takes the table's exclusive lock),
/// drops the index on `expires_ms` and sets the `fillfactor` (which applies to pages
/// filled from then on; a `VACUUM FULL` or `CLUSTER` repacks the existing ones, if wanted).
/// Old rows get their bound from their next save or touch, or from the sweeper, which
/// fills rows without one 1,000 per statement before each sweep, so the first sweep
/// after the upgrade writes each old row once and deletes the expired ones among them.
/// Instances still running the previous version keep working during a rolling upgrade
/// (their new rows get a bound from the sweeper; a deadline they move earlier is swept
/// once the bound passes; their own sweep scans the table, having lost its index). The
/// upgrade holds requests on the table back while it builds the index (a few seconds per
/// million rows; they get 503s past the query timeout): run it when a pause is
/// acceptable. **Rolling back** to a version with layout 2 after the upgrade: that
/// version's `migrate` leaves the newer table as it is, and its sweeper, which looks for
/// rows by `expires_ms`, scans the table; recreate its index by hand
/// (`CREATE INDEX CONCURRENTLY <table>_expires_idx ON <table> (expires_ms) WHERE
/// expires_ms IS NOT NULL`).
///
/// # Expiry
///
/// Expired rows are never returned (every statement filters on `expires_ms`). A sweeper
/// deletes them in batches of 1,000 every 60 seconds by default
/// ([`PostgresStoreBuilder::sweep_interval`]), reports each to the layers' `on_deleted`
/// hooks, and stops when the last clone of the store is dropped. [`sweep`](Self::sweep)
/// runs one sweep now. A sweep first gives rows without a bound their deadline as one,
/// then, window by window (the 1,000 lowest bounds up to now, read in the sweep index's
/// order), an `UPDATE` that moves the passed bounds of the live rows in the window and a
/// `DELETE .. RETURNING` of the expired ones, until a window holds nothing to do. Each
/// statement reads one window through the index, whatever the table holds (a backlog of
/// expired rows included), so it stays within the query timeout (checked with `EXPLAIN`
/// over a backlog by the test `sweeper::sweeping_searches_the_sweep_index_not_the_table`),
/// and takes its rows
/// with `FOR UPDATE SKIP LOCKED`, so several instances sweep without waiting for each
/// other (each statement locks its whole window, so a save of a session in it waits for
/// that one statement). Two limits: a transaction held open for long (a `pg_dump`, a
/// replica with `hot_standby_feedback`) keeps the index entries of the rows swept meanwhile
/// from being cleaned up, and each window reads past them, so a long backlog swept under
/// it slows as it goes (measured: 24 ms per statement at first, 330 ms after 100 windows);
/// and `on_deleted` hears of a deleted row at most once: a `DELETE` whose answer came back
/// after the query timeout was given up on may have deleted rows nobody is told about.
///
/// # Faults
///
/// Every operation is bounded by the store's query timeout (default 2 seconds,
/// [`PostgresStoreBuilder::query_timeout`]); a failure or a timeout is logged and becomes a
/// [`StoreError`], which the layer answers with an opaque 503. Connections broken by a
/// server restart are dropped by the pool and new ones made: the app recovers by itself. A
/// row that does not hold a session this store wrote is treated as no session, with a
/// warning.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    sql: Statements,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    removals: Removals,
    sweeper: Sweeper,
    /// Who waits on the removal of which session (removals through this store value).
    watchers: Watchers,
}

/// The statements, with the table's name filled in.
struct Statements {
    /// The table's name, unquoted.
    name: String,
    /// The table's name, quoted and qualified.
    table: String,
    migrations: String,
    schema: Option<String>,
    load: String,
    create: String,
    save: String,
    /// A save whose changes move the owner: `save` that also sets `owner` (`$9`).
    save_owner: String,
    /// Unused here: `save` is one statement whether or not the sweep bound moves (see the
    /// SQLite store for why it needs two).
    save_moved: Option<String>,
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
/// the quoted, qualified table name, `{index}` the quoted name of its deadline index
/// (versions 1 and 2; `{schema_index}` the same, qualified with the table's schema, as
/// `DROP INDEX` needs), `{sweep_index}` that of the sweep index that replaced it in version
/// 3, `{owner_index}` that of its owner index.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS {table} (
            id BYTEA PRIMARY KEY,
            version BIGINT NOT NULL,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT,
            absolute_ms BIGINT,
            fields JSONB NOT NULL DEFAULT '{}'::jsonb
        )",
            "CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_ms) WHERE expires_ms IS NOT NULL",
        ],
    ),
    (
        // The owner index (issue 14) and the last use. Both columns start NULL: no rewrite of
        // existing rows (a NULL `seen_ms` reads as the creation time; a NULL owner is in no
        // list until the next write that carries the owner), and the partial index starts empty.
        2,
        &[
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS owner TEXT",
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS seen_ms BIGINT",
            "CREATE INDEX IF NOT EXISTS {owner_index} ON {table} (owner) WHERE owner IS NOT NULL",
        ],
    ),
    (
        // Saves become HOT updates (see "Why a sweep column" in the store's docs): the
        // sweeper finds rows by `sweep_ms`, a lower bound of the deadline that a save leaves
        // as it is, instead of by the deadline that every save moves; pages keep free space
        // for the new row versions. `sweep_ms` starts NULL (no rewrite of existing rows):
        // the sweeper's refresh fills it in, in batches, and saves fill it as they go.
        3,
        &[
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS sweep_ms BIGINT",
            "CREATE INDEX IF NOT EXISTS {sweep_index} ON {table} (sweep_ms)",
            "DROP INDEX IF EXISTS {schema_index}",
            "ALTER TABLE {table} SET (fillfactor = 80)",
        ],
    ),
];

/// The advisory lock `migrate` holds: one for every table and schema this crate migrates,
/// so that creating a schema shared by two tables is serialized too ("sessionr" in ASCII).
const MIGRATE_LOCK: i64 = 0x7365_7373_696f_6e72;

/// `sweep_ms` of a row that never expires: after every deadline.
const NEVER: &str = "9223372036854775807";
const LIVE: &str = "(expires_ms IS NULL OR expires_ms > $2)";
/// Rows from before the last use was kept (version 1) read their creation time as it.
const COLUMNS: &str =
    "version, created_ms, expires_ms, absolute_ms, fields::text, coalesce(seen_ms, created_ms)";

impl Statements {
    fn new(schema: Option<&str>, table: &str) -> Self {
        let qualify = |name: &str| match schema {
            Some(schema) => format!("\"{schema}\".\"{name}\""),
            None => format!("\"{name}\""),
        };
        let t = qualify(table);
        let migrations = qualify(&format!("{table}_migrations"));
        // The bound a row's `sweep_ms` keeps when its deadline becomes `$5`: unchanged
        // unless the deadline moved below it, so that the `UPDATE` changes no indexed
        // column and is a HOT update (PostgreSQL compares the old and new values of indexed
        // columns, whatever the `SET` names). `least` ignores NULL: a row from before the
        // sweep column gets its bound here.
        let save_set = format!(
            "fields = fields || $7::jsonb, version = $3, created_ms = $4, expires_ms = $5, \
             absolute_ms = $6, seen_ms = $8, sweep_ms = least(sweep_ms, coalesce($5, {NEVER}))"
        );
        let save_where = format!("id = $1 AND {LIVE} AND version <= $3");
        Self {
            load: format!("SELECT {COLUMNS} FROM {t} WHERE id = $1 AND {LIVE}"),
            create: format!(
                "INSERT INTO {t} AS s (id, version, created_ms, expires_ms, absolute_ms, fields, \
                 seen_ms, owner, sweep_ms) \
                 VALUES ($1, $3, $4, $5, $6, $7::jsonb, $8, $9, coalesce($5, {NEVER})) \
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, \
                 created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms, \
                 absolute_ms = EXCLUDED.absolute_ms, fields = EXCLUDED.fields, \
                 seen_ms = EXCLUDED.seen_ms, owner = EXCLUDED.owner, \
                 sweep_ms = EXCLUDED.sweep_ms \
                 WHERE s.expires_ms IS NOT NULL AND s.expires_ms <= $2"
            ),
            save: format!("UPDATE {t} SET {save_set} WHERE {save_where}"),
            save_owner: format!("UPDATE {t} SET {save_set}, owner = $9 WHERE {save_where}"),
            touch: format!(
                "UPDATE {t} SET created_ms = $3, expires_ms = $4, absolute_ms = $5, seen_ms = $6, \
                 sweep_ms = least(sweep_ms, coalesce($4, {NEVER})) WHERE id = $1 AND {LIVE}"
            ),
            take: format!("DELETE FROM {t} WHERE id = $1 AND {LIVE} RETURNING {COLUMNS}"),
            delete: format!("DELETE FROM {t} WHERE id = $1"),
            save_moved: None,
            save_owner_moved: None,
            touch_moved: None,
            // The sweeper's statements (see `sweep` in `sql/mod.rs`). Each reads one window:
            // the `$2` lowest bounds up to now, in the sweep index's order, so that a batch
            // costs a batch whatever the table holds; the window's ids, as an array, are
            // then looked up by the primary key (`IN (subquery)` lets the planner hash-join
            // a scan of the whole table against them). Rows another instance holds are
            // skipped, not waited for. `fill` asks for the index's order (NULLs sort last,
            // so a backward scan reads them first), so that statistics saying most bounds
            // are NULL (right after the upgrade, until the next `ANALYZE`) cannot make it a
            // scan of the table that finds the few NULLs left.
            fill: format!(
                "UPDATE {t} SET sweep_ms = coalesce(expires_ms, {NEVER}) WHERE id = ANY(ARRAY(\
                 SELECT id FROM {t} WHERE sweep_ms IS NULL ORDER BY sweep_ms DESC NULLS FIRST \
                 LIMIT $1 FOR UPDATE SKIP LOCKED))"
            ),
            refresh: format!(
                "UPDATE {t} SET sweep_ms = coalesce(expires_ms, {NEVER}) WHERE id = ANY(ARRAY(\
                 SELECT id FROM {t} WHERE sweep_ms <= $1 ORDER BY sweep_ms LIMIT $2 \
                 FOR UPDATE SKIP LOCKED)) AND (expires_ms IS NULL OR expires_ms > $1)"
            ),
            sweep: format!(
                "DELETE FROM {t} WHERE id = ANY(ARRAY(SELECT id FROM {t} WHERE sweep_ms <= $1 \
                 ORDER BY sweep_ms LIMIT $2 FOR UPDATE SKIP LOCKED)) AND expires_ms <= $1 \
                 RETURNING id, {COLUMNS}"
            ),
            owned_by: format!("SELECT id, {COLUMNS} FROM {t} WHERE owner = $1 AND {LIVE}"),
            count: format!("SELECT count(*) FROM {t} WHERE expires_ms IS NULL OR expires_ms > $1"),
            // The batch's ids looked up by key, not hash-joined against a scan of the table.
            clear: format!("DELETE FROM {t} WHERE id = ANY(ARRAY(SELECT id FROM {t} LIMIT $1))"),
            exists: format!("SELECT 1 FROM {t} WHERE id = $1"),
            name: table.to_owned(),
            table: t,
            migrations,
            schema: schema.map(|schema| format!("\"{schema}\"")),
        }
    }

    /// `name` quoted, qualified with the table's schema when it has one.
    fn qualified(&self, name: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.\"{name}\""),
            None => format!("\"{name}\""),
        }
    }

    fn migration(&self, statement: &str) -> String {
        statement
            .replace("{table}", &self.table)
            .replace("{index}", &format!("\"{}_expires_idx\"", self.name))
            .replace(
                "{schema_index}",
                &self.qualified(&format!("{}_expires_idx", self.name)),
            )
            .replace("{sweep_index}", &format!("\"{}_sweep_idx\"", self.name))
            .replace("{owner_index}", &format!("\"{}_owner_idx\"", self.name))
    }
}

/// The settings of a new [`PostgresStore`]; see [`PostgresStore::builder`].
#[derive(Clone, Default)]
#[must_use = "a builder does nothing until `.connect(..)` or `.build(..)`"]
pub struct PostgresStoreBuilder {
    options: SqlOptions,
    schema: Option<String>,
}

super::builder_options!(PostgresStoreBuilder);

impl PostgresStoreBuilder {
    /// The schema the tables live in (default: none, so PostgreSQL's `search_path` decides,
    /// usually `public`). [`PostgresStore::migrate`] creates it if it does not exist.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// Connects to `url` (`postgres://user:password@host:port/database?options`) with a
    /// pool of up to 10 connections. Connections in use are not pinged before each
    /// operation (that would be a second round trip); one idle for more than a second is,
    /// so that connections a server restart broke are replaced, not handed to a request.
    /// The server's `statement_timeout` is set to the query timeout, so that a statement the
    /// store gave up on is rolled back by the server instead of applied late.
    ///
    /// # Errors
    /// An invalid table or schema name, an invalid URL, or no connection (nothing answers,
    /// or the server refuses: the error names the host and port, never the password).
    pub async fn connect(self, url: &str) -> Result<PostgresStore, SqlConnectError> {
        self.check_names()?;
        let timeout_ms = self.options.query_timeout().as_millis().to_string();
        let options = PgConnectOptions::from_str(url)
            .map_err(SqlConnectError::InvalidUrl)?
            .options([("statement_timeout", timeout_ms)]);
        let address = format!("{}:{}", options.get_host(), options.get_port());
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(self.options.acquire_timeout())
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| SqlConnectError::Unreachable { address, source })?;
        self.build(pool)
    }

    /// A store over an existing pool (the app's own). Its settings are yours: consider
    /// `test_before_acquire(false)`, which saves a round trip per operation.
    ///
    /// # Errors
    /// An invalid table or schema name.
    pub fn build(self, pool: PgPool) -> Result<PostgresStore, SqlConnectError> {
        self.check_names()?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(self.schema.as_deref(), &self.options.table),
                timeout: self.options.query_timeout(),
                clock: self.options.clock,
                removals: Removals::default(),
                sweeper: Sweeper::new(self.options.sweep_interval),
                watchers: Watchers::new(),
            }),
        })
    }

    fn check_names(&self) -> Result<(), SqlConnectError> {
        checked_name(&self.options.table)?;
        if let Some(schema) = &self.schema {
            checked_name(schema)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.sql.table)
            .field("query_timeout", &self.inner.timeout)
            .field("sweep_interval", &self.inner.sweeper.interval())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Settings other than the defaults: table, schema, timeouts.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Connects with the default settings; see [`PostgresStoreBuilder::connect`].
    ///
    /// # Errors
    /// An invalid URL, or no server answering.
    pub async fn connect(url: &str) -> Result<Self, SqlConnectError> {
        Self::builder().connect(url).await
    }

    /// A store over an existing pool, with the default settings.
    pub fn from_pool(pool: PgPool) -> Self {
        let options = SqlOptions::default();
        Self {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(None, &options.table),
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
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Creates the tables, or brings them up to this version's layout. Idempotent, and safe
    /// when several instances run it at once: it runs in one transaction under an advisory
    /// lock, and applies only the versions not yet recorded in `<table>_migrations`. A
    /// database migrated by a newer version of this crate is left as it is.
    ///
    /// When the tables are up to date it only reads `<table>_migrations`, so an app whose
    /// role may only read and write rows (`USAGE` on the schema, `SELECT, INSERT, UPDATE,
    /// DELETE` on both tables) can call it at every start; creating or upgrading needs the
    /// right to create tables (and the schema, if it does not exist).
    ///
    /// # Errors
    /// The database refused a statement (for example, the user may not create tables).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let sql = &self.inner.sql;
        let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
        let run = async {
            let recorded: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&sql.migrations)
                .fetch_one(&self.inner.pool)
                .await?;
            if recorded.is_some() {
                let applied: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT max(version) FROM {}", sql.migrations))
                        .fetch_one(&self.inner.pool)
                        .await?;
                if applied.is_some_and(|applied| applied >= latest) {
                    return Ok(());
                }
            }
            let mut tx = self.inner.pool.begin().await?;
            // Waiting for another instance's migration is not a slow query.
            sqlx::query("SET LOCAL statement_timeout = 0")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATE_LOCK)
                .execute(&mut *tx)
                .await?;
            if let Some(schema) = &sql.schema {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {} (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
                sql.migrations
            ))
            .execute(&mut *tx)
            .await?;
            let applied: Option<i64> =
                sqlx::query_scalar(&format!("SELECT max(version) FROM {}", sql.migrations))
                    .fetch_one(&mut *tx)
                    .await?;
            for (version, statements) in MIGRATIONS {
                if applied.is_some_and(|applied| applied >= *version) {
                    continue;
                }
                for statement in *statements {
                    sqlx::query(&sql.migration(statement))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(&format!(
                    "INSERT INTO {} (version, applied_ms) VALUES ($1, $2)",
                    sql.migrations
                ))
                .bind(version)
                .bind(to_sql_ms(self.inner.clock.now_ms()))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
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

super::sql_store!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::postgres::PgArguments,
    PgRow
);
