use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    __private: u32,
    #[databag(rename = "__remember")]
    remember: bool,
}

fn main() {}
