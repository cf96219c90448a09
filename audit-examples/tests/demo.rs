//! The demo scenario: the exact events it records, and no secret anywhere in its output.

use audit_core::backends::StoreBackend;
use audit_core::backends::{JsonLinesBackend, MemoryBackend, SharedBuffer, TextBackend};
use audit_core::query::Filter;
use audit_core::store::Store;
use audit_core::store::export::{Format, export};
use audit_core::store::sqlite::SqliteStore;
use audit_core::{AuditEvent, Auditor};
use audit_examples::demo::{self, SECRET_MARKER};

/// The events with what changes from run to run (ids, times, request ids) replaced.
fn redacted(events: &[AuditEvent]) -> serde_json::Value {
    let values = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            v["id"] = "[id]".into();
            v["time"] = "[time]".into();
            if !v["request_id"].is_null() {
                v["request_id"] = "[request_id]".into();
            }
            v
        })
        .collect();
    serde_json::Value::Array(values)
}

#[test]
fn the_scenario_records_exactly_these_events_and_no_secret() {
    let dir = std::env::temp_dir().join(format!("audit-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let memory = MemoryBackend::new();
    let text = SharedBuffer::new();
    let jsonl = SharedBuffer::new();
    let store = StoreBackend::new(SqliteStore::open(&db).unwrap());
    let handle = store.handle();
    let auditor = Auditor::builder()
        .backend(memory.clone())
        .backend(TextBackend::new(text.clone()))
        .backend(JsonLinesBackend::new(jsonl.clone()))
        .backend(store)
        .build()
        .unwrap();

    let recorded = demo::run(&auditor).unwrap();
    auditor.shutdown();
    let stats = auditor.stats();
    assert!(
        stats
            .backends
            .iter()
            .all(|b| b.written == recorded as u64 && b.failed == 0 && b.dropped == 0),
        "{stats:?}"
    );

    let events = memory.events();
    assert_eq!(events.len(), 14);
    insta::assert_json_snapshot!("demo_events", redacted(&events));
    let descriptions: Vec<String> = events.iter().map(AuditEvent::description).collect();
    insta::assert_snapshot!("demo_descriptions", descriptions.join("\n"));

    // Every output: text lines, JSON lines, the store's file, its exports, Debug.
    let mut outputs = vec![("text", text.contents()), ("json lines", jsonl.contents())];
    assert_eq!(outputs[0].1.lines().count(), 14);
    assert_eq!(outputs[1].1.lines().count(), 14);
    {
        let mut store = handle.lock();
        for format in [Format::Csv, Format::JsonLines] {
            let mut out = Vec::new();
            assert_eq!(
                export(
                    &mut *store,
                    &Filter::default(),
                    format,
                    &mut out,
                    &mut |_| {}
                )
                .unwrap(),
                14
            );
            outputs.push(("export", String::from_utf8(out).unwrap()));
        }
        assert_eq!(store.stats().unwrap().rows, 14);
    }
    drop(handle);
    drop(auditor);
    for file in ["audit.db", "audit.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(file)) {
            outputs.push(("sqlite file", String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    outputs.push(("debug", format!("{events:?}")));
    for (what, output) in &outputs {
        assert!(
            !output.contains(SECRET_MARKER),
            "a secret value reached the {what} output"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_demo_binary_prints_where_it_wrote_and_leaks_nothing() {
    let dir = std::env::temp_dir().join(format!("audit-demo-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_audit-examples"))
            .args(["--out", dir.to_str().unwrap()])
            .output()
            .unwrap()
    };
    run();
    // A second run starts a fresh log instead of appending to the first.
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(" audit_log ID="))
            .count(),
        14
    );
    assert!(stdout.contains(&format!(
        "JSON lines:   {}",
        dir.join("audit.jsonl").display()
    )));
    assert!(
        stdout.contains("sqlite       written  14  failed 0  dropped 0"),
        "{stdout}"
    );
    let jsonl = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 14);
    let mut store = SqliteStore::open(dir.join("audit.db")).unwrap();
    assert_eq!(store.stats().unwrap().rows, 14);
    for output in [&stdout, &jsonl] {
        assert!(!output.contains(SECRET_MARKER));
    }
    std::fs::remove_dir_all(&dir).ok();
}
