//! The `devices` example binary, run as a user runs it (`cargo run --example devices`) and
//! driven over real HTTP: memory store by default, `DATABASE_URL` switches it to SQLite,
//! and an unreachable or unknown store is a clear message and exit status 1. The routes
//! themselves are tested against every store by the owners suite
//! (`tests/src/owners_suite.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use examples::devices::rfc3339;
use integration_tests::owners_suite::Browser;
use integration_tests::temp::TempDir;
use reqwest::StatusCode;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn devices(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(cargo());
    command
        .args(["run", "-q", "-p", "examples", "--example", "devices"])
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// One run of the binary, killed when dropped.
struct App {
    child: Child,
    base: String,
}

impl App {
    async fn start(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = devices(env)
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let app = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = std::time::Instant::now();
        while reqwest::get(format!("{}/", app.base)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the devices example did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two browsers of one user and the list each sees; the peer address shows the binary
/// serves with connect info.
async fn two_browsers_list_each_other(app: &App) {
    let laptop = Browser::new(&app.base, "Firefox (laptop)");
    let phone = Browser::new(&app.base, "Chromium (phone)");
    laptop.login("ada").await;
    phone.login("ada").await;
    let (status, list) = laptop.list().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.len(), 2, "{list:?}");
    let mine = list.iter().find(|view| view.current).unwrap();
    assert_eq!(mine.id, laptop.digest());
    assert_eq!(mine.device.as_deref(), Some("Firefox (laptop)"));
    assert_eq!(mine.address.as_deref(), Some("127.0.0.1"));
    let (status, _) = laptop.post("/api/sessions/revoke-others").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.list().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn devices_example_lists_and_revokes_over_the_memory_store() {
    let app = App::start(&[]).await;
    two_browsers_list_each_other(&app).await;
}

#[tokio::test]
async fn devices_example_lists_and_revokes_over_sqlite() {
    let dir = TempDir::new("devices-example");
    let url = dir.sqlite_url("sessions.db");
    let app = App::start(&[("DATABASE_URL", &url)]).await;
    two_browsers_list_each_other(&app).await;
}

fn fails(env: &[(&str, &str)]) -> String {
    let Output { status, stderr, .. } = devices(env).env("PORT", "0").output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn devices_example_with_an_unreachable_or_unknown_store_says_so_and_exits_1() {
    let port = free_port().to_string();
    let redis = fails(&[("REDIS_URL", &format!("redis://:hunter2@127.0.0.1:{port}"))]);
    assert!(redis.contains("cannot use Redis"), "{redis}");
    assert!(redis.contains("redis-server"), "how to start one: {redis}");
    let postgres = fails(&[(
        "DATABASE_URL",
        &format!("postgres://app:hunter2@127.0.0.1:{port}/app"),
    )]);
    assert!(postgres.contains("cannot use PostgreSQL"), "{postgres}");
    for stderr in [&redis, &postgres] {
        assert!(
            !stderr.contains("hunter2"),
            "the password was printed: {stderr}"
        );
    }
    let unknown = fails(&[("DATABASE_URL", "mysql://127.0.0.1/app")]);
    assert!(unknown.contains("sqlite:// or postgres://"), "{unknown}");
    let both = fails(&[
        ("DATABASE_URL", "sqlite://x.db"),
        ("REDIS_URL", "redis://127.0.0.1"),
    ]);
    assert!(both.contains("both REDIS_URL and DATABASE_URL"), "{both}");
}

#[test]
fn times_are_rfc3339_in_utc_with_milliseconds() {
    let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(at(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
    assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    let before = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(rfc3339(before), "1970-01-01T00:00:00.000Z");
    assert!(rfc3339(SystemTime::now()).starts_with("20"));
}
