//! The fixtures of every case, built once and shared by the criterion benches and
//! `compare`: what is measured is defined here, how long it is measured is up to the caller.

use axum::body::Body;
use axum::http::{HeaderValue, Response};
use axum::Router;
use session_runtime::__bench::{self as codec, Sealable};
use session_runtime::store::{SessionMeta, SessionStore as _};
use session_runtime::{CookieStore, Key, KeyRing, MemoryStore, Record, SessionId, SessionLayer};
use tower_sessions::SessionStore as _;

use crate::apps::{self, call, login, request, SetupError, COOKIE_NAME};
use crate::data::{blob, logged_in, BenchSession, Blob};
use crate::redis::RedisServer;

/// A fixed 64-byte secret, so runs are comparable.
const SECRET: [u8; 64] = [0x5e; 64];

/// Far enough in the future that nothing expires during a run (year 2100).
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

fn meta(now_ms: u64) -> SessionMeta {
    SessionMeta {
        created_ms: now_ms,
        expires_ms: Some(FAR_FUTURE_MS),
        absolute_ms: None,
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

// ---------------------------------------------------------------------------------------
// Codec.

/// Sealing and opening a cookie holding `bytes` of session data, ours and the cookie peer's
/// (`cookie`'s private jar, as axum-extra's `PrivateCookieJar` uses it, with the same data
/// as JSON).
pub struct Codec {
    key: Key,
    keys: KeyRing,
    peer_key: cookie::Key,
    value: Blob,
    sealable: Sealable,
    token: String,
    tampered: String,
    peer_token: String,
    now_ms: u64,
}

/// The peer's form of [`Blob`].
#[derive(serde::Serialize, serde::Deserialize)]
struct PeerBlob {
    user_id: u64,
    note: String,
}

impl Codec {
    /// A fixture with `bytes` of encoded session data.
    ///
    /// # Errors
    /// If the data cannot be sealed (a broken build, not a slow one).
    pub fn new(bytes: usize) -> Result<Self, SetupError> {
        let fail = |what: &str| SetupError(format!("codec fixture: {what}"));
        let key = Key::from_bytes(&SECRET).map_err(|e| fail(&e.to_string()))?;
        let keys = KeyRing::from(key.clone());
        let now_ms = now_ms();
        let value = blob(bytes);
        let sealable = Sealable::encode(&value, meta(now_ms)).map_err(|_| fail("encode"))?;
        let token = codec::seal(&keys, COOKIE_NAME, &sealable).ok_or_else(|| fail("seal"))?;
        // One flipped bit in the middle of the ciphertext: still valid base64 and framing,
        // so rejection costs the whole decryption.
        let mut raw = codec::unframe(&token).ok_or_else(|| fail("unframe"))?;
        let middle = raw.len() / 2;
        raw[middle] ^= 1;
        let tampered = codec::base64(&raw);
        let peer_key = cookie::Key::from(&SECRET);
        let fixture = Self {
            key,
            keys,
            peer_key,
            value,
            sealable,
            token,
            tampered,
            peer_token: String::new(),
            now_ms,
        };
        let peer_token = fixture.peer_seal();
        let fixture = Self {
            peer_token,
            ..fixture
        };
        if fixture.ours_open().as_ref() != Some(&fixture.value) || !fixture.peer_open() {
            return Err(fail("a sealed cookie does not open"));
        }
        if fixture.ours_open_tampered() {
            return Err(fail("a tampered cookie opens"));
        }
        Ok(fixture)
    }

    /// The size of the sealed record in bytes.
    #[must_use]
    pub fn record_len(&self) -> usize {
        self.sealable.record_len()
    }

    /// The size of our token (the cookie value) in bytes.
    #[must_use]
    pub fn token_len(&self) -> usize {
        self.token.len()
    }

    /// Ours: encode the session and seal it, as a write request's commit does.
    #[must_use]
    pub fn ours_seal(&self) -> Option<String> {
        let sealable = Sealable::encode(&self.value, meta(self.now_ms)).ok()?;
        codec::seal(&self.keys, COOKIE_NAME, &sealable)
    }

    /// Ours: open the cookie and decode the session, as a request's first extraction does.
    #[must_use]
    pub fn ours_open(&self) -> Option<Blob> {
        codec::open::<Blob>(&self.keys, COOKIE_NAME, &self.token, self.now_ms)
    }

    /// Ours: reject the tampered cookie (`true` if it wrongly opened).
    #[must_use]
    pub fn ours_open_tampered(&self) -> bool {
        codec::open::<Blob>(&self.keys, COOKIE_NAME, &self.tampered, self.now_ms).is_some()
    }

    /// Sealing step: encoding the record and the plaintext.
    #[must_use]
    pub fn step_encode(&self) -> Vec<u8> {
        match Sealable::encode(&self.value, meta(self.now_ms)) {
            Ok(sealable) => codec::plaintext(&sealable, &[9; codec::SALT_LEN]),
            Err(_) => Vec::new(),
        }
    }

    /// The plaintext, for [`step_encrypt`](Self::step_encrypt).
    #[must_use]
    pub fn plaintext(&self) -> Vec<u8> {
        codec::plaintext(&self.sealable, &[9; codec::SALT_LEN])
    }

    /// Sealing step: drawing the random salt.
    #[must_use]
    pub fn step_salt(&self) -> Option<[u8; codec::SALT_LEN]> {
        codec::random_salt()
    }

    /// Sealing step: key derivation and encryption of `plaintext` in place.
    pub fn step_encrypt(&self, plaintext: &mut Vec<u8>) -> bool {
        codec::encrypt(&self.key, COOKIE_NAME, plaintext)
    }

    /// The token's bytes, for [`step_base64_encode`](Self::step_base64_encode) and
    /// [`step_decrypt`](Self::step_decrypt).
    #[must_use]
    pub fn raw(&self) -> Vec<u8> {
        codec::unframe(&self.token).unwrap_or_default()
    }

    /// Sealing step: base64 of `raw` (`version | salt | sealed`).
    #[must_use]
    pub fn step_base64_encode(&self, raw: &[u8]) -> String {
        codec::base64(raw)
    }

    /// Opening step: base64 and framing checks.
    #[must_use]
    pub fn step_base64_decode(&self) -> Option<Vec<u8>> {
        codec::unframe(&self.token)
    }

    /// Opening step: key derivation and decryption of `raw` in place.
    pub fn step_decrypt(&self, raw: &mut [u8]) -> bool {
        codec::decrypt(&self.keys, COOKIE_NAME, raw)
    }

    /// The token's bytes after decryption, for [`step_decode`](Self::step_decode).
    #[must_use]
    pub fn decrypted(&self) -> Vec<u8> {
        let mut raw = self.raw();
        codec::decrypt(&self.keys, COOKIE_NAME, &mut raw);
        raw
    }

    /// Opening step: the plaintext parsed and the record decoded.
    #[must_use]
    pub fn step_decode(&self, decrypted: &[u8]) -> Option<Blob> {
        codec::decode::<Blob>(decrypted)
    }

    /// The cookie peer: the same data as JSON, encrypted into a jar.
    #[must_use]
    pub fn peer_seal(&self) -> String {
        let peer = PeerBlob {
            user_id: self.value.user_id,
            note: self.value.note.clone(),
        };
        let json = serde_json::to_string(&peer).unwrap_or_default();
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&self.peer_key)
            .add(cookie::Cookie::new(COOKIE_NAME, json));
        jar.get(COOKIE_NAME)
            .map(|cookie| cookie.value().to_owned())
            .unwrap_or_default()
    }

    /// The cookie peer: decrypt the cookie and decode the JSON (`true` if it opened).
    #[must_use]
    pub fn peer_open(&self) -> bool {
        let jar = cookie::CookieJar::new();
        jar.private(&self.peer_key)
            .decrypt(cookie::Cookie::new(COOKIE_NAME, self.peer_token.clone()))
            .and_then(|cookie| serde_json::from_str::<PeerBlob>(cookie.value()).ok())
            .is_some()
    }
}

// ---------------------------------------------------------------------------------------
// Memory stores.

/// Our `MemoryStore` and tower-sessions' with the same number of logged-in sessions.
pub struct Stores {
    ours: MemoryStore,
    ids: Vec<SessionId>,
    changes: Record,
    meta: SessionMeta,
    peer: tower_sessions::MemoryStore,
    peer_records: Vec<tower_sessions::session::Record>,
}

impl Stores {
    /// Both stores holding `sessions` sessions each.
    ///
    /// # Errors
    /// If a session cannot be encoded or stored.
    pub async fn new(sessions: usize) -> Result<Self, SetupError> {
        let fail = |what: String| SetupError(format!("store fixture: {what}"));
        let data = logged_in();
        let now = now_ms();
        let meta = meta(now);
        let record =
            Record::encode(&BenchSession::from(data.clone())).map_err(|e| fail(e.to_string()))?;
        let mut changed = session_runtime::Tracked::new(BenchSession::from(data.clone()));
        changed.mark_changed(2); // `visits`: what the write handlers change
        let changes = Record::changes(&changed).map_err(|e| fail(e.to_string()))?;
        let ours = MemoryStore::new();
        let mut ids = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let id = SessionId::generate().map_err(|e| fail(e.to_string()))?;
            ours.create(&id, &record, &meta, now)
                .await
                .map_err(|e| fail(e.to_string()))?;
            ids.push(id);
        }
        let peer = tower_sessions::MemoryStore::default();
        let value = serde_json::to_value(&data).map_err(|e| fail(e.to_string()))?;
        let expiry_date = tower_sessions::cookie::time::OffsetDateTime::now_utc()
            + tower_sessions::cookie::time::Duration::days(365);
        let mut peer_records = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let mut record = tower_sessions::session::Record {
                id: tower_sessions::session::Id::default(),
                data: [(crate::data::PEER_KEY.to_owned(), value.clone())].into(),
                expiry_date,
            };
            peer.create(&mut record)
                .await
                .map_err(|e| fail(e.to_string()))?;
            peer_records.push(record);
        }
        Ok(Self {
            ours,
            ids,
            changes,
            meta,
            peer,
            peer_records,
        })
    }

    /// How many sessions each store holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the stores are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Ours: load session `index` (`true` if found).
    pub async fn ours_load(&self, index: usize) -> bool {
        let id = &self.ids[index % self.ids.len()];
        matches!(self.ours.load(id, now_ms()).await, Ok(Some(_)))
    }

    /// Ours: save a change of one field to session `index`, as a write request's commit
    /// does.
    pub async fn ours_save(&self, index: usize) -> bool {
        let id = &self.ids[index % self.ids.len()];
        self.ours
            .save(id, &self.changes, &self.meta, now_ms())
            .await
            .is_ok()
    }

    /// tower-sessions: load session `index`.
    pub async fn peer_load(&self, index: usize) -> bool {
        let id = &self.peer_records[index % self.peer_records.len()].id;
        matches!(self.peer.load(id).await, Ok(Some(_)))
    }

    /// tower-sessions: save session `index` (it always writes the whole record).
    pub async fn peer_save(&self, index: usize) -> bool {
        let record = &self.peer_records[index % self.peer_records.len()];
        self.peer.save(record).await.is_ok()
    }
}

