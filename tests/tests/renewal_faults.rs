//! Session id renewal (`session.renew()`, as at login) when the store fails, stalls past
//! the commit deadline, or the response is abandoned (an outer timeout, a client closing
//! the connection) between its two store steps, over a real axum server and real clients.
//!
//! What every case pins: afterwards exactly one record of the session is left in the real
//! store, and the cookie the client holds afterwards (the new one if the response carried
//! one, else the old one) reads the session with its data. Never a logout (no record), never
//! a record under an id nobody holds.
//!
//! The store is a real [`MemoryStore`] (or a real `redis-server`) behind
//! [`Counting`](integration_tests::counting::Counting), whose one-shot faults hit one
//! operation either before the real store is called (`Place::BeforeStore`: the operation
//! does not happen, or happens late) or after it answered (`Place::AfterStore`: the
//! operation happened, its answer is lost or late).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

/// The test app over a counted memory store, and a client without a cookie jar, so that
/// each test says which cookie it sends.
mod support {
    use std::time::Duration;

    use axum::Router;
    use integration_tests::app::{app, TestSession};
    use integration_tests::counting::Counting;
    use integration_tests::server::{bare_client, cookie_value, TestServer};
    use integration_tests::settle::settle_records;
    use session_runtime::{MemoryStore, SessionLayer};

    /// What `/read` shows for the session before the login: one visit, `a` set to 5.
    pub(crate) const BEFORE_LOGIN: &str = "visits: 1 user: guest new: false a: 5 b: 0";
    /// What `/read` shows after a login as `ada` moved the session to a new id.
    pub(crate) const AFTER_LOGIN: &str = "visits: 1 user: ada new: false a: 5 b: 0";
    /// A stall well past the short deadlines below.
    pub(crate) const STALL: Duration = Duration::from_millis(1_500);
    /// The commit deadline of the store-timeout cases.
    pub(crate) const SHORT_STORE_TIMEOUT: Duration = Duration::from_millis(250);

    pub(crate) struct App {
        pub(crate) store: Counting<MemoryStore>,
        pub(crate) router: Router,
        pub(crate) http: TestServer,
        pub(crate) client: reqwest::Client,
    }

    /// The test app with `configure` applied to its layer, and `wrap` to the finished
    /// router (for layers outside the session layer).
    pub(crate) async fn start_with(
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
        wrap: impl FnOnce(Router) -> Router,
    ) -> App {
        let store = Counting::new(MemoryStore::new());
        let layer = configure(SessionLayer::<TestSession>::new(store.clone()).secure(false));
        let (router, _state) = app(layer);
        let router = wrap(router);
        App {
            store,
            http: TestServer::start(router.clone()).await,
            router,
            client: bare_client(),
        }
    }

    pub(crate) async fn start(
        configure: impl FnOnce(SessionLayer<TestSession>) -> SessionLayer<TestSession>,
    ) -> App {
        start_with(configure, |router| router).await
    }

    pub(crate) fn cookie(token: &str) -> String {
        format!("session={token}")
    }

    impl App {
        async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
            let mut request = self.client.get(self.http.url(path));
            if let Some(token) = token {
                request = request.header("cookie", cookie(token));
            }
            request.send().await.unwrap()
        }

        /// Starts a session with some data (one visit, `a` = 5) and returns its token.
        pub(crate) async fn start_session(&self) -> String {
            let first = self.get("/visit", None).await;
            assert_eq!(first.status(), 200);
            let token = cookie_value(&first, "session").expect("a new session sets a cookie");
            let set = self.get("/set-a/5", Some(&token)).await;
            assert_eq!(set.status(), 200);
            assert_eq!(self.read(&token).await, BEFORE_LOGIN);
            assert_eq!(self.store.inner.len(), 1);
            token
        }

        /// `POST /login/ada` with `token`: renews the session and sets the username.
        pub(crate) async fn login(&self, token: &str) -> reqwest::Response {
            self.client
                .post(self.http.url("/login/ada"))
                .header("cookie", cookie(token))
                .send()
                .await
                .unwrap()
        }

