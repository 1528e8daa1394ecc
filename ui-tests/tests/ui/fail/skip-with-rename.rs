use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(skip, rename = "s")]
    scratch: Vec<u8>,
}

fn main() {}