// ---------------------------------------------------------------------------------------
// End to end.

/// One router called with one request: what an end-to-end case runs per iteration.
#[derive(Clone)]
pub struct Target {
    router: Router,
    path: &'static str,
    cookie: Option<HeaderValue>,
}

impl Target {
    /// `GET path` with `cookie` through `router`.
    #[must_use]
    pub fn new(router: &Router, path: &'static str, cookie: Option<&HeaderValue>) -> Self {
        Self {
            // What `axum::serve` does once (`into_make_service`): turn every handler into
            // a ready route, instead of doing it on every request.
            router: router.clone().with_state(()),
            path,
            cookie: cookie.cloned(),
        }
    }

    /// The same request through another router.
    #[must_use]
    pub fn with_router(&self, router: &Router) -> Self {
        Self::new(router, self.path, self.cookie.as_ref())
    }

    /// One request through the router.
    pub async fn call(&self) -> Response<Body> {
        call(&self.router, request(self.path, self.cookie.as_ref())).await
    }
}

/// One end-to-end case: ours, the closest peer (if any), and the no-session baseline.
pub struct Case {
    /// The case's name, as `compare` prints it.
    pub name: &'static str,
    /// Our router and request.
    pub ours: Target,
    /// The peer's, if the case has a peer.
    pub peer: Option<Target>,
    /// The no-session router and request.
    pub baseline: Target,
}

