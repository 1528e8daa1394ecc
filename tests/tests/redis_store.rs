//! The Redis store against a real `redis-server` that each test starts for itself: the
//! store-behaviour suite, every request-lifecycle guarantee over real HTTP, the commands
//! each request costs (as Redis' `MONITOR` reports them), garbage under a session key, and
//! Redis going down or getting slow mid-traffic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use integration_tests::redis_harness::RedisServer;
use session_runtime::RedisStore;

async fn single() -> (RedisServer, RedisStore) {
    let server = RedisServer::start().await;
    let store = RedisStore::new(&server.url()).await.unwrap();
    (server, store)
}

/// [`single`] with a command timeout a loaded machine cannot reach, for the concurrency suite.
async fn patient() -> (RedisServer, RedisStore) {
    let (server, store) = single().await;
    (
        server,
        store.command_timeout(integration_tests::concurrency::PATIENT),
    )
}

integration_tests::server_store_suites!(guarded: super::single(), concurrency: super::patient());

mod owner_index {
    //! The owner index and removal watches: across store instances, across a subscriber
    //! reconnect, under concurrent writers and listers, and what a listing costs.

    use integration_tests::redis_owners::{self as checks, NO_PERIODIC_RECHECK};
    use session_runtime::RedisStore;

    async fn another(server: &integration_tests::redis_harness::RedisServer) -> RedisStore {
        RedisStore::new(&server.url()).await.unwrap()
    }

    #[tokio::test]
    async fn a_watch_resolves_when_another_instance_removes_the_session() {
        let (server, store) = super::single().await;
        let other = another(&server).await;
        checks::a_watch_resolves_when_another_instance_removes_the_session(&store, &other).await;
    }

    #[tokio::test]
    async fn a_watch_survives_a_subscriber_reconnect() {
        let (server, store) = super::single().await;
        let watching = store.watch_recheck_interval(NO_PERIODIC_RECHECK);
        let other = another(&server).await;
        checks::a_watch_survives_a_subscriber_reconnect(&watching, &other, &[&server]).await;
    }

    #[tokio::test]
    async fn dropping_the_store_stops_its_subscriber_and_resolves_its_watches() {
        let (server, store) = super::single().await;
        checks::dropping_the_store_stops_its_subscriber_and_resolves_its_watches(store, &[&server])
            .await;
    }

    #[tokio::test]
    async fn entries_of_sessions_redis_expired_are_pruned_by_owned_by() {
        let (server, store) = super::single().await;
        checks::entries_of_sessions_redis_expired_are_pruned_by_owned_by(&store, &[&server]).await;
    }

    #[tokio::test]
    async fn moving_a_session_to_another_owner_drops_the_former_entry() {
        let (server, store) = super::single().await;
        checks::moving_a_session_to_another_owner_drops_the_former_entry(&store, &[&server]).await;
    }

    #[tokio::test]
    async fn new_sessions_of_an_owner_prune_stale_entries() {
        let (server, store) = super::single().await;
        checks::new_sessions_of_an_owner_prune_stale_entries(&store, &[&server]).await;
    }

    #[tokio::test]
    async fn owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner() {
        let (server, store) = super::single().await;
        checks::owned_by_costs_one_smembers_and_one_hgetall_per_session_of_the_owner(
            &store,
            &[&server],
        )
        .await;
    }

    #[tokio::test]
    async fn listings_under_concurrent_writes_are_consistent() {
        let (_server, store) = super::single().await;
        checks::listings_under_concurrent_writes_are_consistent(&store).await;
    }
}

/// Shared by the tests below: the test app over a Redis store, and a browser.
mod support {
    use std::time::Duration;

    use integration_tests::app::{app, AppState, TestSession};
    use integration_tests::server::{browser, cookie_value, TestServer};
    use session_runtime::{SessionId, SessionLayer};

    pub(crate) use integration_tests::redis_harness::RedisServer;
    pub(crate) use session_runtime::RedisStore;