        /// What `/read` shows with `token`.
        pub(crate) async fn read(&self, token: &str) -> String {
            let response = self.get("/read", Some(token)).await;
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }

        /// The number of records in the real store once the store has been left alone (by
        /// the request and by whatever it left running) for a while; see `settle_records`.
        pub(crate) async fn settled_records(&self) -> usize {
            let inner = self.store.inner.clone();
            settle_records(&self.store.counts, 1, || {
                let len = inner.len();
                async move { len }
            })
            .await
        }

        /// The end state every renewal must reach: exactly one record, and `token` (the
        /// cookie the client holds now) reads it as `expected`.
        pub(crate) async fn assert_one_session_read_by(
            &self,
            token: &str,
            whose: &str,
            expected: &str,
        ) {
            let records = self.settled_records().await;
            let body = self.read(token).await;
            assert!(
                records == 1 && body == expected,
                "expected exactly 1 record, read by the {whose} cookie as {expected:?}; \
                 found {records} record(s), and the {whose} cookie reads {body:?}"
            );
            assert_eq!(
                self.store.inner.len(),
                1,
                "reading changed the record count"
            );
        }

        /// The end state of a renewal the client never saw succeed (a 503, or no response
        /// at all): exactly one record, under the old id, holding the session as it was
        /// before the login. Not with the login's changes: those belong under the new id
        /// only; written under the old one, the id the client held before logging in (one
        /// an attacker may have planted), they would make that id a logged-in session.
        pub(crate) async fn assert_renewal_undone(&self, old: &str) {
            let records = self.settled_records().await;
            let body = self.read(old).await;
            assert!(
                !body.contains("user: ada"),
                "the undone login's changes were written under the old id, which is now \
                 logged in ({records} record(s); the old cookie reads {body:?})"
            );
            self.assert_one_session_read_by(old, "old", BEFORE_LOGIN)
                .await;
        }
    }

    /// The session cookie a response set, if any (`None` for none or a removal cookie).
    pub(crate) fn new_token(response: &reqwest::Response) -> Option<String> {
        cookie_value(response, "session").filter(|token| !token.is_empty())
    }
}

/// A renewal whose create fails (or is lost, or is too slow): the response is a 503 without
/// a cookie, and the client's old cookie keeps the session.
mod create_fails {
    use std::time::Duration;

    use integration_tests::counting::{Op, Place};
    use reqwest::StatusCode;

    use super::support::*;

    async fn create_fault_keeps_the_old_session(
        store_timeout: Option<Duration>,
        arm: impl FnOnce(&integration_tests::counting::Faults),
    ) {
        let app = start(|layer| match store_timeout {
            Some(timeout) => layer.store_timeout(timeout),
            None => layer,
        })
        .await;
        let old = app.start_session().await;
        arm(&app.store.faults);
        let login = app.login(&old).await;
        assert_eq!(app.store.faults.fired(Op::Create), 1, "the fault never hit");
        let status = login.status();
        let cookie = new_token(&login);
        assert_eq!(
            (status, cookie.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, None),
            "a renewal whose create failed must answer 503 and keep the old cookie"
        );
        app.assert_renewal_undone(&old).await;
    }

    #[tokio::test]
    async fn renewal_whose_create_fails_keeps_the_old_session() {
        create_fault_keeps_the_old_session(None, |faults| {
            faults.fail_next(Op::Create, Place::BeforeStore);
        })
        .await;
    }

    /// The new record was written but the store's answer was lost: the new id must be
    /// cleaned up, not left as a record nobody holds.
    #[tokio::test]
    async fn renewal_whose_create_is_stored_but_answers_an_error_leaves_no_orphan_record() {
        create_fault_keeps_the_old_session(None, |faults| {
            faults.fail_next(Op::Create, Place::AfterStore);
        })
        .await;
    }

    #[tokio::test]
    async fn renewal_whose_create_outlasts_the_store_timeout_keeps_the_old_session() {
        create_fault_keeps_the_old_session(Some(SHORT_STORE_TIMEOUT), |faults| {
            faults.stall_next(Op::Create, Place::BeforeStore, STALL);
        })
        .await;
    }