/// The end-to-end cases over the memory and cookie stores, each with a logged-in session
/// where the case needs one.
///
/// # Errors
/// If a router does not behave (a session does not read back).
pub async fn end_to_end() -> Result<Vec<Case>, SetupError> {
    let baseline = apps::baseline();
    let ours_memory = apps::ours(SessionLayer::new(MemoryStore::new()));
    let peer_memory = apps::peer(tower_sessions::MemoryStore::default());
    let key = Key::from_bytes(&SECRET).map_err(|e| SetupError(e.to_string()))?;
    let ours_cookie = apps::ours(SessionLayer::new(CookieStore::new(key)));
    let peer_cookie = apps::peer_cookie(axum_extra::extract::cookie::Key::from(&SECRET));

    let ours_memory_session = login(&ours_memory).await?;
    let peer_memory_session = login(&peer_memory).await?;
    let ours_cookie_session = login(&ours_cookie).await?;
    let peer_cookie_session = login(&peer_cookie).await?;

    // The baseline gets the same request as ours, so that the difference is the layer.
    let case = |name, ours: Target, peer: Option<Target>| Case {
        name,
        baseline: Target::new(&baseline, "/plain", ours.cookie.as_ref()),
        ours,
        peer,
    };
    Ok(vec![
        case(
            "e2e_layer_unused",
            Target::new(&ours_memory, "/plain", Some(&ours_memory_session)),
            Some(Target::new(
                &peer_memory,
                "/plain",
                Some(&peer_memory_session),
            )),
        ),
        case(
            "e2e_memory_read",
            Target::new(&ours_memory, "/read", Some(&ours_memory_session)),
            Some(Target::new(
                &peer_memory,
                "/read",
                Some(&peer_memory_session),
            )),
        ),
        case(
            "e2e_memory_write",
            Target::new(&ours_memory, "/write", Some(&ours_memory_session)),
            Some(Target::new(
                &peer_memory,
                "/write",
                Some(&peer_memory_session),
            )),
        ),
        case(
            "e2e_cookie_read",
            Target::new(&ours_cookie, "/read", Some(&ours_cookie_session)),
            Some(Target::new(
                &peer_cookie,
                "/read",
                Some(&peer_cookie_session),
            )),
        ),
        case(
            "e2e_cookie_write",
            Target::new(&ours_cookie, "/write", Some(&ours_cookie_session)),
            Some(Target::new(
                &peer_cookie,
                "/write",
                Some(&peer_cookie_session),
            )),
        ),
    ])
}