    pub(crate) struct Running {
        pub(crate) server: RedisServer,
        pub(crate) store: RedisStore,
        pub(crate) http: TestServer,
        pub(crate) state: AppState,
        pub(crate) client: reqwest::Client,
    }

    impl Running {
        pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
            self.client.get(self.http.url(path)).send().await.unwrap()
        }

        pub(crate) async fn post(&self, path: &str) -> reqwest::Response {
            self.client.post(self.http.url(path)).send().await.unwrap()
        }

        /// Starts a session with one visit and returns its id.
        pub(crate) async fn visit(&self) -> SessionId {
            let response = self.get("/visit").await;
            assert_eq!(response.status(), 200);
            SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap()
        }
    }

    /// A Redis server, a store with the given command timeout, and the test app over it.
    pub(crate) async fn start_with(
        command_timeout: Duration,
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
    ) -> Running {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url())
            .await
            .unwrap()
            .command_timeout(command_timeout);
        let layer = configure(SessionLayer::<TestSession>::new(store.clone()).secure(false));
        let (router, state) = app(layer);
        Running {
            server,
            store,
            http: TestServer::start(router).await,
            state,
            client: browser(),
        }
    }

    pub(crate) async fn start() -> Running {
        start_with(Duration::from_secs(2), |layer| layer).await
    }

    /// A field value as the test app's `TestSession` stores it (MessagePack).
    pub(crate) fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
        rmp_serde::to_vec(value).unwrap()
    }
}

mod commands {
    //! What each request costs, counted by Redis itself (`MONITOR`).

    use std::collections::BTreeSet;
    use std::time::Duration;

    use integration_tests::redis_harness::{Monitor, Monitored};
    use session_runtime::clock::ManualClock;

    use super::support::*;

    fn from_client(commands: &[Monitored]) -> Vec<String> {
        commands
            .iter()
            .filter(|command| command.from_client)
            .map(Monitored::name)
            .collect()
    }

    /// The hash fields the scripts wrote with `HSET`.
    fn fields_written(commands: &[Monitored]) -> BTreeSet<String> {
        commands
            .iter()
            .filter(|command| !command.from_client && command.name() == "HSET")
            .flat_map(|command| command.args[2..].iter().step_by(2))
            .map(|field| String::from_utf8_lossy(field).into_owned())
            .collect()
    }

    fn script_ran(commands: &[Monitored], name: &str) -> bool {
        commands
            .iter()
            .any(|command| !command.from_client && command.name() == name)
    }

