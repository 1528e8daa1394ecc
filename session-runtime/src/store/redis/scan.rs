//! `count` and `clear`: a scan of every key under the prefix (`SCAN ... MATCH`), on the
//! server or on every master of a cluster. O(all keys under the prefix): admin operations,
//! never on a request's path.

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, RedisResult, Value};

use super::layout::{self, KeyKind};
use super::{Connection, RedisStore};

/// Keys asked per `SCAN` call, and removed per `UNLINK` batch.
const BATCH: usize = 1000;

/// A node to scan: the single server, or a cluster master by address.
type Node = Option<(String, u16)>;

impl RedisStore {
    /// The nodes holding keys: the server, or every master of the cluster (from `CLUSTER
    /// SLOTS`).
    async fn masters(&self) -> RedisResult<Vec<Node>> {
        let Connection::Cluster(cluster) = &self.connection else {
            return Ok(vec![None]);
        };
        let mut cluster = cluster.clone();
        let slots: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut cluster)
            .await?;
        let mut masters = Vec::new();
        if let Value::Array(ranges) = slots {
            for range in ranges {
                let Value::Array(range) = range else { continue };
                let Some(Value::Array(master)) = range.get(2) else {
                    continue;
                };
                if let (Some(Value::BulkString(host)), Some(Value::Int(port))) =
                    (master.first(), master.get(1))
                {
                    let node = (
                        String::from_utf8_lossy(host).into_owned(),
                        u16::try_from(*port).unwrap_or_default(),
                    );
                    if !masters.contains(&Some(node.clone())) {
                        masters.push(Some(node));
                    }
                }
            }
        }
        Ok(masters)
    }

    /// Runs `command` on `node`.
    async fn on_node(&self, node: &Node, command: Cmd) -> RedisResult<Value> {
        let mut connection = self.connection.clone();
        match (&mut connection, node) {
            (Connection::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                cluster.route_command(command, routing).await
            }
            _ => command.query_async(&mut connection).await,
        }
    }

    /// Scans every key under the prefix on `node`, one `SCAN` page at a time, and
    /// counts (`Pass::Count`) or unlinks (`Pass::Unlink`) them; returns how many sessions.
    async fn scan(&self, node: &Node, pass: Pass) -> RedisResult<u64> {
        let pattern = layout::scan_pattern(&self.prefix);
        let mut cursor = 0u64;
        let mut sessions = 0;
        loop {
            let mut command = redis::cmd("SCAN");
            command
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(BATCH);
            if pass == Pass::Count {
                command.arg("TYPE").arg("hash");
            }
            let reply = self.on_node(node, command).await?;
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::from_redis_value(reply)?;
            let kinds = keys
                .into_iter()
                .map(|key| (layout::kind(&self.prefix, &key), key));
            match pass {
                Pass::Count => {
                    sessions += kinds.filter(|(kind, _)| *kind == KeyKind::Session).count() as u64;
                }
                Pass::Unlink => {
                    // Sessions only: an owner set may already hold the entry of a session
                    // created during the scan, which must stay listed. The entries of the
                    // sessions removed here are stale from now on and pruned by the next
                    // listing of their owner or the next session added to it.
                    let session_keys: Vec<Vec<u8>> = kinds
                        .filter(|(kind, _)| *kind == KeyKind::Session)
                        .map(|(_, key)| key)
                        .collect();
                    sessions += self.unlink(node, &session_keys).await?;
                }
            }
            if next == 0 {
                return Ok(sessions);
            }
            cursor = next;
        }
    }

    /// [`SessionStore::count`](crate::store::SessionStore::count): the session hashes under
    /// the prefix.
    pub(super) async fn count_sessions(&self) -> RedisResult<u64> {
        let mut count = 0;
        for node in self.masters().await? {
            count += self.scan(&node, Pass::Count).await?;
        }
        Ok(count)
    }

    /// [`SessionStore::clear`](crate::store::SessionStore::clear): unlinks every session
    /// under the prefix (owner sets stay: their entries are pruned lazily; keys of other
    /// kinds sharing the prefix are left alone), then publishes that everything may be gone, so that every subscriber
    /// rechecks its watches. Returns how many sessions were removed.
    pub(super) async fn remove_everything(&self) -> RedisResult<u64> {
        let mut removed = 0;
        for node in self.masters().await? {
            removed += self.scan(&node, Pass::Unlink).await?;
        }
        let mut connection = self.connection.clone();
        redis::cmd("PUBLISH")
            .arg(layout::channel(&self.prefix))
            .arg(layout::EVERYTHING)
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(removed)
    }

    /// Unlinks `keys`; returns how many existed. On a cluster, one `UNLINK` per key (they
    /// lie in different slots), sent together.
    async fn unlink(&self, node: &Node, keys: &[Vec<u8>]) -> RedisResult<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        if node.is_none() {
            let reply = self
                .on_node(node, redis::cmd("UNLINK").arg(keys).clone())
                .await?;
            return Ok(redis::from_redis_value::<u64>(reply)?);
        }
        let commands = keys
            .iter()
            .map(|key| redis::cmd("UNLINK").arg(key).clone())
            .collect();
        let replies = self.each(commands).await?;
        Ok(replies
            .into_iter()
            .filter(|reply| reply == &Some(Value::Int(1)))
            .count() as u64)
    }
}

/// What a scan does with the keys it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Counts the sessions.
    Count,
    /// Unlinks the sessions and owner sets.
    Unlink,
}
