//! What the SQL stores share: the row layout (one row per session, its fields in one JSON
//! object that a save merges in SQL), table names, and turning rows back into sessions.
//!
//! # Why one row per session, with a mergeable column
//!
//! Every operation is then one statement on one row, and the row lock the database takes
//! for it makes the operation atomic: a save merges its changed fields into the stored
//! object (`fields || $changes` in PostgreSQL, `json_patch` in SQLite) as of the latest
//! committed row, so two saves of different fields both keep their change; `take` is one
//! `DELETE .. RETURNING` that returns what the row held when it was deleted. A row per field
//! would need a join to load, several rows locked per save, and a second statement (or a
//! snapshot that may miss a concurrent save) to return the fields of a taken session.
//! PostgreSQL writes a new row version on every update whatever is changed (MVCC), so a
//! row per field would not write less for sessions of a few fields; what a save sends and
//! changes is only the changed fields either way.
//!
//! Field values (MessagePack bytes) are kept as base64 strings in the JSON object, keyed by
//! the field's wire key.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

use crate::clock::{Clock, SystemClock};
use crate::record::{Record, RecordField};
use crate::store::{Loaded, SessionMeta, StoreError};

/// The table sessions are kept in unless the store's builder says otherwise.
pub(crate) const DEFAULT_TABLE: &str = "http_sessions";
/// Expired rows removed per statement by the sweeper.
pub(crate) const SWEEP_BATCH: i64 = 1_000;
/// Rows removed per statement by `clear`: each statement stays well within the query timeout
/// (which the server enforces too) and holds its locks briefly, so that requests running
/// meanwhile wait for one batch at most, not for the whole table.
pub(crate) const CLEAR_BATCH: i64 = 10_000;
pub(crate) const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest query timeout taken as given: longer ones are cut to it (a timer that long is
/// "never", and sqlx's deadlines overflow near `Duration::MAX`).
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl SqlOptions {
    /// The query timeout, within bounds.
    pub(crate) fn query_timeout(&self) -> Duration {
        self.query_timeout
            .clamp(Duration::from_millis(1), MAX_QUERY_TIMEOUT)
    }

    /// How long the pool may take to hand out a connection: the query timeout, but at least
    /// a second, so that a start-up with a short query timeout still gets to connect.
    pub(crate) fn acquire_timeout(&self) -> Duration {
        self.query_timeout().max(Duration::from_secs(1))
    }
}

/// The settings both SQL stores have.
#[derive(Clone)]
pub(crate) struct SqlOptions {
    pub(crate) table: String,
    pub(crate) query_timeout: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for SqlOptions {
    fn default() -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Making a SQL store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlConnectError {
    /// A table or schema name is not a plain identifier.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The database URL did not parse.
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// Connecting to the database at the given address failed: nothing answered, or it
    /// refused the connection (wrong password, unknown database, ..): the source says which.
    #[error("cannot connect to the database at {address}")]
    Unreachable {
        /// Where the store tried to connect (host and port, or the file; never a password).
        address: String,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },
}

/// A table name was refused by a SQL store's `table` or `schema`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid SQL name `{0}`: use 1 to 48 ASCII letters, digits or underscores, not starting \
     with a digit"
)]
pub struct InvalidName(String);

/// Checks a table or schema name: plain identifiers only, so that a name is never a way
/// to inject SQL, and quoting it needs no escaping.
pub(crate) fn checked_name(name: &str) -> Result<String, InvalidName> {
    let valid = (1..=48).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(name.to_owned())
    } else {
        Err(InvalidName(name.to_owned()))
    }
}

/// Milliseconds as SQL's `BIGINT`: beyond `i64::MAX` (292 million years) is "never" anyway.
pub(crate) fn to_sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The JSON object of a record's fields: wire key -> base64 of the value, written into one
/// buffer (no map, no string per field).
pub(crate) fn fields_json(record: &Record) -> String {
    let mut out = Vec::with_capacity(
        2 + record
            .fields
            .iter()
            .map(|field| field.key.len() + 6 + field.value.len().div_ceil(3) * 4)
            .sum::<usize>(),
    );
    out.push(b'{');
    for (index, field) in record.fields.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        // Writing a string into a `Vec` does not fail.
        let _ = serde_json::to_writer(&mut out, field.key.as_str());
        out.extend_from_slice(b":\"");
        let start = out.len();
        out.resize(start + field.value.len().div_ceil(3) * 4, 0);
        let written = STANDARD_NO_PAD
            .encode_slice(&field.value, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.push(b'"');
    }
    out.push(b'}');
    // JSON text written by serde_json and base64 is ASCII or the keys' own UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
}