    #[tokio::test]
    async fn ignored_session_costs_no_redis_command() {
        let app = start().await;
        let mut monitor = Monitor::start(&app.server).await;
        app.visit().await;
        let (response, commands) = monitor.during(app.get("/ignore")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(commands, []);
    }

    #[tokio::test]
    async fn read_is_one_hgetall_and_writes_nothing() {
        let app = start().await;
        let mut monitor = Monitor::start(&app.server).await;
        let id = app.visit().await;
        let (response, commands) = monitor.during(app.get("/read")).await;
        assert!(response.text().await.unwrap().starts_with("visits: 1 "));
        assert_eq!(from_client(&commands), ["HGETALL"], "{commands:?}");
        assert_eq!(commands.len(), 1, "a script ran: {commands:?}");
        assert_eq!(commands[0].arg(1), app.store.key(&id.digest()).as_bytes());
    }

    #[tokio::test]
    async fn new_session_is_created_in_one_round_trip_with_its_expiry() {
        let app = start().await;
        let mut monitor = Monitor::start(&app.server).await;
        let (response, commands) = monitor.during(app.get("/visit")).await;
        assert_eq!(response.status(), 200);
        // No token yet: nothing to load, one script call to create.
        assert_eq!(from_client(&commands), ["EVALSHA"], "{commands:?}");
        assert!(script_ran(&commands, "PEXPIRE"), "{commands:?}");
    }

    #[tokio::test]
    async fn changed_field_is_written_in_one_round_trip() {
        let app = start().await;
        let mut monitor = Monitor::start(&app.server).await;
        app.visit().await;
        let (response, commands) = monitor.during(app.get("/set-a/7")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            from_client(&commands),
            ["HGETALL", "EVALSHA"],
            "{commands:?}"
        );
        // Only `a` and the meta are written, and the expiry is set by the same script.
        let written: Vec<String> = fields_written(&commands).into_iter().collect();
        assert_eq!(written, ["__c", "__e", "__s", "__v", "a"], "{commands:?}");
        assert!(script_ran(&commands, "PEXPIRE"), "{commands:?}");
    }

    #[tokio::test]
    async fn save_leaves_fields_it_did_not_change_as_they_are_in_redis() {
        let app = start().await;
        let id = app.visit().await;
        let key = app.store.key(&id.digest());
        // The request loads the session and changes `a`; before it commits, someone else
        // changes `b` and `visits` in Redis. The save must not write them back.
        let held = tokio::spawn({
            let (client, url) = (app.client.clone(), app.http.url("/held/set-a/11"));
            async move { client.get(url).send().await.unwrap().status() }
        });
        app.state.gate.loaded.notified().await;
        let mut redis = app.server.connection().await;
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("b")
            .arg(encoded(&99u64))
            .arg("visits")
            .arg(encoded(&5u32))
            .query_async(&mut redis)
            .await
            .unwrap();
        app.state.gate.release.notify_one();
        assert_eq!(held.await.unwrap(), 200);
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 5 "), "{body}");
        assert!(body.ends_with("a: 11 b: 99"), "{body}");
    }

    #[tokio::test]
    async fn touch_is_one_script_call_that_rewrites_no_data() {
        let clock = ManualClock::new();
        let app = start_with(Duration::from_secs(2), |layer| {
            layer
                .idle_timeout(Duration::from_secs(40 * 60))
                .clock(clock.clone())
        })
        .await;
        let mut monitor = Monitor::start(&app.server).await;
        let id = app.visit().await;
        // Past a quarter of the idle timeout, a read refreshes the deadline.
        clock.advance(Duration::from_secs(11 * 60));
        let (response, commands) = monitor.during(app.get("/read")).await;
        assert!(response.text().await.unwrap().starts_with("visits: 1 "));
        assert_eq!(
            from_client(&commands),
            ["HGETALL", "EVALSHA"],
            "{commands:?}"
        );
        let written: Vec<String> = fields_written(&commands).into_iter().collect();
        assert_eq!(written, ["__c", "__e", "__s"], "{commands:?}");
        assert!(script_ran(&commands, "PEXPIRE"), "{commands:?}");
        // Redis' own expiry follows the new deadline: 40 minutes from the touch.
        let mut redis = app.server.connection().await;
        let ttl: i64 = redis::cmd("PTTL")
            .arg(app.store.key(&id.digest()))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!((39 * 60_000..=40 * 60_000).contains(&ttl), "PTTL {ttl}");
    }

    #[tokio::test]
    async fn destroy_is_one_load_and_one_script_that_deletes_and_publishes() {
        let app = start().await;
        let mut monitor = Monitor::start(&app.server).await;
        app.visit().await;
        let (response, commands) = monitor.during(app.post("/logout")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            from_client(&commands),
            ["HGETALL", "EVALSHA"],
            "{commands:?}"
        );
        // A session without an owner has no index entry to remove: nothing more.
        assert!(script_ran(&commands, "DEL"), "{commands:?}");
        assert!(script_ran(&commands, "PUBLISH"), "{commands:?}");
    }
}

mod layout {
    //! What a session looks like in Redis.

    use std::time::Duration;

    use integration_tests::store_suite::{meta, record, NOW};
    use session_runtime::store::{SessionStore, StoreError};
    use session_runtime::SessionId;

    use super::support::*;

    #[tokio::test]
    async fn session_is_one_hash_keyed_by_a_digest_that_holds_no_token() {
        let app = start().await;
        let id = app.visit().await;
        let mut redis = app.server.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(keys, [app.store.key(&id.digest())]);
        assert!(keys[0].starts_with("session:"));
        let dump: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(&keys[0])
            .query_async(&mut redis)
            .await
            .unwrap();
        let mut fields: Vec<&str> = dump.iter().map(|(field, _)| field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["__c", "__e", "__s", "__v", "a", "b", "username", "visits"]
        );
        let token = id.expose_token();
        for (field, value) in &dump {
            assert!(!field.contains(&token));
            assert!(!String::from_utf8_lossy(value).contains(&token));
        }
    }

