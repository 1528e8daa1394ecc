//! The quickstart with sessions in PostgreSQL: the same routes (a visit counter and a
//! login), but sessions survive a restart of the app and are shared by every instance.
//!
//! ```text
//! createdb myapp                                   # any PostgreSQL you can reach
//! DATABASE_URL=postgres://me@127.0.0.1/myapp cargo run --example postgres
//! ```

use std::process::ExitCode;

use examples::quickstart;
use session_runtime::{PostgresStore, SqlConnectError};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let store = match PostgresStore::connect(&url).await {
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
    let app = quickstart::routes_for("PostgreSQL").layer(quickstart::sessions(store));
    match examples::serve("postgres example", app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What went wrong and what to do, without echoing the URL (it may hold a password).
fn explain(error: &SqlConnectError) -> String {
    let cause = std::error::Error::source(error)
        .map(|source| format!(" ({source})"))
        .unwrap_or_default();
    match error {
        SqlConnectError::InvalidUrl(_) => format!(
            "error: DATABASE_URL is not a PostgreSQL URL{cause}.\n\
             Use the form postgres://user[:password]@host[:port]/database, for example\n\
             {DEFAULT_DATABASE_URL}."
        ),
        SqlConnectError::Unreachable { address, .. } => format!(
            "error: cannot connect to PostgreSQL at {address}{cause}.\n\
             Is it running (Debian/Ubuntu: `apt-get install postgresql`), and are the user,\n\
             password and database right? Point DATABASE_URL at yours, for example\n\
             DATABASE_URL={DEFAULT_DATABASE_URL}."
        ),
        _ => format!("error: {error}{cause}"),
    }
}
