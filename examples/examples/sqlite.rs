//! The quickstart with sessions in a SQLite file: the same routes (a visit counter and a
//! login), but sessions survive a restart of the app. No server to run.
//!
//! ```text
//! cargo run --example sqlite                       # then open http://127.0.0.1:3000
//! DATABASE_URL=sqlite:///var/lib/myapp/sessions.db PORT=8080 cargo run --example sqlite
//! ```

use std::process::ExitCode;

use examples::quickstart;
use session_runtime::{SqlConnectError, SqliteStore};

/// A file in the current directory, created on the first run.
const DEFAULT_DATABASE_URL: &str = "sqlite://sessions.db";

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let store = match SqliteStore::connect(&url).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("{}", explain(&error));
            return ExitCode::FAILURE;
        }
    };
    // Creates the table on the first run, upgrades it after an update: safe to run at
    // every start, from every instance.
    if let Err(error) = store.migrate().await {
        eprintln!("error: cannot create the session table: {error}");
        return ExitCode::FAILURE;
    }
    let app = quickstart::routes_for("SQLite").layer(quickstart::sessions(store));
    match examples::serve("sqlite example", app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What went wrong and what to do.
fn explain(error: &SqlConnectError) -> String {
    let cause = std::error::Error::source(error)
        .map(|source| format!(" ({source})"))
        .unwrap_or_default();
    match error {
        SqlConnectError::InvalidUrl(_) => format!(
            "error: DATABASE_URL is not a SQLite URL{cause}.\n\
             Use the form sqlite://path/to/file.db, for example {DEFAULT_DATABASE_URL}."
        ),
        SqlConnectError::Unreachable { address, .. } => format!(
            "error: cannot open the SQLite file {address}{cause}.\n\
             Check that its directory exists and is writable, or point DATABASE_URL elsewhere."
        ),
        _ => format!("error: {error}{cause}"),
    }
}
