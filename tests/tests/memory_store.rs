//! The memory store: the store-behaviour suite and every request-lifecycle guarantee over
//! real HTTP.

use session_runtime::MemoryStore;

mod store {
    use super::*;
    integration_tests::store_suite!(async { MemoryStore::new() });
}

mod owner_store {
    use super::*;
    integration_tests::owner_store_suite!(async { MemoryStore::new() });
}

mod owners {
    use super::*;
    integration_tests::owners_suite!(async { MemoryStore::new() });
}

/// Two apps (two layers) over one memory store in one process: a socket served by one is
/// closed when its session is revoked, or logs out, through the other.
mod owners_two_apps {
    use examples::devices;
    use integration_tests::owners_suite::{
        socket_closes_when_another_browser_revokes_it,
        socket_closes_when_its_session_logs_out_elsewhere,
    };
    use integration_tests::server::TestServer;
    use session_runtime::MemoryStore;

    #[tokio::test]
    async fn a_socket_on_one_app_closes_when_revoked_through_another() {
        let store = MemoryStore::new();
        let one = TestServer::start_with_peers(devices::app(store.clone())).await;
        let two = TestServer::start_with_peers(devices::app(store)).await;
        socket_closes_when_another_browser_revokes_it(&one.url(""), &two.url("")).await;
        socket_closes_when_its_session_logs_out_elsewhere(&one.url(""), &two.url("")).await;
    }
}

mod http {
    use super::*;
    integration_tests::guarantee_suite!(async { MemoryStore::new() });
}

mod hardening {
    use super::*;
    integration_tests::hardening_suite!(async { MemoryStore::new() });
}

mod session_api {
    use super::*;
    use integration_tests::session_api::Kind;
    integration_tests::session_api_suite!(Kind::ServerSide, async { MemoryStore::new() });
}

mod server_api {
    use super::*;
    integration_tests::server_api_suite!(async { MemoryStore::new() });
}

mod memory_only {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::routing::get;
    use axum::Router;
    use integration_tests::app::{app, TestSession};
    use integration_tests::server::{browser, cookie_value, set_cookies, TestServer};
    use reqwest::StatusCode;
    use session_runtime::clock::ManualClock;
    use session_runtime::{MemoryStore, Session, SessionDigest, SessionId, SessionLayer};

