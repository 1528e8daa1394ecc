//! Every session of a user: log in from several browsers, list them, revoke one or all the
//! others, and a WebSocket that closes when its session ends. The app itself is in
//! `examples/src/devices.rs`.
//!
//! Sessions are kept in memory, or in Redis with `REDIS_URL`, or in SQLite or PostgreSQL
//! with `DATABASE_URL` (`sqlite://..` or `postgres://..`; the table is created on start).
//!
//! ```text
//! cargo run --example devices                   # then open http://127.0.0.1:3000 in two browsers
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example devices
//! DATABASE_URL=sqlite://sessions.db cargo run --example devices
//! DATABASE_URL=postgres://me@127.0.0.1/myapp cargo run --example devices
//!
//! # The JSON API, with curl (the CSRF token comes from GET /api/csrf):
//! j=$(mktemp); t() { curl -s -b $j -c $j localhost:3000/api/csrf | sed 's/.*:"\(.*\)"}/\1/'; }
//! curl -s -b $j -c $j localhost:3000/ >/dev/null
//! curl -s -b $j -c $j -H "x-csrf-token: $(t)" -d username=ada localhost:3000/login
//! curl -s -b $j -c $j localhost:3000/api/sessions
//! ```

use std::process::ExitCode;

use examples::devices;
use session_runtime::{PostgresStore, RedisStore, SqlConnectError, SqliteStore};

#[tokio::main]
async fn main() -> ExitCode {
    let redis = std::env::var("REDIS_URL").ok();
    let database = std::env::var("DATABASE_URL").ok();
    let app = match (redis, database) {
        (Some(_), Some(_)) => Err(
            "error: both REDIS_URL and DATABASE_URL are set; set the one of the store to use."
                .to_owned(),
        ),
        (Some(url), None) => match RedisStore::new(&url).await {
            Ok(store) => Ok(("Redis", devices::app(store))),
            Err(error) => Err(format!(
                "error: cannot use Redis from REDIS_URL: {error}{}.\n\
                 Start one with `redis-server` (Debian/Ubuntu: `apt-get install redis-server`) \
                 or point REDIS_URL at yours, for example REDIS_URL=redis://127.0.0.1:6379.",
                cause(&error)
            )),
        },
        (None, Some(url)) if url.starts_with("sqlite:") => match SqliteStore::connect(&url).await {
            Ok(store) => migrated(store.migrate().await).map(|()| ("SQLite", devices::app(store))),
            Err(error) => Err(sql_error("SQLite", &error)),
        },
        (None, Some(url)) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            match PostgresStore::connect(&url).await {
                Ok(store) => {
                    migrated(store.migrate().await).map(|()| ("PostgreSQL", devices::app(store)))
                }
                Err(error) => Err(sql_error("PostgreSQL", &error)),
            }
        }
        (None, Some(_)) => {
            Err("error: DATABASE_URL must start with sqlite:// or postgres://.".to_owned())
        }
        (None, None) => Ok(("memory", devices::app(session_runtime::MemoryStore::new()))),
    };
    let (store, app) = match app {
        Ok(found) => found,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match examples::serve(&format!("devices (sessions in {store})"), app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The error's cause, for the message (never the URL: it may hold a password).
fn cause(error: &dyn std::error::Error) -> String {
    error
        .source()
        .map(|source| format!(" ({source})"))
        .unwrap_or_default()
}

fn sql_error(database: &str, error: &SqlConnectError) -> String {
    format!(
        "error: cannot use {database} from DATABASE_URL: {error}{}.\n\
         Is it running and reachable, and is the URL right (sqlite://path/to/file.db, \
         postgres://user[:password]@host[:port]/database)?",
        cause(error)
    )
}

fn migrated<E: std::fmt::Display>(result: Result<(), E>) -> Result<(), String> {
    result.map_err(|error| format!("error: cannot create the session table: {error}"))
}
