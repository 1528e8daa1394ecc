use session_runtime::Databag;

#[derive(Databag)]
struct SessionV1 {
    visits: u32,
}

#[derive(Databag)]
#[databag(migrate_from = SessionV1)]
struct Session {
    visits: u64,
}

impl From<SessionV1> for Session {
    fn from(old: SessionV1) -> Self {
        Self { visits: old.visits.into() }
    }
}

fn main() {}
