use session_runtime::Databag;

#[derive(Databag)]
struct Account {
    #[databag(owner = "user")]
    user_id: Option<u64>,
}

fn main() {}
