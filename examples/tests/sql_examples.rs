//! The `sqlite` and `postgres` example binaries, run as a user runs them (`cargo run
//! --example ..`) and driven over real HTTP: sessions survive a restart of the app; an
//! unreachable database is a clear message and exit status 1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::postgres_harness::PostgresServer;
use integration_tests::temp::TempDir;
use reqwest::redirect::Policy;

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

/// One run of an example binary, killed when dropped.
struct App {
    child: Child,
    base: String,
}

impl App {
    /// Starts `example` with `DATABASE_URL=url` and waits until it answers HTTP.
    async fn start(example: &str, url: &str) -> Self {
        let port = free_port();
        let child = Command::new(cargo())
            .args(["run", "-q", "-p", "examples", "--example", example])
            .env("DATABASE_URL", url)
            .env("PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let app = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while reqwest::get(format!("{}/", app.base)).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the {example} example did not start"
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

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn page(client: &reqwest::Client, app: &App) -> String {
    let response = client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn login(client: &reqwest::Client, app: &App, name: &str) {
    let response = client
        .post(format!("{}/login", app.base))
        .form(&[("username", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn sqlite_example_keeps_sessions_across_a_restart() {
    let dir = TempDir::new("sqlite-example");
    let url = dir.sqlite_url("sessions.db");
    let client = browser();
    {
        let app = App::start("sqlite", &url).await;
        // `App::start` already asked for `/` once, without a cookie.
        assert!(page(&client, &app).await.contains("visits: 1"));
        login(&client, &app, "ada").await;
        assert!(page(&client, &app).await.contains("visits: 2"));
    }
    let app = App::start("sqlite", &url).await;
    let body = page(&client, &app).await;
    assert!(body.contains("visits: 3") && body.contains("ada"), "{body}");
}

#[tokio::test]
async fn postgres_example_serves_sessions_from_a_real_server() {
    let server = PostgresServer::start().await;
    let client = browser();
    let url = server.url("postgres");
    {
        let app = App::start("postgres", &url).await;
        assert!(page(&client, &app).await.contains("visits: 1"));
        login(&client, &app, "grace").await;
    }
    let app = App::start("postgres", &url).await;
    let body = page(&client, &app).await;
    assert!(
        body.contains("visits: 2") && body.contains("grace"),
        "{body}"
    );
}

#[test]
fn postgres_example_unreachable_is_a_clear_message_and_exit_status_1() {
    let port = free_port();
    let output = Command::new(cargo())
        .args(["run", "-q", "-p", "examples", "--example", "postgres"])
        .env(
            "DATABASE_URL",
            format!("postgres://app:hunter2@127.0.0.1:{port}/app"),
        )
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password was printed: {stderr}"
    );
}
