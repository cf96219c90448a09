//! Generated diffs against the obvious alternative: serialize both snapshots with
//! `serde_json::to_value` and compare the objects key by key. A ~20-field struct, with one
//! changed field and with none. Run with `cargo bench -p audit-core --bench diff`.

use std::collections::BTreeMap;
use std::hint::black_box;

use audit_core::Auditable;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use serde_json::Value;

#[derive(Auditable, Serialize, Clone)]
#[audit(resource = "bench_template", actions(create, write, delete))]
struct Template {
    #[audit(track, id)]
    id: String,
    #[audit(track)]
    organization_id: String,
    #[audit(ignore)]
    created_at: u64,
    #[audit(ignore)]
    updated_at: u64,
    #[audit(track, target)]
    name: String,
    #[audit(track)]
    display_name: String,
    #[audit(track)]
    description: String,
    #[audit(track)]
    icon: String,
    #[audit(track)]
    provisioner: String,
    #[audit(track)]
    active_version_id: String,
    #[audit(track)]
    default_ttl: i64,
    #[audit(track)]
    max_ttl: i64,
    #[audit(track)]
    activity_bump: i64,
    #[audit(track)]
    created_by: String,
    #[audit(track)]
    group_acl: BTreeMap<String, Vec<String>>,
    #[audit(track)]
    user_acl: BTreeMap<String, Vec<String>>,
    #[audit(track)]
    allow_user_cancel_workspace_jobs: bool,
    #[audit(track)]
    require_active_version: bool,
    #[audit(track)]
    autostop_days: Vec<String>,
    #[audit(secret)]
    provisioner_token: String,
}

fn template() -> Template {
    let mut group_acl = BTreeMap::new();
    group_acl.insert("everyone".to_string(), vec!["use".to_string()]);
    let mut user_acl = BTreeMap::new();
    user_acl.insert(
        "alice".to_string(),
        vec!["admin".to_string(), "use".to_string()],
    );
    Template {
        id: "6c405053-27e3-484a-9ad7-bcb64e7bfde6".into(),
        organization_id: "00000000-0000-0000-0000-000000000000".into(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        name: "docker".into(),
        display_name: "Docker containers".into(),
        description: "Develop in a Docker container on the host".into(),
        icon: "/icon/docker.png".into(),
        provisioner: "terraform".into(),
        active_version_id: "ca5647e0-ef50-4202-a246-717e04447380".into(),
        default_ttl: 8 * 3600,
        max_ttl: 24 * 3600,
        activity_bump: 3600,
        created_by: "988ae133-5b73-41e3-a55e-e1e9d3ef0b66".into(),
        group_acl,
        user_acl,
        allow_user_cancel_workspace_jobs: true,
        require_active_version: false,
        autostop_days: vec!["monday".into(), "friday".into()],
        provisioner_token: "token".into(),
    }
}

/// The alternative: both snapshots to `Value`, then compare key by key.
fn serde_json_diff<T: Serialize>(old: &T, new: &T) -> Vec<(String, Value, Value)> {
    let (Ok(Value::Object(old)), Ok(Value::Object(mut new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (key, old_value) in old {
        let new_value = new.remove(&key).unwrap_or(Value::Null);
        if old_value != new_value {
            changes.push((key, old_value, new_value));
        }
    }
    changes
}

fn bench(c: &mut Criterion) {
    let old = template();
    let mut changed = old.clone();
    changed.display_name = "Docker (v2)".into();
    let same = old.clone();
    assert_eq!(audit_core::diff(Some(&old), Some(&changed)).len(), 1);
    assert_eq!(serde_json_diff(&old, &changed).len(), 1);

    let mut group = c.benchmark_group("diff_20_fields");
    group.bench_function("derive/no_change", |b| {
        b.iter(|| audit_core::diff(black_box(Some(&old)), black_box(Some(&same))))
    });
    group.bench_function("serde_json/no_change", |b| {
        b.iter(|| serde_json_diff(black_box(&old), black_box(&same)))
    });
    group.bench_function("derive/one_change", |b| {
        b.iter(|| audit_core::diff(black_box(Some(&old)), black_box(Some(&changed))))
    });
    group.bench_function("serde_json/one_change", |b| {
        b.iter(|| serde_json_diff(black_box(&old), black_box(&changed)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
