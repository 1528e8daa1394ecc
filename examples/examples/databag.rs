//! What `#[derive(Databag)]` gives you, without any web server: typed setters, change
//! tracking, and the per-field wire format.
//!
//! ```text
//! cargo run --example databag
//! ```

use serde::{Deserialize, Serialize};
use session_runtime::record::Record;
use session_runtime::record::{decode_from_bytes, encode_to_bytes};
use session_runtime::Databag;

/// The user's colour scheme.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
enum Theme {
    #[default]
    Light,
    Dark,
}

/// Everything this app keeps about a visitor.
#[derive(Databag, Debug)]
struct UserSession {
    #[databag(default = "guest".to_owned())]
    username: String,
    user_id: Option<u64>,
    visits: u32,
    #[databag(rename = "t")]
    theme: Theme,
    #[databag(skip)]
    scratch: Vec<u8>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut session = UserSessionHandle::new(UserSession::defaults());
    println!("fresh:    {:?}", *session);

    // Reads are plain field access; writes go through setters that record the change.
    session.set_visits(session.visits + 1);
    session.update_user_id(|id| *id = Some(42));
    session.set_theme(Theme::Dark);
    session.scratch_mut().extend_from_slice(b"per-request only");
    let changed: Vec<&str> = session.changed_fields().map(|f| f.name).collect();
    println!("changed:  {changed:?} (scratch is `skip`: not tracked, never stored)");

    // Only the changed fields are encoded: this is what a server-side store writes.
    let changes = Record::changes(session.tracked())?;
    for field in &changes.fields {
        println!("write:    {} = {:02x?}", field.key, field.value);
    }

    // The whole record, as a cookie store would carry it.
    let bytes = encode_to_bytes(&*session)?;
    println!(
        "record:   {} bytes, schema version {}",
        bytes.len(),
        UserSession::VERSION
    );
    let loaded = decode_from_bytes::<UserSession>(&bytes)?.value;
    println!("loaded:   {loaded:?}");
    println!(
        "{} user {:?} in {:?} mode, visit #{}",
        loaded.username, loaded.user_id, loaded.theme, loaded.visits
    );
    Ok(())
}
