//! [`RedisStore`]: sessions in Redis or Redis Cluster (feature `redis`).

mod layout;
mod owners;
mod scan;
mod scripts;
mod subscriber;

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::watch::RemovalWatch;
use super::{CreateOutcome, Loaded, SaveOutcome, SessionMeta, SessionStore, StoreError};
use crate::id::SessionDigest;
use crate::record::{OwnerField, Record};

const DEFAULT_PREFIX: &str = "session:";
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the removal subscriber rechecks the watched sessions by default.
const DEFAULT_RECHECK_INTERVAL: Duration = Duration::from_secs(30);
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
/// [`Databag`](crate::Databag) field (its wire key, holding the field's MessagePack bytes;
/// the runtime's internal fields such as `__owner` likewise) and the meta fields `__v`
/// (schema version), `__c` (created), `__s` (last use), `__e` (idle deadline), `__a`
/// (absolute deadline), times in milliseconds since the Unix epoch, and `__ot` (the owner
/// tag, below) when the session has an owner. Redis expires the key at the session's
/// deadline, so abandoned sessions clean themselves up.
///
/// Each owner with sessions has a set under `<prefix>owner:<hex SHA-256 of the owner's
/// key>` (fixed length and plain ASCII whatever the key holds; the key's text is in each
/// session's `__owner` field). Its entries are `<session digest in hex><owner tag>`. Removals
/// are published on the channel `<prefix>removed`.
///
/// # Round trips per request
///
/// | the handler | Redis commands |
/// |---|---|
/// | ignores the session | none |
/// | reads it | one `HGETALL` |
/// | changes fields | `HGETALL`, then one `EVALSHA` writing only the changed fields, the meta and the expiry |
/// | reads it after a quarter of the idle timeout | `HGETALL`, then one `EVALSHA` that updates the meta and the expiry only |
/// | destroys it | `HGETALL`, then one `EVALSHA` (delete and publish the removal); one `SREM` more if the session had an owner |
/// | renews it (`renew()`) | `HGETALL`, then one `EVALSHA` creating the new id and one taking the old (a script that reads and deletes it atomically) |
/// | sets or changes the owner (a login) | as above, then `SRANDMEMBER` and up to 3 `HMGET`s checking a sample of the owner's set (and an `SREM` of the stale entries found), an `SREM` of the former owner's entry when there was one, and on a cluster one `SADD` (the entry) |
///
/// `create`, `save`, `touch`, `take` and `delete` are Lua scripts (one `EVALSHA` each,
/// atomic; on a single server they also add the owner-set entry, so that the hash and its
/// entry change together): creating never overwrites a live session, and saving or
/// touching never re-creates a session that was deleted or expired in the meantime. The
/// scripts are loaded when the store connects; after a Redis restart the first call of
/// each script reloads it.
///
/// # Owner index
///
/// [`owned_by`](SessionStore::owned_by) reads the owner's set (`SMEMBERS`), then every
/// listed session's hash (`HGETALL`, all sent at once: one round trip per node), and keeps
/// the sessions whose hash exists, has not expired by the caller's clock, names this owner
/// in `__owner` and holds the entry's tag in `__ot`. Entries that fail the check for good
/// are pruned (`SREM`). Cost: O(k) commands and keys for an owner with k entries, whatever
/// the number of other sessions (`owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner`).
///
/// **Owner tags.** Every write that sets the owner draws a fresh random tag (64 bits from
/// the OS), writes it into the hash (`__ot`) with the owner, and adds `digest + tag` to the
/// owner's set. A tag is never written twice, so an entry whose session is gone, or whose
/// hash now holds another tag (the owner changed, even back to the same owner), can never
/// match again: pruning it is safe whenever it happens. This is what makes pruning
/// race-free without a lock: an owner going A → B → A gets a new entry in A's set for the
/// second A, and a prune of A's set that saw B removes only the first entry.
///
/// **Consistency.** On a single server, a create or save adds the entry in the same script
/// as the hash write, so the two change atomically. On a cluster the set and the hash live
/// in different slots; the store keeps two rules:
///
/// 1. *An entry is added only after its hash write succeeded* (the commit returns only
///    after both). So an entry read from a set always names a tag that was written, and a
///    check that finds the hash gone or holding another tag finds a permanent state: a
///    prune never removes the entry of a live session of that owner, even when it races
///    with writes. (Adding before the write would let a concurrent prune see "no hash yet"
///    and remove the entry of a session about to be committed.)
/// 2. *A listed session is checked, not trusted*: the set is only a hint of where to look;
///    the hash decides (exists, not expired by the caller's clock, this owner, this tag).
///
/// Hence: a session listed was alive and this owner's when its hash was read, and a
/// session whose create or save with this owner returned `Ok` is listed until it is
/// removed or its owner changes. Both are tested under concurrent writers (owners moving
/// back and forth) and listers, on a single server and on a cluster
/// (`listings_under_concurrent_writes_are_consistent`). The work between the two writes
/// runs in a task of its own, so a caller that stops waiting (a request timeout, a dropped
/// response) cannot cut it in two. If the entry cannot be added (the set's node is
/// unreachable) or the write itself fails (it may still land later: Redis runs a timed-out
/// command late), the store takes the owner back from the session, by tag and on the same
/// connection as the write, so after it (`__owner` becomes nil): the caller gets an error,
/// and the session stays, signed out, never owned and unlisted
/// (`an_owner_whose_set_cannot_be_written_is_taken_back`). Only if that fails too
/// (both nodes unreachable), or the process dies between the two writes, can a session
/// keep an owner its set misses; this is logged at error level, and lasts until the
/// session's owner is written again or it expires.
///
/// **Garbage.** Deleting or taking a session removes its entry (`SREM`, after the script
/// that removed the hash); a save that changes the owner removes the former owner's entry.
/// Entries of sessions that Redis expired stay until pruned: by the owner's next listing
/// (every stale entry), and by each new session of the owner, which checks 3 random entries
/// of the set and prunes the stale ones, so that an owner who never lists keeps few stale
/// entries (`new_sessions_of_an_owner_prune_stale_entries`). A session past its deadline by
/// the caller's clock whose key Redis has not expired yet is not listed and not pruned
/// (another instance's clock may still find it live); Redis' expiry removes it at about
/// that deadline and the next listing prunes its entry.
///
/// # Removal watches
///
/// [`watch_removal`](SessionStore::watch_removal) registers the watch, then checks that the
/// session exists (`EXISTS`): a removal in between is never missed. `take`, `delete` (and a
/// create that replaces an expired hash) publish the session's digest on `<prefix>removed`
/// from their script; on a cluster Redis broadcasts publications to every node. The first
/// watch starts one subscriber per store (a connection of its own, to the server or to one
/// node of the cluster, the next node after a failure), which resolves the watches of each
/// digest published, whichever process removed the session. Watches made through this
/// store also resolve at once when this store removes the session.
///
/// What is delivered:
/// - a removal by any instance's `take` or `delete` while the subscriber is connected: at
///   once;
/// - a removal while the subscriber was disconnected (Redis restart, network cut, a killed
///   client): when it reconnects (every 50 ms to 5 s, backing off), it subscribes again and
///   then checks every watched session (`EXISTS`, in batches): the watches of those gone
///   resolve then (`a_watch_survives_a_subscriber_reconnect`);
/// - a session that Redis expired, or that something else removed without publishing (a
///   `DEL` by an operator, `FLUSHDB`): found by the periodic check of every watched session,
///   every [`watch_recheck_interval`](Self::watch_recheck_interval) (30 s by default),
///   which also pings the subscription to detect a dead connection;
/// - [`clear`](SessionStore::clear): publishes one message that makes every subscriber
///   check all its watches.
///
/// The subscriber holds the store's state weakly: it stops, and every remaining watch
/// resolves, when the last clone of the store is dropped. A Redis that is down is retried
/// with backoff, never a panic.
///
/// # Counting and clearing
///
/// [`count`](SessionStore::count) and [`clear`](SessionStore::clear) scan every key under
/// the prefix (`SCAN .. MATCH`, 1,000 keys a call) on the server or on every master of a
/// cluster: O(all sessions), for admin use, never on a request's path. `count` counts the
/// session hashes Redis holds: a session past its deadline by the caller's clock is counted
/// until Redis expires its key (Redis' TTL is set to that deadline, so the two differ only
/// by clock skew between the app and Redis and by Redis' lazy expiry). `clear` unlinks every
/// session and owner set under the prefix (`UNLINK`, in batches; other keys that merely
/// share the prefix are left alone) and returns how many sessions it removed.
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
    /// Where the removal subscriber connects: the server, or each node of a cluster in turn
    /// (Redis broadcasts a cluster's publications to every node).
    subscribe_to: std::sync::Arc<[redis::Client]>,
    /// How often the subscriber checks that the watched sessions still exist.
    recheck_interval: Duration,
    /// The removal watches and their subscriber, shared by clones.
    shared: std::sync::Arc<subscriber::Shared>,
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