    /// The new record was written, its answer came after the deadline: cleaned up too.
    #[tokio::test]
    async fn renewal_whose_create_is_stored_but_answers_after_the_store_timeout_leaves_no_orphan_record(
    ) {
        create_fault_keeps_the_old_session(Some(SHORT_STORE_TIMEOUT), |faults| {
            faults.stall_next(Op::Create, Place::AfterStore, STALL);
        })
        .await;
    }
}

/// A renewal whose take of the old id fails (or is too slow) after the create succeeded:
/// the new session holds the data, so the response carries the new cookie, and the old
/// record is removed in the background.
mod take_fails {
    use std::time::Duration;

    use integration_tests::counting::{Faults, Op, Place};
    use integration_tests::logs;
    use reqwest::StatusCode;

    use super::support::*;

    async fn take_fault_moves_the_session_to_the_new_cookie(
        store_timeout: Option<Duration>,
        arm: impl FnOnce(&Faults),
        logged: &str,
    ) {
        let (captured, _capturing) = logs::capture();
        let app = start(|layer| match store_timeout {
            Some(timeout) => layer.store_timeout(timeout),
            None => layer,
        })
        .await;
        let old = app.start_session().await;
        arm(&app.store.faults);
        let login = app.login(&old).await;
        assert_eq!(app.store.faults.fired(Op::Take), 1, "the fault never hit");
        let status = login.status();
        let new = new_token(&login);
        assert!(
            status == StatusCode::OK && new.as_ref().is_some_and(|new| *new != old),
            "a renewal whose take failed after the create must answer 200 with the new \
             cookie; got {status} with cookie {new:?}"
        );
        let new = new.unwrap();
        app.assert_one_session_read_by(&new, "new", AFTER_LOGIN)
            .await;
        // The one record is the new one: the old id no longer names a session.
        let replay = app.read(&old).await;
        assert!(replay.contains("user: guest new: true"), "{replay}");
        let captured = captured.take();
        assert!(
            captured.contains(logged),
            "the failed take was not logged ({logged:?}); logs:\n{captured}"
        );
    }

    /// The old record is still there after the failed take: deleted in the background.
    #[tokio::test]
    async fn renewal_whose_take_fails_moves_the_session_to_the_new_cookie() {
        take_fault_moves_the_session_to_the_new_cookie(
            None,
            |faults| faults.fail_next(Op::Take, Place::BeforeStore),
            "injected fault: Take failed",
        )
        .await;
    }

    #[tokio::test]
    async fn renewal_whose_take_removes_the_old_record_but_answers_an_error_moves_the_session_to_the_new_cookie(
    ) {
        take_fault_moves_the_session_to_the_new_cookie(
            None,
            |faults| faults.fail_next(Op::Take, Place::AfterStore),
            "injected fault: Take failed",
        )
        .await;
    }

    #[tokio::test]
    async fn renewal_whose_take_outlasts_the_store_timeout_moves_the_session_to_the_new_cookie() {
        take_fault_moves_the_session_to_the_new_cookie(
            Some(SHORT_STORE_TIMEOUT),
            |faults| faults.stall_next(Op::Take, Place::BeforeStore, STALL),
            "did not answer within",
        )
        .await;
    }

    #[tokio::test]
    async fn renewal_whose_take_removes_the_old_record_but_answers_after_the_store_timeout_moves_the_session_to_the_new_cookie(
    ) {
        take_fault_moves_the_session_to_the_new_cookie(
            Some(SHORT_STORE_TIMEOUT),
            |faults| faults.stall_next(Op::Take, Place::AfterStore, STALL),
            "did not answer within",
        )
        .await;
    }
}

/// The response future is dropped mid-commit by a timeout outside the session layer: the
/// client gets no new cookie, so its old one must keep working.
mod outer_timeout {
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use integration_tests::counting::{Op, Place};
    use tower::ServiceExt;

    use super::support::*;

    /// Shorter than the commit deadline (the default 3 s) and than the stall.
    const OUTER: Duration = Duration::from_millis(200);

