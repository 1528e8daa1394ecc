use session_runtime::Databag;

#[derive(Default)]
struct Connection {
    fd: i32,
}

#[derive(Databag)]
struct Session {
    visits: u32,
    connection: Connection,
}

fn main() {}
