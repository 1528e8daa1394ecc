//! `#[databag(owner)]` (issue 14): an `Option<T>` of an integer, a `String`, or a type of the
//! app's own implementing `OwnerKey`, renamed or not; `Sessions<T>` is an extractor and lists
//! and revokes by the owner's type.
use session_runtime::{Databag, OwnerKey, Session, Sessions};

#[derive(serde::Serialize, serde::Deserialize, Default, Clone, PartialEq)]
pub struct UserId(String);

impl OwnerKey for UserId {
    fn owner_key(&self) -> String {
        self.0.clone()
    }
}

#[derive(Databag)]
pub struct ByNumber {
    #[databag(owner, rename = "u")]
    pub user_id: Option<u64>,
    pub visits: u32,
}

#[derive(Databag)]
pub struct ByName {
    pub theme: String,
    #[databag(owner)]
    pub user: Option<String>,
}

#[derive(Databag)]
pub struct ByOwnType {
    #[databag(owner)]
    pub user: Option<UserId>,
}

#[derive(Databag)]
pub struct Nobody {
    pub visits: u32,
}

async fn devices(
    session: Session<ByNumber>,
    sessions: Sessions<ByNumber>,
) -> Result<usize, session_runtime::LoadError> {
    let mine = sessions.list_for(&session).await?;
    let by_id = sessions.list(&42).await?;
    let revoked = sessions.revoke_others(&session).await?;
    Ok(mine.len() + by_id.len() + revoked)
}

async fn by_type(sessions: Sessions<ByOwnType>) -> Result<usize, session_runtime::LoadError> {
    sessions.revoke_all(&UserId("ada".into())).await
}

fn main() {
    use session_runtime::Databag as _;
    assert_eq!(ByNumber::OWNER, Some(0));
    assert_eq!(ByName::OWNER, Some(1));
    assert_eq!(Nobody::OWNER, None);
    let mut data = ByNumber::defaults();
    assert!(data.owner().is_none());
    data.user_id = Some(7);
    assert_eq!(data.owner(), Some(&7));
    let _ = (devices, by_type);
}