impl Connection {
    /// Sends `commands` in one round trip per node: a pipeline on a single server,
    /// concurrent requests on a cluster (whose keys may lie in different slots). A command
    /// that found a key of the wrong type gives `None`.
    async fn each(&self, commands: Vec<Cmd>) -> RedisResult<Vec<Option<Value>>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.clone();
        let wrong_type = |code: Option<&str>| code == Some("WRONGTYPE");
        match &mut connection {
            Connection::Single(single) => {
                let mut pipeline = redis::pipe();
                pipeline.ignore_errors();
                for command in commands {
                    pipeline.add_command(command);
                }
                let replies: Vec<Value> = pipeline.query_async(single).await?;
                replies
                    .into_iter()
                    .map(|reply| match reply {
                        Value::ServerError(error) if wrong_type(Some(error.code())) => Ok(None),
                        Value::ServerError(error) => Err(RedisError::from(error)),
                        other => Ok(Some(other)),
                    })
                    .collect()
            }
            Connection::Cluster(cluster) => {
                let requests = commands.iter().map(|command| {
                    let mut cluster = cluster.clone();
                    async move {
                        match command.query_async::<Value>(&mut cluster).await {
                            Ok(reply) => Ok(Some(reply)),
                            Err(error) if wrong_type(error.code()) => Ok(None),
                            Err(error) => Err(error),
                        }
                    }
                });
                futures_util::future::join_all(requests)
                    .await
                    .into_iter()
                    .collect()
            }
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
    pub const RESERVED_FIELDS: [&'static str; 6] = layout::RESERVED_FIELDS;

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
        let subscriber = redis::Client::open(url).map_err(RedisConnectError::InvalidUrl)?;
        Ok(Self::with_connection(connection, vec![subscriber]))
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
        let subscribe_to = nodes
            .iter()
            .map(|node| redis::Client::open(node.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RedisConnectError::InvalidUrl)?;
        let client = ClusterClient::builder(nodes)
            .connection_timeout(DEFAULT_COMMAND_TIMEOUT)
            .retries(3)
            .build()
            .map_err(RedisConnectError::InvalidUrl)?;
        let cluster = client.get_async_connection().await.map_err(unreachable)?;
        let mut connection = Connection::Cluster(cluster);
        load_scripts(&mut connection).await.map_err(unreachable)?;
        Ok(Self::with_connection(connection, subscribe_to))
    }

    fn with_connection(connection: Connection, subscribe_to: Vec<redis::Client>) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            subscribe_to: subscribe_to.into(),
            recheck_interval: DEFAULT_RECHECK_INTERVAL,
            shared: std::sync::Arc::default(),
        }
    }

