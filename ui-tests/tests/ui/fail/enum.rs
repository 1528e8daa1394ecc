use session_runtime::Databag;

#[derive(Databag)]
enum Theme {
    Light,
    Dark,
}

fn main() {}
