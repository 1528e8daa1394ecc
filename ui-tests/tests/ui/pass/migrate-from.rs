//! `migrate_from` with a `From` impl compiles.
#![deny(warnings)]

use session_runtime::Databag;

#[derive(Databag)]
pub struct SessionV1 {
    pub visits: u32,
}

#[derive(Databag)]
#[databag(version = 2, migrate_from = SessionV1)]
pub struct Session {
    pub visits: u64,
}

impl From<SessionV1> for Session {
    fn from(old: SessionV1) -> Self {
        Self { visits: old.visits.into() }
    }
}

fn main() {
    assert_eq!(Session::VERSION, 2);
}
