//! Internal fields: per-session values the runtime keeps in the record next to the user's
//! fields (the remember-me choice, a fixed end time, the CSRF secret, flash messages).
//!
//! They live under wire keys that start with [`RESERVED_PREFIX`], which `#[derive(Databag)]`
//! refuses for user fields, so every store persists them exactly like user fields: one entry
//! per key, written field by field, merged with concurrent changes, and never interpreted by
//! the store. A value is the field's own MessagePack encoding; MessagePack `nil` means
//! "unset" (a field-level save cannot remove a key, so unsetting writes `nil`).
//!
//! Entries the runtime does not know (written by a newer deploy) are kept and written back
//! whole with the record, so an older instance never drops them.

/// Wire keys starting with this belong to the runtime; user fields may not use it.
pub const RESERVED_PREFIX: &str = "__";

/// The wire keys of the internal fields this runtime knows.
pub(crate) mod keys {
    /// How long a remembered session lasts since its last use, in milliseconds (`u64`).
    pub(crate) const REMEMBER: &str = "__remember";
    /// The fixed end of the session, in milliseconds since the Unix epoch (`u64`).
    pub(crate) const END: &str = "__end";
    /// The session's CSRF secret (MessagePack bin, 32 bytes).
    pub(crate) const CSRF: &str = "__csrf";
    /// The flash queue (MessagePack array of bin entries, one message each).
    pub(crate) const FLASH: &str = "__flash";
    /// Whose session it is: the owner field's key ([`OwnerKey`](crate::OwnerKey)) as a
    /// MessagePack string, `nil` for no owner. Stores index sessions by it.
    pub(crate) const OWNER: &str = "__owner";
    /// The device the session was started from (the User-Agent, truncated; opt-in).
    pub(crate) const DEVICE: &str = "__device";
    /// The client address the session was started from (opt-in), as text.
    pub(crate) const ADDRESS: &str = "__addr";
}

/// At most this many internal entries are kept from a loaded record (the runtime knows a
/// handful): a hostile record with thousands of `__` keys costs no more than this.
const MAX_ENTRIES: usize = 64;

/// MessagePack `nil`: the encoding of an unset internal field.
const NIL: u8 = 0xc0;

/// The string a MessagePack `str` holds, `None` for anything else (`nil` included) or
/// for trailing bytes.
pub(crate) fn read_str(mut bytes: &[u8]) -> Option<&str> {
    let len = rmp::decode::read_str_len(&mut bytes).ok()?;
    let len = usize::try_from(len).ok()?;
    if bytes.len() != len {
        return None;
    }
    core::str::from_utf8(bytes).ok()
}

/// Whether `key` is an internal field's key.
#[inline]
#[must_use]
pub(crate) fn is_internal(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    value: Vec<u8>,
    changed: bool,
}

/// The internal fields of one session, with which of them changed since the last save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Internal {
    entries: Vec<Entry>,
}

