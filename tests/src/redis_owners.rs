//! Owner-index and removal-watch checks particular to `RedisStore`, run on a single server
//! and on a cluster: watches across store instances and across a subscriber reconnect, the
//! index's consistency under concurrent writers and listers, pruning of entries whose
//! sessions Redis expired, and the cost of a listing counted by Redis itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_runtime::record::{Record, RecordField};
use session_runtime::store::{CreateOutcome, SaveOutcome, SessionMeta, SessionStore};
use session_runtime::{RedisStore, SessionDigest, SessionId};

use crate::owner_store_suite::owner_field;
use crate::redis_harness::{Monitor, Monitored, RedisServer};
use crate::store_suite::{meta, NOW};

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));
/// Long enough that a test never sees the periodic recheck: what resolves a watch there is
/// a publication or the recheck after a reconnect.
pub const NO_PERIODIC_RECHECK: Duration = Duration::from_secs(3600);

fn id() -> SessionDigest {
    SessionId::generate().unwrap().digest()
}

/// A whole record of `owner` (`None`: no owner), as the layer creates it.
pub fn owned(owner: Option<&str>) -> Record {
    Record {
        version: 1,
        fields: vec![
            RecordField {
                key: "data".to_owned(),
                value: vec![1],
            },
            owner_field(owner),
        ],
    }
}

/// The changes of a save that moves the session to `owner`.
pub fn reowned(owner: Option<&str>) -> Record {
    Record {
        version: 1,
        fields: vec![owner_field(owner)],
    }
}

async fn create(store: &RedisStore, owner: Option<&str>, meta: &SessionMeta) -> SessionDigest {
    let id = id();
    let created = store.create(&id, &owned(owner), meta, NOW).await.unwrap();
    assert_eq!(created, CreateOutcome::Created);
    id
}

/// Runs `command` on every node and returns the replies of those that accepted it (on a
/// cluster, a keyed command is refused by the nodes that do not hold the key).
async fn on_every_node(nodes: &[&RedisServer], command: &redis::Cmd) -> Vec<redis::Value> {
    let mut replies = Vec::new();
    for node in nodes {
        let mut redis = node.connection().await;
        if let Ok(reply) = command.query_async(&mut redis).await {
            replies.push(reply);
        }
    }
    replies
}

/// How many entries the owner sets hold, all nodes together.
async fn index_entries(nodes: &[&RedisServer]) -> u64 {
    let mut entries = 0;
    for node in nodes {
        let mut redis = node.connection().await;
        let sets: Vec<String> = redis::cmd("KEYS")
            .arg("session:owner:*")
            .query_async(&mut redis)
            .await
            .unwrap();
        for set in sets {
            let size: u64 = redis::cmd("SCARD")
                .arg(&set)
                .query_async(&mut redis)
                .await
                .unwrap();
            entries += size;
        }
    }
    entries
}

async fn resolves(watch: session_runtime::store::RemovalWatch, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .unwrap_or_else(|_| panic!("the watch never resolved: {what}"));
}

/// A watch made through one store instance resolves when another instance (as another
/// process would) deletes or takes the session: the removal travels by pub/sub.
pub async fn a_watch_resolves_when_another_instance_removes_the_session(
    watching: &RedisStore,
    removing: &RedisStore,
) {
    let deleted = create(removing, None, &meta(HOUR)).await;
    let taken = create(removing, None, &meta(HOUR)).await;
    let kept = create(removing, None, &meta(HOUR)).await;
    let mut deleted_watch = watching.watch_removal(&deleted).await.unwrap();
    let taken_watch = watching.watch_removal(&taken).await.unwrap();
    let mut kept_watch = watching.watch_removal(&kept).await.unwrap();
    assert!(!deleted_watch.is_resolved());
    assert!(removing.delete(&deleted).await.unwrap());
    assert!(removing.take(&taken, NOW).await.unwrap().is_some());
    resolves(deleted_watch, "deleted by another instance").await;
    resolves(taken_watch, "taken by another instance").await;
    assert!(!kept_watch.is_resolved());
}

