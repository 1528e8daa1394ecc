use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(skip = true)]
    scratch: Vec<u8>,
}

fn main() {}
