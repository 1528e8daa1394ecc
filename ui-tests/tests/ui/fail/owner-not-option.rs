use session_runtime::Databag;

#[derive(Databag)]
struct Account {
    #[databag(owner)]
    user_id: u64,
}

fn main() {}
