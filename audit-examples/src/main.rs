//! The demo: what `#[derive(Auditable)]` records for a few changes of the example resources.

use audit_core::Auditable;
use audit_examples::resources::{Timestamps, Workspace};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn main() {
    let at = Utc
        .with_ymd_and_hms(2024, 5, 1, 9, 30, 0)
        .single()
        .unwrap_or_default();
    let created = Workspace {
        id: Uuid::from_u128(0x1),
        owner_id: Uuid::from_u128(0xa11ce),
        organization_id: Uuid::nil(),
        template_id: Uuid::from_u128(0x7e),
        deleted: false,
        name: "dev".into(),
        autostart_schedule: None,
        ttl: Some(8 * 3600),
        last_used_at: at,
        agent_token: Uuid::from_u128(0x5ec7e7),
        timestamps: Timestamps {
            created_at: at,
            updated_at: at,
        },
    };
    let mut updated = created.clone();
    updated.ttl = None;
    updated.autostart_schedule = Some("CRON_TZ=UTC 30 9 * * 1-5".into());
    updated.agent_token = Uuid::from_u128(0x5ec7e8);
    updated.last_used_at = at + chrono::Duration::minutes(5);

    for (action, diff) in [
        ("create", audit_core::diff(None, Some(&created))),
        ("write", audit_core::diff(Some(&created), Some(&updated))),
        ("delete", audit_core::diff(Some(&updated), None)),
    ] {
        let json = serde_json::to_string(&diff).unwrap_or_else(|e| format!("<{e}>"));
        println!(
            "{action:>6} workspace {}: {json}",
            updated.resource_target()
        );
    }
    println!(
        "\n{} audited resource types; tracking tables: docs/audit-tracking.md",
        audit_core::resources().len()
    );
}
