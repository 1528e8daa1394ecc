use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(rename = t)]
    theme: String,
}

fn main() {}
