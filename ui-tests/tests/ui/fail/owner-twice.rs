use session_runtime::Databag;

#[derive(Databag)]
struct Account {
    #[databag(owner)]
    user_id: Option<u64>,
    #[databag(owner)]
    team_id: Option<u64>,
}

fn main() {}
