use session_runtime::Databag;

#[derive(Databag)]
#[databag(skip)]
struct Session {
    visits: u32,
}

fn main() {}
