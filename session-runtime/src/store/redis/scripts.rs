//! The Lua scripts behind `create`, `save` and `touch`: each is one `EVALSHA`, so one round
//! trip, atomic, and touches a single key (so it runs unchanged on Redis Cluster).
//!
//! Deadlines are judged by the caller's clock (`now`, in ms), never by Redis' own, so that
//! the layer's clock decides expiry wherever the store runs. Redis' key expiry is only the
//! clean-up: it is set to the time left until the session's deadline (`PEXPIRE`), in the
//! same script as the write.

use std::sync::LazyLock;

use redis::Script;

/// `KEYS[1]`: the session key. `ARGV`: now, TTL in ms (empty: no expiry), then field/value
/// pairs (meta and data). Writes the hash only if no live session holds the key; a hash of
/// a session that expired by `now` is replaced. Anything else under the key (a session
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
end
redis.call('HSET', key, unpack(ARGV, 3))
if ARGV[2] ~= '' then redis.call('PEXPIRE', key, ARGV[2]) end
return 1
",
    )
});

/// `KEYS[1]`: the session key. `ARGV`: now, TTL in ms (empty: no expiry), the schema
/// version of the changes (empty for a touch), the number `n` of meta fields to remove,
/// those `n` field names, then field/value pairs to write. Writes only if the key holds a
/// session of this store that has not expired by `now` and whose schema version is not
/// newer than the changes', so a save never re-creates a deleted or expired session and
/// an older deploy never downgrades a migrated one. Only the given fields are written: the
/// others keep whatever concurrent requests stored. Returns 1 when written, 0 when not.
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local meta = redis.call('HMGET', key, '__v', '__e')
if not meta[1] then return 0 end
if meta[2] then
  local expires = tonumber(meta[2])
  if expires == nil or expires <= tonumber(ARGV[1]) then return 0 end
end
if ARGV[3] ~= '' then
  local stored = tonumber(meta[1])
  if stored == nil or stored > tonumber(ARGV[3]) then return 0 end
end
local unset = tonumber(ARGV[4])
if unset > 0 then redis.call('HDEL', key, unpack(ARGV, 5, 4 + unset)) end
redis.call('HSET', key, unpack(ARGV, 5 + unset))
if ARGV[2] == '' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
",
    )
});

/// `KEYS[1]`: the session key. Returns the session hash and deletes it, atomically (so of
/// two concurrent takes, or a take and a `DEL`, only one gets the session); nil when the
/// key holds no hash (anything else under it is left alone). Expiry is judged by the
/// caller on the returned meta.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local key = KEYS[1]
if redis.call('TYPE', key).ok ~= 'hash' then return false end
local hash = redis.call('HGETALL', key)
redis.call('DEL', key)
return hash
",
    )
});

/// Every script, for loading them into Redis' script cache ahead of their first use.
pub(super) fn all() -> [&'static Script; 3] {
    [&CREATE, &UPDATE, &TAKE]
}