    #[tokio::test]
    async fn missing_layer_rejection_says_which_layer_to_add() {
        async fn handler(session: Session<TestSession>) -> String {
            session.visits.to_string()
        }
        let server = TestServer::start(Router::new().route("/", get(handler))).await;
        let response = browser().get(server.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.text().await.unwrap();
        assert!(
            body.contains("SessionLayer::<integration_tests::app::TestSession>"),
            "{body}"
        );
        assert!(body.contains(".layer("), "{body}");
    }

    #[tokio::test]
    async fn second_live_handle_in_one_request_is_rejected_with_an_explanation() {
        async fn handler(first: Session<TestSession>, second: Session<TestSession>) -> String {
            format!("{} {}", first.visits, second.visits)
        }
        let layer = SessionLayer::<TestSession>::new(MemoryStore::new());
        let server = TestServer::start(Router::new().route("/", get(handler)).layer(layer)).await;
        let response = browser().get(server.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.text().await.unwrap().contains("extracted twice"));
    }

    #[tokio::test]
    async fn default_cookie_is_host_prefixed_secure_http_only_lax_and_ends_with_the_browser_session(
    ) {
        let (router, _) = app(SessionLayer::<TestSession>::new(MemoryStore::new()));
        let server = TestServer::start(router).await;
        let response = browser().get(server.url("/visit")).send().await.unwrap();
        let cookie = set_cookies(&response).join("\n");
        assert!(cookie.starts_with("__Host-session="), "{cookie}");
        for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        assert!(!cookie.contains("Max-Age"), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");
    }

    #[tokio::test]
    async fn plain_http_development_gets_a_plain_default_name() {
        let (router, _) = app(SessionLayer::<TestSession>::new(MemoryStore::new()).secure(false));
        let server = TestServer::start(router).await;
        let response = browser().get(server.url("/visit")).send().await.unwrap();
        let cookie = set_cookies(&response).join("\n");
        assert!(cookie.starts_with("session="), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
    }

    /// Browsers silently drop cookies that break the `__Host-` / `__Secure-` rules: such a
    /// configuration stops the app when the layer is applied, naming the rule.
    #[test]
    fn cookie_prefix_rules_are_enforced_at_start_up() {
        type Configure = fn(SessionLayer<TestSession>) -> SessionLayer<TestSession>;
        let cases: [(Configure, &str); 4] = [
            (
                |layer| layer.secure(false).cookie_name("__Host-s"),
                "must be Secure",
            ),
            (|layer| layer.domain("example.com"), "cannot have a Domain"),
            (|layer| layer.path("/app"), "must have Path=/"),
            (
                |layer| layer.cookie_name("__Secure-s").secure(false),
                "must be Secure",
            ),
        ];
        for (configure, rule) in cases {
            let layer = configure(SessionLayer::<TestSession>::new(MemoryStore::new()));
            let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| app(layer).0))
            else {
                panic!("{rule}: accepted");
            };
            let message = panic.downcast_ref::<String>().unwrap();
            assert!(message.contains(rule), "{message}");
        }
    }

    #[tokio::test]
    async fn persistent_cookie_carries_the_remaining_lifetime() {
        let layer = SessionLayer::<TestSession>::new(MemoryStore::new())
            .secure(false)
            .cookie_name("__app")
            .persistent(true)
            .idle_timeout(Duration::from_secs(1800));
        let server = TestServer::start(app(layer).0).await;
        let response = browser().get(server.url("/visit")).send().await.unwrap();
        let cookie = set_cookies(&response).join("\n");
        assert!(cookie.starts_with("__app="), "{cookie}");
        assert!(
            cookie.contains("Max-Age=1799") || cookie.contains("Max-Age=1800"),
            "{cookie}"
        );
    }

    #[tokio::test]
    async fn sweeper_expiry_fires_on_deleted() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .sweep_interval(Duration::from_millis(10))
            .build();
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&deleted);
        let layer = SessionLayer::<TestSession>::new(store.clone())
            .secure(false)
            .clock(clock.clone())
            .idle_timeout(Duration::from_secs(60))
            .on_deleted(move |id, data| sink.lock().unwrap().push((*id, data.visits)));
        let server = TestServer::start(app(layer).0).await;
        let response = browser().get(server.url("/visit")).send().await.unwrap();
        let id = SessionId::parse(&cookie_value(&response, "session").unwrap()).unwrap();
        clock.advance(Duration::from_secs(61));
        for _ in 0..300 {
            if !deleted.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*deleted.lock().unwrap(), vec![(id.digest(), 1)]);
        assert!(store.is_empty());
    }

    /// The rule in `SessionLayer`'s docs: builder methods configure only the value they are
    /// called on. A layer's `on_deleted` reaches the store when the layer is applied to a
    /// router, every layer sharing a store gets its own reports, and clones of a store built
    /// with settings share its sessions.
    #[tokio::test]
    async fn builders_never_change_a_shared_store() {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .sweep_interval(Duration::from_secs(3600))
            .max_sessions(1_000)
            .build();
        let earlier_clone = store.clone();
        let hook = |sink: &Arc<Mutex<Vec<u32>>>| {
            let sink = Arc::clone(sink);
            move |_: &SessionDigest, data: &TestSession| sink.lock().unwrap().push(data.visits)
        };
        let layer = |on_deleted| {
            SessionLayer::<TestSession>::new(store.clone())
                .secure(false)
                .clock(clock.clone())
                .idle_timeout(Duration::from_secs(60))
                .on_deleted(on_deleted)
        };
        let (never, first, second) = Default::default();
        let _built_only = layer(hook(&never)); // configured, never applied
        let server_one = TestServer::start(app(layer(hook(&first))).0).await;
        let server_two = TestServer::start(app(layer(hook(&second))).0).await;

        let response = browser()
            .get(server_one.url("/visit"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = browser()
            .get(server_two.url("/visit"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            earlier_clone.len(),
            2,
            "a clone made before use shares the sessions"
        );

        clock.advance(Duration::from_secs(61));
        assert_eq!(store.sweep(), 2);
        let sorted = |list: &Arc<Mutex<Vec<u32>>>| list.lock().unwrap().clone();
        assert_eq!(
            sorted(&never),
            Vec::<u32>::new(),
            "a layer never applied hears nothing"
        );
        assert_eq!(
            sorted(&first),
            vec![1, 1],
            "each applied layer hears every expiry once"
        );
        assert_eq!(sorted(&second), vec![1, 1]);
        assert!(earlier_clone.is_empty());
    }

    #[tokio::test]
    async fn reset_expires_at_and_is_new_behave_as_documented() {
        async fn reset(mut session: Session<TestSession>) -> String {
            session.reset();
            format!("{} {}", session.visits, session.username)
        }
        async fn info(session: Session<TestSession>) -> String {
            let left = session
                .expires_at()
                .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
                .map_or(0, |d| d.as_secs());
            format!("new={} left={left}", session.is_new())
        }
        let layer = SessionLayer::<TestSession>::new(MemoryStore::new())
            .secure(false)
            .idle_timeout(Duration::from_secs(600));
        let router = Router::new()
            .route("/reset", get(reset))
            .route("/info", get(info));
        let (app_router, _) = app(layer.clone());
        let server = TestServer::start(app_router.merge(router.layer(layer))).await;
        let client = browser();
        let info_new = client.get(server.url("/info")).send().await.unwrap();
        let body = info_new.text().await.unwrap();
        assert!(body.starts_with("new=true left=59"), "{body}");
        client.post(server.url("/login/ada")).send().await.unwrap();
        client.get(server.url("/visit")).send().await.unwrap();
        let body = client
            .get(server.url("/reset"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "0 guest");
        let body = client
            .get(server.url("/read"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            body.starts_with("visits: 0 user: guest new: false"),
            "{body}"
        );
    }
}

mod migration {
    use integration_tests::counting::Counting;
    use session_runtime::MemoryStore;
    integration_tests::migration_suite!(async { Counting::new(MemoryStore::new()) });
}

mod concurrency {
    use session_runtime::MemoryStore;
    integration_tests::concurrency_suite!(async { MemoryStore::new() });
}
