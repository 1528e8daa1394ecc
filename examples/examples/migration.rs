//! A v1 -> v2 change of the session struct, end to end.
//!
//! ```text
//! cargo run --example migration
//! # open http://127.0.0.1:3000/v1 a few times, then http://127.0.0.1:3000/v2
//! ```
//!
//! The app itself is in `examples/src/migration.rs`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("open http://127.0.0.1:3000/v1 (or your PORT), then /v2 to see the session migrate");
    examples::serve("migration", examples::migration::app()).await
}
