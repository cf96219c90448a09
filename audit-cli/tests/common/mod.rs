//! The fixture of the CLI tests: an SQLite store the `audit` binary did not write, and a
//! way to run the binary against it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use audit_core::store::Store;
use audit_core::store::sqlite::SqliteStore;
use audit_core::{Actor, AuditEvent, Diff};
use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

pub(crate) struct Fixture {
    pub dir: PathBuf,
    pub url: String,
}

impl Fixture {
    pub(crate) fn new(name: &str, events: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("audit-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.append(&events_for_test(events, 0)).unwrap();
        Fixture {
            url: format!("sqlite://{}", path.display()),
            dir,
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_audit"))
            .arg("--store")
            .arg(&self.url)
            .args(args)
            .env_remove("AUDIT_ME")
            .output()
            .expect("the audit binary runs")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn events_for_test(n: usize, offset: usize) -> Vec<AuditEvent> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (offset..offset + n)
        .map(|i| AuditEvent {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128),
            time: start + Duration::days(i as i64),
            actor: Actor {
                id: format!("u{}", i % 2),
                username: ["alice", "bob"][i % 2].into(),
                email: ["alice@example.com", "bob@example.com"][i % 2].into(),
            },
            organization_id: None,
            ip: None,
            user_agent: Some("curl/8".into()),
            resource_type: ["workspace", "template"][i % 2].into(),
            resource_id: i.to_string(),
            resource_target: format!("=cmd|' /C calc'!A{i}"),
            resource_icon: String::new(),
            action: ["create", "delete", "write"][i % 3].into(),
            diff: Diff::default(),
            status_code: 200,
            additional_fields: Default::default(),
            request_id: None,
        })
        .collect()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