impl Internal {
    /// No internal field set.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds an entry as loaded from a record (not marked changed). Entries past
    /// [`MAX_ENTRIES`] are ignored.
    pub(crate) fn insert_loaded(&mut self, key: &str, value: &[u8]) {
        let full = self.entries.len() >= MAX_ENTRIES;
        match self.entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) => entry.value = value.to_vec(),
            None if full => {}
            None => self.entries.push(Entry {
                key: key.to_owned(),
                value: value.to_vec(),
                changed: false,
            }),
        }
    }

    /// The encoded value under `key`, `None` when it is absent or unset.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.as_slice())
            .filter(|value| *value != [NIL])
    }

    /// Sets (or with `None` unsets) the encoded value under `key`, marking it changed when
    /// the value differs from what is there.
    pub(crate) fn set(&mut self, key: &str, value: Option<Vec<u8>>) {
        let value = value.unwrap_or_else(|| vec![NIL]);
        match self.entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) if entry.value == value => {}
            Some(entry) => {
                entry.value = value;
                entry.changed = true;
            }
            // Unsetting something never set changes nothing.
            None if value == [NIL] => {}
            None => self.entries.push(Entry {
                key: key.to_owned(),
                value,
                changed: true,
            }),
        }
    }

    /// A `u64` internal field.
    pub(crate) fn get_u64(&self, key: &str) -> Option<u64> {
        let mut bytes = self.get(key)?;
        rmp::decode::read_int(&mut bytes).ok()
    }

    /// A string internal field.
    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        read_str(self.get(key)?)
    }

    /// Sets (or unsets) a string internal field.
    pub(crate) fn set_str(&mut self, key: &str, value: Option<&str>) {
        let value = value.map(|value| {
            let mut out = Vec::with_capacity(value.len() + 5);
            // Writing into a Vec cannot fail.
            let _ = rmp::encode::write_str(&mut out, value);
            out
        });
        self.set(key, value);
    }

    /// Sets (or unsets) a `u64` internal field.
    pub(crate) fn set_u64(&mut self, key: &str, value: Option<u64>) {
        let value = value.map(|value| {
            let mut out = Vec::with_capacity(9);
            // Writing into a Vec cannot fail.
            let _ = rmp::encode::write_uint(&mut out, value);
            out
        });
        self.set(key, value);
    }

    /// Whether any internal field changed since the last save.
    #[must_use]
    pub fn is_changed(&self) -> bool {
        self.entries.iter().any(|entry| entry.changed)
    }

    /// Whether the field under `key` changed since the last save.
    pub(crate) fn key_changed(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.changed && entry.key == key)
    }

    /// Every entry that holds a value (for writing a whole record).
    pub fn present(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.entries
            .iter()
            .filter(|entry| entry.value != [NIL])
            .map(|entry| (entry.key.as_str(), entry.value.as_slice()))
    }

    /// Every changed entry, unset ones as `nil` (for a field-level save).
    pub fn changed(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.entries
            .iter()
            .filter(|entry| entry.changed)
            .map(|entry| (entry.key.as_str(), entry.value.as_slice()))
    }

    /// Forgets which entries changed (after a save).
    pub(crate) fn reset_changes(&mut self) {
        for entry in &mut self.entries {
            entry.changed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_marks_changes_only_when_the_value_differs() {
        let mut internal = Internal::new();
        internal.set_u64(keys::REMEMBER, None);
        assert!(!internal.is_changed(), "unsetting nothing is no change");
        internal.set_u64(keys::REMEMBER, Some(7));
        assert!(internal.key_changed(keys::REMEMBER));
        assert_eq!(internal.get_u64(keys::REMEMBER), Some(7));
        internal.reset_changes();
        internal.set_u64(keys::REMEMBER, Some(7));
        assert!(!internal.is_changed());
        internal.set_u64(keys::REMEMBER, None);
        assert_eq!(internal.get_u64(keys::REMEMBER), None);
        assert_eq!(
            internal.changed().collect::<Vec<_>>(),
            [(keys::REMEMBER, &[NIL][..])],
            "an unset field is saved as nil"
        );
        assert_eq!(internal.present().count(), 0);
    }

    #[test]
    fn unknown_entries_are_kept_for_whole_writes() {
        let mut internal = Internal::new();
        internal.insert_loaded("__from_a_newer_deploy", &[1]);
        assert!(!internal.is_changed());
        assert_eq!(
            internal.present().collect::<Vec<_>>(),
            [("__from_a_newer_deploy", &[1u8][..])]
        );
    }

    #[test]
    fn a_record_with_thousands_of_internal_keys_keeps_a_bounded_number() {
        let mut internal = Internal::new();
        for index in 0..10_000 {
            internal.insert_loaded(&format!("__k{index}"), &[1]);
        }
        assert_eq!(internal.present().count(), MAX_ENTRIES);
    }

    #[test]
    fn reserved_keys_are_recognised() {
        assert!(is_internal(keys::REMEMBER));
        assert!(is_internal(keys::END));
        assert!(!is_internal("visits"));
        assert!(!is_internal("_one_underscore"));
    }
}
