//! Example apps: run one with `cargo run --example <name>`. This library holds what they
//! share.

use std::net::SocketAddr;

pub mod api_token;
pub mod cookie;
pub mod devices;
pub mod forms;
pub mod migration;
pub mod quickstart;

/// Serves `app` on [`listen_addr`] with logging, until the process is stopped. Each
/// connection's peer address is recorded (axum's `ConnectInfo<SocketAddr>`), for the
/// examples that show it.
///
/// # Errors
/// If `PORT` is invalid or the address cannot be bound.
pub async fn serve(name: &str, app: axum::Router) -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let addr = listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("cannot listen on {addr}: {error}"))?;
    tracing::info!("{name} listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// Logs to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// `127.0.0.1:3000`, or the port in `PORT`.
///
/// # Errors
/// If `PORT` is set but is not a port number.
pub fn listen_addr() -> Result<SocketAddr, String> {
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|_| format!("PORT must be a port number, got {port:?}"))?,
        Err(_) => 3000,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Escapes text for HTML.
#[must_use]
pub fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The page of the quickstart-style examples.
#[must_use]
pub fn page(store: &str, username: &str, visits: u32) -> String {
    let username = escape_html(username);
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>session quickstart</title></head>
<body>
<h1>Hello, {username}!</h1>
<p>visits: {visits}</p>
<p>Sessions are kept in: {store}.</p>
<form method="post" action="/login">
  <input name="username" placeholder="your name" required>
  <button>Log in</button>
</form>
<form method="post" action="/logout"><button>Log out</button></form>
</body></html>
"#
    )
}
