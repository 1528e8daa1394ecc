//! The CSRF secret of a session and the masked tokens derived from it: pure functions over
//! the session's [`Internal`] fields (no I/O besides the operating system's random source).
//!
//! The secret is 32 bytes from the OS CSPRNG, kept as an internal field, so every store
//! persists it like any field. A token handed to a page is `base64url(pad || pad ^ secret)`
//! with a fresh 32-byte one-time pad per token (Rails' masking): two renders of one secret
//! share no bytes, so a compression side channel (BREACH) learns nothing from repeated
//! responses. Verification unmasks and compares in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::internal::{keys, Internal};
use crate::id::{fill_random, RandomnessError};

/// Bytes of a CSRF secret.
pub(crate) const SECRET_BYTES: usize = 32;

/// Characters of a masked token: base64url of 64 bytes, unpadded.
pub(crate) const TOKEN_CHARS: usize = 86;

/// A session's CSRF secret.
pub(crate) type Secret = [u8; SECRET_BYTES];

/// The session's secret, if it has one (and it decodes as one).
pub(crate) fn secret(internal: &Internal) -> Option<Secret> {
    let mut bytes = internal.get(keys::CSRF)?;
    let len = rmp::decode::read_bin_len(&mut bytes).ok()?;
    if len as usize != SECRET_BYTES || bytes.len() != SECRET_BYTES {
        return None;
    }
    let mut secret = [0u8; SECRET_BYTES];
    secret.copy_from_slice(bytes);
    Some(secret)
}

/// The session's secret, made (and marked changed, so it is stored) if it has none.
///
/// # Errors
/// If the operating system's random source fails: no secret is made then.
pub(crate) fn secret_or_create(internal: &mut Internal) -> Result<Secret, RandomnessError> {
    if let Some(secret) = secret(internal) {
        return Ok(secret);
    }
    let mut secret = [0u8; SECRET_BYTES];
    fill_random(&mut secret)?;
    let mut encoded = Vec::with_capacity(SECRET_BYTES + 2);
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_bin(&mut encoded, &secret);
    internal.set(keys::CSRF, Some(encoded));
    Ok(secret)
}

/// Forgets the secret (on renewal): tokens minted before stop matching.
pub(crate) fn forget(internal: &mut Internal) {
    internal.set(keys::CSRF, None);
}

/// A masked token for the session, making its secret first if it has none.
///
/// # Errors
/// If the operating system's random source fails.
pub(crate) fn token(internal: &mut Internal) -> Result<String, RandomnessError> {
    let secret = secret_or_create(internal)?;
    mask(&secret)
}

/// `base64url(pad || pad ^ secret)` with a fresh pad.
fn mask(secret: &Secret) -> Result<String, RandomnessError> {
    let mut bytes = [0u8; 2 * SECRET_BYTES];
    let (pad, masked) = bytes.split_at_mut(SECRET_BYTES);
    fill_random(pad)?;
    for ((out, pad), secret) in masked.iter_mut().zip(pad.iter()).zip(secret) {
        *out = pad ^ secret;
    }
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What a presented token says about a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It was minted from this secret.
    Valid,
    /// It is not a token at all (wrong length or alphabet).
    Malformed,
    /// A well-formed token of another secret.
    Mismatch,
}

/// Unmasks `token` and compares it with `secret` in constant time.
pub(crate) fn verify(token: &str, secret: &Secret) -> Verdict {
    let mut bytes = [0u8; 2 * SECRET_BYTES];
    if token.len() != TOKEN_CHARS {
        return Verdict::Malformed;
    }
    match URL_SAFE_NO_PAD.decode_slice(token, &mut bytes) {
        Ok(len) if len == bytes.len() => {}
        _ => return Verdict::Malformed,
    }
    let (pad, masked) = bytes.split_at(SECRET_BYTES);
    let mut unmasked = [0u8; SECRET_BYTES];
    for ((out, pad), masked) in unmasked.iter_mut().zip(pad).zip(masked) {
        *out = pad ^ masked;
    }
    if constant_time_eq(&unmasked, secret) {
        Verdict::Valid
    } else {
        Verdict::Mismatch
    }
}

/// Equality whose running time does not depend on where the inputs differ: every byte is
/// looked at, the differences are OR-ed together, and `black_box` keeps the optimizer from
/// turning the fold into an early exit. (A few lines, so no dependency on `subtle`.)
fn constant_time_eq(a: &Secret, b: &Secret) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= core::hint::black_box(x ^ y);
    }
    core::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_made_once_and_kept() {
        let mut internal = Internal::new();
        assert_eq!(secret(&internal), None);
        let made = secret_or_create(&mut internal).unwrap();
        assert!(internal.key_changed(keys::CSRF), "a new secret is stored");
        internal.reset_changes();
        assert_eq!(secret_or_create(&mut internal).unwrap(), made);
        assert!(
            !internal.is_changed(),
            "reading the secret again changes nothing"
        );
    }

    #[test]
    fn each_token_differs_and_each_verifies() {
        let mut internal = Internal::new();
        let first = token(&mut internal).unwrap();
        let second = token(&mut internal).unwrap();
        assert_ne!(first, second, "a fresh pad per token");
        assert_eq!(first.len(), TOKEN_CHARS);
        let secret = secret(&internal).unwrap();
        assert_eq!(verify(&first, &secret), Verdict::Valid);
        assert_eq!(verify(&second, &secret), Verdict::Valid);
        // The masked half alone reveals nothing comparable between renders.
        assert_ne!(first[43..], second[43..]);
    }

    #[test]
    fn other_secrets_and_garbage_do_not_verify() {
        let mut mine = Internal::new();
        let mut theirs = Internal::new();
        let their_token = token(&mut theirs).unwrap();
        let my_secret = secret_or_create(&mut mine).unwrap();
        assert_eq!(verify(&their_token, &my_secret), Verdict::Mismatch);
        assert_eq!(verify("", &my_secret), Verdict::Malformed);
        assert_eq!(
            verify(&"*".repeat(TOKEN_CHARS), &my_secret),
            Verdict::Malformed
        );
        let mut flipped = token(&mut mine).unwrap().into_bytes();
        flipped[50] = if flipped[50] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(verify(&flipped, &my_secret), Verdict::Mismatch);
    }

    #[test]
    fn forgetting_the_secret_invalidates_old_tokens() {
        let mut internal = Internal::new();
        let old = token(&mut internal).unwrap();
        let old_secret = secret(&internal).unwrap();
        forget(&mut internal);
        assert_eq!(secret(&internal), None);
        let new_secret = secret_or_create(&mut internal).unwrap();
        assert_ne!(old_secret, new_secret);
        assert_eq!(verify(&old, &new_secret), Verdict::Mismatch);
    }

    #[test]
    fn a_stored_value_of_the_wrong_shape_is_no_secret() {
        let mut internal = Internal::new();
        internal.set(keys::CSRF, Some(vec![0xc4, 2, 1, 2]));
        assert_eq!(secret(&internal), None);
        let made = secret_or_create(&mut internal).unwrap();
        assert_eq!(secret(&internal), Some(made));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        let a = [7u8; SECRET_BYTES];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
    }
}
