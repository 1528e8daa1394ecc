//! Whose session it is: the [`OwnerKey`] trait of the types an owner field may hold, and
//! keeping the internal owner entry (which stores index sessions by) in step with the
//! `#[databag(owner)]` field.

use super::internal::Internal;
use super::{keys, Databag, Tracked};

/// A type that can name a session's owner: the type `T` of a
/// `#[databag(owner)] field: Option<T>`.
///
/// [`owner_key`](Self::owner_key) is the text stores index sessions by, so it must be
/// stable (the same value gives the same text in every process and every deploy) and
/// distinct (two owners never share a text). Implemented for the integer types, `String`
/// and `char`; implement it for your own id type (a newtype around a UUID, say) by writing
/// its canonical text:
///
/// ```
/// use session_runtime::OwnerKey;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct UserId(u64);
///
/// impl OwnerKey for UserId {
///     fn owner_key(&self) -> String {
///         self.0.to_string()
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name a session's owner",
    label = "an owner field holds `Option<T>` where `T: OwnerKey`",
    note = "integers and `String` are owner keys; for your own id type, implement `session_runtime::OwnerKey` with a stable text (floats, collections and maps have none)"
)]
pub trait OwnerKey {
    /// The owner's stable, distinct text. An empty text means no owner.
    fn owner_key(&self) -> String;
}

macro_rules! owner_keys_by_display {
    ($($ty:ty),*) => {$(
        impl OwnerKey for $ty {
            fn owner_key(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

owner_keys_by_display!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, char, String
);

impl<K: OwnerKey + ?Sized> OwnerKey for &K {
    fn owner_key(&self) -> String {
        (**self).owner_key()
    }
}

impl OwnerKey for str {
    fn owner_key(&self) -> String {
        self.to_owned()
    }
}

/// The [`Databag::Owner`] of session data without an owner field: no value of it exists, so
/// the owner API cannot be called for such data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOwner {}

impl OwnerKey for NoOwner {
    fn owner_key(&self) -> String {
        match *self {}
    }
}

/// The owner key of `value`, `None` when it has no owner.
pub(crate) fn key_of<T: Databag>(value: &T) -> Option<String> {
    value
        .owner()
        .map(OwnerKey::owner_key)
        .filter(|key| !key.is_empty())
}

/// Brings the internal owner entry in step with the owner field before a write: when the
/// entry does not say what the field says (the owner changed; a session stored before its
/// type had an owner field; an entry a failed index write took back), it is set to the
/// field's key (or unset), which makes the commit write it and the store index it. When
/// they agree, nothing is marked changed, so a request that does not move the owner writes
/// nothing for it.
pub(crate) fn sync<T: Databag>(tracked: &mut Tracked<T>) {
    if T::OWNER.is_none() {
        return;
    }
    let key = key_of(tracked.get());
    if tracked.internal().get_str(keys::OWNER) != key.as_deref() {
        set(tracked.internal_mut(), key.as_deref());
    }
}

fn set(internal: &mut Internal, key: Option<&str>) {
    if internal.get_str(keys::OWNER) != key {
        internal.set_str(keys::OWNER, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_strings_have_their_plain_text() {
        assert_eq!(42u64.owner_key(), "42");
        assert_eq!((-7i32).owner_key(), "-7");
        assert_eq!(String::from("ada").owner_key(), "ada");
        assert_eq!("ada".owner_key(), "ada");
    }

    #[test]
    fn the_entry_changes_only_when_the_owner_does() {
        let mut internal = Internal::new();
        set(&mut internal, None);
        assert!(!internal.is_changed(), "unsetting nothing changes nothing");
        set(&mut internal, Some("42"));
        assert!(internal.key_changed(keys::OWNER));
        assert_eq!(internal.get_str(keys::OWNER), Some("42"));
        internal.reset_changes();
        set(&mut internal, Some("42"));
        assert!(!internal.is_changed(), "the same owner is no change");
        set(&mut internal, None);
        assert!(internal.key_changed(keys::OWNER));
        assert_eq!(internal.get_str(keys::OWNER), None);
    }
}
