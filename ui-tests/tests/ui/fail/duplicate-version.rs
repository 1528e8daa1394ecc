use session_runtime::Databag;

#[derive(Databag)]
#[databag(version = 2, version = 3)]
struct Session {
    visits: u32,
}

fn main() {}
