//! [`RedisStore`]: sessions in Redis or Redis Cluster (feature `redis`).

mod layout;
mod scripts;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::{CreateOutcome, Loaded, SaveOutcome, SessionMeta, SessionStore, StoreError};
use crate::id::SessionDigest;
use crate::record::Record;

const DEFAULT_PREFIX: &str = "session:";
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Redis refuses expiry times that overflow its clock; a century is "never" for a session.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Sessions in Redis or Redis Cluster, shared by every process of the app.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use session_runtime::{Databag, RedisStore, Session, SessionLayer};
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
/// // Fails here, with the address, when Redis cannot be reached at start-up.
/// let store = RedisStore::new("redis://127.0.0.1:6379")
///     .await?
///     .prefix("myapp:session:")
///     .command_timeout(Duration::from_millis(500));
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .layer(SessionLayer::<Visits>::new(store));
/// # Ok(()) }
/// ```
///
/// # Layout
///
/// Each session is one Redis hash under `<prefix><hex SHA-256 of the id>` (default prefix
/// `session:`), so a dump of Redis holds no usable token. The hash has one field per stored
/// [`Databag`](crate::Databag) field (its wire key, holding the field's MessagePack bytes)
/// and four meta fields: `__v` (schema version), `__c` (created), `__e` (idle deadline) and
/// `__a` (absolute deadline), times in milliseconds since the Unix epoch. Redis expires the
/// key at the session's deadline, so abandoned sessions clean themselves up.
///
/// # Round trips per request
///
/// | the handler | Redis commands |
/// |---|---|
/// | ignores the session | none |
/// | reads it | one `HGETALL` |
/// | changes fields | `HGETALL`, then one `EVALSHA` writing only the changed fields, the meta and the expiry |
/// | reads it after a quarter of the idle timeout | `HGETALL`, then one `EVALSHA` that updates the meta and the expiry only |
/// | destroys it | `HGETALL`, then `DEL` |
/// | renews it (`renew()`) | `HGETALL`, then one `EVALSHA` creating the new id and one taking the old (a script that reads and deletes it atomically) |
///
/// `create`, `save` and `touch` are Lua scripts (one `EVALSHA` each: atomic, one key, so
/// cluster-safe): creating never overwrites a live session, and saving or touching never
/// re-creates a session that was deleted or expired in the meantime. The scripts are loaded
/// when the store connects; after a Redis restart the first call of each script reloads it.
///
/// # Faults
///
/// Every operation is bounded by the store's command timeout (default 2 seconds, see
/// [`RedisStore::command_timeout`]); a failure or a timeout is logged and becomes a
/// [`StoreError`], which the layer answers with an opaque 503. The connection is
/// re-established by itself when Redis is back. A key that holds something other than a
/// session written by this store (another type, missing or garbled meta fields) is treated
/// as no session, with a warning: the visitor gets a fresh session.
///
/// **Client.** Built on the [`redis`](https://docs.rs/redis) crate: a single server goes
/// through its `ConnectionManager` (one multiplexed connection, re-established in the
/// background after a failure), a cluster through its async cluster client (which follows
/// slot moves and reconnects to nodes). Clones share the connection.
///
/// **Timeouts.** A Redis that is down or too slow makes the operation fail after the
/// command timeout at the latest; the session layer's own
/// [`store_timeout`](crate::SessionLayer::store_timeout) bounds it too. A write that timed
/// out may still be applied by Redis later.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    prefix: std::sync::Arc<str>,
    command_timeout: Duration,
}

/// Connecting to Redis failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// A URL did not parse as a Redis URL (`redis://host:port/db`, `rediss://..` or
    /// `unix://..`).
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] RedisError),
    /// No Redis answered (or the scripts could not be loaded) at the given address.
    #[error("cannot reach Redis at {address}")]
    Unreachable {
        /// Where the store tried to connect (host and port; never the password).
        address: String,
        /// What the client reported.
        #[source]
        source: RedisError,
    },
}

