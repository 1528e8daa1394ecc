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
