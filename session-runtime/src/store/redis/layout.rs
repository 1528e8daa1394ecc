//! How a session is laid out in Redis: one hash per session, under the configured prefix and
//! the hex SHA-256 of the id, with one hash field per record field plus reserved meta fields;
//! one set per owner listing that owner's sessions; one pub/sub channel for removals.

use redis::Value;
use sha2::{Digest as _, Sha256};

use crate::id::SessionDigest;
use crate::record::{Record, RecordField};
use crate::store::{Loaded, SessionMeta, StoreError};

/// The schema version of the record.
pub(super) const VERSION: &str = "__v";
/// When the session was created (ms since the epoch).
pub(super) const CREATED: &str = "__c";
/// When the session expires if unused (ms since the epoch); absent when it never does.
pub(super) const EXPIRES: &str = "__e";
/// The absolute deadline (ms since the epoch); absent when there is none.
pub(super) const ABSOLUTE: &str = "__a";
/// When a request last wrote the session or moved its deadline (ms since the epoch);
/// absent in hashes written before it was kept (the creation time stands in).
pub(super) const SEEN: &str = "__s";

/// The owner tag: a random value written with every change of the session's owner, and
/// kept in the owner's set next to the digest (see [`member`]); absent when the session has
/// no owner.
pub(super) const OWNER_TAG: &str = "__ot";

/// Hash fields the store keeps for itself; a record field may not use these keys.
pub(super) const RESERVED_FIELDS: [&str; 6] =
    [VERSION, CREATED, EXPIRES, ABSOLUTE, SEEN, OWNER_TAG];

/// Hex digits of an owner tag.
pub(super) const TAG_LEN: usize = 16;

/// A fresh owner tag: 16 hex digits from the operating system's CSPRNG.
pub(super) fn new_tag() -> Result<String, StoreError> {
    let mut bytes = [0u8; TAG_LEN / 2];
    crate::id::fill_random(&mut bytes).map_err(StoreError::backend)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The Redis key of `owner`'s set: the prefix, `owner:`, and the hex SHA-256 of the owner's
/// key (fixed length and plain ASCII whatever the key holds; the owner's text itself is in
/// each session's `__owner` field).
pub(super) fn owner_key(prefix: &str, owner: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 6 + 64);
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(OWNER_SET_INFIX.as_bytes());
    for byte in Sha256::digest(owner.as_bytes()) {
        key.extend_from_slice(format!("{byte:02x}").as_bytes());
    }
    key
}

/// What follows the prefix in the key of an owner set.
const OWNER_SET_INFIX: &str = "owner:";

/// The pub/sub channel on which removals of sessions under `prefix` are published (the
/// digest in hex, or [`EVERYTHING`] after a `clear`).
pub(super) fn channel(prefix: &str) -> Vec<u8> {
    let mut channel = prefix.as_bytes().to_vec();
    channel.extend_from_slice(b"removed");
    channel
}

/// The message that says every session may be gone (published by `clear`).
pub(super) const EVERYTHING: &str = "*";

/// An entry of an owner set: the session's digest in hex then the owner tag the session got
/// when this owner was written. The entry stands for that session only while the session's
/// hash holds the same tag; a tag is never written twice, so an entry that no longer matches
/// never matches again.
pub(super) fn member(id: &SessionDigest, tag: &str) -> String {
    let mut member = id.to_hex();
    member.push_str(tag);
    member
}

/// The digest and tag of an owner-set entry; `None` for anything this store did not write.
pub(super) fn parse_member(member: &[u8]) -> Option<(SessionDigest, &str)> {
    let member = std::str::from_utf8(member).ok()?;
    if member.len() != 64 + TAG_LEN || !member.is_char_boundary(64) {
        return None;
    }
    let (digest, tag) = member.split_at(64);
    if !tag.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    Some((SessionDigest::parse_hex(digest)?, tag))
}

/// What a key under the prefix is (for `count` and `clear`, which scan the prefix): a
/// session, an owner set, or something else sharing the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    Session,
    OwnerSet,
    Foreign,
}

/// Classifies a key found under `prefix`.
pub(super) fn kind(prefix: &str, key: &[u8]) -> KeyKind {
    let Some(rest) = key.strip_prefix(prefix.as_bytes()) else {
        return KeyKind::Foreign;
    };
    let hex = |bytes: &[u8]| bytes.len() == 64 && bytes.iter().all(u8::is_ascii_hexdigit);
    if hex(rest) {
        return KeyKind::Session;
    }
    match rest.strip_prefix(OWNER_SET_INFIX.as_bytes()) {
        Some(digest) if hex(digest) => KeyKind::OwnerSet,
        _ => KeyKind::Foreign,
    }
}

