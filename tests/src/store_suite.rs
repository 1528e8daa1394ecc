//! The store-behaviour suite: the contract of `SessionStore`, checked against any store.
//!
//! Each store's test file runs every check as its own named test with
//! [`store_suite!`](macro@crate::store_suite), given an async expression that makes a fresh store.

use std::time::Duration;

use session_runtime::record::{Record, RecordField};
use session_runtime::store::{CreateOutcome, SaveOutcome, SessionMeta, SessionStore};
use session_runtime::{SessionDigest, SessionId};

/// Runs every check of the suite as a named `#[tokio::test]`.
///
/// `store_suite!(async { .. })` takes an async expression that makes a fresh store.
/// `store_suite!(guarded: async { .. })` takes one that makes `(guard, store)`, where the
/// guard (a Redis server, say) is kept alive until the test ends.
#[macro_export]
macro_rules! store_suite {
    (guarded: $setup:expr) => {
        $crate::store_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::store_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::store_suite!(@tests $setup;
            load_of_unknown_id_is_none
            create_then_load_round_trips
            create_never_overwrites_an_existing_session
            save_merges_changed_fields_only
            save_never_resurrects_a_deleted_session
            save_never_resurrects_an_expired_session
            expired_session_is_never_loaded
            touch_moves_the_deadline_without_rewriting_data
            touch_of_a_missing_session_reports_missing
            delete_is_idempotent
            delete_reports_whether_it_removed_a_session
            take_removes_and_returns_the_session_exactly_once
            take_of_an_expired_session_returns_none
            save_never_downgrades_the_schema_version
            sessions_are_independent
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::store_suite::$name(&store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::store_suite::$name(&store).await;
            }
        )*
    };
}

pub const NOW: u64 = 1_700_000_000_000;

fn id() -> SessionDigest {
    SessionId::generate().unwrap().digest()
}

pub fn record(fields: &[(&str, &[u8])]) -> Record {
    Record {
        version: 1,
        fields: fields
            .iter()
            .map(|(key, value)| RecordField {
                key: (*key).to_owned(),
                value: value.to_vec(),
            })
            .collect(),
    }
}

pub fn meta(expires_in: Option<Duration>) -> SessionMeta {
    SessionMeta {
        created_ms: NOW,
        seen_ms: NOW,
        expires_ms: expires_in.map(|d| NOW + d.as_millis() as u64),
        absolute_ms: None,
    }
}

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

fn sorted(mut record: Record) -> Record {
    record.fields.sort_by(|a, b| a.key.cmp(&b.key));
    record
}

pub async fn load_of_unknown_id_is_none(store: &impl SessionStore) {
    assert_eq!(store.load(&id(), NOW).await.unwrap(), None);
}

pub async fn create_then_load_round_trips(store: &impl SessionStore) {
    let id = id();
    let stored = record(&[("a", &[1]), ("b", &[0xa1, b'x'])]);
    let meta = meta(HOUR);
    assert_eq!(
        store.create(&id, &stored, &meta, NOW).await.unwrap(),
        CreateOutcome::Created
    );
    let loaded = store
        .load(&id, NOW)
        .await
        .unwrap()
        .expect("session was stored");
    assert_eq!(sorted(loaded.record), sorted(stored));
    assert_eq!(loaded.meta, meta);
}

pub async fn create_never_overwrites_an_existing_session(store: &impl SessionStore) {
    let id = id();
    let first = record(&[("a", &[1])]);
    store.create(&id, &first, &meta(HOUR), NOW).await.unwrap();
    let second = record(&[("a", &[2]), ("b", &[3])]);
    assert_eq!(
        store.create(&id, &second, &meta(HOUR), NOW).await.unwrap(),
        CreateOutcome::IdTaken
    );
    let loaded = store.load(&id, NOW).await.unwrap().unwrap();
    assert_eq!(sorted(loaded.record), first);
}

pub async fn save_merges_changed_fields_only(store: &impl SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", &[1]), ("b", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    // Two requests changed different fields; each saves only its own.
    let later = meta(Some(Duration::from_secs(7200)));
    let first = store.save(&id, &record(&[("a", &[2])]), &later, NOW).await;
    let second = store.save(&id, &record(&[("b", &[3])]), &later, NOW).await;
    assert_eq!(first.unwrap(), SaveOutcome::Saved);
    assert_eq!(second.unwrap(), SaveOutcome::Saved);
    let loaded = store.load(&id, NOW).await.unwrap().unwrap();
    assert_eq!(sorted(loaded.record), record(&[("a", &[2]), ("b", &[3])]));
    assert_eq!(loaded.meta, later);
}