    /// The prefix of every session key (default `session:`). Apps sharing one Redis keep
    /// their sessions apart with different prefixes. On a cluster, a prefix with a hash tag
    /// such as `{sessions}:` would put every session in one slot: avoid that.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        // Watches follow the prefix's channel: a store with another prefix watches apart.
        self.shared = std::sync::Arc::default();
        self
    }

    /// How often the removal subscriber checks that every watched session still exists
    /// (default 30 seconds): the bound on how late a watch learns of a session that Redis
    /// expired (expiry publishes nothing). Removals by this store's operations are
    /// published and arrive at once. See [Removal watches](#removal-watches).
    #[must_use]
    pub fn watch_recheck_interval(mut self, interval: Duration) -> Self {
        self.recheck_interval = interval.max(Duration::from_millis(10));
        self.shared = std::sync::Arc::default();
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
        let (set, mut unset) = layout::meta_fields(meta);
        let owner = changes.map_or(OwnerField::Absent, Record::owner);
        let tag = match owner {
            OwnerField::Set(_) => Some(layout::new_tag()?),
            OwnerField::Cleared => {
                unset.push(layout::OWNER_TAG);
                None
            }
            OwnerField::Absent => None,
        };
        let entry = owner.key().zip(tag.as_deref()).map(|(owner, tag)| {
            (
                owner.to_owned(),
                layout::owner_key(&self.prefix, owner),
                layout::member(id, tag),
            )
        });
        let mut invocation = scripts::UPDATE.key(layout::key(&self.prefix, id));
        if let (false, Some((_, owner_key, _))) = (self.is_cluster(), &entry) {
            // One server: the entry is added by the script, with the owner.
            invocation.key(owner_key);
        }
        let version = changes.map(|changes| changes.version.to_string());
        let owner_changes = !matches!(owner, OwnerField::Absent);
        invocation
            .arg(now_ms)
            .arg(ttl_arg(meta, now_ms))
            .arg(version.unwrap_or_default())
            .arg(if owner_changes { "1" } else { "" })
            .arg(entry.as_ref().map_or("", |(_, _, member)| member.as_str()))
            .arg(unset.len())
            .arg(&unset);
        for (field, value) in &set {
            invocation.arg(*field).arg(value);
        }
        if let Some(changes) = changes {
            invocation
                .arg(layout::VERSION)
                .arg(changes.version.to_string());
            if let Some(tag) = &tag {
                invocation.arg(layout::OWNER_TAG).arg(tag);
            }
            for field in &changes.fields {
                invocation.arg(&field.key).arg(&field.value);
            }
        }
        let operation = if changes.is_some() { "save" } else { "touch" };
        if !owner_changes {
            let mut connection = self.connection.clone();
            let written: Vec<Value> = self
                .bounded(operation, invocation.invoke_async(&mut connection))
                .await?;
            return Ok(save_outcome(written.first()));
        }
        let this = self.clone();
        let (id, tag) = (*id, tag);
        Self::detached(async move {
            let mut connection = this.connection.clone();
            let reply = this
                .bounded(
                    operation,
                    invocation.invoke_async::<Vec<Value>>(&mut connection),
                )
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    // The write may still land (Redis runs it late): take the owner back
                    // after it, on the same connection, so that it never lands unlisted.
                    if let (true, Some(tag)) = (this.is_cluster(), &tag) {
                        this.disown(&id, tag).await;
                    }
                    return Err(error);
                }
            };
            let mut reply = reply.into_iter();
            if save_outcome(reply.next().as_ref()) == SaveOutcome::Missing {
                return Ok(SaveOutcome::Missing);
            }
            if let (true, Some((_, owner_key, member)), Some(tag)) =
                (this.is_cluster(), &entry, &tag)
            {
                if let Err(error) = this.add_entry(owner_key, member).await {
                    this.disown(&id, tag).await;
                    return Err(error);
                }
            }
            // The previous owner's entry no longer matches the session: drop it now
            // rather than at that owner's next listing.
            if let (Some(Value::BulkString(before)), Some(Value::BulkString(before_tag))) =
                (reply.next(), reply.next())
            {
                if let (Some(before), Ok(before_tag)) = (
                    crate::schema::read_str(&before),
                    std::str::from_utf8(&before_tag),
                ) {
                    if tag.as_deref() != Some(before_tag) {
                        this.drop_entry(before, &id, before_tag).await;
                    }
                }
            }
            if let Some((owner, owner_key, _)) = &entry {
                this.prune_sample(owner, owner_key).await;
            }
            Ok(SaveOutcome::Saved)
        })
        .await
    }

    fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// Sends `commands` in one round trip per node; see [`Connection::each`].
    async fn each(&self, commands: Vec<Cmd>) -> RedisResult<Vec<Option<Value>>> {
        self.connection.each(commands).await
    }

    /// Runs `work` to its end even if the caller stops waiting (a request timed out or
    /// dropped): on a cluster, a write and its owner-index entry are two commands, and a
    /// caller dropped between them must not leave a session out of its owner's list.
    async fn detached<T: Send + 'static>(
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn(work).await.unwrap_or_else(|error| {
                Err(StoreError::message(format!("store task failed: {error}")))
            }),
            Err(_) => work.await,
        }
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
        let owner = record.owner().key().map(str::to_owned);
        let tag = owner.as_ref().map(|_| layout::new_tag()).transpose()?;
        let (set, _) = layout::meta_fields(meta);
        let mut invocation = scripts::CREATE.key(layout::key(&self.prefix, id));
        let entry = owner.as_deref().zip(tag.as_deref()).map(|(owner, tag)| {
            (
                layout::owner_key(&self.prefix, owner),
                layout::member(id, tag),
            )
        });
        if let (false, Some((owner_key, _))) = (self.is_cluster(), &entry) {
            // One server: the entry is added by the script, with the hash.
            invocation.key(owner_key);
        }
        invocation
            .arg(now_ms)
            .arg(ttl_arg(meta, now_ms))
            .arg(layout::channel(&self.prefix))
            .arg(entry.as_ref().map_or("", |(_, member)| member.as_str()))
            .arg(id.to_hex())
            .arg(layout::VERSION)
            .arg(record.version.to_string());
        for (field, value) in &set {
            invocation.arg(*field).arg(value);
        }
        if let Some(tag) = &tag {
            invocation.arg(layout::OWNER_TAG).arg(tag);
        }
        for field in &record.fields {
            invocation.arg(&field.key).arg(&field.value);
        }
        let (Some(owner), Some((owner_key, member))) = (owner, entry) else {
            let mut connection = self.connection.clone();
            let created: i64 = self
                .bounded("create", invocation.invoke_async(&mut connection))
                .await?;
            return Ok(create_outcome(created));
        };
        let this = self.clone();
        let id = *id;
        let Some(tag) = tag else {
            return Err(StoreError::message("an owner without a tag"));
        };
        Self::detached(async move {
            let mut connection = this.connection.clone();
            let created = this
                .bounded("create", invocation.invoke_async::<i64>(&mut connection))
                .await;
            match created {
                Ok(1) => {}
                Ok(_) => return Ok(CreateOutcome::IdTaken),
                Err(error) => {
                    // The write may still land (Redis runs it late): take the owner back
                    // after it, on the same connection, so that it never lands unlisted.
                    if this.is_cluster() {
                        this.disown(&id, &tag).await;
                    }
                    return Err(error);
                }
            }
            if this.is_cluster() {
                if let Err(error) = this.add_entry(&owner_key, &member).await {
                    this.disown(&id, &tag).await;
                    return Err(error);
                }
            }
            this.prune_sample(&owner, &owner_key).await;
            Ok(CreateOutcome::Created)
        })
        .await
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
        let mut invocation = scripts::TAKE.key(key);
        invocation
            .arg(layout::channel(&self.prefix))
            .arg(id.to_hex());
        let reply: Value = self
            .bounded("take", invocation.invoke_async(&mut connection))
            .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        self.shared.watchers.notify(id);
        match layout::parse_tagged(reply) {
            Ok(Some((taken, tag))) => {
                if let (Some(owner), Some(tag)) = (taken.record.owner().key(), tag) {
                    self.drop_entry(owner, id, &tag).await;
                }
                Ok(Some(taken).filter(|taken| !taken.meta.is_expired(now_ms)))
            }
            Ok(None) => Ok(None),
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
        let mut invocation = scripts::DELETE.key(key);
        invocation
            .arg(layout::channel(&self.prefix))
            .arg(id.to_hex());
        let reply: Vec<Value> = self
            .bounded("delete", invocation.invoke_async(&mut connection))
            .await?;
        let mut reply = reply.into_iter();
        let deleted = matches!(reply.next(), Some(Value::Int(1)));
        if deleted {
            self.shared.watchers.notify(id);
            if let (Some(Value::BulkString(owner)), Some(Value::BulkString(tag))) =
                (reply.next(), reply.next())
            {
                if let (Some(owner), Ok(tag)) =
                    (crate::schema::read_str(&owner), std::str::from_utf8(&tag))
                {
                    self.drop_entry(owner, id, tag).await;
                }
            }
        }
        Ok(deleted)
    }

    async fn owned_by(
        &self,
        owner: &str,
        now_ms: u64,
    ) -> Result<Vec<(SessionDigest, Loaded)>, StoreError> {
        self.bounded("owned_by", self.list_owner(owner, now_ms))
            .await
    }

    async fn count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let _ = now_ms; // Redis' own expiry decides; see the docs of `RedisStore`.
        self.bounded("count", self.count_sessions()).await
    }

    async fn clear(&self) -> Result<u64, StoreError> {
        let removed = self.bounded("clear", self.remove_everything()).await?;
        for id in self.shared.watchers.watched() {
            self.shared.watchers.notify(&id);
        }
        Ok(removed)
    }

    async fn watch_removal(&self, id: &SessionDigest) -> Result<RemovalWatch, StoreError> {
        self.ensure_subscriber();
        // Registered first, checked second: a removal in between resolves the watch.
        let watch = self.shared.watchers.watch(id);
        let key = layout::key(&self.prefix, id);
        let mut connection = self.connection.clone();
        let exists: i64 = self
            .bounded("watch_removal", async {
                redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(if exists == 0 {
            RemovalWatch::resolved()
        } else {
            watch
        })
    }
}

fn save_outcome(written: Option<&Value>) -> SaveOutcome {
    if written == Some(&Value::Int(1)) {
        SaveOutcome::Saved
    } else {
        SaveOutcome::Missing
    }
}

fn create_outcome(created: i64) -> CreateOutcome {
    if created == 1 {
        CreateOutcome::Created
    } else {
        CreateOutcome::IdTaken
    }
}