/// A `SCAN ... MATCH` pattern for every key starting with `prefix` (glob characters in the
/// prefix escaped).
pub(super) fn scan_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 2);
    for byte in prefix.bytes() {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

/// The Redis key of session `id`: the prefix, then the id's digest in hex. The id itself is
/// never stored, so a dump of Redis holds no usable token.
pub(super) fn key(prefix: &str, id: &SessionDigest) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 64);
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(id.to_hex().as_bytes());
    key
}

/// Refuses records whose fields would overwrite the store's meta fields.
pub(super) fn check_field_keys(record: &Record) -> Result<(), StoreError> {
    match record
        .fields
        .iter()
        .find(|field| RESERVED_FIELDS.contains(&field.key.as_str()))
    {
        Some(field) => Err(StoreError::message(format!(
            "session field key `{}` is reserved by the Redis store (reserved: {}); give the \
             field another key with #[databag(rename = \"..\")]",
            field.key,
            RESERVED_FIELDS.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The meta fields to write for `meta` (`field`, decimal value), and those to remove
/// because the deadline they held no longer exists.
pub(super) fn meta_fields(meta: &SessionMeta) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut set = vec![
        (CREATED, meta.created_ms.to_string()),
        (SEEN, meta.seen_ms.to_string()),
    ];
    let mut unset = Vec::new();
    for (field, value) in [(EXPIRES, meta.expires_ms), (ABSOLUTE, meta.absolute_ms)] {
        match value {
            Some(ms) => set.push((field, ms.to_string())),
            None => unset.push(field),
        }
    }
    (set, unset)
}

/// Why a stored hash is not a session record.
pub(super) type Garbage = &'static str;

/// Parses the reply of `HGETALL`: `Ok(None)` for a missing key, `Err` for anything that is
/// not a session record this store wrote.
pub(super) fn parse(reply: Value) -> Result<Option<Loaded>, Garbage> {
    Ok(parse_tagged(reply)?.map(|(loaded, _)| loaded))
}

/// [`parse`], with the session's owner tag (`__ot`) when it has one.
pub(super) fn parse_tagged(reply: Value) -> Result<Option<(Loaded, Option<String>)>, Garbage> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err("odd number of items in the hash reply");
            }
            let mut items = items.into_iter();
            let mut pairs = Vec::with_capacity(items.len() / 2);
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                pairs.push((field, value));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        Value::Nil => return Ok(None),
        _ => return Err("the reply is not a hash"),
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut version = None;
    let mut meta = SessionMeta::default();
    let mut created = false;
    let mut seen = None;
    let mut tag = None;
    let mut fields = Vec::with_capacity(pairs.len().saturating_sub(3));
    for (field, value) in pairs {
        let (Value::BulkString(field), Value::BulkString(value)) = (field, value) else {
            return Err("a hash field is not a byte string");
        };
        let Ok(field) = String::from_utf8(field) else {
            return Err("a field name is not UTF-8");
        };
        match field.as_str() {
            VERSION => version = Some(number::<u32>(&value).ok_or("bad schema version")?),
            CREATED => {
                meta.created_ms = number(&value).ok_or("bad creation time")?;
                created = true;
            }
            SEEN => seen = Some(number(&value).ok_or("bad last use")?),
            EXPIRES => meta.expires_ms = Some(number(&value).ok_or("bad expiry")?),
            ABSOLUTE => meta.absolute_ms = Some(number(&value).ok_or("bad absolute deadline")?),
            OWNER_TAG => tag = Some(String::from_utf8(value).map_err(|_| "bad owner tag")?),
            _ => fields.push(RecordField { key: field, value }),
        }
    }
    let version = version.ok_or("no schema version")?;
    if !created {
        return Err("no creation time");
    }
    meta.seen_ms = seen.unwrap_or(meta.created_ms);
    Ok(Some((
        Loaded {
            record: Record { version, fields },
            meta,
        },
        tag,
    )))
}

/// A decimal number as the store writes it: ASCII digits only.
fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn reply(pairs: &[(&str, &str)]) -> Value {
        Value::Array(
            pairs
                .iter()
                .flat_map(|(field, value)| [bulk(field), bulk(value)])
                .collect(),
        )
    }

    #[test]
    fn key_is_prefix_and_hex_digest_without_the_token() {
        let id = crate::id::SessionId::generate().unwrap();
        let key = String::from_utf8(key("app:", &id.digest())).unwrap();
        assert!(key.starts_with("app:"));
        assert_eq!(key.len(), 4 + 64);
        assert!(key[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!key.contains(&id.expose_token()));
    }

    #[test]
    fn hash_with_meta_parses_into_record_and_meta() {
        let loaded = parse(reply(&[
            ("__v", "3"),
            ("__c", "10"),
            ("__e", "20"),
            ("visits", "\u{1}"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(loaded.record.version, 3);
        assert_eq!(loaded.record.get("visits"), Some(&[1u8][..]));
        assert_eq!(loaded.record.fields.len(), 1);
        assert_eq!(
            loaded.meta,
            SessionMeta {
                created_ms: 10,
                seen_ms: 10,
                expires_ms: Some(20),
                absolute_ms: None
            }
        );
    }

    #[test]
    fn missing_key_is_none() {
        assert_eq!(parse(Value::Array(Vec::new())), Ok(None));
    }

    #[test]
    fn garbled_or_missing_meta_is_garbage() {
        for pairs in [
            &[("visits", "1")][..],
            &[("__v", "1")],
            &[("__c", "1"), ("a", "b")],
            &[("__v", "x"), ("__c", "1")],
            &[("__v", "-1"), ("__c", "1")],
            &[("__v", "99999999999"), ("__c", "1")],
            &[("__v", "1"), ("__c", "1"), ("__e", "soon")],
            &[("__v", "1"), ("__c", " 1")],
        ] {
            assert!(parse(reply(pairs)).is_err(), "{pairs:?}");
        }
        assert!(parse(Value::Int(1)).is_err());
        assert!(parse(Value::Array(vec![bulk("__v")])).is_err());
    }

    #[test]
    fn owner_entries_round_trip_and_anything_else_is_refused() {
        let id = crate::id::SessionId::generate().unwrap().digest();
        let tag = new_tag().unwrap();
        assert_eq!(tag.len(), TAG_LEN);
        assert_ne!(tag, new_tag().unwrap(), "a fresh tag each time");
        let member = member(&id, &tag);
        assert_eq!(parse_member(member.as_bytes()), Some((id, tag.as_str())));
        for bad in [
            &b""[..],
            b"abc",
            &member.as_bytes()[1..],
            b"\xff".as_slice(),
        ] {
            assert_eq!(parse_member(bad), None);
        }
        let mut wrong_tag = member.clone();
        wrong_tag.replace_range(70..71, "g");
        assert_eq!(parse_member(wrong_tag.as_bytes()), None);
    }

    #[test]
    fn owner_keys_are_fixed_length_ascii_whatever_the_owner() {
        for owner in [
            "42",
            "ada@example.com",
            "",
            "*?[\\]\n\u{0}é",
            "x".repeat(10_000).as_str(),
        ] {
            let key = owner_key("app:", owner);
            assert_eq!(key.len(), 4 + 6 + 64);
            assert!(key.starts_with(b"app:owner:"));
            assert_eq!(kind("app:", &key), KeyKind::OwnerSet);
        }
        assert_ne!(owner_key("app:", "1"), owner_key("app:", "2"));
    }

    #[test]
    fn scanned_keys_are_told_apart_and_the_pattern_escapes_the_prefix() {
        let id = crate::id::SessionId::generate().unwrap().digest();
        assert_eq!(kind("app:", &key("app:", &id)), KeyKind::Session);
        assert_eq!(kind("app:", &key("other:", &id)), KeyKind::Foreign);
        assert_eq!(kind("app:", b"app:settings"), KeyKind::Foreign);
        assert_eq!(kind("app:", b"app:owner:short"), KeyKind::Foreign);
        assert_eq!(
            scan_pattern("a*b?[c]\\:"),
            b"a\\*b\\?\\[c\\]\\\\:*".to_vec()
        );
    }

    #[test]
    fn reserved_field_keys_are_refused() {
        let record = |key: &str| Record {
            version: 1,
            fields: vec![RecordField {
                key: key.to_owned(),
                value: vec![0],
            }],
        };
        assert!(check_field_keys(&record("visits")).is_ok());
        for reserved in RESERVED_FIELDS {
            let error = check_field_keys(&record(reserved)).unwrap_err();
            assert!(error.to_string().contains("rename"), "{error}");
        }
    }
}
