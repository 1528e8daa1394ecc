use session_runtime::Databag;

#[derive(Databag)]
#[databag(verison = 2)]
struct Session {
    visits: u32,
}

fn main() {}
