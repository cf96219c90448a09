//! The common shape: every class, a reason, `id` and `target`, the resource's actions and icon.
use audit_core::{Auditable, FieldClass};

#[derive(Auditable, Clone)]
#[audit(resource = "workspace", actions(create, write, delete), icon = "workspace.svg")]
pub struct Workspace {
    #[audit(track, id)]
    pub id: u64,
    #[audit(track, target)]
    pub name: String,
    #[audit(track)]
    pub ttl: Option<i64>,
    #[audit(ignore, reason = "bumped on every request")]
    pub last_used_at: u64,
    #[audit(secret)]
    pub agent_token: String,
}

fn main() {
    let schema = Workspace::schema();
    assert_eq!((schema.name, schema.resource_type), ("Workspace", "workspace"));
    assert_eq!(schema.actions, ["create", "write", "delete"]);
    assert_eq!(schema.icon, Some("workspace.svg"));
    let classes: Vec<_> = schema.fields.iter().map(|f| (f.name, f.class, f.reason)).collect();
    assert_eq!(
        classes,
        [
            ("id", FieldClass::Track, None),
            ("name", FieldClass::Track, None),
            ("ttl", FieldClass::Track, None),
            ("last_used_at", FieldClass::Ignore, Some("bumped on every request")),
            ("agent_token", FieldClass::Secret, None),
        ]
    );
    assert!(schema.fields[0].is_id && schema.fields[1].is_target);
    assert_eq!(audit_core::resource("workspace"), Some(schema));

    let old = Workspace { id: 7, name: "dev".into(), ttl: None, last_used_at: 1, agent_token: "t1".into() };
    let new = Workspace { ttl: Some(60), last_used_at: 2, agent_token: "t2".into(), ..old.clone() };
    assert_eq!((new.resource_id(), new.resource_target()), ("7".to_string(), "dev".to_string()));
    assert_eq!(
        serde_json::to_string(&audit_core::diff(Some(&old), Some(&new))).unwrap(),
        r#"{"agent_token":{"secret":true},"ttl":{"old":null,"new":60,"secret":false}}"#
    );
    assert_eq!(
        serde_json::to_string(&audit_core::diff(None, Some(&new))).unwrap(),
        r#"{"agent_token":{"secret":true},"id":{"new":7,"secret":false},"name":{"new":"dev","secret":false},"ttl":{"new":60,"secret":false}}"#
    );
    assert_eq!(
        serde_json::to_string(&audit_core::diff(Some(&old), None)).unwrap(),
        r#"{"agent_token":{"secret":true},"id":{"old":7,"secret":false},"name":{"old":"dev","secret":false},"ttl":{"old":null,"secret":false}}"#
    );
}
