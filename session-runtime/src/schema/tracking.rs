//! Per-field change tracking: which stored fields of a [`Databag`] changed since it was loaded.

use core::fmt;
use core::ops::Deref;

use super::internal::Internal;
use super::{Databag, Field};

/// A set of field indices, one bit per stored field of a [`Databag`].
///
/// Indices are positions in [`Databag::FIELDS`]. The first 64 fields live inline (no
/// allocation); structs with more fields spill into a heap vector the first time one of the
/// later fields changes, so any number of fields is supported.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    inline: u64,
    spill: Vec<u64>,
}

impl ChangeSet {
    /// An empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            inline: 0,
            spill: Vec::new(),
        }
    }

    /// Adds `index` to the set.
    #[inline]
    pub fn insert(&mut self, index: usize) {
        if index < 64 {
            self.inline |= 1 << index;
        } else {
            self.insert_spilled(index - 64);
        }
    }

    #[cold]
    fn insert_spilled(&mut self, index: usize) {
        let word = index / 64;
        if self.spill.len() <= word {
            self.spill.resize(word + 1, 0);
        }
        self.spill[word] |= 1 << (index % 64);
    }

    /// Adds every index in `0..len`.
    pub fn insert_all(&mut self, len: usize) {
        for index in 0..len {
            self.insert(index);
        }
    }

    /// Removes `index` from the set.
    #[inline]
    pub fn remove(&mut self, index: usize) {
        if index < 64 {
            self.inline &= !(1 << index);
        } else if let Some(word) = self.spill.get_mut((index - 64) / 64) {
            *word &= !(1 << ((index - 64) % 64));
        }
    }

    /// Whether `index` is in the set.
    #[inline]
    #[must_use]
    pub fn contains(&self, index: usize) -> bool {
        if index < 64 {
            self.inline & (1 << index) != 0
        } else {
            let index = index - 64;
            self.spill
                .get(index / 64)
                .is_some_and(|word| word & (1 << (index % 64)) != 0)
        }
    }

    /// Whether no index is in the set.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inline == 0 && self.spill.iter().all(|word| *word == 0)
    }

    /// How many indices are in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        let spilled: u32 = self.spill.iter().map(|word| word.count_ones()).sum();
        (self.inline.count_ones() + spilled) as usize
    }

    /// Removes every index, keeping any spilled allocation for reuse.
    #[inline]
    pub fn clear(&mut self) {
        self.inline = 0;
        self.spill.iter_mut().for_each(|word| *word = 0);
    }

    /// The indices in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        core::iter::once(self.inline)
            .chain(self.spill.iter().copied())
            .enumerate()
            .flat_map(|(word_index, word)| {
                (0..64usize)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .map(move |bit| word_index * 64 + bit)
            })
    }
}

impl fmt::Debug for ChangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A [`Databag`] value together with the set of its stored fields that changed since it
/// was created or loaded.
///
/// Reads go through [`Deref`]; there is deliberately no `DerefMut`. Writes go through the
/// handle that `#[derive(Databag)]` generates (`set_<field>`, `<field>_mut`,
/// `update_<field>`), which records the change here. The session layer uses the change set
/// to write only what changed, and to skip the write entirely when nothing did.
pub struct Tracked<T> {
    value: T,
    changes: ChangeSet,
    /// The runtime's own per-session fields (remember-me, a fixed end), tracked alike.
    internal: Internal,
}

impl<T: Databag> Tracked<T> {
    /// Wraps a value, with no field marked changed.
    #[must_use]
    pub fn new(value: T) -> Self {
        Self {
            value,
            changes: ChangeSet::new(),
            internal: Internal::new(),
        }
    }

    /// Wraps a value loaded with its internal fields, with nothing marked changed.
    pub(crate) fn with_internal(value: T, internal: Internal) -> Self {
        Self {
            value,
            changes: ChangeSet::new(),
            internal,
        }
    }

    /// The runtime's internal fields of this session (see [`Internal`]).
    #[inline]
    #[must_use]
    pub fn internal(&self) -> &Internal {
        &self.internal
    }

