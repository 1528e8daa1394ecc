//! Strongly typed sessions for axum.
//!
//! Describe the session data as a plain struct, derive [`Databag`] for it, add a
//! [`SessionLayer`], and take [`Session<T>`](Session) in handlers: reads are plain field
//! access, writes go through generated setters that record which fields changed, so the
//! layer writes only those fields, and nothing at all when nothing changed.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::{get, post}, Router};
//! use session_runtime::{Databag, MemoryStore, Session, SessionLayer};
//!
//! #[derive(Databag, Debug)]
//! pub struct UserSession {
//!     #[databag(default = "guest".to_owned())]
//!     pub username: String,
//!     pub user_id: Option<u64>,
//!     pub visits: u32,
//!     #[databag(rename = "t")]
//!     pub theme: String,
//!     #[databag(skip)]
//!     pub scratch: Vec<u8>,
//! }
//!
//! async fn index(mut session: Session<UserSession>) -> String {
//!     session.set_visits(session.visits + 1); // marks `visits` changed
//!     format!("hello {}, visit #{}", session.username, session.visits)
//! }
//!
//! async fn login(mut session: Session<UserSession>) {
//!     session.renew(); // new id, old record deleted: fixation defence
//!     session.set_user_id(Some(42));
//! }
//!
//! async fn logout(mut session: Session<UserSession>) {
//!     session.destroy();
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(index))
//!     .route("/login", post(login))
//!     .route("/logout", post(logout))
//!     .layer(
//!         SessionLayer::<UserSession>::new(MemoryStore::new())
//!             .idle_timeout(Duration::from_secs(30 * 60))
//!             .on_started(|id, data| tracing::info!(%id, user = ?data.user_id, "session started")),
//!     );
//! ```
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `derive` | on | `#[derive(Databag)]`, re-exported from `session-derive` |
//! | `cookie-store` | on | [`CookieStore`]: the session sealed with AES-256-GCM in the client's cookie |
//! | `redis` | off | `RedisStore`: Redis and Redis Cluster |
//! | `sqlite` | off | `SqliteStore`: a SQLite file (sqlx, bundled SQLite) |
//! | `postgres` | off | `PostgresStore`: PostgreSQL (sqlx) |
//!
//! | store | where sessions live | notes |
//! |---|---|---|
//! | [`MemoryStore`] | process memory | development, tests, one process; sharded locks, sweeper, capacity bound |
//! | [`CookieStore`] | the client's cookie | no server state; 4096-byte limit; cannot revoke one copied cookie before its deadline |
//! | `RedisStore` | Redis / Redis Cluster | one hash per session keyed by a hash of the id; field-level writes |
//! | `SqliteStore` | a SQLite file | one row per session keyed by a hash of the id; WAL; field-level writes merged in SQL; sweeper |
//! | `PostgresStore` | PostgreSQL | the same layout; one statement (one round trip) per operation; sweeper |
//! | your own | anywhere | implement [`SessionStore`](store::SessionStore) (see [`store`] for the contract and an example) |
//!
//! The layer's guarantees (lazy loading, at most one store read, fresh sessions for any
//! bad token, no write when unchanged, field-level merging, timeouts, hooks, 503 on store
//! failure) are listed in the README with the tests that pin them.
//!
//! Without a layer, a handle can be used on its own, for unit tests of code that takes
//! one:
//!
//! ```
//! use session_runtime::Databag;
//! use session_runtime::record::Record;
//! # #[derive(Databag)] pub struct UserSession { pub user_id: Option<u64>, pub visits: u32 }
//! let mut session = UserSessionHandle::new(UserSession::defaults());
//! session.set_visits(session.visits + 1);
//! session.update_user_id(|id| *id = Some(42));
//! // Only what changed is encoded.
//! let changes = Record::changes(session.tracked()).unwrap();
//! let keys: Vec<&str> = changes.fields.iter().map(|f| f.key.as_str()).collect();
//! assert_eq!(keys, ["user_id", "visits"]);
//! ```
//!
//! # Beyond the basics
//!
//! | need | call |
//! |---|---|
//! | "keep me signed in" | `session.remember_for(Some(duration))`: a persistent cookie, the session lasts `duration` since its last use (capped by [`SessionLayer::max_remember`]; the layer's absolute timeout still applies unless [`SessionLayer::remembered_absolute_timeout`] is set); `None` goes back |
//! | a session that ends at a set time | `session.end_at(Some(time))`: it only ever shortens the session |
//! | persist now, inside the handler | `session.save().await` (before a long operation; in a WebSocket after the upgrade): the same commit path, the store's error returned ([`SaveError`]) |
//! | log out and start afresh in one request | `session.destroy()`, then write: a fresh session in place (new id, new creation time) |
//! | change a session outside a request | [`SessionLayer::sessions`] then [`Sessions::load`], the same setters, `save().await` |
//! | CSRF protection | a token per render with the [`CsrfToken<T>`](CsrfToken) extractor or `session.csrf_token()` (hidden `csrf_token` field, `<meta>` tag); [`CsrfLayer<T>`](CsrfLayer) inside the session layer checks token and origin of unsafe requests, a [`CsrfRejection`] (403) otherwise |
//! | a message for the next page | `session.flash(message)?` (any serde type), read once with `session.take_flash::<M>()` |
//!
//! The README's handler cookbook has a compiled example of each (its CSRF section shows the
//! last two, and `cargo run --example forms` runs them), and its behaviour notes
//! say what happens with a second extraction, a handle moved into a task, read-only routes
//! and replayed cookie-store cookies.
//!
//! # The derive
//!
//! | attribute | where | effect |
//! |---|---|---|
//! | `#[databag(version = N)]` | struct | schema version stored with every record (default 1, must be at least 1) |
//! | `#[databag(migrate_from = Prev)]` | struct | records of older versions are decoded as `Prev` and converted with `From<Prev>` |
//! | `#[databag(default = EXPR)]` | field | value when the field is missing from a record (else `Default::default()`) |
//! | `#[databag(rename = "k")]` | field | key on the wire (else the field name); keys starting with `__` ([`RESERVED_PREFIX`]) belong to the runtime's internal fields and are refused |
//! | `#[databag(skip)]` | field | never stored; takes its default on every load |
//! | `#[databag(owner)]` | one field, `Option<T>` with `T:` [`OwnerKey`] | whose session it is: server-side stores index sessions by it, so [`Sessions`] can list and revoke an owner's sessions (`None`: nobody's) |
//!
//! For each field `x: X` the handle has `set_x(X)`, `x_mut() -> &mut X` (marks `x` changed
//! when borrowed) and `update_x(|x| ..)`. Assigning `session.x = ..` does not compile: the
//! handle dereferences to the data for reading only.
//!
//! # Wire format
//!
//! Each stored field is encoded on its own with MessagePack under its wire key; the record
//! carries the schema version. See [`record`] for the framing. Missing fields take their
//! defaults and unknown keys are ignored, so adding or removing a field needs no migration.
//!
//! # Where things are
//!
//! | path | for |
//! |---|---|
//! | the crate root | app and handler authors: [`Databag`], [`Session`], [`SessionLayer`], the stores, [`Key`]/[`KeyRing`], [`SessionId`], [`SessionDigest`], [`SessionRejection`], [`CsrfLayer`], [`CsrfToken`], [`CsrfRejection`]; [`Sessions`] and [`SessionInfo`] (every session of a user, listed and revoked), [`OwnerKey`]; [`DatabagHandle`] for code generic over the session type |
//! | [`record`] | the wire format of a session record, for store implementers |
//! | [`store`] | the [`SessionStore`](store::SessionStore) trait and its types, for store implementers |
//! | [`layer`] | the tower machinery behind [`SessionLayer`] |
//! | [`csrf`] | the tower machinery behind [`CsrfLayer`], and its defaults |
//! | [`client`] | what a session keeps of the client that started it (device, address), for listing an owner's sessions |
//! | [`clock`] | the clock deadlines are computed with, and [`ManualClock`](clock::ManualClock) for tests |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Layers, lowest first; a module only uses modules of its own layer or below (CI checks
// that no cycle between modules comes back; the README's "Architecture" section draws it).
// leaves
pub mod clock;
mod error;
mod id;
// schema
mod schema;
// record
mod codec;
mod guard;
mod migrate;
pub mod record;
// stores
#[cfg(feature = "cookie-store")]
mod cookie_store;
pub mod store;
// backend
mod backend;
// handle
mod handle;
// request
pub mod client;
mod commit;
mod config;
pub mod csrf;
mod extract;
pub mod layer;
mod owners;
mod plan;
mod rejection;
mod sessions;
mod slot;
mod transport;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use backend::SessionBackend;
pub use config::{SameSite, SessionLayer};
#[cfg(feature = "cookie-store")]
pub use cookie_store::{
    generate_secret, CookieStore, Key, KeyError, KeyRing, MAX_COOKIE_BYTES, MIN_KEY_BYTES,
};
pub use csrf::{CsrfLayer, CsrfRejection, CsrfToken};
pub use error::{EncodeError, LoadError, SaveError};
pub use id::{RandomnessError, SessionDigest, SessionId};
pub use owners::SessionInfo;
pub use rejection::SessionRejection;
pub use schema::{
    ChangeSet, Databag, DatabagHandle, Field, Internal, NoOwner, OwnerKey, Tracked, RESERVED_PREFIX,
};
pub use sessions::Sessions;
pub use store::memory::{MemoryStore, MemoryStoreBuilder};
#[cfg(feature = "redis")]
pub use store::redis::{RedisConnectError, RedisStore};
#[cfg(feature = "postgres")]
pub use store::sql::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "sqlite")]
pub use store::sql::sqlite::{SqliteStore, SqliteStoreBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::sql::{InvalidName, SqlConnectError};

/// The session of the current request, as an axum extractor: `Session<UserSession>`.
///
/// It is the handle type `#[derive(Databag)]` generates for `T` (`UserSessionHandle`):
/// read fields with plain field access, write them with the generated setters, and manage
/// the session with `id()`, `is_new()`, `renew()`, `destroy()`, `reset()` and
/// `expires_at()` (inherent methods; in code generic over `T`, import [`DatabagHandle`]).
/// Extracting it needs a [`SessionLayer<T>`] in front of the handler.
pub type Session<T> = <T as Databag>::Handle;

/// Derives [`Databag`](trait@Databag) for a struct with named fields. See the crate docs.
#[cfg(feature = "derive")]
pub use session_derive::Databag;
