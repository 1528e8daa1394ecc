//! The owner-index suite at the store level: `owned_by`, `count`, `clear` and
//! `watch_removal`, checked against any server-side store, through the same operations the
//! layer makes (records carry the owner as the internal field `__owner`).

use std::time::Duration;

use session_runtime::record::{Record, RecordField};
use session_runtime::store::{CreateOutcome, SaveOutcome, SessionStore};
use session_runtime::{SessionDigest, SessionId};

use crate::store_suite::{meta, NOW};

/// Runs every check of the suite as a named `#[tokio::test]`, like
/// [`store_suite!`](macro@crate::store_suite).
#[macro_export]
macro_rules! owner_store_suite {
    (guarded: $setup:expr) => {
        $crate::owner_store_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::owner_store_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::owner_store_suite!(@tests $setup;
            owned_by_lists_the_live_sessions_of_that_owner_only
            a_save_that_sets_another_owner_moves_the_session
            a_save_without_the_owner_field_keeps_the_index
            clearing_the_owner_takes_the_session_out_of_every_list
            taken_and_deleted_sessions_leave_the_list
            expired_sessions_are_never_listed
            listed_sessions_carry_their_record_and_meta
            count_counts_live_sessions
            clear_removes_every_session_and_every_list
            a_watch_resolves_when_the_session_is_deleted
            a_watch_resolves_when_the_session_is_taken
            a_watch_of_an_unknown_session_resolves_at_once
            a_watch_ignores_other_sessions
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make.await;
                $crate::owner_store_suite::$name(&store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::owner_store_suite::$name(&store).await;
            }
        )*
    };
}

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

fn id() -> SessionDigest {
    SessionId::generate().unwrap().digest()
}

/// A unique owner, so that suites sharing a store (one database per test binary) never
/// see each other's sessions.
fn owner(name: &str) -> String {
    format!(
        "{name}-{}",
        SessionId::generate().unwrap().digest().to_hex()
    )
}

/// The `__owner` entry as the layer writes it: a MessagePack string, or nil for none.
pub fn owner_field(owner: Option<&str>) -> RecordField {
    let mut value = Vec::new();
    match owner {
        Some(owner) => rmp::encode::write_str(&mut value, owner).unwrap(),
        None => rmp::encode::write_nil(&mut value).unwrap(),
    }
    RecordField {
        key: "__owner".to_owned(),
        value,
    }
}

fn owned(owner: Option<&str>, data: u8) -> Record {
    Record {
        version: 1,
        fields: vec![
            RecordField {
                key: "data".to_owned(),
                value: vec![data],
            },
            owner_field(owner),
        ],
    }
}

