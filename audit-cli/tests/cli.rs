//! The `audit` binary end to end, against an SQLite file it did not write.

mod common;

use std::path::Path;
use std::process::Command;

use audit_core::AuditEvent;
use audit_core::store::Store;
use audit_core::store::sqlite::SqliteStore;
use common::{Fixture, events_for_test, text};

#[test]
fn query_pages_with_cursors_and_counts() {
    let f = Fixture::new("query", 30);
    let first = f.run(&[
        "query",
        "resource_type:workspace",
        "--limit",
        "10",
        "--count",
    ]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert_eq!(out.lines().filter(|l| l.starts_with("2024-")).count(), 10);
    assert!(out.contains("matches: 15"), "{out}");
    // Newest first.
    assert!(
        out.lines().next().unwrap().starts_with("2024-01-29"),
        "{out}"
    );
    let cursor = out
        .lines()
        .find_map(|l| l.strip_prefix("next page: --cursor "))
        .expect("a cursor")
        .to_string();
    let second = f.run(&[
        "query",
        "resource_type:workspace",
        "--limit",
        "10",
        "--cursor",
        &cursor,
        "--json",
    ]);
    let lines: Vec<AuditEvent> = text(&second.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|e| e.resource_type == "workspace"));

    let me = f.run(&[
        "--me",
        "bob",
        "query",
        "username:me",
        "--json",
        "--limit",
        "100",
    ]);
    assert_eq!(text(&me.stdout).lines().count(), 15);
}

#[test]
fn bad_input_is_reported_with_every_validation_and_exit_code_2() {
    let f = Fixture::new("errors", 3);
    let bad = f.run(&[
        "query",
        "resource_type:wrkspace action:explode date_from:2024-13-01 usernme:x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = text(&bad.stderr);
    assert!(err.contains("Invalid audit search query."), "{err}");
    for field in ["resource_type", "action", "date_from", "usernme"] {
        assert!(
            err.contains(&format!("  {field}: ")),
            "missing {field} in {err}"
        );
    }
    let me = f.run(&["query", "username:me"]);
    assert_eq!(me.status.code(), Some(2));
    assert!(text(&me.stderr).contains("--me"));
    let cursor = f.run(&["query", "--cursor", "garbage"]);
    assert_eq!(cursor.status.code(), Some(2));
    assert!(text(&cursor.stderr).contains("invalid cursor"));
    let url = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(["--store", "mysql://x", "stats"])
        .output()
        .unwrap();
    assert_eq!(url.status.code(), Some(2));
    assert!(text(&url.stderr).contains("sqlite://"));
    let missing = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(["--store", "sqlite:///nonexistent/dir/audit.db", "query"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no SQLite audit store"));
    assert!(!Path::new("/nonexistent/dir/audit.db").exists());
    let age = f.run(&["purge", "--older-than", "ten days"]);
    assert_eq!(age.status.code(), Some(2));
}

#[test]
fn export_streams_exactly_the_filtered_events() {
    let f = Fixture::new("export", 12);
    let csv = f.path("out.csv");
    let out = f.run(&[
        "export",
        "action:delete",
        "--format",
        "csv",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = body.lines().collect();
    assert_eq!(rows.len(), 1 + 4, "header and the 4 deletes:\n{body}");
    assert!(rows[0].starts_with("id,time,actor_id"));
    // Formula injection is neutralised.
    assert!(rows[1].contains("\"'=cmd|' /C calc'!A"), "{}", rows[1]);
    let jsonl = f.run(&["export", "username:alice", "--format", "jsonl"]);
    assert_eq!(text(&jsonl.stdout).lines().count(), 6);
    let unknown = f.run(&["export", "", "--format", "xml"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn purge_archives_then_deletes_and_stats_report_it() {
    let f = Fixture::new("purge", 20);
    let dry = f.run(&["purge", "--older-than", "2024-01-11", "--dry-run"]);
    assert!(
        text(&dry.stdout).contains("would purge 10 events"),
        "{}",
        text(&dry.stdout)
    );
    let archive = f.path("archive.jsonl");
    let purge = f.run(&[
        "purge",
        "--older-than",
        "2024-01-11",
        "--batch-size",
        "3",
        "--archive",
        archive.to_str().unwrap(),
    ]);
    assert!(purge.status.success(), "{}", text(&purge.stderr));
    assert!(
        text(&purge.stdout).contains("purged 10 events"),
        "{}",
        text(&purge.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&archive).unwrap().lines().count(),
        10
    );
    let stats = f.run(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["rows"], 10);
    assert!(stats["total_bytes"].as_u64().unwrap() > 0);
    let human = f.run(&["stats"]);
    assert!(text(&human.stdout).contains("rows          10"));
}

#[test]
fn tail_prints_the_last_events_then_follows_new_ones() {
    let f = Fixture::new("tail", 5);
    let last = f.run(&["tail", "--last", "2", "--max-events", "2", "--json"]);
    let ids: Vec<AuditEvent> = text(&last.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0].time < ids[1].time, "oldest first");

    // Resume after the newest existing event (log position 5), so the test does not race
    // the child's start.
    let newest = "5".to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args([
            "--store",
            &f.url,
            "tail",
            "action:create",
            "--json",
            "--interval",
            "50ms",
            "--max-events",
            "2",
            "--after",
            &newest,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let path: &Path = f.url.strip_prefix("sqlite://").unwrap().as_ref();
    SqliteStore::open(path)
        .unwrap()
        .append(&events_for_test(6, 100))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("tail did not stop after --max-events");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let followed: Vec<AuditEvent> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(followed.len(), 2);
    assert!(
        followed
            .iter()
            .all(|e| e.action == "create" && e.resource_id.parse::<usize>().unwrap() >= 100)
    );
}
