//! The fixtures of every case, built once and shared by the criterion benches and
//! `compare`: what is measured is defined here, how long it is measured is up to the caller.

use axum::body::Body;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, Response};
use axum::Router;
use session_runtime::record::Record;
use session_runtime::store::{SessionMeta, SessionStore as _};
use session_runtime::{CookieStore, Key, MemoryStore, SessionId, SessionLayer};
use tower_sessions::SessionStore as _;

use crate::apps::{self, body_text, call, login, login_expecting, request, SetupError};
use crate::data::{
    blob, incompressible_blob, logged_in, record_len, BenchSession, BenchSessionHandle, PeerBlob,
};
use crate::redis::RedisServer;

/// A fixed 64-byte secret, so runs are comparable.
const SECRET: [u8; 64] = [0x5e; 64];

/// Far enough in the future that nothing expires during a run (year 2100).
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

fn meta(now_ms: u64) -> SessionMeta {
    SessionMeta {
        created_ms: now_ms,
        seen_ms: now_ms,
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

/// Two requests whose difference in time is one step of the cookie codec: the same router
/// and cookie, one request paying the step and the other not. The library does not expose
/// its codec, so this is how a bench sees it: as a handler's request pays for it.
#[derive(Clone)]
pub struct Step {
    /// The request that pays for the step.
    pub with: Target,
    /// The same request without it.
    pub without: Target,
}

/// Sealing and opening a cookie holding `bytes` of session data, through the public API:
/// in-process requests through a `SessionLayer` with a `CookieStore`, and the same through
/// the cookie peer (axum-extra's `PrivateCookieJar`, the same data as JSON).
///
/// | step | with | without |
/// |---|---|---|
/// | open | `/read` with the cookie: the layer opens it and decodes the session | `/plain` with the same cookie: layer present, session never extracted |
/// | seal | `/write` with the cookie: one field changes, the whole session is sealed into a `Set-Cookie` | `/read` with the same cookie |
/// | tampered | `/read` with one flipped character in the middle of the ciphertext: decryption fails, fresh session (and, if the layer forgets stale tokens, a removal cookie) | `/read` with no cookie: fresh session (both draw a new session id) |
///
/// So "open" includes finding the cookie in the `Cookie` header and building the handle,
/// and "seal" includes the setter, the encoding and formatting the `Set-Cookie` header; the
/// peer's steps are measured the same way on the same routes.
pub struct Codec {
    record_len: usize,
    cookie_name: String,
    token_len: usize,
    /// Ours: opening the cookie.
    pub ours_open: Step,
    /// Ours: sealing the session again after one field changed.
    pub ours_seal: Step,
    /// Ours: rejecting a tampered cookie.
    pub ours_tampered: Step,
    /// The cookie peer: decrypting the cookie and decoding the JSON.
    pub peer_open: Step,
    /// The cookie peer: encoding the JSON and encrypting it into a `Set-Cookie`.
    pub peer_seal: Step,
}

impl Codec {
    /// A fixture with `bytes` of encoded session data (as close as [`blob`] gets).
    ///
    /// # Errors
    /// If a router does not behave as the steps assume (a cookie does not open, a read
    /// writes, a write does not, a tampered cookie opens): the difference would not be the
    /// step.
    pub async fn new(bytes: usize) -> Result<Self, SetupError> {
        let fail = |what: String| SetupError(format!("codec fixture ({bytes} B): {what}"));
        let value = blob(bytes);
        let key = Key::from_bytes(&SECRET).map_err(|e| fail(e.to_string()))?;
        let ours = apps::ours_blob(SessionLayer::new(CookieStore::new(key)), value.clone());
        let peer = apps::peer_blob_cookie(
            axum_extra::extract::cookie::Key::from(&SECRET),
            PeerBlob::from(&value),
        );
        let expected = value.user_id.to_string();
        let cookie = apps::login_expecting(&ours, &expected).await?;
        let peer_cookie = apps::login_expecting(&peer, &expected).await?;
        // The layer's default cookie name, whatever it is.
        let (cookie_name, token) = cookie
            .to_str()
            .ok()
            .and_then(|pair| pair.split_once('='))
            .ok_or_else(|| fail(format!("login sent {cookie:?}")))?;
        let (cookie_name, token_len) = (cookie_name.to_owned(), token.len());
        let tampered = tamper(&cookie).ok_or_else(|| fail("cannot tamper".to_owned()))?;

        let fixture = Self {
            record_len: record_len(&value),
            cookie_name,
            token_len,
            ours_open: Step {
                with: Target::new(&ours, "/read", Some(&cookie)),
                without: Target::new(&ours, "/plain", Some(&cookie)),
            },
            ours_seal: Step {
                with: Target::new(&ours, "/write", Some(&cookie)),
                without: Target::new(&ours, "/read", Some(&cookie)),
            },
            ours_tampered: Step {
                with: Target::new(&ours, "/read", Some(&tampered)),
                without: Target::new(&ours, "/read", None),
            },
            peer_open: Step {
                with: Target::new(&peer, "/read", Some(&peer_cookie)),
                without: Target::new(&peer, "/plain", Some(&peer_cookie)),
            },
            peer_seal: Step {
                with: Target::new(&peer, "/write", Some(&peer_cookie)),
                without: Target::new(&peer, "/read", Some(&peer_cookie)),
            },
        };
        // What each request must answer for the differences to be the steps.
        let next = value.user_id.wrapping_add(1).to_string();
        let (nothing, token) = (&[Sent::Nothing][..], &[Sent::Token][..]);
        // A rejected cookie may be cleared in the same response (the layer forgets a stale
        // token); that is part of rejecting it.
        let nothing_or_removal = &[Sent::Nothing, Sent::Removal][..];
        let checks: [(&str, &Target, &str, &[Sent]); 9] = [
            ("our read", &fixture.ours_open.with, &expected, nothing),
            ("our plain", &fixture.ours_open.without, "hello", nothing),
            ("our write", &fixture.ours_seal.with, &next, token),
            (
                "our tampered read",
                &fixture.ours_tampered.with,
                "0",
                nothing_or_removal,
            ),
            (
                "our fresh read",
                &fixture.ours_tampered.without,
                "0",
                nothing,
            ),
            ("peer read", &fixture.peer_open.with, &expected, nothing),
            ("peer plain", &fixture.peer_open.without, "hello", nothing),
            ("peer write", &fixture.peer_seal.with, &next, token),
            ("peer read", &fixture.peer_seal.without, &expected, nothing),
        ];
        for (what, target, body, allowed) in checks {
            let response = target.call().await;
            let sent = Sent::of(&response);
            let text = body_text(response).await;
            if text != body || !allowed.contains(&sent) {
                return Err(fail(format!(
                    "{what} answered {text:?} ({sent:?}), expected {body:?} ({allowed:?})"
                )));
            }
        }
        Ok(fixture)
    }

    /// The size of the sealed record in bytes.
    #[must_use]
    pub fn record_len(&self) -> usize {
        self.record_len
    }

    /// The name of our cookie (the layer's default).
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The size of our token (the cookie value) in bytes.
    #[must_use]
    pub fn token_len(&self) -> usize {
        self.token_len
    }
}

/// What a response's `Set-Cookie` headers do to the session cookie (the only cookie the
/// codec routes set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Nothing: the cookie is left as it is.
    Nothing,
    /// A new token.
    Token,
    /// A removal (an empty value).
    Removal,
}

impl Sent {
    /// What `response` does: a token if any `Set-Cookie` has a value, else a removal if
    /// there is one, else nothing.
    #[must_use]
    pub fn of(response: &Response<Body>) -> Self {
        let empty: Vec<bool> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| {
                let pair = value.to_str().ok()?.split(';').next()?;
                Some(pair.split_once('=')?.1.trim().is_empty())
            })
            .collect();
        if empty.contains(&false) {
            Self::Token
        } else if empty.is_empty() {
            Self::Nothing
        } else {
            Self::Removal
        }
    }
}

