//! The quickstart routes with sessions sealed (AES-256-GCM) in the client's cookie: no
//! server state.
//!
//! ```text
//! export SESSION_SECRET="$(cargo run -q --example gen-secret)"
//! cargo run --example cookie            # then open http://127.0.0.1:3000
//! ```

use std::process::ExitCode;

use examples::cookie::Secret;

#[tokio::main]
async fn main() -> ExitCode {
    let key = match examples::cookie::secret("SESSION_SECRET") {
        Ok(Secret::FromEnv(key)) => key,
        Ok(Secret::Generated(key)) => {
            eprintln!(
                "warning: SESSION_SECRET is not set; using a random key, so sessions will \
                 not survive a restart. Set one with: \
                 export SESSION_SECRET=\"$(cargo run -q --example gen-secret)\""
            );
            key
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match examples::serve("cookie", examples::cookie::app(key)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
