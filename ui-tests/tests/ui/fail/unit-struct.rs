use session_runtime::Databag;

#[derive(Databag)]
struct Session;

fn main() {}
