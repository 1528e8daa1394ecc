use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    theme: String,
    #[databag(rename = "theme")]
    colour: String,
}

fn main() {}
