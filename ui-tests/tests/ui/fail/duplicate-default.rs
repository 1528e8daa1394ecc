use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(default = 1)]
    #[databag(default = 2)]
    visits: u32,
}

fn main() {}