/// `cookie` (`name=token`) with the middle character of the token changed to another
/// base64 character: still valid base64 and framing, so rejection costs the whole
/// decryption.
fn tamper(cookie: &HeaderValue) -> Option<HeaderValue> {
    let text = cookie.to_str().ok()?;
    let start = text.find('=')? + 1;
    let middle = start + (text.len() - start) / 2;
    let flipped = if text.as_bytes().get(middle)? == &b'A' {
        "B"
    } else {
        "A"
    };
    let tampered = format!(
        "{}{flipped}{}",
        text.get(..middle)?,
        text.get(middle + 1..)?
    );
    HeaderValue::from_str(&tampered).ok()
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
        // `visits` changed: what the write handlers change.
        let mut changed = BenchSessionHandle::new(BenchSession::from(data.clone()));
        changed.set_visits(data.visits + 1);
        let changes = Record::changes(changed.tracked()).map_err(|e| fail(e.to_string()))?;
        // Room for all of them: the default bound (100,000 over 64 shards) would evict some,
        // and their loads would measure misses. Still bounded, as a default store is.
        let ours = MemoryStore::builder()
            .max_sessions(
                sessions
                    .saturating_mul(2)
                    .max(MemoryStore::DEFAULT_MAX_SESSIONS),
            )
            .build();
        let mut ids = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let id = SessionId::generate().map_err(|e| fail(e.to_string()))?;
            ours.create(&id.digest(), &record, &meta, now)
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
        let stores = Self {
            ours,
            ids,
            changes,
            meta,
            peer,
            peer_records,
        };
        // Every session is there: the cases measure loads and saves of stored sessions.
        for index in 0..sessions {
            if !stores.ours_load(index).await || !stores.peer_load(index).await {
                return Err(fail(format!("session {index} of {sessions} is not stored")));
            }
        }
        Ok(stores)
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
        matches!(self.ours.load(&id.digest(), now_ms()).await, Ok(Some(_)))
    }

    /// Ours: save a change of one field to session `index`, as a write request's commit
    /// does.
    pub async fn ours_save(&self, index: usize) -> bool {
        let id = &self.ids[index % self.ids.len()];
        self.ours
            .save(&id.digest(), &self.changes, &self.meta, now_ms())
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

/// Where the SQL cases keep their sessions: a PostgreSQL server of our own, and a SQLite
/// file in a temporary directory. Both are removed when this is dropped.
pub struct SqlDatabases {
    postgres: integration_tests::postgres_harness::PostgresServer,
    sqlite: integration_tests::temp::TempDir,
}

impl SqlDatabases {
    /// Starts PostgreSQL (`initdb` and `postgres` from Debian's `postgresql`: an error with
    /// an install hint when missing, never a skipped case) and makes the SQLite directory.
    pub async fn start() -> Self {
        Self {
            postgres: integration_tests::postgres_harness::PostgresServer::start().await,
            sqlite: integration_tests::temp::TempDir::new("bench-sqlite"),
        }
    }
}

/// Bytes of session data besides the changed field in the large-session SQL cases.
pub const LARGE_SESSION_BYTES: usize = 4096;

/// The SQL end-to-end cases: ours (`SqliteStore`, `PostgresStore`) and tower-sessions'
/// sqlx stores, each over the same pool (so the same database, connections and settings:
/// SQLite in WAL mode with `synchronous = NORMAL`, PostgreSQL without a ping before each
/// use), each with a logged-in session: the bench session (`e2e_*_read`, `e2e_*_write`),
/// and one holding [`LARGE_SESSION_BYTES`] of incompressible text besides a number that
/// `/write` changes (`e2e_*_read_4KiB`, `e2e_*_write_4KiB`: where writing only the changed
/// field and rewriting the whole record part).
///
/// # Errors
/// If a database cannot be reached or migrated, or a session does not read back.
pub async fn sql_end_to_end(databases: &SqlDatabases) -> Result<Vec<Case>, SetupError> {
    let failed = |what: &str| {
        let what = what.to_owned();
        move |error: &dyn std::fmt::Display| SetupError(format!("{what}: {error}"))
    };
    let sqlite = sqlite_pool(&databases.sqlite.sqlite_url("bench.db")).await?;
    let postgres = postgres_pool(&databases.postgres.url("postgres")).await?;

    let ours_sqlite = session_runtime::SqliteStore::from_pool(sqlite.clone());
    ours_sqlite
        .migrate()
        .await
        .map_err(|error| failed("our sqlite migrate")(&error))?;
    let peer_sqlite = tower_sessions_sqlx_store::SqliteStore::new(sqlite);
    peer_sqlite
        .migrate()
        .await
        .map_err(|error| failed("peer sqlite migrate")(&error))?;
    let ours_postgres = session_runtime::PostgresStore::from_pool(postgres.clone());
    ours_postgres
        .migrate()
        .await
        .map_err(|error| failed("our postgres migrate")(&error))?;
    let peer_postgres = tower_sessions_sqlx_store::PostgresStore::new(postgres);
    peer_postgres
        .migrate()
        .await
        .map_err(|error| failed("peer postgres migrate")(&error))?;

    let baseline = apps::baseline();
    let mut cases = Vec::new();
    let sqlite_floor = floor(ours_sqlite.pool().clone());
    let postgres_floor = floor(ours_postgres.pool().clone());
    let sqlite_update_floor = update_floor(ours_sqlite.pool().clone())
        .await
        .map_err(|error| failed("sqlite floor table")(&error))?;
    let postgres_update_floor = update_floor(ours_postgres.pool().clone())
        .await
        .map_err(|error| failed("postgres floor table")(&error))?;
    // A session holding 4 KiB besides the field a write changes: we write the change, the
    // peer writes the whole record again.
    let large = incompressible_blob(LARGE_SESSION_BYTES);
    let large_read = large.user_id.to_string();
    for (names, ours, peer, expected) in [
        (
            ["e2e_sqlite_read_4KiB", "e2e_sqlite_write_4KiB"],
            apps::ours_blob(SessionLayer::new(ours_sqlite.clone()), large.clone()),
            apps::peer_blob(peer_sqlite.clone(), PeerBlob::from(&large)),
            large_read.as_str(),
        ),
        (
            ["e2e_postgres_read_4KiB", "e2e_postgres_write_4KiB"],
            apps::ours_blob(SessionLayer::new(ours_postgres.clone()), large.clone()),
            apps::peer_blob(peer_postgres.clone(), PeerBlob::from(&large)),
            large_read.as_str(),
        ),
        (
            ["e2e_sqlite_read", "e2e_sqlite_write"],
            apps::ours(SessionLayer::new(ours_sqlite)),
            apps::peer(peer_sqlite),
            apps::LOGGED_IN_READ,
        ),
        (
            ["e2e_postgres_read", "e2e_postgres_write"],
            apps::ours(SessionLayer::new(ours_postgres)),
            apps::peer(peer_postgres),
            apps::LOGGED_IN_READ,
        ),
    ] {
        let ours_session = login_expecting(&ours, expected).await?;
        let peer_session = login_expecting(&peer, expected).await?;
        for (name, path) in names.into_iter().zip(["/read", "/write"]) {
            cases.push(Case {
                name,
                ours: Target::new(&ours, path, Some(&ours_session)),
                peer: Some(Target::new(&peer, path, Some(&peer_session))),
                baseline: Target::new(&baseline, "/plain", Some(&ours_session)),
            });
        }
    }
    // What two round trips cost with no session work at all: the floor of a write through
    // either store (a load, then one write statement); and the least any store that loads
    // before the handler and writes after it can do: read one row by its key, then update
    // one unindexed column of it (a HOT update on PostgreSQL).
    for (name, router) in [
        ("e2e_sqlite_floor_two_selects", sqlite_floor),
        ("e2e_postgres_floor_two_selects", postgres_floor),
        ("e2e_sqlite_floor_load_and_update", sqlite_update_floor),
        ("e2e_postgres_floor_load_and_update", postgres_update_floor),
    ] {
        cases.push(Case {
            name,
            ours: Target::new(&router, "/write", None),
            peer: None,
            baseline: Target::new(&baseline, "/plain", None),
        });
    }
    Ok(cases)
}

/// A router whose `/write` reads one row of a one-row table by its key, then increments a
/// column of it that no index covers (a HOT update on PostgreSQL, one page on SQLite), each
/// statement on a connection taken from `pool`: the least a write through any store that
/// loads before the handler and writes after it costs, with no session in it.
///
/// # Errors
/// If the table cannot be made.
async fn update_floor<DB>(pool: sqlx::Pool<DB>) -> Result<Router, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
{
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS session_bench_floor (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO session_bench_floor (id, n) VALUES (1, 0) ON CONFLICT DO NOTHING")
        .execute(&pool)
        .await?;
    Ok(Router::new().route(
        "/write",
        axum::routing::get(move || {
            let pool = pool.clone();
            async move {
                let n: Result<i64, sqlx::Error> =
                    sqlx::query_scalar("SELECT n FROM session_bench_floor WHERE id = 1")
                        .fetch_one(&pool)
                        .await;
                let updated = sqlx::query("UPDATE session_bench_floor SET n = n + 1 WHERE id = 1")
                    .execute(&pool)
                    .await;
                match (n, updated) {
                    (Ok(n), Ok(_)) => (n + 1).to_string(),
                    _ => "failed".to_owned(),
                }
            }
        }),
    ))
}

/// A router whose `/write` runs `SELECT 1` twice over `pool`, each on a connection taken
/// from the pool, as the stores run their statements.
fn floor<DB>(pool: sqlx::Pool<DB>) -> Router
where
    DB: sqlx::Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    i32: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
{
    Router::new().route(
        "/write",
        axum::routing::get(move || {
            let pool = pool.clone();
            async move {
                let mut sum = 0;
                for _ in 0..2 {
                    let one: Result<i32, sqlx::Error> =
                        sqlx::query_scalar("SELECT 1").fetch_one(&pool).await;
                    sum += one.unwrap_or(0);
                }
                sum.to_string()
            }
        }),
    )
}

/// The SQLite pool every SQL case and server uses: the file at `url` (created if missing),
/// WAL mode with `synchronous = NORMAL`, up to 8 connections, no check before use.
///
/// # Errors
/// If the URL is not a SQLite URL or the file cannot be opened.
pub async fn sqlite_pool(url: &str) -> Result<sqlx::SqlitePool, SetupError> {
    use std::str::FromStr as _;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| SetupError(format!("sqlite url: {error}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|error| SetupError(format!("sqlite: {error}")))
}

/// The PostgreSQL pool every SQL case and server uses: up to 10 connections to `url`, no
/// ping before use.
///
/// # Errors
/// If the server cannot be reached.
pub async fn postgres_pool(url: &str) -> Result<sqlx::PgPool, SetupError> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .test_before_acquire(false)
        .connect(url)
        .await
        .map_err(|error| SetupError(format!("postgres: {error}")))
}