    #[tokio::test]
    async fn prefix_is_configurable() {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url())
            .await
            .unwrap()
            .prefix("app1:s:");
        let id = SessionId::generate().unwrap();
        let one_hour = Some(Duration::from_secs(3600));
        store
            .create(&id.digest(), &record(&[("a", &[1])]), &meta(one_hour), NOW)
            .await
            .unwrap();
        assert!(store.key(&id.digest()).starts_with("app1:s:"));
        let mut redis = server.connection().await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(store.key(&id.digest()))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(exists, 1);
    }

    #[tokio::test]
    async fn redis_expiry_follows_the_deadline_and_is_removed_without_one() {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url()).await.unwrap();
        let mut redis = server.connection().await;
        let id = SessionId::generate().unwrap();
        let pttl = |mut redis: redis::aio::MultiplexedConnection, key: String| async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
        };
        store
            .create(
                &id.digest(),
                &record(&[("a", &[1])]),
                &meta(Some(Duration::from_secs(60))),
                NOW,
            )
            .await
            .unwrap();
        let ttl = pttl(redis.clone(), store.key(&id.digest())).await;
        assert!((59_000..=60_000).contains(&ttl), "PTTL {ttl}");
        store.touch(&id.digest(), &meta(None), NOW).await.unwrap();
        assert_eq!(pttl(redis.clone(), store.key(&id.digest())).await, -1);
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(store.key(&id.digest()))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(!fields.contains(&"__e".to_owned()), "{fields:?}");
    }

    #[tokio::test]
    async fn field_key_reserved_by_the_store_is_refused_and_nothing_is_written() {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url()).await.unwrap();
        let id = SessionId::generate().unwrap();
        let one_hour = meta(Some(Duration::from_secs(3600)));
        for reserved in RedisStore::RESERVED_FIELDS {
            let bad = record(&[("a", &[1]), (reserved, &[2])]);
            let error = store
                .create(&id.digest(), &bad, &one_hour, NOW)
                .await
                .unwrap_err();
            assert!(matches!(error, StoreError::Message(_)), "{error:?}");
            assert!(error.to_string().contains("rename"), "{error}");
        }
        assert_eq!(store.load(&id.digest(), NOW).await.unwrap(), None);
        store
            .create(&id.digest(), &record(&[("a", &[1])]), &one_hour, NOW)
            .await
            .unwrap();
        let bad = record(&[("__v", &[9])]);
        assert!(store
            .save(&id.digest(), &bad, &one_hour, NOW)
            .await
            .is_err());
        let loaded = store.load(&id.digest(), NOW).await.unwrap().unwrap();
        assert_eq!(loaded.record, record(&[("a", &[1])]));
    }
}

mod garbage {
    //! Values under a session key that this store did not write.

    use integration_tests::logs;
    use integration_tests::server::bare_client;

    use super::support::*;

