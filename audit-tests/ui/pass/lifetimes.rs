//! Borrowed snapshots: lifetimes work, and `Cow`/`&str` fields are tracked.
use std::borrow::Cow;

use audit_core::Auditable;

#[derive(Auditable)]
struct UserView<'a, 'b: 'a> {
    #[audit(track, target)]
    username: &'a str,
    #[audit(track)]
    roles: Cow<'b, [String]>,
    #[audit(secret)]
    password_hash: &'b [u8],
}

fn main() {
    let roles = vec!["member".to_string()];
    let old = UserView { username: "alice", roles: Cow::Borrowed(&roles), password_hash: b"x" };
    let new = UserView { username: "alicia", roles: Cow::Borrowed(&roles), password_hash: b"x" };
    let d = audit_core::diff(Some(&old), Some(&new));
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"username":{"old":"alice","new":"alicia","secret":false}}"#
    );
    assert_eq!(new.resource_target(), "alicia");
    assert_eq!(new.resource_id(), "");
    assert_eq!(UserView::schema().resource_type, "user_view");
}
