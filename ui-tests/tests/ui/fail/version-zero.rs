use session_runtime::Databag;

#[derive(Databag)]
#[databag(version = 0)]
struct Session {
    visits: u32,
}

fn main() {}
