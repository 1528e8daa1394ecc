//! The schema of session data: the [`Databag`] trait `#[derive(Databag)]` implements, the
//! description of its fields, per-field change tracking, and the [`DatabagHandle`] trait of
//! the handle type the derive generates.
//!
//! This is the lowest layer of the runtime that knows about session data: it names no store,
//! no request and no wire framing (a record's fields arrive as [`RawField`]s).

pub(crate) mod csrf;
pub(crate) mod flash;
mod internal;
pub(crate) mod owner;
mod tracking;

use core::future::Future;
use core::ops::Deref;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DecodeError, EncodeError, SaveError};
use crate::id::{RandomnessError, SessionId};

pub(crate) use internal::keys;
pub(crate) use internal::{is_internal, read_str};
pub use internal::{Internal, RESERVED_PREFIX};
pub use owner::{NoOwner, OwnerKey};
pub use tracking::{ChangeSet, Tracked};

/// One field of a stored record, borrowed: its wire key and its MessagePack bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawField<'a> {
    /// The wire key.
    pub key: &'a str,
    /// The field's own MessagePack encoding.
    pub value: &'a [u8],
}

/// One stored field of a [`Databag`]: its Rust name and the key it has on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The field's name in the Rust struct.
    pub name: &'static str,
    /// The key the field is stored under: `#[databag(rename = "..")]`, else the name.
    pub key: &'static str,
}