    /// The store stalls on `op` at `place`; `oneshot` of the router, inside
    /// `tokio::time::timeout`, is dropped at `OUTER`.
    async fn oneshot_dropped_mid_renewal_keeps_the_old_session(op: Op, place: Place) {
        let app = start(|layer| layer).await;
        let old = app.start_session().await;
        app.store.faults.stall_next(op, place, STALL);
        let request = axum::http::Request::post("/login/ada")
            .header("cookie", cookie(&old))
            .body(Body::empty())
            .unwrap();
        let outcome = tokio::time::timeout(OUTER, app.router.clone().oneshot(request)).await;
        assert!(
            outcome.is_err(),
            "the login finished before the outer timeout: {outcome:?}"
        );
        assert_eq!(app.store.faults.fired(op), 1, "dropped before the {op:?}");
        app.assert_renewal_undone(&old).await;
    }

    #[tokio::test]
    async fn renewal_dropped_by_an_outer_timeout_during_the_create_keeps_the_old_session() {
        oneshot_dropped_mid_renewal_keeps_the_old_session(Op::Create, Place::BeforeStore).await;
    }

    #[tokio::test]
    async fn renewal_dropped_by_an_outer_timeout_after_the_create_was_stored_keeps_the_old_session()
    {
        oneshot_dropped_mid_renewal_keeps_the_old_session(Op::Create, Place::AfterStore).await;
    }

    /// The old record was taken when the response was dropped: it must be put back.
    #[tokio::test]
    async fn renewal_dropped_by_an_outer_timeout_after_the_take_keeps_the_old_session() {
        oneshot_dropped_mid_renewal_keeps_the_old_session(Op::Take, Place::AfterStore).await;
    }

    /// A session revoked (here: the store cleared) while a renewal whose response was
    /// dropped is being undone is not brought back under the old id: the new id is gone
    /// when the undo deletes it, so the old one is ended too.
    #[tokio::test]
    async fn an_undone_renewal_does_not_bring_back_a_session_revoked_meanwhile() {
        use session_runtime::store::SessionStore as _;

        let app = start(|layer| layer).await;
        let old = app.start_session().await;
        app.store
            .faults
            .stall_next(Op::Take, Place::AfterStore, STALL);
        let request = axum::http::Request::post("/login/ada")
            .header("cookie", cookie(&old))
            .body(Body::empty())
            .unwrap();
        let outcome = tokio::time::timeout(OUTER, app.router.clone().oneshot(request)).await;
        assert!(outcome.is_err(), "the login finished: {outcome:?}");
        // The renewal has created the new id and taken the old one (its take is stalled
        // after the store ran it); the session is revoked now: nothing is left.
        assert_eq!(app.store.faults.fired(Op::Take), 1);
        app.store.inner.clear().await.unwrap();
        let inner = app.store.inner.clone();
        let records = integration_tests::settle::settle_records(&app.store.counts, 0, || {
            let len = inner.len();
            async move { len }
        })
        .await;
        let body = app.read(&old).await;
        assert_eq!(
            records, 0,
            "the revoked session came back (the old cookie reads {body:?})"
        );
        assert_ne!(
            body, BEFORE_LOGIN,
            "the old cookie still reads the revoked session"
        );
    }

    /// An app's own timeout middleware, outside the session layer, over real HTTP.
    async fn gateway_timeout(request: Request, next: Next) -> Response {
        match tokio::time::timeout(OUTER, next.run(request)).await {
            Ok(response) => response,
            Err(_) => StatusCode::GATEWAY_TIMEOUT.into_response(),
        }
    }

    #[tokio::test]
    async fn renewal_cut_off_by_a_timeout_middleware_over_http_keeps_the_old_session() {
        let app = start_with(
            |layer| layer,
            |router| router.layer(axum::middleware::from_fn(gateway_timeout)),
        )
        .await;
        let old = app.start_session().await;
        app.store
            .faults
            .stall_next(Op::Take, Place::AfterStore, STALL);
        let login = app.login(&old).await;
        assert_eq!(app.store.faults.fired(Op::Take), 1, "the fault never hit");
        assert_eq!(login.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(new_token(&login), None);
        app.assert_renewal_undone(&old).await;
    }
}

/// A real TCP client sends the login and closes the connection while the commit is stalled
/// in the store: it never sees a response, so its old cookie must keep working.
mod client_disconnects {
    use std::time::Duration;

