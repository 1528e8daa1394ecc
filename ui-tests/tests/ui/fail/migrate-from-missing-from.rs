use session_runtime::Databag;

#[derive(Databag)]
struct SessionV1 {
    visits: u32,
}

#[derive(Databag)]
#[databag(version = 2, migrate_from = SessionV1)]
struct Session {
    visits: u64,
}

fn main() {}