/// The Redis end-to-end cases against `server`: ours (`RedisStore`) and tower-sessions'
/// fred-based `RedisStore`, each with a logged-in session.
///
/// # Errors
/// If either store cannot connect, or a session does not read back.
pub async fn redis_end_to_end(server: &RedisServer) -> Result<Vec<Case>, SetupError> {
    use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config};

    let url = server.url();
    let ours_store = session_runtime::RedisStore::new(&url)
        .await
        .map_err(|error| SetupError(format!("our Redis store: {error}")))?;
    let ours = apps::ours(SessionLayer::new(ours_store));
    let config =
        Config::from_url(&url).map_err(|error| SetupError(format!("fred config: {error}")))?;
    let client = tower_sessions_redis_store::fred::prelude::Client::new(config, None, None, None);
    // The connection task runs on the runtime that drives the requests.
    let _connection = client
        .init()
        .await
        .map_err(|error| SetupError(format!("fred connect: {error}")))?;
    let peer = apps::peer(tower_sessions_redis_store::RedisStore::new(client));
    let ours_session = login(&ours).await?;
    let peer_session = login(&peer).await?;
    let baseline = apps::baseline();
    let case = |name, path| Case {
        name,
        ours: Target::new(&ours, path, Some(&ours_session)),
        peer: Some(Target::new(&peer, path, Some(&peer_session))),
        baseline: Target::new(&baseline, "/plain", Some(&ours_session)),
    };
    Ok(vec![
        case("e2e_redis_read", "/read"),
        case("e2e_redis_write", "/write"),
    ])
}
