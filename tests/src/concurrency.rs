//! Concurrency over real HTTP on one session: many workers, each owning one field; logouts
//! racing slow writers; renewals racing reads. Each store's test file runs every check with
//! [`concurrency_suite!`](macro@crate::concurrency_suite).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use session_runtime::store::SessionStore;
use session_runtime::{Databag, Session, SessionId, SessionLayer};

use crate::app::Gate;
use crate::server::{bare_client, cookie_value, TestServer};

macro_rules! wide {
    ($($field:ident),*) => {
        /// One field per worker.
        #[derive(Databag, Debug)]
        pub struct Wide { $(pub $field: u32,)* pub started: bool }
    };
}

wide!(
    f00, f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17, f18,
    f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37,
    f38, f39, f40, f41, f42, f43, f44, f45, f46, f47, f48, f49, f50, f51, f52, f53, f54, f55, f56,
    f57, f58, f59, f60, f61, f62, f63
);

/// Workers, each owning one field.
pub const WORKERS: usize = 64;
/// Requests in total (each worker sends its share one after another).
pub const REQUESTS: usize = 10_000;
/// Logout-versus-slow-writer trials.
pub const LOGOUT_TRIALS: usize = 1_000;

async fn increment(mut session: Session<Wide>, Path(field): Path<usize>) -> StatusCode {
    match field {
        0 => session.set_f00(session.f00 + 1),
        1 => session.set_f01(session.f01 + 1),
        2 => session.set_f02(session.f02 + 1),
        3 => session.set_f03(session.f03 + 1),
        4 => session.set_f04(session.f04 + 1),
        5 => session.set_f05(session.f05 + 1),
        6 => session.set_f06(session.f06 + 1),
        7 => session.set_f07(session.f07 + 1),
        8 => session.set_f08(session.f08 + 1),
        9 => session.set_f09(session.f09 + 1),
        10 => session.set_f10(session.f10 + 1),
        11 => session.set_f11(session.f11 + 1),
        12 => session.set_f12(session.f12 + 1),
        13 => session.set_f13(session.f13 + 1),
        14 => session.set_f14(session.f14 + 1),
        15 => session.set_f15(session.f15 + 1),
        16 => session.set_f16(session.f16 + 1),
        17 => session.set_f17(session.f17 + 1),
        18 => session.set_f18(session.f18 + 1),
        19 => session.set_f19(session.f19 + 1),
        20 => session.set_f20(session.f20 + 1),
        21 => session.set_f21(session.f21 + 1),
        22 => session.set_f22(session.f22 + 1),
        23 => session.set_f23(session.f23 + 1),
        24 => session.set_f24(session.f24 + 1),
        25 => session.set_f25(session.f25 + 1),
        26 => session.set_f26(session.f26 + 1),
        27 => session.set_f27(session.f27 + 1),
        28 => session.set_f28(session.f28 + 1),
        29 => session.set_f29(session.f29 + 1),
        30 => session.set_f30(session.f30 + 1),
        31 => session.set_f31(session.f31 + 1),
        32 => session.set_f32(session.f32 + 1),
        33 => session.set_f33(session.f33 + 1),
        34 => session.set_f34(session.f34 + 1),
        35 => session.set_f35(session.f35 + 1),
        36 => session.set_f36(session.f36 + 1),
        37 => session.set_f37(session.f37 + 1),
        38 => session.set_f38(session.f38 + 1),
        39 => session.set_f39(session.f39 + 1),
        40 => session.set_f40(session.f40 + 1),
        41 => session.set_f41(session.f41 + 1),
        42 => session.set_f42(session.f42 + 1),
        43 => session.set_f43(session.f43 + 1),
        44 => session.set_f44(session.f44 + 1),
        45 => session.set_f45(session.f45 + 1),
        46 => session.set_f46(session.f46 + 1),
        47 => session.set_f47(session.f47 + 1),
        48 => session.set_f48(session.f48 + 1),
        49 => session.set_f49(session.f49 + 1),
        50 => session.set_f50(session.f50 + 1),
        51 => session.set_f51(session.f51 + 1),
        52 => session.set_f52(session.f52 + 1),
        53 => session.set_f53(session.f53 + 1),
        54 => session.set_f54(session.f54 + 1),
        55 => session.set_f55(session.f55 + 1),
        56 => session.set_f56(session.f56 + 1),
        57 => session.set_f57(session.f57 + 1),
        58 => session.set_f58(session.f58 + 1),
        59 => session.set_f59(session.f59 + 1),
        60 => session.set_f60(session.f60 + 1),
        61 => session.set_f61(session.f61 + 1),
        62 => session.set_f62(session.f62 + 1),
        63 => session.set_f63(session.f63 + 1),
        _ => return StatusCode::NOT_FOUND,
    }
    StatusCode::OK
}

