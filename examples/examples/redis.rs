//! The quickstart with sessions in Redis: the same routes (a visit counter and a login),
//! but sessions survive a restart of the app and are shared by every instance of it.
//!
//! ```text
//! redis-server &                                   # or any Redis you have
//! cargo run --example redis                        # then open http://127.0.0.1:3000
//! REDIS_URL=redis://10.0.0.5:6379/2 PORT=8080 cargo run --example redis
//! ```

use std::process::ExitCode;

use examples::quickstart;
use session_runtime::RedisConnectError;
use session_runtime::RedisStore;

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let store = match RedisStore::new(&url).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("{}", explain(&error));
            return ExitCode::FAILURE;
        }
    };
    let app = quickstart::routes_for("Redis").layer(quickstart::sessions(store));
    match examples::serve("redis example", app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What went wrong and what to do, without echoing the URL (it may hold a password).
fn explain(error: &RedisConnectError) -> String {
    let cause = std::error::Error::source(error)
        .map(|source| format!(" ({source})"))
        .unwrap_or_default();
    match error {
        RedisConnectError::InvalidUrl(_) => format!(
            "error: REDIS_URL is not a Redis URL{cause}.\n\
             Use the form redis://[:password@]host[:port][/db], for example {DEFAULT_REDIS_URL}."
        ),
        RedisConnectError::Unreachable { address, .. } => format!(
            "error: cannot reach Redis at {address}{cause}.\n\
             Start one with `redis-server` (Debian/Ubuntu: `apt-get install redis-server`),\n\
             or point REDIS_URL at yours, for example REDIS_URL={DEFAULT_REDIS_URL}."
        ),
        _ => format!("error: {error}{cause}"),
    }
}