/// One connection type for both deployments, so that the store is one type.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.connection {
            Connection::Single(_) => "single",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Hash fields the store keeps for itself. A [`Databag`](crate::Databag) field whose
    /// wire key is one of these cannot be stored: saving it fails with a [`StoreError`]
    /// that says to rename it.
    pub const RESERVED_FIELDS: [&'static str; 5] = layout::RESERVED_FIELDS;

    /// Connects to the single Redis server at `url`: `redis://[[user]:password@]host[:port][/db]`
    /// or `unix:///path/to/redis.sock` (`rediss://` for TLS needs one of the `redis` crate's
    /// TLS features enabled in your own `Cargo.toml`).
    ///
    /// The connection is checked here, so that an app that cannot reach Redis says so at
    /// start-up; later outages are survived: the store reconnects by itself.
    ///
    /// # Errors
    /// [`RedisConnectError::InvalidUrl`] if `url` does not parse, [`RedisConnectError::Unreachable`]
    /// if Redis does not answer.
    pub async fn new(url: &str) -> Result<Self, RedisConnectError> {
        let client = redis::Client::open(url).map_err(RedisConnectError::InvalidUrl)?;
        let address = client.get_connection_info().addr().to_string();
        let unreachable = |source| RedisConnectError::Unreachable {
            address: address.clone(),
            source,
        };
        // Few, short retries: a start-up error should come quickly, and a reconnection
        // that gives up is started again by the next command anyway.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(DEFAULT_COMMAND_TIMEOUT))
            // Bounded per operation by the store's command timeout instead.
            .set_response_timeout(None);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unreachable)?;
        let mut connection = Connection::Single(manager);
        load_scripts(&mut connection).await.map_err(unreachable)?;
        Ok(Self::with_connection(connection))
    }

    /// Connects to a Redis Cluster through any of its `nodes` (URLs as for
    /// [`new`](Self::new)); the client discovers the others and follows slot moves.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), session_runtime::RedisConnectError> {
    /// let store = session_runtime::RedisStore::cluster([
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RedisConnectError::InvalidUrl`] if a URL does not parse, [`RedisConnectError::Unreachable`]
    /// if no node answers.
    pub async fn cluster<I>(nodes: I) -> Result<Self, RedisConnectError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|node| node.as_ref().to_owned())
            .collect();
        let mut addresses = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let info = redis::IntoConnectionInfo::into_connection_info(node.as_str())
                .map_err(RedisConnectError::InvalidUrl)?;
            addresses.push(info.addr().to_string());
        }
        let address = addresses.join(", ");
        let unreachable = |source| RedisConnectError::Unreachable {
            address: address.clone(),
            source,
        };
        let client = ClusterClient::builder(nodes)
            .connection_timeout(DEFAULT_COMMAND_TIMEOUT)
            .retries(3)
            .build()
            .map_err(RedisConnectError::InvalidUrl)?;
        let cluster = client.get_async_connection().await.map_err(unreachable)?;
        let mut connection = Connection::Cluster(cluster);
        load_scripts(&mut connection).await.map_err(unreachable)?;
        Ok(Self::with_connection(connection))
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// The prefix of every session key (default `session:`). Apps sharing one Redis keep
    /// their sessions apart with different prefixes. On a cluster, a prefix with a hash tag
    /// such as `{sessions}:` would put every session in one slot: avoid that.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// The longest any store operation may take, including waiting for a reconnection
    /// (default 2 seconds). Past it the operation fails with [`StoreError::Timeout`].
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The Redis key of session `id`: the prefix and the hex SHA-256 of the id (for
    /// operators and tests; the id itself is never stored).
    #[must_use]
    pub fn key(&self, id: &SessionDigest) -> String {
        // The digest is hex and the prefix a `str`: the key is always UTF-8.
        String::from_utf8_lossy(&layout::key(&self.prefix, id)).into_owned()
    }

    /// Runs one Redis operation within the command timeout, logging a failure.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.command_timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                tracing::error!(operation, %error, "redis session store: command failed");
                Err(StoreError::backend(error))
            }
            Err(_) => {
                tracing::error!(
                    operation,
                    timeout = ?self.command_timeout,
                    "redis session store: no answer within the command timeout"
                );
                Err(StoreError::Timeout(self.command_timeout))
            }
        }
    }

    async fn update(
        &self,
        id: &SessionDigest,
        changes: Option<&Record>,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        let (set, unset) = layout::meta_fields(meta);
        let key = layout::key(&self.prefix, id);
        let mut invocation = scripts::UPDATE.key(key);
        let version = changes.map(|changes| changes.version.to_string());
        invocation
            .arg(now_ms)
            .arg(ttl_arg(meta, now_ms))
            .arg(version.unwrap_or_default())
            .arg(unset.len())
            .arg(&unset);
        for (field, value) in &set {
            invocation.arg(*field).arg(value);
        }
        if let Some(changes) = changes {
            invocation
                .arg(layout::VERSION)
                .arg(changes.version.to_string());
            for field in &changes.fields {
                invocation.arg(&field.key).arg(&field.value);
            }
        }
        let mut connection = self.connection.clone();
        let operation = if changes.is_some() { "save" } else { "touch" };
        let written: i64 = self
            .bounded(operation, invocation.invoke_async(&mut connection))
            .await?;
        Ok(if written == 1 {
            SaveOutcome::Saved
        } else {
            SaveOutcome::Missing
        })
    }
}

/// Loads every script into the script cache (of every node of a cluster), so that even
/// their first call is a single `EVALSHA`.
async fn load_scripts(connection: &mut Connection) -> RedisResult<()> {
    for script in scripts::all() {
        script.load_async(connection).await?;
    }
    Ok(())
}

/// The time left until the session's deadline, for Redis' key expiry (empty: none).
fn ttl_arg(meta: &SessionMeta, now_ms: u64) -> String {
    meta.expires_ms
        .map(|expires| expires.saturating_sub(now_ms).min(MAX_TTL_MS).to_string())
        .unwrap_or_default()
}

impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        let key = layout::key(&self.prefix, id);
        let mut connection = self.connection.clone();
        let reply = self
            .bounded("load", async {
                match redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async::<Value>(&mut connection)
                    .await
                {
                    // Another type under a session key is garbage, not an outage.
                    Err(error) if error.code() == Some("WRONGTYPE") => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        let Some(reply) = reply else {
            tracing::warn!(
                session = %id,
                "redis session store: the session key holds a value that is not a hash; \
                 starting a fresh session"
            );
            return Ok(None);
        };
        match layout::parse(reply) {
            Ok(loaded) => Ok(loaded.filter(|loaded| !loaded.meta.is_expired(now_ms))),
            Err(reason) => {
                tracing::warn!(
                    session = %id,
                    reason,
                    "redis session store: the session hash is not a session record; \
                     starting a fresh session"
                );
                Ok(None)
            }
        }
    }

    async fn create(
        &self,
        id: &SessionDigest,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<CreateOutcome, StoreError> {
        layout::check_field_keys(record)?;
        let (set, _) = layout::meta_fields(meta);
        let key = layout::key(&self.prefix, id);
        let mut invocation = scripts::CREATE.key(key);
        invocation
            .arg(now_ms)
            .arg(ttl_arg(meta, now_ms))
            .arg(layout::VERSION)
            .arg(record.version.to_string());
        for (field, value) in &set {
            invocation.arg(*field).arg(value);
        }
        for field in &record.fields {
            invocation.arg(&field.key).arg(&field.value);
        }
        let mut connection = self.connection.clone();
        let created: i64 = self
            .bounded("create", invocation.invoke_async(&mut connection))
            .await?;
        Ok(if created == 1 {
            CreateOutcome::Created
        } else {
            CreateOutcome::IdTaken
        })
    }

    async fn save(
        &self,
        id: &SessionDigest,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        layout::check_field_keys(changes)?;
        self.update(id, Some(changes), meta, now_ms).await
    }

    async fn touch(
        &self,
        id: &SessionDigest,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> Result<SaveOutcome, StoreError> {
        self.update(id, None, meta, now_ms).await
    }

    async fn take(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
        let key = layout::key(&self.prefix, id);
        let mut connection = self.connection.clone();
        let invocation = scripts::TAKE.key(key);
        let reply: Value = self
            .bounded("take", invocation.invoke_async(&mut connection))
            .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        match layout::parse(reply) {
            Ok(taken) => Ok(taken.filter(|taken| !taken.meta.is_expired(now_ms))),
            Err(reason) => {
                tracing::warn!(
                    session = %id,
                    reason,
                    "redis session store: the session hash is not a session record; dropped it"
                );
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &SessionDigest) -> Result<bool, StoreError> {
        let key = layout::key(&self.prefix, id);
        let mut connection = self.connection.clone();
        let removed = self
            .bounded("delete", async {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<i64>(&mut connection)
                    .await
            })
            .await?;
        Ok(removed > 0)
    }
}
