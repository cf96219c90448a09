//! Generic structs: bounds are added per field type, only where a type parameter appears, and
//! the one table every instantiation shares is registered (no flattened field's type mentions
//! a parameter, so the table does not depend on them).
use audit_core::{Auditable, FieldClass};

#[derive(Auditable)]
#[audit(resource = "setting", actions(write))]
struct Setting<V, S: Clone>
where
    V: Default,
{
    #[audit(track, id)]
    key: String,
    #[audit(track)]
    value: V,
    #[audit(secret)]
    token: S,
    #[audit(ignore)]
    cache: std::cell::Cell<u8>,
}

fn main() {
    let old = Setting { key: "k".to_string(), value: 1_u32, token: "a".to_string(), cache: Default::default() };
    let new = Setting { key: "k".to_string(), value: 2_u32, token: "b".to_string(), cache: Default::default() };
    let d = audit_core::diff(Some(&old), Some(&new));
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"token":{"secret":true},"value":{"old":1,"new":2,"secret":false}}"#
    );
    let schema = Setting::<u32, String>::schema();
    assert_eq!(schema.fields[2].class, FieldClass::Secret);
    assert_eq!(old.resource_id(), "k");
    assert_eq!(Setting::<u8, u8>::schema(), schema);
    let registered = audit_core::resource("setting").expect("a generic resource is registered");
    assert_eq!(registered, schema);
    assert_eq!(audit_core::resources().filter(|r| r.resource_type == "setting").count(), 1);
    let docs = audit_core::docs::render_markdown(&audit_core::resources().collect::<Vec<_>>());
    assert!(docs.contains("### Setting\n"), "{docs}");
    assert!(docs.contains("| `token` | secret |"), "{docs}");
}
