//! Everything the derive supports, used the way handlers use it.
#![deny(missing_docs, warnings)]

use serde::{Deserialize, Serialize};
use session_runtime::{Databag, DatabagHandle};

/// A theme.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub enum Theme {
    /// Light.
    #[default]
    Light,
    /// Dark.
    Dark,
}

/// The session.
#[derive(Databag, Debug)]
#[databag(version = 3)]
pub struct UserSession {
    /// Name.
    #[databag(default = "guest".to_owned())]
    pub username: String,
    /// Id.
    pub user_id: Option<u64>,
    /// Visits.
    pub visits: u32,
    /// Theme, short key on the wire.
    #[databag(rename = "t")]
    pub theme: Theme,
    /// Never stored.
    #[databag(skip)]
    pub scratch: Vec<u8>,
    /// A raw identifier.
    pub r#type: String,
}

fn handler(session: &mut UserSessionHandle) -> String {
    // The setter's argument reads the session: two-phase borrows make this compile.
    session.set_visits(session.visits + 1);
    session.update_user_id(|id| *id = Some(42));
    session.theme_mut().clone_from(&Theme::Dark);
    session.set_type("admin".to_owned());
    session.scratch_mut().push(1);
    format!("{} {} {:?}", session.username, session.visits, session.theme)
}

fn main() {
    let mut session = UserSessionHandle::new(UserSession::defaults());
    let _ = handler(&mut session);
    assert_eq!(session.visits, 1);
    assert!(session.is_changed());
    let changed: Vec<&str> = session.changed_fields().map(|f| f.key).collect();
    assert_eq!(changed, ["user_id", "visits", "t", "type"]);
    assert_eq!(<UserSession as Databag>::VERSION, 3);
    let _ = format!("{session:?}");
    let _tracked = session.into_tracked();
}
