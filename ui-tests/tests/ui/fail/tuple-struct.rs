use session_runtime::Databag;

#[derive(Databag)]
struct Session(u32, String);

fn main() {}