/// A session removed while the subscriber is connected but without a publication (a raw
/// `DEL`, as an operator would) is found by the recheck that follows a reconnect: the
/// subscriber is killed (`CLIENT KILL TYPE pubsub`), reconnects, rechecks its watches and
/// resolves that one; publications reach it again afterwards. `watching` must have been
/// made with [`NO_PERIODIC_RECHECK`].
pub async fn a_watch_survives_a_subscriber_reconnect(
    watching: &RedisStore,
    removing: &RedisStore,
    nodes: &[&RedisServer],
) {
    // The subscriber is up and subscribed once a publication has reached it.
    let first = create(removing, None, &meta(HOUR)).await;
    let watch = watching.watch_removal(&first).await.unwrap();
    removing.delete(&first).await.unwrap();
    resolves(watch, "the first publication").await;

    let quiet = create(removing, None, &meta(HOUR)).await;
    let later = create(removing, None, &meta(HOUR)).await;
    let quiet_watch = watching.watch_removal(&quiet).await.unwrap();
    let mut later_watch = watching.watch_removal(&later).await.unwrap();
    let removed = on_every_node(nodes, redis::cmd("DEL").arg(removing.key(&quiet))).await;
    assert!(removed.contains(&redis::Value::Int(1)), "{removed:?}");
    let killed = on_every_node(
        nodes,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"),
    )
    .await;
    assert!(
        killed
            .iter()
            .any(|count| matches!(count, redis::Value::Int(n) if *n > 0)),
        "no subscriber was connected: {killed:?}"
    );
    resolves(
        quiet_watch,
        "removed silently, found by the recheck after the reconnect",
    )
    .await;
    assert!(!later_watch.is_resolved());
    removing.delete(&later).await.unwrap();
    resolves(later_watch, "published after the reconnect").await;
}

