//! Prints a fresh secret for `SESSION_SECRET`: 64 random bytes, URL-safe base64.
//!
//! ```text
//! export SESSION_SECRET="$(cargo run -q --example gen-secret)"
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match session_runtime::generate_secret() {
        Ok(secret) => {
            println!("{secret}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
