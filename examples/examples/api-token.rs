//! A JSON API whose clients carry the session token in the `x-session-token` header.
//!
//! ```text
//! cargo run --example api-token
//! curl -si http://127.0.0.1:3000/api/visits            # note the x-session-token header
//! curl -s -H "x-session-token: <token>" http://127.0.0.1:3000/api/visits
//! ```

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples::serve("api-token", examples::api_token::app()).await
}
