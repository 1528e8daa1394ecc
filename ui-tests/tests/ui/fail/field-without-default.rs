use session_runtime::Databag;

#[derive(serde::Serialize, serde::Deserialize)]
struct UserId(u64);

#[derive(Databag)]
struct Session {
    user: UserId,
}

fn main() {}