    #[tokio::test]
    async fn garbage_under_a_session_key_gives_a_fresh_session_and_a_warning() {
        let (logs, _capturing) = logs::capture();

        let app = start().await;
        let garbage: [&[&str]; 5] = [
            &["SET", "KEY", "not a hash"],
            &["RPUSH", "KEY", "a", "list"],
            &["HSET", "KEY", "visits", "\u{5}"],
            &["HSET", "KEY", "__v", "one", "__c", "1", "visits", "\u{5}"],
            &["HSET", "KEY", "__v", "1", "__c", "1", "__e", "tomorrow"],
        ];
        for command in garbage {
            let id = app.visit().await;
            let key = app.store.key(&id.digest());
            let mut redis = app.server.connection().await;
            let _: () = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let mut tamper = redis::cmd(command[0]);
            for arg in &command[1..] {
                tamper.arg(if *arg == "KEY" { key.as_str() } else { arg });
            }
            let _: () = tamper.query_async(&mut redis).await.unwrap();
            logs.take();

            let response = bare_client()
                .get(app.http.url("/read"))
                .header("cookie", format!("session={}", id.expose_token()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{command:?}");
            let body = response.text().await.unwrap();
            assert!(
                body.contains("visits: 0 user: guest new: true"),
                "{command:?}: {body}"
            );
            let logged = logs.take();
            assert!(
                logged.contains("WARN") && logged.contains("starting a fresh session"),
                "{command:?}: no warning in {logged:?}"
            );
            // The garbage is left alone: nothing is written under that key.
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let expected = if command[0] == "HSET" {
                "hash"
            } else if command[0] == "SET" {
                "string"
            } else {
                "list"
            };
            assert_eq!(kind, expected);
        }
    }
}

mod faults {
    //! Redis down, restarted, or too slow, while the app serves requests.

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use integration_tests::logs;
    use integration_tests::redis_harness::RedisServer;
    use session_runtime::RedisConnectError;

    use super::support::*;

    const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
    /// Scheduling slack on a loaded 2-core CI machine: a request and a restart share the
    /// test's one thread. With it, the bound stays under the layer's 3 s store timeout, so
    /// the command timeout is still what each bounded request proves.
    const MARGIN: Duration = Duration::from_millis(1_500);

    /// Polls `path` until it answers 200, for at most `within`.
    async fn recovers(app: &Running, path: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let status = app.get(path).await.status();
            if status == 200 {
                return started.elapsed();
            }
            assert_eq!(status, 503, "{path}");
            assert!(
                started.elapsed() < within,
                "{path} still fails {within:?} after Redis came back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn redis_killed_mid_traffic_gives_503_within_the_timeout_and_the_app_recovers() {
        let (logs, _capturing) = logs::capture();
        let mut app = start_with(COMMAND_TIMEOUT, |layer| layer).await;
        app.visit().await;

        // Steady background load across the kill and the restart, from 8 clients: every
        // answer is a 200 or an opaque 503 within the command timeout plus a margin, never
        // a hang, a 500 or a dropped connection.
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, unavailable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
        let traffic: Vec<_> = (0..8)
            .map(|_| {
                let (client, url) = (app.client.clone(), app.http.url("/visit"));
                let (stop, ok, unavailable) = (stop.clone(), ok.clone(), unavailable.clone());
                let slowest = slowest.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let started = Instant::now();
                        let response = client.get(&url).send().await.unwrap();
                        let elapsed = started.elapsed();
                        {
                            let mut worst = slowest.lock().unwrap();
                            *worst = (*worst).max(elapsed);
                        }
                        match response.status().as_u16() {
                            200 => ok.fetch_add(1, Ordering::SeqCst),
                            503 => unavailable.fetch_add(1, Ordering::SeqCst),
                            other => panic!("unexpected status {other}"),
                        };
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;

        app.server.kill();
        for path in ["/read", "/visit", "/set-a/1"] {
            let started = Instant::now();
            let response = app.get(path).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 503, "{path}");
            let body = response.text().await.unwrap().to_lowercase();
            for secret in ["redis", "refused", "connect", "127.0.0.1"] {
                assert!(!body.contains(secret), "the 503 tells {secret:?}: {body}");
            }
            assert!(
                elapsed < COMMAND_TIMEOUT + MARGIN,
                "{path} took {elapsed:?}"
            );
        }
        // Routes that do not use the session do not notice.
        assert_eq!(app.get("/ignore").await.status(), 200);
        let logged = logs.take();
        assert!(
            logged.contains("ERROR") && logged.contains("redis session store"),
            "the outage was not logged: {logged}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;

        app.server.restart().await;
        let took = recovers(&app, "/visit", Duration::from_secs(5)).await;
        eprintln!("recovered {took:?} after redis-server was restarted");
        // The restarted Redis is empty: the old session is gone, a new one works fully.
        assert!(app
            .get("/read")
            .await
            .text()
            .await
            .unwrap()
            .starts_with("visits: 1 "));

        stop.store(true, Ordering::SeqCst);
        for client in traffic {
            client.await.unwrap();
        }
        let slowest = *slowest.lock().unwrap();
        eprintln!(
            "steady load: {} successes, {} opaque 503s, slowest answer {slowest:?}",
            ok.load(Ordering::SeqCst),
            unavailable.load(Ordering::SeqCst)
        );
        assert!(ok.load(Ordering::SeqCst) > 0);
        assert!(
            unavailable.load(Ordering::SeqCst) > 0,
            "the traffic never saw the outage"
        );
        assert!(
            slowest < COMMAND_TIMEOUT + MARGIN,
            "a request took {slowest:?} during the outage"
        );
    }

    #[tokio::test]
    async fn redis_too_slow_gives_503_within_the_command_timeout() {
        let (logs, _capturing) = logs::capture();
        let app = start_with(COMMAND_TIMEOUT, |layer| layer).await;
        app.visit().await;
        // DEBUG SLEEP blocks the whole server, as a Redis stuck in a slow command would.
        let mut busy = app.server.connection().await;
        let mut probe = app.server.connection().await;
        let sleeper = tokio::spawn(async move {
            let _: () = redis::cmd("DEBUG")
                .arg("SLEEP")
                .arg(4)
                .query_async(&mut busy)
                .await
                .unwrap();
        });
        // Wait until Redis is inside the sleep (a PING goes unanswered), however long the
        // loaded machine takes to get the DEBUG SLEEP there.
        let waiting = Instant::now();
        loop {
            let ping = redis::cmd("PING");
            let answer = ping.query_async::<String>(&mut probe);
            if tokio::time::timeout(Duration::from_millis(300), answer)
                .await
                .is_err()
            {
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "DEBUG SLEEP never blocked redis-server"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for path in ["/read", "/visit"] {
            let started = Instant::now();
            let response = app.get(path).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 503, "{path}");
            assert!(
                elapsed < COMMAND_TIMEOUT + MARGIN,
                "{path} took {elapsed:?}"
            );
        }
        let logged = logs.take();
        assert!(
            logged.contains("no answer within the command timeout"),
            "the timeout was not logged: {logged}"
        );
        sleeper.await.unwrap();
        // The same connection serves again once Redis answers: no restart needed.
        let body = app.get("/read").await.text().await.unwrap();
        assert!(body.starts_with("visits: 1 "), "{body}");
    }

    #[tokio::test]
    async fn unreachable_redis_at_start_up_is_a_clear_error() {
        // A port that was just free: nothing listens there.
        let server = RedisServer::start().await;
        let url = server.url();
        let port = server.port();
        drop(server);
        let started = Instant::now();
        let error = RedisStore::new(&url).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(error, RedisConnectError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
        let error = RedisStore::new("http://nope").await.unwrap_err();
        assert!(
            matches!(error, RedisConnectError::InvalidUrl(_)),
            "{error:?}"
        );
    }
}

/// Live connections across instances: two instances of the devices app over one Redis; a
/// socket served by one is closed when its session is revoked, or logs out, through the
/// other (the removal reaches it through Redis).
mod owners_two_instances {
    use examples::devices;
    use integration_tests::owners_suite::{
        socket_closes_when_another_browser_revokes_it,
        socket_closes_when_its_session_logs_out_elsewhere,
    };
    use integration_tests::server::TestServer;
    use session_runtime::RedisStore;

    #[tokio::test]
    async fn a_socket_on_one_instance_closes_when_revoked_through_another() {
        let (redis, store) = super::single().await;
        let second = RedisStore::new(&redis.url()).await.unwrap();
        let one = TestServer::start_with_peers(devices::app(store)).await;
        let two = TestServer::start_with_peers(devices::app(second)).await;
        socket_closes_when_another_browser_revokes_it(&one.url(""), &two.url("")).await;
        socket_closes_when_its_session_logs_out_elsewhere(&one.url(""), &two.url("")).await;
    }
}
