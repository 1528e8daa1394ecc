use session_runtime::Databag;

#[derive(Databag)]
#[databag(crate = "not a path")]
pub struct Visits {
    pub count: u64,
}

fn main() {}
