//! The lifecycle methods of issue 17 (remember me, a fixed end, explicit save) are inherent
//! on the generated handle (no import) and on `DatabagHandle` for generic code.
use std::time::{Duration, SystemTime};

use session_runtime::{Databag, DatabagHandle, SaveError, Session};

#[derive(Databag)]
pub struct Login {
    pub user_id: Option<u64>,
}

mod handlers {
    use super::*;

    // No `use session_runtime::DatabagHandle` here.
    pub async fn login(mut session: Session<Login>) -> Result<(), SaveError> {
        session.renew();
        session.set_user_id(Some(7));
        session.remember_for(Some(Duration::from_secs(30 * 24 * 3600)));
        session.end_at(Some(SystemTime::now() + Duration::from_secs(3600)));
        let _: Option<Duration> = session.remembered_for();
        let _: Option<SystemTime> = session.ends_at();
        session.save().await
    }
}

async fn generic<T: Databag>(session: &mut Session<T>) -> Result<(), SaveError> {
    session.remember_for(None);
    session.end_at(None);
    session.save().await
}

fn assert_send<F: std::future::Future + Send>(_: F) {}

fn main() {
    let mut session = LoginHandle::new(Login { user_id: None });
    assert_send(generic::<Login>(&mut session));
    let _ = handlers::login;
}
