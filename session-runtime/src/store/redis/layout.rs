//! How a session is laid out in Redis: one hash per session, under the configured prefix and
//! the hex SHA-256 of the id, with one hash field per record field plus reserved meta fields.

use redis::Value;

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

/// Hash fields the store keeps for itself; a record field may not use these keys.
pub(super) const RESERVED_FIELDS: [&str; 5] = [VERSION, CREATED, EXPIRES, ABSOLUTE, SEEN];

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
            _ => fields.push(RecordField { key: field, value }),
        }
    }
    let version = version.ok_or("no schema version")?;
    if !created {
        return Err("no creation time");
    }
    meta.seen_ms = seen.unwrap_or(meta.created_ms);
    Ok(Some(Loaded {
        record: Record { version, fields },
        meta,
    }))
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