async fn read_all(session: Session<Wide>) -> String {
    let values = [
        session.f00,
        session.f01,
        session.f02,
        session.f03,
        session.f04,
        session.f05,
        session.f06,
        session.f07,
        session.f08,
        session.f09,
        session.f10,
        session.f11,
        session.f12,
        session.f13,
        session.f14,
        session.f15,
        session.f16,
        session.f17,
        session.f18,
        session.f19,
        session.f20,
        session.f21,
        session.f22,
        session.f23,
        session.f24,
        session.f25,
        session.f26,
        session.f27,
        session.f28,
        session.f29,
        session.f30,
        session.f31,
        session.f32,
        session.f33,
        session.f34,
        session.f35,
        session.f36,
        session.f37,
        session.f38,
        session.f39,
        session.f40,
        session.f41,
        session.f42,
        session.f43,
        session.f44,
        session.f45,
        session.f46,
        session.f47,
        session.f48,
        session.f49,
        session.f50,
        session.f51,
        session.f52,
        session.f53,
        session.f54,
        session.f55,
        session.f56,
        session.f57,
        session.f58,
        session.f59,
        session.f60,
        session.f61,
        session.f62,
        session.f63,
    ];
    values.map(|v| v.to_string()).join(",")
}

async fn start(mut session: Session<Wide>) -> &'static str {
    // A new session written only with defaults is not stored: mark it started.
    session.set_started(true);
    session.renew();
    "started"
}

async fn slow_write(mut session: Session<Wide>) -> &'static str {
    session.set_f01(session.f01 + 1);
    // Hold the loaded session while other requests run.
    tokio::time::sleep(Duration::from_millis(2)).await;
    "written"
}

/// Like `slow_write`, but holds the loaded session until the test releases it.
async fn held_write(
    axum::Extension(gate): axum::Extension<Arc<Gate>>,
    mut session: Session<Wide>,
) -> &'static str {
    session.set_f01(session.f01 + 1);
    gate.loaded.notify_one();
    gate.release.notified().await;
    "written"
}

async fn logout(mut session: Session<Wide>) -> &'static str {
    session.destroy();
    "bye"
}

async fn read_one(session: Session<Wide>) -> String {
    format!("{} {}", session.is_new(), session.f00)
}

fn app(layer: SessionLayer<Wide>, gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/inc/{field}", post(increment))
        .route("/all", get(read_all))
        .route("/start", post(start))
        .route("/slow-write", post(slow_write))
        .route("/held-write", post(held_write))
        .route("/logout", post(logout))
        .route("/read", get(read_one))
        .layer(layer)
        .layer(axum::Extension(gate))
}

/// The store timeout of these checks, and the query or command timeout of the stores they
/// get (`sql_stores::*_patient`): they count lost updates and errors under contention, so a
/// stall of a loaded machine must not turn into a 503.
pub const PATIENT: Duration = Duration::from_secs(60);

async fn serve<S: SessionStore>(store: S) -> TestServer {
    serve_gated(store).await.0
}

/// The app over `store`, and the gate its `/held-write` waits at.
async fn serve_gated<S: SessionStore>(store: S) -> (TestServer, Arc<Gate>) {
    let layer = SessionLayer::<Wide>::new(store)
        .secure(false)
        .store_timeout(PATIENT);
    let gate = Arc::new(Gate::default());
    (TestServer::start(app(layer, Arc::clone(&gate))).await, gate)
}

/// A new stored session and its cookie header.
async fn new_session(server: &TestServer) -> (String, SessionId) {
    let response = bare_client()
        .post(server.url("/start"))
        .send()
        .await
        .unwrap();
    let token = cookie_value(&response, "session").unwrap();
    let id = SessionId::parse(&token).unwrap();
    (format!("session={token}"), id)
}

