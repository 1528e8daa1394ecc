//! The Redis store against a real 3-master Redis Cluster that each test creates for itself
//! with `redis-cli --cluster create`: the store-behaviour suite and every request-lifecycle
//! guarantee over real HTTP.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use integration_tests::redis_harness::RedisCluster;
use session_runtime::RedisStore;

async fn cluster() -> (RedisCluster, RedisStore) {
    let cluster = RedisCluster::start().await;
    let store = RedisStore::cluster(cluster.urls()).await.unwrap();
    (cluster, store)
}

mod store {
    integration_tests::store_suite!(guarded: super::cluster());
}

mod owner_store {
    integration_tests::owner_store_suite!(guarded: super::cluster());
}

mod owners {
    integration_tests::owners_suite!(guarded: super::cluster());
}

mod owner_index {
    //! The owner index and removal watches on a cluster, where a session and its owner's
    //! set live in different slots: the same checks as on a single server.

    use integration_tests::redis_harness::RedisServer;
    use integration_tests::redis_owners::{self as checks, NO_PERIODIC_RECHECK};
    use session_runtime::RedisStore;

    fn nodes(cluster: &integration_tests::redis_harness::RedisCluster) -> Vec<&RedisServer> {
        cluster.nodes.iter().collect()
    }

    #[tokio::test]
    async fn a_watch_resolves_when_another_instance_removes_the_session() {
        let (cluster, store) = super::cluster().await;
        let other = RedisStore::cluster(cluster.urls()).await.unwrap();
        checks::a_watch_resolves_when_another_instance_removes_the_session(&store, &other).await;
    }

    #[tokio::test]
    async fn a_watch_survives_a_subscriber_reconnect() {
        let (cluster, store) = super::cluster().await;
        let watching = store.watch_recheck_interval(NO_PERIODIC_RECHECK);
        let other = RedisStore::cluster(cluster.urls()).await.unwrap();
        checks::a_watch_survives_a_subscriber_reconnect(&watching, &other, &nodes(&cluster)).await;
    }

    #[tokio::test]
    async fn dropping_the_store_stops_its_subscriber_and_resolves_its_watches() {
        let (cluster, store) = super::cluster().await;
        checks::dropping_the_store_stops_its_subscriber_and_resolves_its_watches(
            store,
            &nodes(&cluster),
        )
        .await;
    }

    #[tokio::test]
    async fn entries_of_sessions_redis_expired_are_pruned_by_owned_by() {
        let (cluster, store) = super::cluster().await;
        checks::entries_of_sessions_redis_expired_are_pruned_by_owned_by(&store, &nodes(&cluster))
            .await;
    }

    #[tokio::test]
    async fn moving_a_session_to_another_owner_drops_the_former_entry() {
        let (cluster, store) = super::cluster().await;
        checks::moving_a_session_to_another_owner_drops_the_former_entry(&store, &nodes(&cluster))
            .await;
    }

    #[tokio::test]
    async fn new_sessions_of_an_owner_prune_stale_entries() {
        let (cluster, store) = super::cluster().await;
        checks::new_sessions_of_an_owner_prune_stale_entries(&store, &nodes(&cluster)).await;
    }

    #[tokio::test]
    async fn owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner() {
        let (cluster, store) = super::cluster().await;
        checks::owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner(
            &store,
            &nodes(&cluster),
        )
        .await;
    }

    #[tokio::test]
    async fn an_owner_whose_set_cannot_be_written_is_taken_back() {
        let (cluster, store) = super::cluster().await;
        let store = store.command_timeout(std::time::Duration::from_millis(300));
        checks::an_owner_whose_set_cannot_be_written_is_taken_back(&store, &nodes(&cluster)).await;
    }

    #[tokio::test]
    async fn listings_under_concurrent_writes_are_consistent() {
        let (_cluster, store) = super::cluster().await;
        checks::listings_under_concurrent_writes_are_consistent(&store).await;
    }
}

mod http {
    integration_tests::guarantee_suite!(guarded: super::cluster());
}

mod hardening {
    integration_tests::hardening_suite!(guarded: super::cluster());
}

mod cluster_only {
    use std::time::Duration;

    use integration_tests::app::{app, TestSession};
    use integration_tests::redis_harness::{Monitor, Monitored};
    use integration_tests::server::{browser, TestServer};
    use integration_tests::store_suite::{meta, record, NOW};
    use session_runtime::store::SessionStore;
    use session_runtime::{SessionId, SessionLayer};

    /// Commands are counted on every node: a request costs the same round trips on a
    /// cluster as on a single server (the key routes each command to one node).
    #[tokio::test]
    async fn read_and_change_cost_the_same_round_trips_as_on_a_single_server() {
        let (cluster, store) = super::cluster().await;
        let layer = SessionLayer::<TestSession>::new(store).secure(false);
        let server = TestServer::start(app(layer).0).await;
        let client = browser();
        let mut monitor = Monitor::start_all(&cluster.nodes).await;
        let get = |path: &str| client.get(server.url(path)).send();
        let names = |commands: &[Monitored]| -> Vec<String> {
            commands
                .iter()
                .filter(|command| command.from_client)
                .map(Monitored::name)
                .collect()
        };
        let (_, commands) = monitor.during(get("/visit")).await;
        assert_eq!(names(&commands), ["EVALSHA"], "{commands:?}");
        let (_, commands) = monitor.during(get("/ignore")).await;
        assert_eq!(names(&commands), Vec::<String>::new(), "{commands:?}");
        let (_, commands) = monitor.during(get("/read")).await;
        assert_eq!(names(&commands), ["HGETALL"], "{commands:?}");
        let (_, commands) = monitor.during(get("/set-a/3")).await;
        assert_eq!(names(&commands), ["HGETALL", "EVALSHA"], "{commands:?}");
    }

    #[tokio::test]
    async fn sessions_spread_over_every_master() {
        let (cluster, store) = super::cluster().await;
        let one_hour = meta(Some(Duration::from_secs(3600)));
        let mut ids = Vec::new();
        for _ in 0..30 {
            let id = SessionId::generate().unwrap();
            store
                .create(&id.digest(), &record(&[("a", &[1])]), &one_hour, NOW)
                .await
                .unwrap();
            ids.push(id);
        }
        for node in &cluster.nodes {
            let mut redis = node.connection().await;
            let size: i64 = redis::cmd("DBSIZE").query_async(&mut redis).await.unwrap();
            assert!(size > 0, "node {} holds no session", node.port());
        }
        for id in &ids {
            assert!(store.load(&id.digest(), NOW).await.unwrap().is_some());
        }
    }
}