/// Strongly typed session data.
///
/// Implement it with `#[derive(Databag)]`; the trait's methods are the contract between the
/// derive and the stores, and implementing it by hand is not supported. The derive also
/// generates the [`Handle`](Databag::Handle) type, through which handlers read fields
/// (plain field access) and write them (generated setters that record the change).
///
/// ```
/// use session_runtime::{Databag, DatabagHandle};
///
/// #[derive(Databag, Debug)]
/// pub struct Cart {
///     #[databag(default = "EUR".to_owned())]
///     pub currency: String,
///     pub items: Vec<u64>,
/// }
///
/// let mut cart = CartHandle::new(Cart::defaults());
/// assert_eq!(cart.currency, "EUR");
/// cart.items_mut().push(7);
/// assert_eq!(cart.changed_fields().map(|f| f.name).collect::<Vec<_>>(), ["items"]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not session data",
    label = "`{Self}` does not implement `Databag`",
    note = "derive it: `#[derive(session_runtime::Databag)]` on a struct with named fields"
)]
pub trait Databag: Sized + Send + Sync + 'static {
    /// The change-tracking handle generated for this type (`<Name>Handle`).
    type Handle: DatabagHandle<Data = Self>;

    /// The schema version stored with every record: `#[databag(version = N)]`, default 1.
    const VERSION: u32;

    /// The stored fields (all but `#[databag(skip)]` ones) in declaration order. A field's
    /// position here is its index in a [`ChangeSet`](crate::ChangeSet).
    const FIELDS: &'static [Field];

    /// What names a session's owner: `T` of the `#[databag(owner)] field: Option<T>`, or
    /// [`NoOwner`] when the struct has no owner field.
    type Owner: OwnerKey;

    /// The index in [`FIELDS`](Self::FIELDS) of the `#[databag(owner)]` field, if any.
    const OWNER: Option<usize> = None;

    /// Whose session this is: the owner field's value (`None`: nobody's, and in no owner
    /// index).
    fn owner(&self) -> Option<&Self::Owner> {
        None
    }

    /// A value with every field at its declared default (`#[databag(default = ..)]`, else
    /// `Default::default()`).
    fn defaults() -> Self;

    /// Appends the MessagePack encoding of stored field `index` to `out`.
    ///
    /// # Errors
    /// If the field's `Serialize` implementation fails, or `index` is out of range.
    fn encode_field(&self, index: usize, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Builds a value from the fields of a record of version [`VERSION`](Self::VERSION):
    /// missing fields take their defaults, unknown keys are ignored.
    ///
    /// # Errors
    /// If a present field does not decode as its type.
    fn decode_current(fields: &[RawField<'_>]) -> Result<Self, DecodeError>;

    /// Builds a value from a record of an older `version`, through the `migrate_from` chain.
    ///
    /// # Errors
    /// [`DecodeError::NoMigrationPath`] when no chain reaches `version` (the default), or any
    /// error of decoding the older record.
    fn decode_older(version: u32, fields: &[RawField<'_>]) -> Result<Self, DecodeError> {
        let _ = fields;
        Err(DecodeError::NoMigrationPath {
            found: version,
            current: Self::VERSION,
            type_name: core::any::type_name::<Self>(),
        })
    }
}

/// The handle type `#[derive(Databag)]` generates next to a session struct
/// (`UserSessionHandle`); `Session<T>` is `T`'s handle.
///
/// Handlers need no import: the handle has the same methods as inherent ones, generated with
/// the setters (`set_<field>`, `<field>_mut`, `update_<field>`). Import this trait in code
/// that is generic over the session type:
///
/// ```
/// use session_runtime::{Databag, DatabagHandle, Session};
///
/// /// Works for any session type: fixation defence after a privilege change.
/// fn elevate<T: Databag>(session: &mut Session<T>) {
///     if !session.is_new() {
///         session.renew();
///     }
/// }
/// # #[derive(Databag)] struct Visits { count: u32 }
/// # let mut session = VisitsHandle::new(Visits { count: 1 });
/// # elevate::<Visits>(&mut session);
/// ```
///
/// Reads go through `Deref<Target = Data>`; there is no `DerefMut`, so a field cannot be
/// assigned without the change being recorded.
///
/// Why a generated type rather than one generic runtime type: methods found directly on the
/// receiver's own type get two-phase borrows, so `session.set_visits(session.visits + 1)`
/// compiles; methods reached through `DerefMut` would not. A generated type can carry the
/// setters as inherent methods, so handlers need no extra `use` either.
pub trait DatabagHandle: Deref<Target = Self::Data> + Sized + Send + 'static {
    /// The session data type.
    type Data: Databag<Handle = Self>;

    /// Wraps tracked session data in a handle that no session layer manages (for unit tests
    /// of code that takes a handle). Its id is random, it is new, and nothing it does is
    /// stored.
    fn from_tracked(tracked: Tracked<Self::Data>) -> Self;

    /// The tracked session data: the value and which fields changed.
    fn tracked(&self) -> &Tracked<Self::Data>;

    /// Mutable access to the tracked data. [`Tracked`] has no `DerefMut`, so this cannot
    /// change a field without recording it.
    fn tracked_mut(&mut self) -> &mut Tracked<Self::Data>;

    /// Unwraps the tracked session data. Inside a request, a handle taken apart this way
    /// gives nothing back to the layer: none of its changes are saved.
    fn into_tracked(self) -> Tracked<Self::Data>;

    /// The session id. `Display` prints a fingerprint, not the token. After
    /// [`renew`](Self::renew), the new id (drawn when `renew` is called; in the rare case the
    /// operating system's random source fails then, the old one until the commit draws it).
    fn id(&self) -> &SessionId;

    /// Whether the session did not exist before this request (it is stored only once
    /// something is written to it).
    fn is_new(&self) -> bool;

    /// Gives the session a new id when the request commits; the old id stops working. Call
    /// it whenever privileges change (login), against session fixation. A new session the
    /// handler writes nothing to is still not stored, and nothing is sent.
    fn renew(&mut self);

    /// Ends the session when the request commits: the record is deleted (`on_deleted`
    /// runs) and the client told to forget its token. From here on the handle reads
    /// defaults. Writes after `destroy()` start a fresh session in place (Rails'
    /// `reset_session`): a new id, a new creation time, only the new writes stored.
    fn destroy(&mut self);

    /// Puts every field back to its default (all marked changed).
    fn reset(&mut self);

    /// When the session expires if it is not used again (`None` without timeouts), as of
    /// the load or the last [`save`](Self::save).
    fn expires_at(&self) -> Option<SystemTime>;

    /// Remember me: with `Some(duration)`, the session lasts `duration` since its last use
    /// (instead of the layer's idle timeout) and its cookie persists across browser
    /// restarts, with a `Max-Age` that follows the session's deadline; with `None`, back to
    /// the layer's idle timeout and a cookie that ends with the browser session. The choice
    /// is stored with the session and holds for its later requests. The layer caps
    /// `duration` (`SessionLayer::max_remember`, default 400 days, the longest `Max-Age`
    /// browsers keep) and its absolute timeout still applies unless the layer sets
    /// `SessionLayer::remembered_absolute_timeout`.
    fn remember_for(&mut self, duration: Option<Duration>);

    /// The remember-me duration chosen for this session, if any.
    fn remembered_for(&self) -> Option<Duration>;

    /// A fixed end (a wall-clock deadline) for this session, however much it is used, or
    /// `None` for none. It only ever shortens the session: the idle and absolute timeouts
    /// still apply. Stored with the session; the store's deadline and a persistent cookie's
    /// `Max-Age` follow it.
    fn end_at(&mut self, at: Option<SystemTime>);

    /// The fixed end chosen for this session, if any.
    fn ends_at(&self) -> Option<SystemTime>;

    /// A masked CSRF token for this session, for a hidden form field or a `<meta>` tag: a
    /// different string on every call (a fresh one-time pad over the session's secret, so
    /// compression side channels such as BREACH learn nothing), each one valid for as long
    /// as the secret is. The secret is made the first time a token is asked for (and stored
    /// with the session, which then is written), and replaced by [`renew`](Self::renew) and
    /// [`destroy`](Self::destroy): tokens minted before a login or logout stop working.
    /// `CsrfLayer` checks the tokens of unsafe requests.
    ///
    /// # Errors
    /// If the operating system's random source fails (no secret is made then).
    fn csrf_token(&mut self) -> Result<String, RandomnessError> {
        csrf::token(self.tracked_mut().internal_mut())
    }

    /// Queues a flash message for a later request of this session (typically the page a
    /// redirect leads to), which reads it once with [`take_flash`](Self::take_flash). Stored
    /// with the session like a field; at most 32 are kept (the oldest go first).
    ///
    /// # Errors
    /// If the message's `Serialize` implementation fails; nothing is queued then.
    fn flash<M: Serialize>(&mut self, message: M) -> Result<(), EncodeError> {
        flash::push(self.tracked_mut().internal_mut(), &message)
    }

    /// Takes the flash messages queued by earlier requests, oldest first, and removes them
    /// from the session: the next request sees none. When there were none, nothing changes
    /// and nothing is written. Messages that do not decode as `M` are dropped with a
    /// warning: use one message type (an enum, say) per session type.
    fn take_flash<M: DeserializeOwned>(&mut self) -> Vec<M> {
        flash::take(self.tracked_mut().internal_mut())
    }

    /// Persists what changed so far, now, through the same path as the commit after the
    /// handler (field-level writes, no resurrection, deadlines, hooks); the commit then
    /// writes only what changes after this. Use it before a long operation, or in a
    /// WebSocket after the upgrade, where nothing is committed any more. A token the save
    /// issues (a new session, a renewal) goes out with the response; once the response is
    /// gone, such a save fails with [`SaveError::TokenUndeliverable`] and writes nothing.
    /// A handle no layer manages saves nothing and returns `Ok`.
    ///
    /// # Errors
    /// See [`SaveError`]; after an error the handle still holds its unsaved changes.
    fn save(&mut self) -> impl Future<Output = Result<(), SaveError>> + Send;
}
