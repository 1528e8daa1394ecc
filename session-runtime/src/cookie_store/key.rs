//! Secret keys for sealing cookies, and key rings for rotating them.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The least key material accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 64;

/// HKDF-Extract salt: separates this use of the secret from any other use of it.
const EXTRACT_SALT: &[u8] = b"session-runtime cookie-store key v1";

const HOW_TO_MAKE_ONE: &str = "make one with `cargo run --example gen-secret` (or \
     `openssl rand -base64 64`) and keep it out of source control";

/// Why key material was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Fewer than [`MIN_KEY_BYTES`] bytes.
    #[error(
        "session secret is too short: {got} bytes, at least {MIN_KEY_BYTES} are needed; {HOW_TO_MAKE_ONE}"
    )]
    TooShort {
        /// How many bytes were given.
        got: usize,
    },
    /// The environment variable is not set.
    #[error("environment variable {var} is not set; {HOW_TO_MAKE_ONE}")]
    MissingEnv {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is not valid Unicode.
    #[error("environment variable {var} is not valid UTF-8; {HOW_TO_MAKE_ONE}")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The operating system's random source failed.
    #[error("cannot generate a key: {0}")]
    Randomness(#[from] crate::id::RandomnessError),
}

/// A secret key for [`CookieStore`](crate::CookieStore).
///
/// Made from at least 64 bytes of secret material, which is never used directly: an
/// HKDF-SHA256 extraction turns it into a pseudorandom key, from which a fresh AES-256 key
/// is derived for every sealed cookie. `Debug` prints `Key(REDACTED)`.
#[derive(Clone)]
pub struct Key {
    /// HMAC-SHA256 keyed with the pseudorandom key: cloned per seal, so deriving a message
    /// key costs one HMAC of a short input.
    prk: Hmac<Sha256>,
}

impl Key {
    /// A key from secret bytes.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] under 64 bytes.
    pub fn from_bytes(material: &[u8]) -> Result<Self, KeyError> {
        if material.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                got: material.len(),
            });
        }
        let mut extract = <Hmac<Sha256> as Mac>::new_from_slice(EXTRACT_SALT)
            .map_err(|_| KeyError::TooShort { got: 0 })?;
        extract.update(material);
        let prk = extract.finalize().into_bytes();
        let prk = <Hmac<Sha256> as Mac>::new_from_slice(&prk)
            .map_err(|_| KeyError::TooShort { got: 0 })?;
        Ok(Self { prk })
    }

    /// A key from the environment variable `var` (its UTF-8 bytes are the material).
    ///
    /// # Errors
    /// If the variable is unset, not Unicode, or shorter than 64 bytes.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        match std::env::var(var) {
            Ok(value) => Self::from_bytes(value.as_bytes()),
            Err(std::env::VarError::NotPresent) => Err(KeyError::MissingEnv {
                var: var.to_owned(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::NotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// A new random key (64 bytes from the operating system's CSPRNG). Sessions sealed with
    /// it do not survive a restart unless the same key is loaded again.
    ///
    /// # Errors
    /// Only if the operating system's random source fails.
    pub fn generate() -> Result<Self, KeyError> {
        Self::from_bytes(&generate_secret_bytes()?)
    }

    /// The keyed HMAC state for deriving message keys.
    pub(crate) fn prk(&self) -> &Hmac<Sha256> {
        &self.prk
    }
}

/// 64 random bytes for a new secret.
pub(crate) fn generate_secret_bytes() -> Result<[u8; MIN_KEY_BYTES], crate::id::RandomnessError> {
    let mut bytes = [0u8; MIN_KEY_BYTES];
    crate::id::fill_random(&mut bytes)?;
    Ok(bytes)
}

/// A new secret as text to put in `SESSION_SECRET`: 64 random bytes in URL-safe base64
/// (86 characters).
///
/// # Errors
/// Only if the operating system's random source fails.
pub fn generate_secret() -> Result<String, KeyError> {
    use base64::Engine as _;
    let bytes = generate_secret_bytes()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(REDACTED)")
    }
}

/// Keys for rotation: cookies are sealed with the newest key and opened with any of them.
///
/// To rotate: put a new key first and keep the old ones after it for as long as cookies
/// sealed with them may still be alive (the absolute or idle timeout). A cookie opened with
/// an old key is sealed again with the newest key in the same response.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring of `newest` followed by older keys, newest first.
    #[must_use]
    pub fn new(newest: Key, older: impl IntoIterator<Item = Key>) -> Self {
        let mut keys = vec![newest];
        keys.extend(older);
        Self { keys }
    }

    /// The key new cookies are sealed with.
    pub(crate) fn newest(&self) -> &Key {
        &self.keys[0]
    }

    /// All keys, newest first.
    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }
}

impl From<Key> for KeyRing {
    fn from(key: Key) -> Self {
        Self::new(key, [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_material_is_refused_with_a_hint() {
        let error = Key::from_bytes(&[7; 63]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("63 bytes"), "{message}");
        assert!(message.contains("gen-secret"), "{message}");
        assert!(Key::from_bytes(&[7; 64]).is_ok());
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let error = Key::from_env("SESSION_RUNTIME_TEST_UNSET_VARIABLE").unwrap_err();
        assert!(error
            .to_string()
            .contains("SESSION_RUNTIME_TEST_UNSET_VARIABLE"));
    }

    #[test]
    fn debug_is_redacted() {
        let key = Key::generate().unwrap();
        assert_eq!(format!("{key:?}"), "Key(REDACTED)");
        let ring = KeyRing::from(key);
        assert!(format!("{ring:?}").contains("REDACTED"));
    }

    #[test]
    fn generated_secret_is_accepted_as_key_material() {
        let secret = generate_secret().unwrap();
        assert_eq!(secret.len(), 86);
        assert!(Key::from_bytes(secret.as_bytes()).is_ok());
        assert_ne!(secret, generate_secret().unwrap());
    }
}
