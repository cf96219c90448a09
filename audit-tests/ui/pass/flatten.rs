//! `flatten` inlines an embedded Auditable struct's fields in the schema and in diffs.
use audit_core::{Auditable, FieldClass};

#[derive(Auditable, Clone)]
struct Timestamps {
    #[audit(ignore, reason = "set once")]
    created_at: u64,
    #[audit(ignore, reason = "bumped on every write")]
    updated_at: u64,
}

#[derive(Auditable, Clone)]
struct WorkspaceTable {
    #[audit(track, id)]
    id: u64,
    #[audit(track, target)]
    name: String,
    #[audit(secret)]
    agent_token: String,
}

#[derive(Auditable, Clone)]
#[audit(resource = "workspace", actions(create, write, delete))]
struct Workspace {
    #[audit(flatten)]
    table: WorkspaceTable,
    #[audit(track)]
    ttl: Option<i64>,
    #[audit(flatten)]
    times: Timestamps,
}

fn main() {
    let names: Vec<_> = Workspace::schema().fields.iter().map(|f| (f.name, f.class)).collect();
    assert_eq!(
        names,
        [
            ("id", FieldClass::Track),
            ("name", FieldClass::Track),
            ("agent_token", FieldClass::Secret),
            ("ttl", FieldClass::Track),
            ("created_at", FieldClass::Ignore),
            ("updated_at", FieldClass::Ignore),
        ]
    );
    let old = Workspace {
        table: WorkspaceTable { id: 7, name: "dev".into(), agent_token: "t1".into() },
        ttl: None,
        times: Timestamps { created_at: 1, updated_at: 1 },
    };
    let mut new = old.clone();
    new.table.name = "prod".into();
    new.table.agent_token = "t2".into();
    new.times.updated_at = 2;
    let d = audit_core::diff(Some(&old), Some(&new));
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"agent_token":{"secret":true},"name":{"old":"dev","new":"prod","secret":false}}"#
    );
    // id and target come from the flattened struct.
    assert_eq!(new.resource_id(), "7");
    assert_eq!(new.resource_target(), "prod");
    assert!(audit_core::resources().any(|r| r.resource_type == "workspace"));
    // An `embedded` struct is only flattened into resources: it is not listed as one.
    assert!(audit_core::resources().all(|r| r.name != "Audited"));
    assert_eq!(Audited::schema().fields.len(), 1);
}

#[derive(Auditable)]
#[audit(embedded)]
struct Audited {
    #[audit(ignore)]
    by: u64,
}