    /// The internal fields, mutably (changes are tracked by [`Internal`] itself).
    #[inline]
    pub(crate) fn internal_mut(&mut self) -> &mut Internal {
        &mut self.internal
    }

    /// Whether anything is to be written: a stored field or an internal field changed.
    #[inline]
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.is_changed() || self.internal.is_changed()
    }

    /// A value with every field at its declared default, with no field marked changed.
    #[must_use]
    pub fn defaults() -> Self {
        Self::new(T::defaults())
    }

    /// The value.
    #[inline]
    #[must_use]
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The indices (into [`Databag::FIELDS`]) of the fields changed since the last
    /// [`reset_changes`](Self::reset_changes).
    #[inline]
    #[must_use]
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// Whether any stored field changed.
    #[inline]
    #[must_use]
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The changed fields, in declaration order.
    pub fn changed_fields(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.changes.iter().filter_map(|index| T::FIELDS.get(index))
    }

    /// Forgets all changes, typically after they were saved.
    #[inline]
    pub fn reset_changes(&mut self) {
        self.changes.clear();
        self.internal.reset_changes();
    }

    /// Marks every stored field changed, so that the next save writes the whole record
    /// (used after a schema migration).
    pub fn mark_all_changed(&mut self) {
        self.changes.insert_all(T::FIELDS.len());
    }

    /// Marks one stored field changed by its index in [`Databag::FIELDS`].
    #[inline]
    pub fn mark_changed(&mut self, index: usize) {
        self.changes.insert(index);
    }

    /// Unmarks every changed field whose encoding equals the bytes `loaded` gives for its
    /// key (what the store held when the session was loaded): setting a field to the value
    /// it already had is then no change, and costs no write. A field `loaded` has no bytes
    /// for, or that fails to encode, stays changed (the commit reports the error).
    pub(crate) fn unmark_unchanged<'a>(&mut self, loaded: impl Fn(&str) -> Option<&'a [u8]>) {
        if self.changes.is_empty() {
            return;
        }
        let mut scratch = Vec::new();
        // A copy to iterate over while unmarking (no allocation below 65 fields).
        let changed = self.changes.clone();
        for index in changed.iter() {
            let Some(before) = T::FIELDS.get(index).and_then(|field| loaded(field.key)) else {
                continue;
            };
            scratch.clear();
            if self.value.encode_field(index, &mut scratch).is_ok() && scratch == before {
                self.changes.remove(index);
            }
        }
    }

    /// Replaces the value and marks every stored field changed.
    pub fn replace(&mut self, value: T) -> T {
        self.mark_all_changed();
        core::mem::replace(&mut self.value, value)
    }

    /// Unwraps the value, dropping the change set.
    #[must_use]
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Mutable access without recording a change: for generated setters, which record the
    /// change themselves.
    #[inline]
    pub(crate) fn value_mut_untracked(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Databag> Default for Tracked<T> {
    fn default() -> Self {
        Self::defaults()
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone> Clone for Tracked<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            changes: self.changes.clone(),
            internal: self.internal.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Tracked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("value", &self.value)
            .field("changes", &self.changes)
            .field("internal", &self.internal)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::ChangeSet;

    #[test]
    fn change_set_handles_inline_and_spilled_indices() {
        let mut set = ChangeSet::new();
        assert!(set.is_empty());
        for index in [0, 5, 63, 64, 99, 200] {
            set.insert(index);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 5, 63, 64, 99, 200]);
        assert_eq!(set.len(), 6);
        assert!(set.contains(99));
        assert!(!set.contains(98));
        assert!(!set.contains(10_000));
        set.clear();
        assert!(set.is_empty());
        assert_eq!(set.len(), 0);
        assert_eq!(set.iter().count(), 0);
    }

    #[test]
    fn insert_all_covers_exactly_the_range() {
        let mut set = ChangeSet::new();
        set.insert_all(100);
        assert_eq!(set.len(), 100);
        assert!(set.contains(99));
        assert!(!set.contains(100));
    }
}
