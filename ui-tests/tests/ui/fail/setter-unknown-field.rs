use session_runtime::Databag;

#[derive(Databag)]
pub struct Session {
    pub visits: u32,
}

fn bump(session: &mut SessionHandle) {
    session.set_vists(3);
}

fn main() {}