    use integration_tests::counting::{Op, Place};
    use integration_tests::settle::wait_until;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    use super::support::*;

    async fn disconnect_mid_renewal_keeps_the_old_session(op: Op, place: Place) {
        let app = start(|layer| layer).await;
        let old = app.start_session().await;
        app.store.faults.stall_next(op, place, STALL);
        let mut stream = TcpStream::connect(app.http.addr).await.unwrap();
        let request = format!(
            "POST /login/ada HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nContent-Length: 0\r\n\r\n",
            app.http.addr,
            cookie(&old),
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        wait_until(
            &format!("the stalled {op:?} to begin"),
            Duration::from_secs(5),
            || app.store.faults.fired(op) == 1,
        )
        .await;
        // Nothing has been answered yet: the commit is stuck in the store.
        let mut buffer = [0_u8; 256];
        match stream.try_read(&mut buffer) {
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("expected no response before closing, got {other:?}"),
        }
        drop(stream);
        app.assert_renewal_undone(&old).await;
    }

    #[tokio::test]
    async fn renewal_whose_client_disconnects_during_the_create_keeps_the_old_session() {
        disconnect_mid_renewal_keeps_the_old_session(Op::Create, Place::BeforeStore).await;
    }

    #[tokio::test]
    async fn renewal_whose_client_disconnects_after_the_create_was_stored_keeps_the_old_session() {
        disconnect_mid_renewal_keeps_the_old_session(Op::Create, Place::AfterStore).await;
    }

    /// The old record was taken when the client left: it must be put back.
    #[tokio::test]
    async fn renewal_whose_client_disconnects_after_the_take_keeps_the_old_session() {
        disconnect_mid_renewal_keeps_the_old_session(Op::Take, Place::AfterStore).await;
    }
}

/// Without faults, through the fault store: the renewal still works as the guarantee suite
/// says (these are the suite's own checks, run over `Counting`), and leaves one record.
mod no_faults {
    use integration_tests::counting::Counting;
    use integration_tests::guarantees;
    use reqwest::StatusCode;
    use session_runtime::MemoryStore;

    use super::support::*;

    #[tokio::test]
    async fn renewal_through_the_fault_store_keeps_fields_other_requests_saved_meanwhile() {
        guarantees::renew_keeps_fields_other_requests_saved_meanwhile(Counting::new(
            MemoryStore::new(),
        ))
        .await;
    }

    #[tokio::test]
    async fn renewal_through_the_fault_store_moves_the_session_and_deletes_the_old_id() {
        guarantees::renew_moves_the_session_to_a_new_id_and_deletes_the_old_one(Counting::new(
            MemoryStore::new(),
        ))
        .await;
    }

    #[tokio::test]
    async fn renewal_through_the_fault_store_never_brings_back_a_session_logged_out_meanwhile() {
        guarantees::renew_racing_a_logout_never_brings_the_session_back(Counting::new(
            MemoryStore::new(),
        ))
        .await;
    }

    #[tokio::test]
    async fn renewal_without_faults_leaves_exactly_the_new_record() {
        let app = start(|layer| layer).await;
        let old = app.start_session().await;
        let login = app.login(&old).await;
        assert_eq!(login.status(), StatusCode::OK);
        let new = new_token(&login).expect("a renewal sets the new cookie");
        assert_ne!(new, old);
        app.assert_one_session_read_by(&new, "new", AFTER_LOGIN)
            .await;
        assert!(app.read(&old).await.contains("user: guest new: true"));
    }

