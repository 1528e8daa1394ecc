//! The Lua scripts behind `create`, `save`, `touch`, `take` and `delete`: each is one
//! `EVALSHA`, so one round trip and atomic.
//!
//! Deadlines are judged by the caller's clock (`now`, in ms), never by Redis' own, so that
//! the layer's clock decides expiry wherever the store runs. Redis' key expiry is only the
//! clean-up: it is set to the time left until the session's deadline (`PEXPIRE`), in the
//! same script as the write.
//!
//! Every key a script touches is in `KEYS`: the session's hash, and on a single server the
//! owner set a create or save adds the session to (`KEYS[2]`, so the hash and its index
//! entry change together). On a cluster the owner set lives in another slot: the store
//! passes only the session key and adds the entry itself once the script has run (see the
//! module docs of the store for why after, not before). Scripts that remove a session
//! publish its digest on the removal channel (`PUBLISH` takes no key: it runs on a cluster
//! too, where Redis broadcasts it to every node).

use std::sync::LazyLock;

use redis::Script;

/// `KEYS[1]`: the session key; `KEYS[2]` (optional): the owner set to add `ARGV[4]` to.
/// `ARGV`: now, TTL in ms (empty: no expiry), the removal channel, the owner-set entry
/// (empty when none), the session's digest in hex, then field/value pairs (meta and data).
/// Writes the hash only if no live session holds the key; a hash of a session that expired
/// by `now` is replaced (and its removal published). Anything else under the key (a session
/// without deadline, a foreign value) is left alone. Returns 1 when created, 0 when taken.
pub(super) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local kind = redis.call('TYPE', key).ok
if kind ~= 'none' then
  if kind ~= 'hash' then return 0 end
  local expires = tonumber(redis.call('HGET', key, '__e'))
  if expires == nil or expires > tonumber(ARGV[1]) then return 0 end
  redis.call('DEL', key)
  redis.call('PUBLISH', ARGV[3], ARGV[5])
end
redis.call('HSET', key, unpack(ARGV, 6))
if ARGV[2] ~= '' then redis.call('PEXPIRE', key, ARGV[2]) end
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[4]) end
return 1
",
    )
});

/// `KEYS[1]`: the session key; `KEYS[2]` (optional): the owner set to add `ARGV[5]` to once
/// written. `ARGV`: now, TTL in ms (empty: no expiry), the schema version of the changes
/// (empty for a touch), `1` when the changes set or clear the owner (else empty), the
/// owner-set entry (empty when none), the number `n` of fields to remove, those `n` field
/// names, then field/value pairs to write. Writes only if the key holds a session of this
/// store that has not expired by `now` and whose schema version is not newer than the
/// changes', so a save never re-creates a deleted or expired session and an older deploy
/// never downgrades a migrated one. Only the given fields are written: the others keep
/// whatever concurrent requests stored. Returns `{0}` when not written, `{1}` when written,
/// and, when the owner changes, `{1, previous __owner, previous __ot}` (false when absent),
/// so that the caller can drop the previous owner's entry.
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return {0} end
local meta = redis.call('HMGET', key, '__v', '__e', '__owner', '__ot')
if not meta[1] then return {0} end
if meta[2] then
  local expires = tonumber(meta[2])
  if expires == nil or expires <= tonumber(ARGV[1]) then return {0} end
end
if ARGV[3] ~= '' then
  local stored = tonumber(meta[1])
  if stored == nil or stored > tonumber(ARGV[3]) then return {0} end
end
local unset = tonumber(ARGV[6])
if unset > 0 then redis.call('HDEL', key, unpack(ARGV, 7, 6 + unset)) end
redis.call('HSET', key, unpack(ARGV, 7 + unset))
if ARGV[2] == '' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[5]) end
if ARGV[4] == '' then return {1} end
return {1, meta[3], meta[4]}
",
    )
});

/// `KEYS[1]`: the session key. `ARGV`: the removal channel, the session's digest in hex.
/// Returns the session hash and deletes it, atomically (so of two concurrent takes, or a
/// take and a delete, only one gets the session), and publishes the removal; nil when the
/// key holds no hash (anything else under it is left alone). Expiry is judged by the caller
/// on the returned meta.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return false end
local hash = redis.call('HGETALL', key)
redis.call('DEL', key)
redis.call('PUBLISH', ARGV[1], ARGV[2])
return hash
",
    )
});

/// `KEYS[1]`: the session key. `ARGV`: the removal channel, the session's digest in hex.
/// Deletes whatever the key holds and, if there was something, publishes the removal.
/// Returns `{deleted (0 or 1), __owner, __ot}` (false when absent), so that the caller can
/// drop the owner's entry.
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
local owner, tag = false, false
if redis.call('TYPE', key).ok == 'hash' then
  local meta = redis.call('HMGET', key, '__owner', '__ot')
  owner, tag = meta[1], meta[2]
end
if redis.call('DEL', key) == 0 then return {0} end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {1, owner, tag}
",
    )
});

/// `KEYS[1]`: the session key. `ARGV`: an owner tag, MessagePack nil. On a cluster, when a
/// save gave the session an owner but the entry in that owner's set could not be added,
/// takes the owner away again, but only if the session still holds that tag (no later
/// write changed the owner since). Returns 1 when done.
pub(super) static DISOWN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
if redis.call('HGET', key, '__ot') ~= ARGV[1] then return 0 end
redis.call('HSET', key, '__owner', ARGV[2])
redis.call('HDEL', key, '__ot')
return 1
",
    )
});

/// Every script, for loading them into Redis' script cache ahead of their first use.
pub(super) fn all() -> [&'static Script; 5] {
    [&CREATE, &UPDATE, &TAKE, &DELETE, &DISOWN]
}
