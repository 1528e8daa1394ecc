//! The quickstart: a visit counter and a login, with sessions in memory. The app itself is
//! in `examples/src/quickstart.rs`.
//!
//! ```text
//! cargo run --example quickstart        # then open http://127.0.0.1:3000
//! PORT=8080 cargo run --example quickstart
//! ```

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::serve("quickstart", examples::quickstart::app()).await
}