    /// A session destroyed while the login held it: the login must not leave the new id
    /// behind either (no record at all), and tells the client to drop its cookie.
    #[tokio::test]
    async fn renewal_racing_a_logout_leaves_no_record_behind() {
        let store = Counting::new(MemoryStore::new());
        guarantees::renew_racing_a_logout_never_brings_the_session_back(store.clone()).await;
        let records = integration_tests::settle::settle_records(&store.counts, 0, || {
            let len = store.inner.len();
            async move { len }
        })
        .await;
        assert_eq!(records, 0, "a record was left under the new id");
    }
}

/// A real `redis-server` that stops taking writes (`CLIENT PAUSE .. WRITE`, issued from
/// another connection) right before the renewal's take, longer than the store's command
/// timeout: the take times out on the client side and is applied by Redis when the pause
/// ends. Afterwards exactly one session key exists and the client's cookie reads it.
mod redis_pause {
    use std::time::Duration;

    use integration_tests::app::{app, TestSession};
    use integration_tests::counting::{Counting, Op, Place};
    use integration_tests::redis_harness::RedisServer;
    use integration_tests::server::{bare_client, cookie_value, TestServer};
    use integration_tests::settle::settle_records;
    use redis::aio::MultiplexedConnection;
    use session_runtime::{RedisStore, SessionLayer};

    use super::support::{cookie, new_token, AFTER_LOGIN, BEFORE_LOGIN};

    const PAUSE: Duration = Duration::from_millis(1_500);
    const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
    const STORE_TIMEOUT: Duration = Duration::from_millis(600);

    async fn session_keys(connection: &mut MultiplexedConnection) -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("session:*")
            .query_async(connection)
            .await
            .unwrap();
        keys.len()
    }

    async fn read(client: &reqwest::Client, http: &TestServer, token: &str) -> String {
        let response = client
            .get(http.url("/read"))
            .header("cookie", cookie(token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    #[tokio::test]
    async fn renewal_with_redis_pausing_writes_before_the_take_leaves_one_session_the_client_can_use(
    ) {
        let server = RedisServer::start().await;
        let store = Counting::new(
            RedisStore::new(&server.url())
                .await
                .unwrap()
                .command_timeout(COMMAND_TIMEOUT),
        );
        let layer = SessionLayer::<TestSession>::new(store.clone())
            .secure(false)
            .store_timeout(STORE_TIMEOUT);
        let http = TestServer::start(app(layer).0).await;
        let client = bare_client();
        let mut inspect = server.connection().await;

        let first = client.get(http.url("/visit")).send().await.unwrap();
        let old = cookie_value(&first, "session").unwrap();
        let set = client
            .get(http.url("/set-a/5"))
            .header("cookie", cookie(&old))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200);
        assert_eq!(read(&client, &http, &old).await, BEFORE_LOGIN);
        assert_eq!(session_keys(&mut inspect).await, 1);

        let mut pauser = server.connection().await;
        store
            .faults
            .run_next(Op::Take, Place::BeforeStore, move || async move {
                let _: () = redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(PAUSE.as_millis().to_string())
                    .arg("WRITE")
                    .query_async(&mut pauser)
                    .await
                    .unwrap();
            });
        let login = client
            .post(http.url("/login/ada"))
            .header("cookie", cookie(&old))
            .send()
            .await
            .unwrap();
        assert_eq!(store.faults.fired(Op::Take), 1, "the pause never happened");
        let status = login.status();
        let (held, whose, expected) = match new_token(&login) {
            Some(new) => (new, "new", AFTER_LOGIN),
            None => (old.clone(), "old", BEFORE_LOGIN),
        };

        // A write of our own waits for the pause to end; writes queued before it (the
        // timed-out take) have run by then.
        let _: () = redis::cmd("SET")
            .arg("probe:pause-ended")
            .arg(1)
            .query_async(&mut inspect)
            .await
            .unwrap();
        let keys = settle_records(&store.counts, 1, || {
            let mut connection = inspect.clone();
            async move { session_keys(&mut connection).await }
        })
        .await;
        let body = read(&client, &http, &held).await;
        assert!(
            keys == 1 && body == expected,
            "after the login answered {status}, expected exactly 1 session key, read by \
             the {whose} cookie as {expected:?}; found {keys} key(s), and the {whose} \
             cookie reads {body:?}"
        );
    }
}
