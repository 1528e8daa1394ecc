use session_runtime::Databag;

#[derive(Databag)]
#[databag(version = 2)]
struct SessionV2 {
    visits: u32,
}

#[derive(Databag)]
#[databag(version = 2, migrate_from = SessionV2)]
struct Session {
    visits: u64,
}

impl From<SessionV2> for Session {
    fn from(old: SessionV2) -> Self {
        Self { visits: old.visits.into() }
    }
}

fn main() {}
