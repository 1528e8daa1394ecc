use session_runtime::Databag;

#[derive(Databag)]
pub struct Session {
    pub visits: u32,
}

fn bump(session: &mut SessionHandle) {
    session.visits = 3;
}

fn main() {
    let mut session = SessionHandle::new(Session::defaults());
    bump(&mut session);
}
