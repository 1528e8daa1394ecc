//! A form protected against CSRF, with flash messages. The app itself is in
//! `examples/src/forms.rs`.
//!
//! ```text
//! cargo run --example forms        # then open http://127.0.0.1:3000
//! ```

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::serve("forms", examples::forms::app()).await
}
