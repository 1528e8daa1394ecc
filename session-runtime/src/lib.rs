//! Strongly typed sessions for axum.
//!
//! Describe the session data as a plain struct and derive [`Databag`] for it. The derive
//! generates a handle type (`<Name>Handle`) whose setters record which fields changed, so the
//! data can be stored field by field and nothing is written when nothing changed.
//!
//! ```
//! use session_runtime::{Databag, DatabagHandle, Record};
//!
//! #[derive(Databag, Debug)]
//! #[databag(version = 1)]
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
//! let mut session = UserSessionHandle::new(UserSession::defaults());
//! assert_eq!(session.username, "guest"); // reads are plain field access
//! session.set_visits(session.visits + 1); // writes go through setters...
//! session.update_user_id(|id| *id = Some(42));
//! assert!(session.is_changed()); // ...which record the change
//!
//! // Only what changed is encoded; `theme` is stored under its short key `t`.
//! let changes = Record::changes(session.tracked()).unwrap();
//! let keys: Vec<&str> = changes.fields.iter().map(|f| f.key.as_str()).collect();
//! assert_eq!(keys, ["user_id", "visits"]);
//! ```
//!
//! # The derive
//!
//! | attribute | where | effect |
//! |---|---|---|
//! | `#[databag(version = N)]` | struct | schema version stored with every record (default 1, must be at least 1) |
//! | `#[databag(migrate_from = Prev)]` | struct | records of older versions are decoded as `Prev` and converted with `From<Prev>` |
//! | `#[databag(default = EXPR)]` | field | value when the field is missing from a record (else `Default::default()`) |
//! | `#[databag(rename = "k")]` | field | key on the wire (else the field name) |
//! | `#[databag(skip)]` | field | never stored; takes its default on every load |
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
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod clock;
mod commit;
mod config;
mod databag;
mod error;
mod extract;
mod id;
mod layer;
pub mod record;
mod rejection;
mod state;
pub mod store;
mod tracking;
mod transport;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use databag::{Databag, DatabagHandle, Field};
pub use error::{DecodeError, EncodeError};
pub use record::{Decoded, RawField, Record, RecordField};
pub use tracking::{ChangeSet, Tracked};

pub use clock::{Clock, ManualClock, SystemClock};
pub use id::{RandomnessError, SessionId};
pub use layer::{ResponseFuture, SameSite, SessionLayer, SessionService};
pub use rejection::SessionRejection;
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{MemoryStore, SessionStore};

/// The session of the current request, as an axum extractor: `Session<UserSession>`.
///
/// It is the handle type `#[derive(Databag)]` generates for `T` (`UserSessionHandle`):
/// read fields with plain field access, write them with the generated setters, and manage
/// the session with `id()`, `is_new()`, `renew()`, `destroy()`, `reset()` and
/// `expires_at()`. Extracting it needs a [`SessionLayer<T>`] in front of the handler.
pub type Session<T> = <T as Databag>::Handle;

/// Derives [`Databag`](trait@Databag) for a struct with named fields. See the crate docs.
#[cfg(feature = "derive")]
pub use session_derive::Databag;
