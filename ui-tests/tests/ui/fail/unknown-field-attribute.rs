use session_runtime::Databag;

#[derive(Databag)]
struct Session {
    #[databag(defualt = "guest".to_owned())]
    username: String,
    visits: u32,
}

fn main() {
    // The typo gives exactly one error: the rest of the struct still works.
    let mut session = SessionHandle::new(<Session as session_runtime::Databag>::defaults());
    session.set_visits(session.visits + 1);
    session.set_username(String::new());
}