async fn create(store: &impl SessionStore, owner: Option<&str>, data: u8) -> SessionDigest {
    let id = id();
    let created = store
        .create(&id, &owned(owner, data), &meta(HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(created, CreateOutcome::Created);
    id
}

async fn listed(store: &impl SessionStore, owner: &str) -> Vec<SessionDigest> {
    let mut ids: Vec<SessionDigest> = store
        .owned_by(owner, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<SessionDigest>) -> Vec<SessionDigest> {
    ids.sort();
    ids
}

pub async fn owned_by_lists_the_live_sessions_of_that_owner_only(store: &impl SessionStore) {
    let (ada, bob) = (owner("ada"), owner("bob"));
    let a1 = create(store, Some(&ada), 1).await;
    let a2 = create(store, Some(&ada), 2).await;
    let b1 = create(store, Some(&bob), 3).await;
    create(store, None, 4).await;
    assert_eq!(listed(store, &ada).await, sorted(vec![a1, a2]));
    assert_eq!(listed(store, &bob).await, vec![b1]);
    assert!(listed(store, &owner("nobody")).await.is_empty());
}

pub async fn a_save_that_sets_another_owner_moves_the_session(store: &impl SessionStore) {
    let (ada, bob) = (owner("ada"), owner("bob"));
    let id = create(store, Some(&ada), 1).await;
    let changes = Record {
        version: 1,
        fields: vec![owner_field(Some(&bob))],
    };
    let saved = store.save(&id, &changes, &meta(HOUR), NOW).await.unwrap();
    assert_eq!(saved, SaveOutcome::Saved);
    assert!(listed(store, &ada).await.is_empty());
    assert_eq!(listed(store, &bob).await, vec![id]);
    // A session created without an owner enters the index when a save sets one.
    let anonymous = create(store, None, 2).await;
    let changes = Record {
        version: 1,
        fields: vec![owner_field(Some(&ada))],
    };
    store
        .save(&anonymous, &changes, &meta(HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(listed(store, &ada).await, vec![anonymous]);
}

pub async fn a_save_without_the_owner_field_keeps_the_index(store: &impl SessionStore) {
    let ada = owner("ada");
    let id = create(store, Some(&ada), 1).await;
    let changes = Record {
        version: 1,
        fields: vec![RecordField {
            key: "data".to_owned(),
            value: vec![9],
        }],
    };
    store.save(&id, &changes, &meta(HOUR), NOW).await.unwrap();
    store.touch(&id, &meta(HOUR), NOW + 1_000).await.unwrap();
    let found = store.owned_by(&ada, NOW + 1_000).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.record.get("data"), Some(&[9u8][..]));
}

pub async fn clearing_the_owner_takes_the_session_out_of_every_list(store: &impl SessionStore) {
    let ada = owner("ada");
    let id = create(store, Some(&ada), 1).await;
    let changes = Record {
        version: 1,
        fields: vec![owner_field(None)],
    };
    store.save(&id, &changes, &meta(HOUR), NOW).await.unwrap();
    assert!(listed(store, &ada).await.is_empty());
    assert!(
        store.load(&id, NOW).await.unwrap().is_some(),
        "still stored"
    );
}

pub async fn taken_and_deleted_sessions_leave_the_list(store: &impl SessionStore) {
    let ada = owner("ada");
    let taken = create(store, Some(&ada), 1).await;
    let deleted = create(store, Some(&ada), 2).await;
    let kept = create(store, Some(&ada), 3).await;
    assert!(store.take(&taken, NOW).await.unwrap().is_some());
    assert!(store.delete(&deleted).await.unwrap());
    assert_eq!(listed(store, &ada).await, vec![kept]);
}

pub async fn expired_sessions_are_never_listed(store: &impl SessionStore) {
    let ada = owner("ada");
    let id = id();
    store
        .create(
            &id,
            &owned(Some(&ada), 1),
            &meta(Some(Duration::from_secs(10))),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(store.owned_by(&ada, NOW + 9_999).await.unwrap().len(), 1);
    assert!(store.owned_by(&ada, NOW + 10_000).await.unwrap().is_empty());
}

pub async fn listed_sessions_carry_their_record_and_meta(store: &impl SessionStore) {
    let ada = owner("ada");
    let id = create(store, Some(&ada), 7).await;
    let mut later = meta(HOUR);
    later.seen_ms = NOW + 5_000;
    later.expires_ms = Some(NOW + 5_000 + 3_600_000);
    store.touch(&id, &later, NOW + 5_000).await.unwrap();
    let found = store.owned_by(&ada, NOW + 5_000).await.unwrap();
    assert_eq!(found.len(), 1);
    let (listed_id, session) = &found[0];
    assert_eq!(listed_id, &id);
    assert_eq!(session.record.get("data"), Some(&[7u8][..]));
    assert_eq!(session.record.owner().key(), Some(ada.as_str()));
    assert_eq!(session.meta, later, "created, last use and deadlines");
}

pub async fn count_counts_live_sessions(store: &impl SessionStore) {
    let before = store.count(NOW).await.unwrap();
    create(store, Some(&owner("ada")), 1).await;
    create(store, None, 2).await;
    let gone = create(store, None, 3).await;
    store.delete(&gone).await.unwrap();
    // Other tests may share the store: at least ours, and ours exactly when alone.
    let after = store.count(NOW).await.unwrap();
    assert!(after >= before + 2, "{before} -> {after}");
}

pub async fn clear_removes_every_session_and_every_list(store: &impl SessionStore) {
    let ada = owner("ada");
    let one = create(store, Some(&ada), 1).await;
    let two = create(store, None, 2).await;
    let removed = store.clear().await.unwrap();
    assert!(removed >= 2, "removed {removed}");
    assert_eq!(store.load(&one, NOW).await.unwrap(), None);
    assert_eq!(store.load(&two, NOW).await.unwrap(), None);
    assert!(listed(store, &ada).await.is_empty());
    assert_eq!(store.count(NOW).await.unwrap(), 0);
    // The store still works afterwards, index included.
    let three = create(store, Some(&ada), 3).await;
    assert_eq!(listed(store, &ada).await, vec![three]);
}

pub async fn a_watch_resolves_when_the_session_is_deleted(store: &impl SessionStore) {
    let id = create(store, None, 1).await;
    let mut watch = store.watch_removal(&id).await.unwrap();
    assert!(!watch.is_resolved());
    assert!(store.delete(&id).await.unwrap());
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("the watch resolves once the session is deleted");
}

pub async fn a_watch_resolves_when_the_session_is_taken(store: &impl SessionStore) {
    let id = create(store, None, 1).await;
    let watch = store.watch_removal(&id).await.unwrap();
    assert!(store.take(&id, NOW).await.unwrap().is_some());
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .expect("the watch resolves once the session is taken");
}

pub async fn a_watch_of_an_unknown_session_resolves_at_once(store: &impl SessionStore) {
    let mut watch = store.watch_removal(&id()).await.unwrap();
    assert!(watch.is_resolved());
}

pub async fn a_watch_ignores_other_sessions(store: &impl SessionStore) {
    let watched = create(store, None, 1).await;
    let other = create(store, None, 2).await;
    let mut watch = store.watch_removal(&watched).await.unwrap();
    store.delete(&other).await.unwrap();
    // Give a store that publishes removals the time to deliver a (wrong) notification:
    // a second watch on the deleted session resolving proves the first had its chance.
    let deleted_watch = store.watch_removal(&other).await.unwrap();
    deleted_watch.await;
    assert!(!watch.is_resolved());
}
