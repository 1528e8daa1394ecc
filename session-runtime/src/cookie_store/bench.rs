//! Not a public API: the steps of sealing and opening a session cookie, one by one, for the
//! benchmarks in `session-bench` (feature `bench-internals`). May change in any release.

use super::key::{Key, KeyRing};
use super::seal::{self, Payload};
use crate::databag::Databag;
use crate::error::EncodeError;
use crate::id::SessionId;
use crate::store::SessionMeta;

/// Bytes of random salt in every sealed cookie.
pub const SALT_LEN: usize = 16;

/// What a cookie seals: a session id, its deadlines and the framed record.
#[derive(Debug, Clone)]
pub struct Sealable(Payload);

impl Sealable {
    /// Encodes `value` as the layer does before sealing (every stored field, framed).
    ///
    /// # Errors
    /// If a field does not serialize.
    pub fn encode<T: Databag>(value: &T, meta: SessionMeta) -> Result<Self, EncodeError> {
        Ok(Self(Payload {
            id: SessionId::from_bytes([7; 24]),
            meta,
            record: crate::record::encode_to_bytes(value)?,
        }))
    }

    /// The framed record's size in bytes: the session data that is sealed.
    #[must_use]
    pub fn record_len(&self) -> usize {
        self.0.record.len()
    }
}

/// A fresh random salt, as every seal draws one (a `getrandom` call).
#[must_use]
pub fn random_salt() -> Option<[u8; SALT_LEN]> {
    let mut salt = [0; SALT_LEN];
    crate::id::fill_random(&mut salt).ok()?;
    Some(salt)
}

/// The whole seal with the ring's newest key and a random salt.
#[must_use]
pub fn seal(keys: &KeyRing, purpose: &str, sealable: &Sealable) -> Option<String> {
    seal::seal(keys, purpose, &sealable.0).ok()
}

/// Sealing, step 1: `version | salt | plaintext` in one buffer.
#[must_use]
pub fn plaintext(sealable: &Sealable, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    seal::plaintext(salt, &sealable.0)
}

/// Sealing, step 2: key derivation and AES-256-GCM, in place. `false` if it failed.
pub fn encrypt(key: &Key, purpose: &str, buffer: &mut Vec<u8>) -> bool {
    seal::encrypt(key, purpose, buffer).is_ok()
}

/// Sealing, step 3: base64.
#[must_use]
pub fn base64(raw: &[u8]) -> String {
    seal::base64(raw)
}

/// The whole open, as the layer does it for a request: base64, decryption, plaintext, and
/// the record decoded as `T`.
#[must_use]
pub fn open<T: Databag>(keys: &KeyRing, purpose: &str, token: &str, now_ms: u64) -> Option<T> {
    let opened = seal::open(keys, purpose, token, now_ms)?;
    crate::record::decode_from_bytes::<T>(&opened.payload.record)
        .ok()
        .map(|decoded| decoded.value)
}

/// Opening, step 1: base64 and framing checks.
#[must_use]
pub fn unframe(token: &str) -> Option<Vec<u8>> {
    seal::unframe(token)
}

/// Opening, step 2: key derivation and AES-256-GCM decryption in place, with any key of
/// the ring. `false` if no key opens it.
pub fn decrypt(keys: &KeyRing, purpose: &str, raw: &mut [u8]) -> bool {
    seal::decrypt(keys, purpose, raw).is_some()
}

/// Opening, step 3: the plaintext of decrypted token bytes parsed, and the record decoded as
/// `T`.
#[must_use]
pub fn decode<T: Databag>(decrypted: &[u8]) -> Option<T> {
    let (_, _, record) = seal::decode_plaintext(seal::plaintext_of(decrypted)?)?;
    let plaintext = seal::plaintext_of(decrypted)?;
    crate::record::decode_from_bytes::<T>(plaintext.get(record)?)
        .ok()
        .map(|decoded| decoded.value)
}