/// Runs every check as a named `#[tokio::test]` on a multi-threaded runtime, given an async
/// expression that makes a fresh store (`S: SessionStore + Clone`); with `guarded:`, one
/// that makes `(guard, store)`.
#[macro_export]
macro_rules! concurrency_suite {
    (guarded: $setup:expr) => {
        $crate::concurrency_suite!(@names [guarded $setup]);
    };
    ($make:expr) => {
        $crate::concurrency_suite!(@names [plain $make]);
    };
    (@names $setup:tt) => {
        $crate::concurrency_suite!(@tests $setup;
            workers_owning_one_field_each_lose_no_update
            logout_racing_slow_writers_never_resurrects_the_session
            renew_racing_reads_gives_no_server_error
        );
    };
    (@tests [plain $make:expr]; $($name:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                $crate::concurrency::$name(store).await;
            }
        )*
    };
    (@tests [guarded $setup:expr]; $($name:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $setup.await;
                $crate::concurrency::$name(store).await;
            }
        )*
    };
}

pub async fn workers_owning_one_field_each_lose_no_update<S: SessionStore + Clone>(store: S) {
    let server = Arc::new(serve(store).await);
    let (cookie, _) = new_session(&server).await;
    let client = bare_client();
    let per_worker = REQUESTS.div_ceil(WORKERS);
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|field| {
            let (server, client, cookie) = (Arc::clone(&server), client.clone(), cookie.clone());
            tokio::spawn(async move {
                for _ in 0..per_worker {
                    let response = client
                        .post(server.url(&format!("/inc/{field}")))
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let all = client
        .get(server.url("/all"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = vec![per_worker.to_string(); WORKERS].join(",");
    assert_eq!(all, expected, "an update was lost");
    eprintln!(
        "{} requests from {WORKERS} workers on one session in {elapsed:?}: no update lost",
        per_worker * WORKERS
    );
}

pub async fn logout_racing_slow_writers_never_resurrects_the_session<S: SessionStore + Clone>(
    store: S,
) {
    let (server, gate) = serve_gated(store.clone()).await;
    let server = Arc::new(server);
    let client = bare_client();
    // Trials where the writer loaded the session before the logout deleted it: the race
    // this test is about (otherwise the writer just starts a new session). Every other
    // trial forces it (the writer holds the loaded session until the logout is done); the
    // rest leave the order to the scheduler.
    let mut raced = 0;
    for trial in 0..LOGOUT_TRIALS {
        let held = trial % 2 == 0;
        let (cookie, id) = new_session(&server).await;
        let writer = tokio::spawn({
            let (server, client, cookie) = (Arc::clone(&server), client.clone(), cookie.clone());
            let path = if held { "/held-write" } else { "/slow-write" };
            async move {
                let response = client
                    .post(server.url(path))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                (
                    response.status(),
                    cookie_value(&response, "session").is_none(),
                )
            }
        });
        if held {
            tokio::time::timeout(Duration::from_secs(30), gate.loaded.notified())
                .await
                .expect("the held writer never loaded the session");
        } else {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let logout = client
            .post(server.url("/logout"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::OK);
        if held {
            gate.release.notify_one();
        }
        let (status, loaded_before_logout) = writer.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(
            loaded_before_logout || !held,
            "a writer that held the session past the logout stored it again"
        );
        raced += usize::from(loaded_before_logout);
        let now = crate::guarantees::now();
        assert_eq!(
            store.load(&id.digest(), now).await.unwrap(),
            None,
            "the session came back"
        );
        let read = client
            .get(server.url("/read"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(read.text().await.unwrap().starts_with("true "));
    }
    eprintln!("{LOGOUT_TRIALS} logout trials, {raced} with the writer holding the session");
    assert!(
        raced >= LOGOUT_TRIALS / 2,
        "only {raced} trials raced: the held ones must all have"
    );
}

pub async fn renew_racing_reads_gives_no_server_error<S: SessionStore + Clone>(store: S) {
    let server = Arc::new(serve(store).await);
    let client = bare_client();
    for _ in 0..50 {
        let (cookie, _) = new_session(&server).await;
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (server, client, cookie) =
                    (Arc::clone(&server), client.clone(), cookie.clone());
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    for _ in 0..5 {
                        let response = client
                            .get(server.url("/read"))
                            .header("cookie", &cookie)
                            .send()
                            .await
                            .unwrap();
                        statuses.push(response.status());
                    }
                    statuses
                })
            })
            .collect();
        let renew = client
            .post(server.url("/start"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(renew.status(), StatusCode::OK);
        for reader in readers {
            for status in reader.await.unwrap() {
                assert!(!status.is_server_error(), "{status} while renewing");
            }
        }
    }
}
