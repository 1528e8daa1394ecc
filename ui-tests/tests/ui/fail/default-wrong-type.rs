use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(default = "guest")]
    username: String,
}

fn main() {}
