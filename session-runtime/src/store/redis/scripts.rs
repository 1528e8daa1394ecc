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

/// `KEYS[1]`: the session key. `ARGV`: now, TTL in ms (empty: no expiry), the number `n` of
/// meta fields to remove, those `n` field names, then field/value pairs to write. Writes
/// only if the key holds a session of this store that has not expired by `now`, so a save
/// never re-creates a deleted or expired session. Only the given fields are written: the
/// others keep whatever concurrent requests stored. Returns 1 when written, 0 when missing.
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
local unset = tonumber(ARGV[3])
if unset > 0 then redis.call('HDEL', key, unpack(ARGV, 4, 3 + unset)) end
redis.call('HSET', key, unpack(ARGV, 4 + unset))
if ARGV[2] == '' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1
",
    )
});

/// Every script, for loading them into Redis' script cache ahead of their first use.
pub(super) fn all() -> [&'static Script; 2] {
    [&CREATE, &UPDATE]
}
