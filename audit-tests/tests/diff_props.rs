//! Properties of generated diffs, over arbitrary snapshots:
//! equal snapshots give an empty diff; a field appears iff it is tracked or secret and
//! changed; no secret value ever appears in the serialized diff or in `Debug`.

use audit_core::{Auditable, Change, FieldClass};
use proptest::prelude::*;

/// Secret values all carry this marker; tracked values are lowercase and cannot contain it.
const MARKER: &str = "SECRET-MARKER";

#[derive(Auditable, Clone, Debug, PartialEq)]
#[audit(resource = "prop_user", actions(create, write, delete))]
struct User {
    #[audit(track, id)]
    id: u32,
    #[audit(track, target)]
    username: String,
    #[audit(track)]
    email: Option<String>,
    #[audit(track)]
    roles: Vec<String>,
    #[audit(secret)]
    hashed_password: String,
    #[audit(secret)]
    api_token: Option<String>,
    #[audit(ignore)]
    last_seen_at: u64,
}

fn user() -> impl Strategy<Value = User> {
    (
        0u32..4,
        "[a-z]{0,3}",
        proptest::option::of("[a-z@.]{0,4}"),
        proptest::collection::vec("[a-z]{1,2}", 0..3),
        "[A-Z0-9]{0,3}",
        proptest::option::of("[A-Z0-9]{0,3}"),
        0u64..3,
    )
        .prop_map(|(id, username, email, roles, pw, token, seen)| User {
            id,
            username,
            email,
            roles,
            hashed_password: format!("{MARKER}-{pw}"),
            api_token: token.map(|t| format!("{MARKER}-{t}")),
            last_seen_at: seen,
        })
}

/// Which fields differ between two users, by audit name.
fn changed_fields(a: &User, b: &User) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.id != b.id {
        out.push("id");
    }
    if a.username != b.username {
        out.push("username");
    }
    if a.email != b.email {
        out.push("email");
    }
    if a.roles != b.roles {
        out.push("roles");
    }
    if a.hashed_password != b.hashed_password {
        out.push("hashed_password");
    }
    if a.api_token != b.api_token {
        out.push("api_token");
    }
    out.sort_unstable();
    out
}

fn assert_no_secret(diff: &audit_core::Diff) {
    let json = serde_json::to_string(diff).expect("diffs serialize");
    assert!(!json.contains(MARKER), "secret leaked into JSON: {json}");
    let debug = format!("{diff:?} {diff:#?}");
    assert!(!debug.contains(MARKER), "secret leaked into Debug: {debug}");
}

proptest! {
    #[test]
    fn equal_snapshots_give_an_empty_diff(u in user(), seen in 0u64..10) {
        let mut other = u.clone();
        other.last_seen_at = seen;
        prop_assert!(audit_core::diff(Some(&u), Some(&other)).is_empty());
    }

    #[test]
    fn a_field_appears_iff_it_is_audited_and_changed(a in user(), b in user()) {
        let diff = audit_core::diff(Some(&a), Some(&b));
        let names: Vec<&str> = diff.iter().map(|(n, _)| n).collect();
        prop_assert_eq!(names, changed_fields(&a, &b));
        for (name, change) in diff.iter() {
            let class = User::schema().field(name).map(|f| f.class);
            prop_assert_eq!(change.is_secret(), class == Some(FieldClass::Secret));
            if let Change::Tracked { old, new } = change {
                prop_assert!(old.is_some() && new.is_some() && old != new);
            }
        }
        assert_no_secret(&diff);
    }

    #[test]
    fn create_and_delete_list_every_audited_field_without_secrets(u in user()) {
        let audited = User::schema().fields.iter().filter(|f| f.class != FieldClass::Ignore).count();
        for (diff, creating) in [(audit_core::diff(None, Some(&u)), true), (audit_core::diff(Some(&u), None), false)] {
            prop_assert_eq!(diff.len(), audited);
            prop_assert!(!diff.contains("last_seen_at"));
            for (_, change) in diff.iter() {
                if let Change::Tracked { old, new } = change {
                    prop_assert_eq!(old.is_none(), creating);
                    prop_assert_eq!(new.is_none(), !creating);
                }
            }
            assert_no_secret(&diff);
        }
    }

    #[test]
    fn serialized_diffs_have_sorted_keys_and_round_trip(a in user(), b in user()) {
        let diff = audit_core::diff(Some(&a), Some(&b));
        let text = serde_json::to_string(&diff).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(keys, sorted);
        let back: audit_core::Diff = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, diff);
    }
}

#[test]
fn debug_of_a_snapshot_diff_shows_no_secret_even_for_create() {
    let u = User {
        id: 1,
        username: "alice".into(),
        email: None,
        roles: vec![],
        hashed_password: format!("{MARKER}-x"),
        api_token: Some(format!("{MARKER}-y")),
        last_seen_at: 0,
    };
    let diff = audit_core::diff(None, Some(&u));
    assert_no_secret(&diff);
    assert_eq!(diff.get("hashed_password"), Some(&Change::Secret));
}
