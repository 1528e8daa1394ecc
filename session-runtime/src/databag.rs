//! The [`Databag`] trait: what `#[derive(Databag)]` implements for a session struct.

use core::ops::Deref;

use crate::__private::Core;
use crate::error::{DecodeError, EncodeError};
use crate::record::RawField;
use crate::tracking::Tracked;

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

/// The handle type `#[derive(Databag)]` generates next to a session struct.
///
/// Handlers use the handle's inherent, generated methods (`set_<field>`, `<field>_mut`,
/// `update_<field>`); this trait is for code that is generic over any session type, such as
/// stores and the layer. Reads go through `Deref<Target = Data>`; the handle has no
/// `DerefMut`, so a field cannot be assigned without the change being recorded.
///
/// Why a generated type rather than one generic runtime type: methods found directly on the
/// receiver's own type get two-phase borrows, so `session.set_visits(session.visits + 1)`
/// compiles; methods reached through `DerefMut` would not. A generated type can carry the
/// setters as inherent methods, so handlers need no extra `use` either.
pub trait DatabagHandle: Deref<Target = Self::Data> + Sized + Send + 'static {
    /// The session data type.
    type Data: Databag<Handle = Self>;

    #[doc(hidden)]
    fn __from_core(core: Core<Self::Data>) -> Self;
    #[doc(hidden)]
    fn __core(&self) -> &Core<Self::Data>;
    #[doc(hidden)]
    fn __core_mut(&mut self) -> &mut Core<Self::Data>;
    #[doc(hidden)]
    fn __into_core(self) -> Core<Self::Data>;

    /// Wraps tracked session data in a handle that no session layer manages (for unit tests
    /// of code that takes a handle).
    fn from_tracked(tracked: Tracked<Self::Data>) -> Self {
        Self::__from_core(Core::new(tracked))
    }

    /// The tracked session data: the value and which fields changed.
    fn tracked(&self) -> &Tracked<Self::Data> {
        self.__core().tracked()
    }

    /// Mutable access to the tracked data. [`Tracked`] has no `DerefMut`, so this cannot
    /// change a field without recording it.
    fn tracked_mut(&mut self) -> &mut Tracked<Self::Data> {
        self.__core_mut().tracked_mut()
    }

    /// Unwraps the tracked session data.
    fn into_tracked(self) -> Tracked<Self::Data> {
        self.__into_core().into_tracked()
    }
}
