//! The example apps over real HTTP, as their users would drive them.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use reqwest::redirect::Policy;

async fn start(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn page(client: &reqwest::Client, url: String) -> String {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn cookie_example_counts_visits_and_logs_in() {
    let key = session_runtime::Key::generate().unwrap();
    let (base, _server) = start(examples::cookie::app(key)).await;
    let client = browser();
    assert!(page(&client, format!("{base}/"))
        .await
        .contains("visits: 1"));
    client
        .post(format!("{base}/login"))
        .form(&[("username", "grace")])
        .send()
        .await
        .unwrap();
    let after = page(&client, format!("{base}/")).await;
    assert!(
        after.contains("visits: 2") && after.contains("grace"),
        "{after}"
    );
}

#[tokio::test]
async fn api_token_example_answers_json_and_sends_the_token_in_a_header() {
    let (base, _server) = start(examples::api_token::app()).await;
    let client = reqwest::Client::new();
    let first = client
        .get(format!("{base}/api/visits"))
        .send()
        .await
        .unwrap();
    let token = first.headers()["x-session-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.text().await.unwrap(), r#"{"visits":1}"#);
    let second = client
        .get(format!("{base}/api/visits"))
        .header("x-session-token", &token)
        .send()
        .await
        .unwrap();
    assert!(second.headers().get("x-session-token").is_none());
    assert_eq!(second.text().await.unwrap(), r#"{"visits":2}"#);
}

#[test]
fn cookie_example_secret_from_env_must_be_long_enough() {
    let var = "EXAMPLES_TEST_SECRET_SHORT";
    std::env::set_var(var, "too short");
    assert!(examples::cookie::secret(var).is_err());
    std::env::set_var(var, "x".repeat(64));
    assert!(matches!(
        examples::cookie::secret(var),
        Ok(examples::cookie::Secret::FromEnv(_))
    ));
    assert!(matches!(
        examples::cookie::secret("EXAMPLES_TEST_SECRET_UNSET"),
        Ok(examples::cookie::Secret::Generated(_))
    ));
}

/// The real binaries, as a user runs them: a short secret stops the cookie example with
/// the error, and gen-secret prints a usable secret.
#[test]
fn example_binaries_behave_at_the_command_line() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(&cargo)
        .args(["run", "-q", "-p", "examples", "--example", "gen-secret"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let secret = String::from_utf8(output.stdout).unwrap();
    assert!(session_runtime::Key::from_bytes(secret.trim().as_bytes()).is_ok());

    let output = Command::new(&cargo)
        .args(["run", "-q", "-p", "examples", "--example", "cookie"])
        .env("SESSION_SECRET", "short")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("too short") && stderr.contains("gen-secret"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migration_example_migrates_a_v1_session_when_v2_reads_it() {
    let (base, _server) = start(examples::migration::app()).await;
    let client = browser();
    page(&client, format!("{base}/v1")).await;
    assert!(page(&client, format!("{base}/v1"))
        .await
        .contains("visited 2 times"));
    let v2 = page(&client, format!("{base}/v2")).await;
    assert!(
        v2.contains("guest has visited 3 times, theme light"),
        "{v2}"
    );
    // Rolled back: the v1 app meets a v2 record and starts fresh.
    assert!(page(&client, format!("{base}/v1"))
        .await
        .contains("visited 1 times"));
}
