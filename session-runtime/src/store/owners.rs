//! An in-process owner index (owner -> the digests of that owner's sessions), for stores that
//! keep sessions in this process: sharded by owner, so that logins of different users do not
//! contend, and updated by the store in the same critical section as the session it follows.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::id::SessionDigest;
use crate::record::{OwnerField, Record};

const SHARDS: usize = 64;

type Shard = HashMap<Box<str>, HashSet<SessionDigest>>;

/// Owner -> sessions. Entries follow writes: [`created`](Self::created),
/// [`saved`](Self::saved), [`removed`](Self::removed).
pub(crate) struct OwnerIndex {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for OwnerIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl OwnerIndex {
    fn shard(&self, owner: &str) -> MutexGuard<'_, Shard> {
        let mut hasher = DefaultHasher::new();
        owner.hash(&mut hasher);
        // The remainder is below SHARDS, which fits any usize.
        let index = usize::try_from(hasher.finish() % SHARDS as u64).unwrap_or(0);
        // No user code runs under the lock: a poisoned shard is still consistent.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, owner: &str, id: SessionDigest) {
        self.shard(owner)
            .entry(owner.into())
            .or_default()
            .insert(id);
    }

    fn remove(&self, owner: &str, id: &SessionDigest) {
        let mut shard = self.shard(owner);
        if let Some(ids) = shard.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                shard.remove(owner);
            }
        }
    }

    /// A session stored whole (`record`) under `id`.
    pub(crate) fn created(&self, id: SessionDigest, record: &Record) {
        if let Some(owner) = record.owner().key() {
            self.add(owner, id);
        }
    }

    /// A save of `changes` into the session `id`, whose record held `before` as its owner.
    pub(crate) fn saved(&self, id: SessionDigest, before: Option<&str>, changes: &Record) {
        let after = match changes.owner() {
            OwnerField::Absent => return,
            OwnerField::Cleared => None,
            OwnerField::Set(owner) => Some(owner),
        };
        if before == after {
            return;
        }
        if let Some(before) = before {
            self.remove(before, &id);
        }
        if let Some(after) = after {
            self.add(after, id);
        }
    }

    /// The session `id`, whose record was `record`, is gone.
    pub(crate) fn removed(&self, id: &SessionDigest, record: &Record) {
        if let Some(owner) = record.owner().key() {
            self.remove(owner, id);
        }
    }

    /// The sessions indexed under `owner`.
    pub(crate) fn of(&self, owner: &str) -> Vec<SessionDigest> {
        self.shard(owner)
            .get(owner)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets every entry.
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// How many owners have at least one session.
    #[cfg(test)]
    pub(crate) fn owners(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordField;

    fn record(owner: Option<&str>) -> Record {
        let mut value = Vec::new();
        match owner {
            Some(owner) => rmp::encode::write_str(&mut value, owner).unwrap(),
            None => rmp::encode::write_nil(&mut value).unwrap(),
        }
        Record {
            version: 1,
            fields: vec![RecordField {
                key: "__owner".into(),
                value,
            }],
        }
    }

    fn id(byte: u8) -> SessionDigest {
        SessionDigest::from_bytes([byte; 32])
    }

    #[test]
    fn the_index_follows_creates_owner_changes_and_removals() {
        let index = OwnerIndex::default();
        index.created(id(1), &record(Some("ada")));
        index.created(id(2), &record(Some("ada")));
        index.created(id(3), &record(None));
        index.created(id(4), &Record::default());
        let mut ada = index.of("ada");
        ada.sort();
        assert_eq!(ada, vec![id(1), id(2)]);

        index.saved(id(2), Some("ada"), &record(Some("bob")));
        assert_eq!(index.of("ada"), vec![id(1)]);
        assert_eq!(index.of("bob"), vec![id(2)]);

        // A save that does not carry the owner leaves the index alone.
        index.saved(id(2), Some("bob"), &Record::default());
        assert_eq!(index.of("bob"), vec![id(2)]);

        index.saved(id(3), None, &record(Some("bob")));
        index.saved(id(2), Some("bob"), &record(None));
        assert_eq!(index.of("bob"), vec![id(3)]);

        index.removed(&id(1), &record(Some("ada")));
        assert!(index.of("ada").is_empty());
        assert_eq!(index.owners(), 1, "an owner without sessions is dropped");
        index.clear();
        assert_eq!(index.owners(), 0);
    }
}
