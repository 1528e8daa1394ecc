//! Session ids: 192 random bits from the operating system, URL-safe base64 on the wire.

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a session id (192 bits).
const ID_BYTES: usize = 24;
/// Length of the token: 24 bytes in base64 without padding.
const TOKEN_LEN: usize = 32;

/// A session id.
///
/// Made of 192 bits from the operating system's CSPRNG (via `getrandom`), sent to the
/// client as 32 characters of URL-safe base64. The layer only ever adopts ids it generated
/// and found in its store: a token that does not parse, or that the store does not know,
/// gives a fresh session with a new id.
///
/// **Logging.** `Display` and `Debug` do not print the token: they print a short
/// fingerprint (`sid:` and 12 hex digits of a SHA-256 of the id), which is enough to
/// correlate log lines but useless to an attacker. So `tracing::info!(%id)` is safe. Use
/// [`SessionId::expose_token`] where the full token is really needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

/// The operating system's random source failed: no session id can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessError(getrandom::Error);

/// Fills `bytes` from the operating system's CSPRNG.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), RandomnessError> {
    getrandom::fill(bytes).map_err(RandomnessError)
}

impl SessionId {
    /// A new random id.
    ///
    /// # Errors
    /// Only if the operating system's random source fails, in which case no session id can
    /// be made safely.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; ID_BYTES];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub(crate) const fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        Self(bytes)
    }

    /// Parses a token sent by a client. Anything but exactly 32 characters of URL-safe
    /// base64 (no padding) gives `None`.
    #[must_use]
    pub fn parse(token: &str) -> Option<Self> {
        if token.len() != TOKEN_LEN {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut bytes) {
            Ok(ID_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The token to send to the client. Treat it as a secret: whoever holds it holds the
    /// session.
    #[must_use]
    pub fn expose_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The raw id bytes (secret, like the token).
    #[must_use]
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The SHA-256 digest of the id. Server-side stores key records by it, so that a dump
    /// of the store holds no usable token; hooks and logs name sessions by it.
    #[must_use]
    pub fn digest(&self) -> SessionDigest {
        SessionDigest(Sha256::digest(self.0).into())
    }

    /// The short fingerprint printed by `Display` and `Debug` (see
    /// [`SessionDigest::fingerprint`]).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.digest().fingerprint()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.digest(), f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.digest())
    }
}

/// The SHA-256 digest of a [`SessionId`]: names a session without giving access to it.
///
/// Stores key sessions by it, and hooks (`on_started`, `on_deleted`) receive it, because a
/// store that keeps only digests (all server stores do) can report a session it removed by
/// itself by its digest, never by its token. The token cannot be computed back from it, so
/// it is safe to log, to show in an admin page, or to keep in the app's own tables.
///
/// `Display` prints the short fingerprint (`sid:` and the first 12 hex digits), as
/// `SessionId`'s `Display` does, so log lines about one session agree;
/// [`to_hex`](Self::to_hex) gives all 64 digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionDigest([u8; 32]);

impl SessionDigest {
    /// A digest from its 32 bytes (as a store returns them).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes of the digest.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// All 64 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        push_hex(&mut out, &self.0);
        out
    }

    /// Parses 64 hex digits (either case); anything else gives `None`.
    #[must_use]
    pub fn parse_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let digit = |c: u8| char::from(c).to_digit(16);
            *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(Self(bytes))
    }

    /// The short fingerprint printed by `Display`: `sid:` and 12 hex digits, enough to
    /// correlate log lines.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut out = String::with_capacity(16);
        out.push_str("sid:");
        push_hex(&mut out, &self.0[..6]);
        out
    }
}

impl From<&SessionId> for SessionDigest {
    fn from(id: &SessionId) -> Self {
        id.digest()
    }
}

impl fmt::Display for SessionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl fmt::Debug for SessionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionDigest({})", self.fingerprint())
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::SessionId;

    #[test]
    fn token_round_trips_and_is_url_safe() {
        let id = SessionId::generate().unwrap();
        let token = id.expose_token();
        assert_eq!(token.len(), 32);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(SessionId::parse(&token), Some(id));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let token = SessionId::generate().unwrap().expose_token();
        for bad in [
            "",
            "short",
            &token[..31],
            &format!("{token}A"),
            &token.replace(|_| true, "+"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "ééééééééééééééééé",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_and_debug_do_not_leak_the_token() {
        let id = SessionId::generate().unwrap();
        let token = id.expose_token();
        for printed in [format!("{id}"), format!("{id:?}")] {
            assert!(!printed.contains(&token));
            assert!(!printed.contains(&token[..8]));
            assert!(printed.contains("sid:"));
        }
    }
}
