// An app that reaches the runtime under another name (a renamed dependency in Cargo.toml,
// here an `extern crate` alias) points the derive at it with `#[databag(crate = "..")]`.
// session-derive's unit tests check that the expansion then names no other runtime path.
extern crate session_runtime as renamed_sessions;

use renamed_sessions::{Databag, DatabagHandle, Session};

#[derive(Databag, Debug)]
#[databag(crate = "renamed_sessions", version = 2, migrate_from = Old)]
pub struct Visits {
    pub count: u64,
    #[databag(skip)]
    pub scratch: Vec<u8>,
}

#[derive(Databag)]
#[databag(crate = "::renamed_sessions")]
pub struct Old {
    pub count: u32,
}

impl From<Old> for Visits {
    fn from(old: Old) -> Self {
        Self { count: old.count.into(), scratch: Vec::new() }
    }
}

fn generic<T: Databag>(session: &mut Session<T>) {
    session.renew();
}

fn main() {
    let mut session = VisitsHandle::new(Visits { count: 1, scratch: Vec::new() });
    session.set_count(session.count + 1);
    generic::<Visits>(&mut session);
    assert!(session.tracked().is_changed());
}