/// One row as the stores select it: schema version, created, idle and absolute deadlines,
/// the fields' JSON text borrowed from the database's row, and the last use.
pub(crate) struct Row<'r> {
    pub(crate) version: i64,
    pub(crate) created_ms: i64,
    pub(crate) expires_ms: Option<i64>,
    pub(crate) absolute_ms: Option<i64>,
    pub(crate) fields: &'r str,
    pub(crate) seen_ms: i64,
}

impl Row<'_> {
    /// The session the row holds, or why it is not one this store wrote.
    pub(crate) fn into_loaded(self) -> Result<Loaded, &'static str> {
        let version = u32::try_from(self.version).map_err(|_| "bad schema version")?;
        let ms = |value: i64, what| u64::try_from(value).map_err(|_| what);
        let created_ms = ms(self.created_ms, "bad creation time")?;
        let meta = SessionMeta {
            created_ms,
            seen_ms: ms(self.seen_ms, "bad last use")?,
            expires_ms: self
                .expires_ms
                .map(|value| ms(value, "bad expiry"))
                .transpose()?,
            absolute_ms: self
                .absolute_ms
                .map(|value| ms(value, "bad absolute deadline"))
                .transpose()?,
        };
        Ok(Loaded {
            record: Record {
                version,
                fields: decode_fields(self.fields)?,
            },
            meta,
        })
    }
}

/// The fields of a JSON object of base64 strings, in key order, in one pass over the text:
/// each key becomes the field's `String`, each value is decoded from base64 straight into
/// the field's bytes (no intermediate map or strings).
fn decode_fields(json: &str) -> Result<Vec<RecordField>, &'static str> {
    use serde::de::{DeserializeSeed, Deserializer as _, Error as _, MapAccess, Visitor};

    /// A field value: a base64 string, decoded as it is read.
    struct Base64;

    impl<'de> DeserializeSeed<'de> for Base64 {
        type Value = Vec<u8>;

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for Base64 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            STANDARD_NO_PAD
                .decode(text)
                .map_err(|_| E::custom("a field value is not base64"))
        }
    }

    struct Fields;

    impl<'de> Visitor<'de> for Fields {
        type Value = Vec<RecordField>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object of base64 strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields: Vec<RecordField> = Vec::with_capacity(map.size_hint().unwrap_or(8));
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(Base64)?;
                fields.push(RecordField { key, value });
            }
            // Stored orders differ (`jsonb` sorts keys by length first, `json_patch` appends
            // new keys, a save writes the record's order): sorted by key, as records are.
            fields.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            if fields.windows(2).any(|pair| pair[0].key == pair[1].key) {
                return Err(A::Error::custom("a field key appears twice"));
            }
            Ok(fields)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(json);
    let fields = deserializer
        .deserialize_map(Fields)
        .and_then(|fields| deserializer.end().map(|()| fields))
        .map_err(|_| "fields are not a JSON object of base64 strings")?;
    Ok(fields)
}

/// A row that did not hold a session this store wrote is no session: the visitor gets a
/// fresh one, and the log says why. `row` is what decoding the selected columns gave: a
/// column of the wrong type (SQLite keeps any value in any column) is garbage too.
pub(crate) fn loaded_or_warn(
    row: Option<Result<Row<'_>, sqlx::Error>>,
    store: &'static str,
) -> Option<Loaded> {
    let row = match row? {
        Ok(row) => row,
        Err(error) => {
            tracing::warn!(store, %error, "a session row is garbage (a column does not decode); treated as no session");
            return None;
        }
    };
    match row.into_loaded() {
        Ok(loaded) => Some(loaded),
        Err(why) => {
            tracing::warn!(
                store,
                why,
                "a session row is garbage; treated as no session"
            );
            None
        }
    }
}

/// A database error as the layer sees it: logged where it happens, then a 503.
pub(crate) fn failed(
    store: &'static str,
    operation: &'static str,
    error: sqlx::Error,
) -> StoreError {
    tracing::error!(store, operation, %error, "session store operation failed");
    StoreError::backend(error)
}