pub async fn save_never_resurrects_a_deleted_session(store: &impl SessionStore) {
    let id = id();
    store
        .create(&id, &record(&[("a", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    store.delete(&id).await.unwrap();
    let outcome = store
        .save(&id, &record(&[("a", &[2])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(outcome, SaveOutcome::Missing);
    assert_eq!(store.load(&id, NOW).await.unwrap(), None);
}

pub async fn save_never_resurrects_an_expired_session(store: &impl SessionStore) {
    let id = id();
    let short = meta(Some(Duration::from_secs(10)));
    store
        .create(&id, &record(&[("a", &[1])]), &short, NOW)
        .await
        .unwrap();
    let after = NOW + 11_000;
    let outcome = store
        .save(&id, &record(&[("a", &[2])]), &meta(HOUR), after)
        .await
        .unwrap();
    assert_eq!(outcome, SaveOutcome::Missing);
    assert_eq!(store.load(&id, after).await.unwrap(), None);
}

pub async fn expired_session_is_never_loaded(store: &impl SessionStore) {
    let id = id();
    let short = meta(Some(Duration::from_secs(10)));
    store
        .create(&id, &record(&[("a", &[1])]), &short, NOW)
        .await
        .unwrap();
    assert!(store.load(&id, NOW + 9_999).await.unwrap().is_some());
    assert_eq!(store.load(&id, NOW + 10_000).await.unwrap(), None);
}

pub async fn touch_moves_the_deadline_without_rewriting_data(store: &impl SessionStore) {
    let id = id();
    let data = record(&[("a", &[1]), ("b", &[2])]);
    store
        .create(&id, &data, &meta(Some(Duration::from_secs(10))), NOW)
        .await
        .unwrap();
    let later = meta(HOUR);
    assert_eq!(
        store.touch(&id, &later, NOW + 5_000).await.unwrap(),
        SaveOutcome::Saved
    );
    let loaded = store.load(&id, NOW + 20_000).await.unwrap().unwrap();
    assert_eq!(sorted(loaded.record), data);
    assert_eq!(loaded.meta, later);
}

pub async fn touch_of_a_missing_session_reports_missing(store: &impl SessionStore) {
    assert_eq!(
        store.touch(&id(), &meta(HOUR), NOW).await.unwrap(),
        SaveOutcome::Missing
    );
}

pub async fn delete_is_idempotent(store: &impl SessionStore) {
    let id = id();
    store.delete(&id).await.unwrap();
    store
        .create(&id, &record(&[("a", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    store.delete(&id).await.unwrap();
    store.delete(&id).await.unwrap();
    assert_eq!(store.load(&id, NOW).await.unwrap(), None);
}

pub async fn delete_reports_whether_it_removed_a_session(store: &impl SessionStore) {
    let id = id();
    assert!(!store.delete(&id).await.unwrap());
    store
        .create(&id, &record(&[("a", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    assert!(store.delete(&id).await.unwrap());
    assert!(!store.delete(&id).await.unwrap());
}

pub async fn take_removes_and_returns_the_session_exactly_once(store: &impl SessionStore) {
    let id = id();
    let data = record(&[("a", &[1]), ("b", &[2])]);
    store.create(&id, &data, &meta(HOUR), NOW).await.unwrap();
    let taken = store
        .take(&id, NOW)
        .await
        .unwrap()
        .expect("the session was there");
    assert_eq!(sorted(taken.record), data);
    assert_eq!(taken.meta, meta(HOUR));
    assert_eq!(store.take(&id, NOW).await.unwrap(), None);
    assert_eq!(store.load(&id, NOW).await.unwrap(), None);
    assert!(!store.delete(&id).await.unwrap());
}

pub async fn take_of_an_expired_session_returns_none(store: &impl SessionStore) {
    let id = id();
    let short = meta(Some(Duration::from_secs(10)));
    store
        .create(&id, &record(&[("a", &[1])]), &short, NOW)
        .await
        .unwrap();
    assert_eq!(store.take(&id, NOW + 10_000).await.unwrap(), None);
}

pub async fn save_never_downgrades_the_schema_version(store: &impl SessionStore) {
    let id = id();
    let mut migrated = record(&[("a", &[2])]);
    migrated.version = 2;
    store
        .create(&id, &migrated, &meta(HOUR), NOW)
        .await
        .unwrap();
    // An older deploy (version 1) saving one field must not relabel version-2 data.
    let outcome = store
        .save(&id, &record(&[("b", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(outcome, SaveOutcome::Missing);
    let loaded = store.load(&id, NOW).await.unwrap().unwrap();
    assert_eq!(loaded.record, migrated);
    // The same or a newer version may write.
    let mut newer = record(&[("b", &[3])]);
    newer.version = 3;
    assert_eq!(
        store.save(&id, &newer, &meta(HOUR), NOW).await.unwrap(),
        SaveOutcome::Saved
    );
    assert_eq!(
        store.load(&id, NOW).await.unwrap().unwrap().record.version,
        3
    );
}

pub async fn sessions_are_independent(store: &impl SessionStore) {
    let (one, two) = (id(), id());
    store
        .create(&one, &record(&[("a", &[1])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    store
        .create(&two, &record(&[("a", &[2])]), &meta(HOUR), NOW)
        .await
        .unwrap();
    store.delete(&one).await.unwrap();
    let loaded = store.load(&two, NOW).await.unwrap().unwrap();
    assert_eq!(loaded.record, record(&[("a", &[2])]));
}
