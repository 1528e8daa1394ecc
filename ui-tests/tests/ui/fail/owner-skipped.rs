use session_runtime::Databag;

#[derive(Databag)]
struct Account {
    #[databag(owner, skip)]
    user_id: Option<u64>,
}

fn main() {}