/// Bounds `operation` by `timeout`: a database that does not answer becomes a
/// [`StoreError::Timeout`], not a request that hangs.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    store: &'static str,
    operation: &'static str,
    future: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(failed(store, operation, error)),
        Err(_) => {
            tracing::error!(store, operation, ?timeout, "session store timed out");
            Err(StoreError::Timeout(timeout))
        }
    }
}

/// The parts of a SQL store that are the same text for every database: the
/// [`SessionStore`](crate::store::SessionStore) implementation over the store's
/// `Statements`, the sweep, and the helpers they share. Each store module defines
/// `STORE`, `Inner` (with `pool`, `sql`, `timeout`, `clock`, `removals`, `sweeper`, `watchers`) and
/// its statements, and invokes this with its types; the SQL differs, the code does not.
macro_rules! sql_store {
    ($store:ty, $db:ty, $args:ty, $row:ty) => {
        impl $store {
            fn start(&self) {
                self.inner.sweeper.ensure(|| Arc::downgrade(&self.inner));
            }

            /// The session in the row `query` selects, if there is one and it decodes
            /// (garbage is logged and treated as no session).
            async fn optional(
                &self,
                operation: &'static str,
                query: QueryFor<'_>,
            ) -> Result<Option<Loaded>, StoreError> {
                let row = bounded(
                    self.inner.timeout,
                    STORE,
                    operation,
                    query.fetch_optional(&self.inner.pool),
                )
                .await?;
                Ok(loaded_or_warn(
                    row.as_ref().map(|row| row_of(row, 0)),
                    STORE,
                ))
            }

            async fn affected(
                &self,
                operation: &'static str,
                query: QueryFor<'_>,
            ) -> Result<u64, StoreError> {
                let done = bounded(
                    self.inner.timeout,
                    STORE,
                    operation,
                    query.execute(&self.inner.pool),
                )
                .await?;
                Ok(done.rows_affected())
            }
        }

        type QueryFor<'q> = sqlx::query::Query<'q, $db, $args>;

        /// The columns of `COLUMNS`, starting at column `first`.
        fn row_of(row: &$row, first: usize) -> Result<Row<'_>, sqlx::Error> {
            Ok(Row {
                version: row.try_get(first)?,
                created_ms: row.try_get(first + 1)?,
                expires_ms: row.try_get(first + 2)?,
                absolute_ms: row.try_get(first + 3)?,
                fields: row.try_get(first + 4)?,
                seen_ms: row.try_get(first + 5)?,
            })
        }

        /// Binds the columns of a session after `$1` (the id) and `$2` (now): `$3` version, `$4`
        /// created, `$5` expires, `$6` absolute.
        fn bind_meta<'q>(query: QueryFor<'q>, version: u32, meta: &SessionMeta) -> QueryFor<'q> {
            query
                .bind(i64::from(version))
                .bind(to_sql_ms(meta.created_ms))
                .bind(meta.expires_ms.map(to_sql_ms))
                .bind(meta.absolute_ms.map(to_sql_ms))
        }

        impl Inner {
            /// One sweep. Rows are found by their sweep bound (`sweep_ms`, a lower bound of
            /// the deadline), one window at a time: the `SWEEP_BATCH` lowest bounds up to
            /// now, in the index's order, so that every statement reads about a batch,
            /// whatever the table holds (a backlog of expired rows, or statistics that say
            /// most bounds have passed). (On PostgreSQL, a transaction left open for long
            /// keeps the index entries of rows swept meanwhile from being cleaned up, and
            /// each window reads past them: a long backlog swept under such a transaction
            /// slows as it goes.) In each window, live rows whose bound has passed get
            /// their deadline as their bound (`refresh`) and expired rows are deleted
            /// (`sweep`); both leave the window for good (`now` is fixed for the sweep), so
            /// the loop ends when a window holds nothing more to do. Before that, rows
            /// without a bound (written before the sweep column) are given one; a failure
            /// there is logged and only delays those rows, it does not stop the deletions.
            async fn sweep(&self) -> Result<usize, StoreError> {
                let now = to_sql_ms(self.clock.now_ms());
                loop {
                    let filled = bounded(
                        self.timeout,
                        STORE,
                        "sweep",
                        sqlx::query(&self.sql.fill)
                            .bind(SWEEP_BATCH)
                            .execute(&self.pool),
                    )
                    .await;
                    match filled {
                        Ok(done) if done.rows_affected() >= SWEEP_BATCH.unsigned_abs() => {}
                        _ => break,
                    }
                }
                let mut total = 0;
                loop {
                    let moved = bounded(
                        self.timeout,
                        STORE,
                        "sweep",
                        sqlx::query(&self.sql.refresh)
                            .bind(now)
                            .bind(SWEEP_BATCH)
                            .execute(&self.pool),
                    )
                    .await?
                    .rows_affected();
                    let rows = bounded(
                        self.timeout,
                        STORE,
                        "sweep",
                        sqlx::query(&self.sql.sweep)
                            .bind(now)
                            .bind(SWEEP_BATCH)
                            .fetch_all(&self.pool),
                    )
                    .await?;
                    let batch = rows.len();
                    let removed: Vec<Removed> = rows
                        .iter()
                        .filter_map(|row| {
                            let id: Vec<u8> = row.try_get(0).ok()?;
                            let digest = SessionDigest::from_bytes(id.try_into().ok()?);
                            self.watchers.notify(&digest);
                            let loaded = loaded_or_warn(Some(row_of(row, 1)), STORE)?;
                            Some(Removed {
                                digest,
                                record: loaded.record,
                            })
                        })
                        .collect();
                    self.removals.report(&removed);
                    total += batch;
                    if moved == 0 && batch == 0 {
                        return Ok(total);
                    }
                }
            }
        }

        impl Sweep for Inner {
            const NAME: &'static str = STORE;

            async fn sweep_expired(&self) -> usize {
                // A failure is logged by `bounded`; the next tick tries again.
                self.sweep().await.unwrap_or(0)
            }
        }

        impl SessionStore for $store {
            async fn load(
                &self,
                id: &SessionDigest,
                now_ms: u64,
            ) -> Result<Option<Loaded>, StoreError> {
                self.start();
                let digest = *id;
                let query = sqlx::query(&self.inner.sql.load)
                    .bind(digest.as_bytes().as_slice())
                    .bind(to_sql_ms(now_ms));
                self.optional("load", query).await
            }

            async fn create(
                &self,
                id: &SessionDigest,
                record: &Record,
                meta: &SessionMeta,
                now_ms: u64,
            ) -> Result<CreateOutcome, StoreError> {
                self.start();
                let digest = *id;
                let query = sqlx::query(&self.inner.sql.create)
                    .bind(digest.as_bytes().as_slice())
                    .bind(to_sql_ms(now_ms));
                let query = bind_meta(query, record.version, meta)
                    .bind(fields_json(record))
                    .bind(to_sql_ms(meta.seen_ms))
                    .bind(record.owner().key());
                Ok(match self.affected("create", query).await? {
                    0 => CreateOutcome::IdTaken,
                    _ => CreateOutcome::Created,
                })
            }

            async fn save(
                &self,
                id: &SessionDigest,
                changes: &Record,
                meta: &SessionMeta,
                now_ms: u64,
            ) -> Result<SaveOutcome, StoreError> {
                let digest = *id;
                let fields = fields_json(changes);
                // A save that moves the owner names the `owner` column; the others do not
                // (SQLite rewrites the index entry of every indexed column a SET names).
                let owner = changes.owner();
                let (statement, moved) = if owner == OwnerField::Absent {
                    (&self.inner.sql.save, &self.inner.sql.save_moved)
                } else {
                    (&self.inner.sql.save_owner, &self.inner.sql.save_owner_moved)
                };
                let save = |statement| {
                    let query = sqlx::query(statement)
                        .bind(digest.as_bytes().as_slice())
                        .bind(to_sql_ms(now_ms));
                    let query = bind_meta(query, changes.version, meta)
                        .bind(fields.as_str())
                        .bind(to_sql_ms(meta.seen_ms));
                    if owner == OwnerField::Absent {
                        query
                    } else {
                        query.bind(owner.key())
                    }
                };
                let mut rows = self.affected("save", save(statement)).await?;
                if let (0, Some(moved)) = (rows, moved) {
                    rows = self.affected("save", save(moved)).await?;
                }
                Ok(saved(rows))
            }

            async fn touch(
                &self,
                id: &SessionDigest,
                meta: &SessionMeta,
                now_ms: u64,
            ) -> Result<SaveOutcome, StoreError> {
                let digest = *id;
                let touch = |statement| {
                    sqlx::query(statement)
                        .bind(digest.as_bytes().as_slice())
                        .bind(to_sql_ms(now_ms))
                        .bind(to_sql_ms(meta.created_ms))
                        .bind(meta.expires_ms.map(to_sql_ms))
                        .bind(meta.absolute_ms.map(to_sql_ms))
                        .bind(to_sql_ms(meta.seen_ms))
                };
                let mut rows = self.affected("touch", touch(&self.inner.sql.touch)).await?;
                if let (0, Some(moved)) = (rows, &self.inner.sql.touch_moved) {
                    rows = self.affected("touch", touch(moved)).await?;
                }
                Ok(saved(rows))
            }

            async fn take(
                &self,
                id: &SessionDigest,
                now_ms: u64,
            ) -> Result<Option<Loaded>, StoreError> {
                let digest = *id;
                let query = sqlx::query(&self.inner.sql.take)
                    .bind(digest.as_bytes().as_slice())
                    .bind(to_sql_ms(now_ms));
                let taken = self.optional("take", query).await?;
                if taken.is_some() {
                    self.inner.watchers.notify(&digest);
                }
                Ok(taken)
            }

            async fn delete(&self, id: &SessionDigest) -> Result<bool, StoreError> {
                let digest = *id;
                let query = sqlx::query(&self.inner.sql.delete).bind(digest.as_bytes().as_slice());
                let deleted = self.affected("delete", query).await? > 0;
                if deleted {
                    self.inner.watchers.notify(&digest);
                }
                Ok(deleted)
            }

            fn subscribe_removals(&self, listener: &RemovalListener) {
                self.inner.removals.subscribe(listener);
            }

            async fn owned_by(
                &self,
                owner: &str,
                now_ms: u64,
            ) -> Result<Vec<(SessionDigest, Loaded)>, StoreError> {
                self.start();
                let rows = bounded(
                    self.inner.timeout,
                    STORE,
                    "owned_by",
                    sqlx::query(&self.inner.sql.owned_by)
                        .bind(owner)
                        .bind(to_sql_ms(now_ms))
                        .fetch_all(&self.inner.pool),
                )
                .await?;
                Ok(rows
                    .iter()
                    .filter_map(|row| {
                        let id: Vec<u8> = row.try_get(0).ok()?;
                        let digest = SessionDigest::from_bytes(id.try_into().ok()?);
                        let loaded = loaded_or_warn(Some(row_of(row, 1)), STORE)?;
                        Some((digest, loaded))
                    })
                    .collect())
            }

            async fn count(&self, now_ms: u64) -> Result<u64, StoreError> {
                let count: i64 = bounded(
                    self.inner.timeout,
                    STORE,
                    "count",
                    sqlx::query_scalar(&self.inner.sql.count)
                        .bind(to_sql_ms(now_ms))
                        .fetch_one(&self.inner.pool),
                )
                .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn clear(&self) -> Result<u64, StoreError> {
                let mut total = 0;
                loop {
                    let query = sqlx::query(&self.inner.sql.clear).bind(CLEAR_BATCH);
                    let batch = self.affected("clear", query).await?;
                    total += batch;
                    if batch < CLEAR_BATCH.unsigned_abs() {
                        break;
                    }
                }
                // Every watched session is gone now.
                for id in self.inner.watchers.watched() {
                    self.inner.watchers.notify(&id);
                }
                Ok(total)
            }

            async fn watch_removal(&self, id: &SessionDigest) -> Result<RemovalWatch, StoreError> {
                // Registered first, checked second: a removal in between resolves the watch.
                // A row expired but not swept yet is still stored: the sweep resolves it.
                let watch = self.inner.watchers.watch(id);
                let query = sqlx::query(&self.inner.sql.exists).bind(id.as_bytes().as_slice());
                let stored = bounded(
                    self.inner.timeout,
                    STORE,
                    "watch_removal",
                    query.fetch_optional(&self.inner.pool),
                )
                .await?;
                Ok(if stored.is_some() {
                    watch
                } else {
                    RemovalWatch::resolved()
                })
            }
        }

        /// `UPDATE`'s row count as a save's outcome.
        fn saved(rows: u64) -> SaveOutcome {
            if rows == 0 {
                SaveOutcome::Missing
            } else {
                SaveOutcome::Saved
            }
        }
    };
}
pub(crate) use sql_store;

