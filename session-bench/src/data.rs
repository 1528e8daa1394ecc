//! The session data every case stores: the same fields and values for us and the peers.

use serde::{Deserialize, Serialize};
use session_runtime::Databag;

/// Our session type: a logged-in user with a small cart, about 70 bytes on the wire.
#[derive(Databag, Debug, Clone, PartialEq)]
pub struct BenchSession {
    /// Set at login.
    pub user_id: Option<u64>,
    /// The display name.
    #[databag(default = "guest".to_owned())]
    pub username: String,
    /// What the write handlers change: one small field.
    pub visits: u32,
    /// A preference.
    pub theme: String,
    /// Product ids.
    pub cart: Vec<u64>,
}

/// The same data as a plain serde struct, stored by the peers under [`PEER_KEY`] (the
/// idiomatic typed use of tower-sessions: one struct under one key).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PeerSession {
    /// Set at login.
    pub user_id: Option<u64>,
    /// The display name.
    pub username: String,
    /// What the write handlers change.
    pub visits: u32,
    /// A preference.
    pub theme: String,
    /// Product ids.
    pub cart: Vec<u64>,
}

/// The key the peers keep [`PeerSession`] under.
pub const PEER_KEY: &str = "session";

impl Default for PeerSession {
    fn default() -> Self {
        Self {
            user_id: None,
            username: "guest".to_owned(),
            visits: 0,
            theme: String::new(),
            cart: Vec::new(),
        }
    }
}

/// The values a session holds after login, for every store and peer.
#[must_use]
pub fn logged_in() -> PeerSession {
    PeerSession {
        user_id: Some(42),
        username: "ada lovelace".to_owned(),
        visits: 1,
        theme: "dark".to_owned(),
        cart: vec![1_001, 1_002, 1_003, 70_000, 123_456],
    }
}

impl From<PeerSession> for BenchSession {
    fn from(peer: PeerSession) -> Self {
        Self {
            user_id: peer.user_id,
            username: peer.username,
            visits: peer.visits,
            theme: peer.theme,
            cart: peer.cart,
        }
    }
}

/// Session data of a chosen size, for the codec cases.
#[derive(Databag, Debug, Clone, PartialEq)]
pub struct Blob {
    /// A number, like most sessions have.
    pub user_id: u64,
    /// Filler that sets the size.
    pub note: String,
}

/// The cookie peer's form of [`Blob`]: the same data, as JSON.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PeerBlob {
    /// A number, like most sessions have.
    pub user_id: u64,
    /// Filler that sets the size.
    pub note: String,
}

impl From<&Blob> for PeerBlob {
    fn from(blob: &Blob) -> Self {
        Self {
            user_id: blob.user_id,
            note: blob.note.clone(),
        }
    }
}

/// The size of `value`'s encoded record in bytes: what a cookie seals besides the session's
/// id and deadlines.
#[must_use]
pub fn record_len(value: &Blob) -> usize {
    session_runtime::record::encode_to_bytes(value).map_or(0, |bytes| bytes.len())
}

/// A [`Blob`] whose encoded record (what a cookie seals) is exactly `bytes` long, or as
/// close as MessagePack's length prefixes allow (at least 24 bytes).
#[must_use]
pub fn blob(bytes: usize) -> Blob {
    let size = |len: usize| {
        record_len(&Blob {
            user_id: 42,
            note: "x".repeat(len),
        })
    };
    let mut len = bytes.saturating_sub(size(0));
    // Length prefixes grow at 32 and 256 bytes: step back until the size fits.
    while len > 0 && size(len) > bytes {
        len -= 1;
    }
    Blob {
        user_id: 42,
        note: "x".repeat(len),
    }
}

/// A [`Blob`] of about `bytes` of text that does not compress (a fixed pseudo-random
/// sequence of letters and digits): what a database stores of it is its size, not what
/// PostgreSQL's TOAST compression makes of a repeated character.
#[must_use]
pub fn incompressible_blob(bytes: usize) -> Blob {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let note = (0..bytes)
        .map(|_| {
            // xorshift64: deterministic, so every run stores the same text.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = usize::try_from(state % ALPHABET.len() as u64).unwrap_or(0);
            char::from(ALPHABET[index])
        })
        .collect();
    Blob { user_id: 42, note }
}
