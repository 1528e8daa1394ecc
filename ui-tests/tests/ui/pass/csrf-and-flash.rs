//! CSRF tokens and flash messages (issue 15) are inherent on the generated handle (no
//! import, `?` works in a handler returning a response) and on `DatabagHandle` for generic
//! code; `CsrfToken<T>` is an extractor.
use session_runtime::{CsrfToken, Databag, DatabagHandle, Session};

#[derive(Databag)]
pub struct Page {
    pub name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub enum Notice {
    Saved,
}

mod handlers {
    use super::*;

    // No `use session_runtime::DatabagHandle` here.
    pub async fn form(
        token: CsrfToken<Page>,
        mut session: Session<Page>,
    ) -> Result<String, session_runtime::RandomnessError> {
        let again = session.csrf_token()?;
        let shown: Vec<Notice> = session.take_flash();
        Ok(format!("{token} {again} {}", shown.len()))
    }

    pub async fn save(mut session: Session<Page>) -> Result<(), session_runtime::EncodeError> {
        session.set_name("x".to_owned());
        session.flash(Notice::Saved)?;
        Ok(())
    }
}

fn generic<T: Databag>(session: &mut Session<T>) -> Vec<String> {
    let _ = session.csrf_token();
    let _ = session.flash("note");
    session.take_flash()
}

fn main() {
    let mut session = PageHandle::new(Page { name: String::new() });
    let _ = generic::<Page>(&mut session);
    let _ = handlers::form;
    let _ = handlers::save;
}