/// The settings every SQL store's builder has, on its `options: SqlOptions` field: written
/// once for both builders.
macro_rules! builder_options {
    ($builder:ty) => {
        impl $builder {
            /// The table sessions are kept in (default `http_sessions`); the migrations are
            /// recorded in `<table>_migrations`. Plain identifiers only: ASCII letters,
            /// digits and underscores, at most 48.
            pub fn table(mut self, name: impl Into<String>) -> Self {
                self.options.table = name.into();
                self
            }

            /// How long one operation may take before it fails with
            /// [`StoreError::Timeout`](crate::store::StoreError::Timeout) (default 2
            /// seconds). The layer's own store timeout bounds it too.
            pub fn query_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.options.query_timeout = timeout;
                self
            }

            /// How often the sweeper deletes expired rows (default 60 seconds).
            pub fn sweep_interval(mut self, interval: std::time::Duration) -> Self {
                self.options.sweep_interval = interval;
                self
            }

            /// The clock the sweeper judges expiry by (default: the system clock).
            pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
                self.options.clock = std::sync::Arc::new(clock);
                self
            }
        }
    };
}

pub(crate) use builder_options;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fields_round_trip_through_json() {
        let record = Record {
            version: 3,
            fields: vec![
                RecordField {
                    key: "a \"quoted\" key".into(),
                    value: vec![0, 1, 255],
                },
                RecordField {
                    key: "empty".into(),
                    value: vec![],
                },
            ],
        };
        let row = Row {
            version: 3,
            created_ms: 5,
            expires_ms: Some(9),
            absolute_ms: None,
            fields: &fields_json(&record),
            seen_ms: 7,
        };
        let loaded = row.into_loaded().unwrap();
        let mut fields = loaded.record.fields.clone();
        fields.sort_by(|a, b| a.key.cmp(&b.key));
        let mut expected = record.fields.clone();
        expected.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(fields, expected);
        assert_eq!(loaded.meta.expires_ms, Some(9));
        assert_eq!(loaded.meta.seen_ms, 7);
    }

    #[test]
    fn garbage_rows_are_refused_with_a_reason() {
        let row = |version, created_ms, fields| Row {
            version,
            created_ms,
            expires_ms: None,
            absolute_ms: None,
            fields,
            seen_ms: 0,
        };
        assert!(row(-1, 0, "{}").into_loaded().is_err());
        assert!(row(1, -5, "{}").into_loaded().is_err());
        assert!(row(1, 0, "[1]").into_loaded().is_err());
        assert!(row(1, 0, "{\"a\": 1}").into_loaded().is_err());
        assert!(row(1, 0, "{\"a\": \"!!\"}").into_loaded().is_err());
        assert!(row(1, 0, "not json").into_loaded().is_err());
        assert!(row(1, 0, "{\"a\": \"AQ\", \"a\": \"Ag\"}")
            .into_loaded()
            .is_err());
        assert!(row(1, 0, "{\"a\": \"AQ\"} x").into_loaded().is_err());
        let mut unseen = row(1, 0, "{}");
        unseen.seen_ms = -1;
        assert!(unseen.into_loaded().is_err());
        assert!(row(1, 0, "{}").into_loaded().is_ok());
    }

    #[test]
    fn fields_decode_as_each_database_writes_them() {
        let fields = |json| decode_fields(json).unwrap();
        let expected = vec![
            RecordField {
                key: "a".into(),
                value: vec![1],
            },
            RecordField {
                key: "bb".into(),
                value: vec![2, 3],
            },
        ];
        // Ours (serde_json), PostgreSQL's `jsonb` text, SQLite's `json_patch` (new keys last),
        // and escapes anywhere.
        assert_eq!(fields("{\"a\":\"AQ\",\"bb\":\"AgM\"}"), expected);
        assert_eq!(fields("{\"a\": \"AQ\", \"bb\": \"AgM\"}"), expected);
        assert_eq!(fields("{\"bb\":\"AgM\",\"a\":\"AQ\"}"), expected);
        assert_eq!(
            fields("{\"\\u0061\":\"A\\u0051\",\"bb\":\"AgM\"}"),
            expected
        );
        assert_eq!(fields(" { } "), vec![]);
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert!(checked_name("http_sessions").is_ok());
        assert!(checked_name("_x9").is_ok());
        for bad in ["", "9x", "a-b", "a\"b", "a;drop", &"x".repeat(49), "ünï"] {
            assert!(checked_name(bad).is_err(), "{bad}");
        }
    }
}
