//! The owner index in Redis: one set per owner, whose entries name a session and the owner
//! tag it got when that owner was written. Listing checks every entry against the session's
//! hash and prunes the entries that can never match again.
//!
//! Why a listed session is alive and a committed one is never missing, on a single server
//! and on a cluster (where the set and the hash are in different slots): see "Owner index"
//! in the docs of [`RedisStore`]. In short: an entry is added only once its hash write has
//! succeeded (atomically with it on a single server), every write of an owner draws a tag
//! never used before, and an entry is removed only when its session's hash is gone or holds
//! another tag, a state that is then permanent.

use redis::Value;

use super::{layout, scripts, RedisStore};
use crate::id::SessionDigest;
use crate::store::{Loaded, StoreError};

/// How many entries of an owner's set a new entry of that owner checks (and prunes if
/// stale): with each new entry removing this many stale ones at best, stale entries stay a
/// bounded share of the set even for owners that never list their sessions.
const SAMPLE: usize = 3;

impl RedisStore {
    /// Adds `member` to the owner set `owner_key` (on a cluster, after the session's write).
    pub(super) async fn add_entry(&self, owner_key: &[u8], member: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.bounded("add to the owner index", async {
            redis::cmd("SADD")
                .arg(owner_key)
                .arg(member)
                .query_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    /// Removes the entry of session `id` with `tag` from `owner`'s set. Only called once
    /// the entry can never match again (the session is gone or has another tag), so it is
    /// safe whenever it lands; a failure leaves the entry to be pruned later.
    pub(super) async fn drop_entry(&self, owner: &str, id: &SessionDigest, tag: &str) {
        let owner_key = layout::owner_key(&self.prefix, owner);
        let mut connection = self.connection.clone();
        let removed = self
            .bounded("remove from the owner index", async {
                redis::cmd("SREM")
                    .arg(&owner_key)
                    .arg(layout::member(id, tag))
                    .query_async::<i64>(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = removed {
            tracing::debug!(session = %id, %error, "redis session store: a stale owner entry is left for pruning");
        }
    }

    /// Takes the owner away from session `id` if it still holds `tag` (a save gave it the
    /// owner, but the owner's set could not record it).
    pub(super) async fn disown(&self, id: &SessionDigest, tag: &str) {
        let mut invocation = scripts::DISOWN.key(layout::key(&self.prefix, id));
        invocation.arg(tag).arg([0xc0_u8].as_slice());
        let mut connection = self.connection.clone();
        if let Err(error) = self
            .bounded("disown", invocation.invoke_async::<i64>(&mut connection))
            .await
        {
            tracing::error!(
                session = %id,
                %error,
                "redis session store: a session got an owner that its owner's index misses, \
                 and the owner could not be taken back; it is not listed until its owner is \
                 written again or it expires"
            );
        }
    }

    /// Checks a few random entries of `owner`'s set and prunes the stale ones (best effort).
    pub(super) async fn prune_sample(&self, owner: &str, owner_key: &[u8]) {
        let mut connection = self.connection.clone();
        let pruned = async {
            let sample: Vec<Vec<u8>> = redis::cmd("SRANDMEMBER")
                .arg(owner_key)
                .arg(SAMPLE)
                .query_async(&mut connection)
                .await?;
            let mut stale = Vec::new();
            let mut checks = Vec::new();
            let mut checked = Vec::new();
            for member in sample {
                match layout::parse_member(&member) {
                    Some((id, tag)) => {
                        let mut command = redis::cmd("HMGET");
                        command
                            .arg(layout::key(&self.prefix, &id))
                            .arg("__owner")
                            .arg(layout::OWNER_TAG);
                        checks.push(command);
                        checked.push((tag.to_owned(), member));
                    }
                    None => stale.push(member),
                }
            }
            let replies = self.each(checks).await?;
            for ((tag, member), reply) in checked.into_iter().zip(replies) {
                if !entry_matches(reply, owner, &tag) {
                    stale.push(member);
                }
            }
            if !stale.is_empty() {
                redis::cmd("SREM")
                    .arg(owner_key)
                    .arg(&stale)
                    .query_async::<i64>(&mut connection)
                    .await?;
            }
            Ok(())
        };
        if let Err(error) = self.bounded("prune the owner index", pruned).await {
            tracing::debug!(%error, "redis session store: pruning an owner's index failed; left for later");
        }
    }

    /// [`SessionStore::owned_by`](crate::store::SessionStore::owned_by): the set's entries,
    /// each checked against its session's hash (one round trip per node), then the stale
    /// entries pruned.
    pub(super) async fn list_owner(
        &self,
        owner: &str,
        now_ms: u64,
    ) -> redis::RedisResult<Vec<(SessionDigest, Loaded)>> {
        let owner_key = layout::owner_key(&self.prefix, owner);
        let mut connection = self.connection.clone();
        let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(&owner_key)
            .query_async(&mut connection)
            .await?;
        let mut stale = Vec::new();
        let mut loads = Vec::with_capacity(members.len());
        let mut entries = Vec::with_capacity(members.len());
        for member in members {
            match layout::parse_member(&member) {
                Some((id, tag)) => {
                    let mut command = redis::cmd("HGETALL");
                    command.arg(layout::key(&self.prefix, &id));
                    loads.push(command);
                    entries.push((id, tag.to_owned(), member));
                }
                None => stale.push(member),
            }
        }
        let replies = self.each(loads).await?;
        let mut found = Vec::new();
        for ((id, tag, member), reply) in entries.into_iter().zip(replies) {
            let session = reply.and_then(|reply| layout::parse_tagged(reply).ok().flatten());
            match session {
                Some((loaded, Some(stored_tag)))
                    if stored_tag == tag && loaded.record.owner().key() == Some(owner) =>
                {
                    // Past its deadline by the caller's clock but still in Redis: not
                    // listed, not pruned either (Redis' expiry removes it at about that
                    // deadline; another instance's clock may still find it live).
                    if !loaded.meta.is_expired(now_ms) {
                        found.push((id, loaded));
                    }
                }
                // Gone, or written since with another owner or tag: this entry can never
                // match again.
                _ => stale.push(member),
            }
        }
        if !stale.is_empty() {
            redis::cmd("SREM")
                .arg(&owner_key)
                .arg(&stale)
                .query_async::<i64>(&mut connection)
                .await?;
        }
        Ok(found)
    }
}

/// Whether an `HMGET <session> __owner __ot` reply says the session is `owner`'s with `tag`.
fn entry_matches(reply: Option<Value>, owner: &str, tag: &str) -> bool {
    let Some(Value::Array(fields)) = reply else {
        return false;
    };
    match fields.as_slice() {
        [Value::BulkString(stored_owner), Value::BulkString(stored_tag)] => {
            stored_tag.as_slice() == tag.as_bytes()
                && crate::schema::read_str(stored_owner) == Some(owner)
        }
        _ => false,
    }
}