/// The last clone of a store dropped: its subscriber disconnects (no task left behind) and
/// its watches resolve.
pub async fn dropping_the_store_stops_its_subscriber_and_resolves_its_watches(
    store: RedisStore,
    nodes: &[&RedisServer],
) {
    let session = create(&store, None, &meta(HOUR)).await;
    let watch = store.clone().watch_removal(&session).await.unwrap();
    let subscribers = || async {
        let mut count = 0;
        for reply in on_every_node(
            nodes,
            redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub"),
        )
        .await
        {
            count += match &reply {
                redis::Value::BulkString(list) => String::from_utf8_lossy(list).lines().count(),
                redis::Value::VerbatimString { text, .. } => text.lines().count(),
                _ => 0,
            };
        }
        count
    };
    // The subscriber connects (started by the watch).
    for _ in 0..3000 {
        if subscribers().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(subscribers().await, 1);
    drop(store);
    resolves(watch, "the store was dropped").await;
    for _ in 0..3000 {
        if subscribers().await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the subscriber outlived its store");
}

/// Entries of sessions that Redis expired stay in the owner's set until a listing (or a
/// new session of that owner) prunes them; `owned_by` prunes every one.
pub async fn entries_of_sessions_redis_expired_are_pruned_by_owned_by(
    store: &RedisStore,
    nodes: &[&RedisServer],
) {
    let ada = "ada-expiring";
    // Long enough that every create below samples only live entries, however slow the
    // machine (a create that sampled an expired one would prune it early).
    let short = SessionMeta {
        expires_ms: Some(NOW + 5_000),
        ..meta(None)
    };
    let kept = create(store, Some(ada), &meta(HOUR)).await;
    let mut expiring = Vec::new();
    for _ in 0..5 {
        expiring.push(create(store, Some(ada), &short).await);
    }
    // Without listing, the entries stay (the sampled ones were live when sampled).
    // Wait until Redis itself has expired them (its TTL is the 5 s left at `NOW`).
    for id in &expiring {
        loop {
            let exists = on_every_node(nodes, redis::cmd("EXISTS").arg(store.key(id))).await;
            if !exists.contains(&redis::Value::Int(1)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(index_entries(nodes).await, 6);
    let listed = store.owned_by(ada, NOW).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, kept);
    assert_eq!(
        index_entries(nodes).await,
        1,
        "the expired entries are pruned"
    );
}

/// A save that moves a session to another owner drops the former owner's entry at once.
pub async fn moving_a_session_to_another_owner_drops_the_former_entry(
    store: &RedisStore,
    nodes: &[&RedisServer],
) {
    for _ in 0..20 {
        let id = create(store, Some("bob-moving"), &meta(HOUR)).await;
        let saved = store
            .save(&id, &reowned(Some("carol-moving")), &meta(HOUR), NOW)
            .await
            .unwrap();
        assert_eq!(saved, SaveOutcome::Saved);
    }
    assert_eq!(index_entries(nodes).await, 20, "carol's entries only");
    assert!(store.owned_by("bob-moving", NOW).await.unwrap().is_empty());
    assert_eq!(store.owned_by("carol-moving", NOW).await.unwrap().len(), 20);
}

/// The stale entries of an owner who never lists stay few: each new session of the owner
/// checks a few random entries of the set and prunes the stale ones. Here every session
/// disappears the way Redis' expiry removes it (its hash goes, no command touches the set).
pub async fn new_sessions_of_an_owner_prune_stale_entries(
    store: &RedisStore,
    nodes: &[&RedisServer],
) {
    let mut most = 0;
    for _ in 0..60 {
        let id = create(store, Some("dan-never-lists"), &meta(HOUR)).await;
        most = most.max(index_entries(nodes).await);
        let removed = on_every_node(nodes, redis::cmd("DEL").arg(store.key(&id))).await;
        assert!(removed.contains(&redis::Value::Int(1)));
    }
    // One entry added per login, at least two stale ones removed while there are any:
    // never more than a handful, not 60.
    assert!(most <= 3, "{most} entries at most");
}

/// `owned_by` for an owner with k sessions among many others costs one `SMEMBERS` and k
/// `HGETALL`s, as Redis' `MONITOR` counts them: O(k), not O(all sessions).
pub async fn owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner(
    store: &RedisStore,
    nodes: &[&RedisServer],
) {
    for n in 0..300 {
        let owner = format!("other-{}", n % 60);
        create(store, Some(&owner), &meta(HOUR)).await;
    }
    let mut monitor = Monitor::start_all(nodes.iter().copied()).await;
    for k in [1, 4, 9] {
        let owner = format!("ada-{k}");
        for _ in 0..k {
            create(store, Some(&owner), &meta(HOUR)).await;
        }
        let (listed, commands) = monitor.during(store.owned_by(&owner, NOW)).await;
        assert_eq!(listed.unwrap().len(), k);
        let names: Vec<String> = commands
            .iter()
            .filter(|command| command.from_client)
            .map(Monitored::name)
            .collect();
        let mut expected = vec!["SMEMBERS".to_owned()];
        expected.extend(std::iter::repeat_n("HGETALL".to_owned(), k));
        let mut sorted = names.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "{commands:?}");
    }
}

/// What the checker knows of one session: its owner as of its last completed write, and
/// whether a write is under way.
#[derive(Debug, Clone, Default)]
struct Model {
    owner: Option<String>,
    deleted: bool,
    busy: bool,
    /// Bumped when a write starts and when it ends.
    version: u64,
}

type Models = Arc<Mutex<HashMap<SessionDigest, Model>>>;

fn begin(models: &Models, id: &SessionDigest) {
    let mut models = models.lock().unwrap();
    let model = models.entry(*id).or_default();
    model.busy = true;
    model.version += 1;
}

fn end(models: &Models, id: &SessionDigest, owner: Option<String>, deleted: bool) {
    let mut models = models.lock().unwrap();
    let model = models.entry(*id).or_default();
    model.owner = owner;
    model.deleted = deleted;
    model.busy = false;
    model.version += 1;
}

/// Many writers create, re-own and delete sessions of a few owners while listers list them.
/// For each listing, with the model read just before and just after it:
/// - every session that was the owner's, not deleted and not being written throughout the
///   listing is listed (a committed write is never missing);
/// - every listed session was created before the listing ended, not deleted before it
///   started, and, if not written during the listing, is the owner's (a listed session is
///   alive and the owner's).
pub async fn listings_under_concurrent_writes_are_consistent(store: &RedisStore) {
    const OWNERS: [&str; 3] = ["ann", "ben", "cid"];
    let models: Models = Arc::default();
    let mut writers = Vec::new();
    for worker in 0..6usize {
        let (store, models) = (store.clone(), Arc::clone(&models));
        writers.push(tokio::spawn(async move {
            let mut mine: Vec<SessionDigest> = Vec::new();
            for step in 0..60usize {
                let owner = OWNERS[(worker + step) % OWNERS.len()];
                match step % 4 {
                    0 | 1 => {
                        let id = id();
                        begin(&models, &id);
                        let created = store
                            .create(&id, &owned(Some(owner)), &meta(HOUR), NOW)
                            .await
                            .unwrap();
                        assert_eq!(created, CreateOutcome::Created);
                        end(&models, &id, Some(owner.to_owned()), false);
                        mine.push(id);
                    }
                    2 => {
                        if let Some(id) = mine.get(step % mine.len().max(1)).copied() {
                            // Back and forth: A -> B, and later B -> A again.
                            begin(&models, &id);
                            store
                                .save(&id, &reowned(Some(owner)), &meta(HOUR), NOW)
                                .await
                                .unwrap();
                            end(&models, &id, Some(owner.to_owned()), false);
                        }
                    }
                    _ => {
                        if mine.len() > 3 {
                            let id = mine.remove(0);
                            begin(&models, &id);
                            store.delete(&id).await.unwrap();
                            end(&models, &id, None, true);
                        }
                    }
                }
            }
        }));
    }
    let mut listers = Vec::new();
    for lister in 0..3usize {
        let (store, models) = (store.clone(), Arc::clone(&models));
        listers.push(tokio::spawn(async move {
            let mut checked = 0;
            for round in 0..40usize {
                let owner = OWNERS[(lister + round) % OWNERS.len()];
                let before = models.lock().unwrap().clone();
                let listed = store.owned_by(owner, NOW).await.unwrap();
                let after = models.lock().unwrap().clone();
                let listed: HashMap<SessionDigest, _> = listed.into_iter().collect();
                for (id, model) in &before {
                    let steady = after
                        .get(id)
                        .is_some_and(|later| later.version == model.version);
                    if steady
                        && !model.busy
                        && !model.deleted
                        && model.owner.as_deref() == Some(owner)
                    {
                        assert!(
                            listed.contains_key(id),
                            "a committed session of {owner} is missing"
                        );
                        checked += 1;
                    }
                }
                for (id, session) in &listed {
                    assert_eq!(session.record.owner().key(), Some(owner));
                    let model = after.get(id).expect("listed before its create started");
                    if let Some(earlier) = before.get(id) {
                        assert!(
                            !earlier.deleted || earlier.busy,
                            "listed after its delete returned"
                        );
                        if earlier.version == model.version && !earlier.busy {
                            assert_eq!(
                                earlier.owner.as_deref(),
                                Some(owner),
                                "listed under a former owner"
                            );
                        }
                    }
                }
            }
            checked
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut checked = 0;
    for lister in listers {
        checked += lister.await.unwrap();
    }
    assert!(checked > 0, "no listing saw a committed session");
    // Quiet now: every list is exact.
    let models = models.lock().unwrap().clone();
    for owner in OWNERS {
        let mut expected: Vec<SessionDigest> = models
            .iter()
            .filter(|(_, model)| !model.deleted && model.owner.as_deref() == Some(owner))
            .map(|(id, _)| *id)
            .collect();
        let mut listed: Vec<SessionDigest> = store
            .owned_by(owner, NOW)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected, "{owner}");
    }
}

/// The index of the node that serves `key` (the others answer `MOVED`).
async fn node_of(nodes: &[&RedisServer], key: &str) -> usize {
    for (index, node) in nodes.iter().enumerate() {
        let mut redis = node.connection().await;
        if redis::cmd("EXISTS")
            .arg(key)
            .query_async::<i64>(&mut redis)
            .await
            .is_ok()
        {
            return index;
        }
    }
    panic!("no node serves {key}");
}

/// On a cluster, when the owner's set cannot take the entry (its node does not answer
/// within the command timeout: here paused with `CLIENT PAUSE .. WRITE`), a create or a save
/// that sets the owner fails, and the session is left without an owner: never owned and
/// unlisted. `store` must have a command timeout well under a second.
pub async fn an_owner_whose_set_cannot_be_written_is_taken_back(
    store: &RedisStore,
    nodes: &[&RedisServer],
) {
    let ada = "ada-unreachable-set";
    // A first session makes the set, so that its node can be found.
    let first = create(store, Some(ada), &meta(HOUR)).await;
    let mut set_node = None;
    for (index, node) in nodes.iter().enumerate() {
        let mut redis = node.connection().await;
        let sets: Vec<String> = redis::cmd("KEYS")
            .arg("session:owner:*")
            .query_async(&mut redis)
            .await
            .unwrap();
        if !sets.is_empty() {
            set_node = Some(index);
        }
    }
    let set_node = set_node.expect("the owner's set exists");
    // Sessions whose hash lives on another node than the set.
    let mut elsewhere = Vec::new();
    while elsewhere.len() < 2 {
        let id = id();
        if node_of(nodes, &store.key(&id)).await != set_node {
            elsewhere.push(id);
        }
    }
    let anonymous = elsewhere[1];
    let created = store
        .create(&anonymous, &owned(None), &meta(HOUR), NOW)
        .await
        .unwrap();
    assert_eq!(created, CreateOutcome::Created);

    let mut paused = nodes[set_node].connection().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("WRITE")
        .query_async(&mut paused)
        .await
        .unwrap();
    let create_failed = store
        .create(&elsewhere[0], &owned(Some(ada)), &meta(HOUR), NOW)
        .await;
    let save_failed = store
        .save(&anonymous, &reowned(Some(ada)), &meta(HOUR), NOW)
        .await;
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut paused)
        .await
        .unwrap();
    assert!(create_failed.is_err(), "{create_failed:?}");
    assert!(save_failed.is_err(), "{save_failed:?}");
    for id in &elsewhere {
        let session = store
            .load(id, NOW)
            .await
            .unwrap()
            .expect("the session stays");
        assert_eq!(
            session.record.owner().key(),
            None,
            "the owner was taken back"
        );
    }
    // The entries the paused node took late match nothing: only the first session is
    // listed, and the late entries are pruned.
    let listed = store.owned_by(ada, NOW).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, first);
    assert_eq!(index_entries(nodes).await, 1);
}
