use session_runtime::Databag;

#[derive(Databag)]
struct Session<T> {
    data: T,
}

fn main() {}
