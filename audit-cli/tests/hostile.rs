//! The `audit` binary against a hostile user and an unlucky operator: output paths that are
//! the store itself, interrupted archives, bad flags, a closed standard output, and control
//! characters in stored events.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use audit_core::query::Filter;
use audit_core::store::sqlite::SqliteStore;
use audit_core::store::{Count, Store};
use audit_core::{Actor, AuditEvent};
use common::{Fixture, events_for_test, text};

fn store_path(f: &Fixture) -> &Path {
    f.url.strip_prefix("sqlite://").unwrap().as_ref()
}

fn rows(f: &Fixture) -> u64 {
    let mut store = SqliteStore::open(store_path(f)).unwrap();
    match store.count(&Filter::default(), 1_000_000).unwrap() {
        Count::Exact(n) | Count::AtLeast(n) => n,
    }
}

/// Exit code 2, a message saying what was refused, and no panic.
fn assert_refused(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn export_and_archive_refuse_the_store_and_its_journals_under_any_name() {
    let f = Fixture::new("store-paths", 12);
    let store = store_path(&f).to_path_buf();
    std::fs::create_dir_all(f.path("sub")).unwrap();
    std::fs::hard_link(&store, f.path("hard-link.db")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&store, f.path("symlink.db")).unwrap();
        // A link to a journal file that does not exist yet.
        std::os::unix::fs::symlink("audit.db-wal", f.path("wal-link")).unwrap();
    }
    let mut targets: Vec<String> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| format!("{}{suffix}", store.display()))
        .collect();
    targets.push(f.path("sub/../audit.db").display().to_string());
    targets.push(f.path("./audit.db-wal").display().to_string());
    targets.push(f.path("hard-link.db").display().to_string());
    if cfg!(unix) {
        targets.push(f.path("symlink.db").display().to_string());
        targets.push(f.path("wal-link").display().to_string());
    }
    for target in &targets {
        let export = f.run(&["export", "--format", "csv", "-o", target]);
        assert_refused(&export, target);
        assert!(text(&export.stderr).contains("refusing to write the export"));
        let purge = f.run(&["purge", "--older-than", "2030-01-01", "--archive", target]);
        assert_refused(&purge, target);
        assert!(text(&purge.stderr).contains("refusing to write the archive"));
        assert_eq!(rows(&f), 12, "{target}: the store is intact");
    }
    // The archive's partial file must not be the store either.
    let partial_is_store = f.path("audit");
    let target = format!("{}", partial_is_store.display());
    std::fs::rename(&store, format!("{target}.partial")).unwrap();
    let moved = Fixture {
        dir: f.dir.clone(),
        url: format!("sqlite://{target}.partial"),
    };
    let purge = moved.run(&["purge", "--older-than", "2030-01-01", "--archive", &target]);
    assert_refused(&purge, "the partial file");
    std::mem::forget(moved); // `f` cleans the directory
}

#[test]
fn a_leftover_partial_archive_stops_the_purge_and_says_what_to_do() {
    let f = Fixture::new("partial", 10);
    let archive = f.path("archive.jsonl");
    std::fs::write(f.path("archive.jsonl.partial"), "{\"cut\":").unwrap();
    let purge = f.run(&[
        "purge",
        "--older-than",
        "2024-01-06",
        "--archive",
        archive.to_str().unwrap(),
    ]);
    assert_refused(&purge, "leftover partial");
    let err = text(&purge.stderr);
    assert!(
        err.contains("interrupted purge") && err.contains("mv "),
        "{err}"
    );
    assert_eq!(rows(&f), 10, "nothing purged");
    assert!(!archive.exists());
}

#[test]
fn appending_to_an_archive_keeps_its_content_and_never_glues_a_record_to_a_cut_line() {
    let f = Fixture::new("append", 20);
    let jsonl = f.path("archive.jsonl");
    // An archive whose last line was cut off (by an older tool, a full disk).
    std::fs::write(&jsonl, "{\"earlier\":1}\n{\"cut\":").unwrap();
    let purge = f.run(&[
        "purge",
        "--older-than",
        "2024-01-04",
        "--batch-size",
        "2",
        "--archive",
        jsonl.to_str().unwrap(),
    ]);
    assert!(purge.status.success(), "{}", text(&purge.stderr));
    let content = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(&lines[..2], ["{\"earlier\":1}", "{\"cut\":"], "{content}");
    assert_eq!(lines.len(), 2 + 3);
    for line in &lines[2..] {
        serde_json::from_str::<AuditEvent>(line).expect("a whole event per line");
    }
    assert!(!f.path("archive.jsonl.partial").exists());

    // CSV: a second purge appends rows, not a second header.
    let csv = f.path("archive.csv");
    for cutoff in ["2024-01-08", "2024-01-12"] {
        let purge = f.run(&[
            "purge",
            "--older-than",
            cutoff,
            "--archive",
            csv.to_str().unwrap(),
        ]);
        assert!(purge.status.success(), "{}", text(&purge.stderr));
    }
    let content = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(content.matches("id,time,").count(), 1, "{content}");
    assert_eq!(content.lines().count(), 1 + 8);
    assert_eq!(rows(&f), 20 - 3 - 8);
}

#[test]
fn exports_replace_their_file_whole_and_refuse_nothing_else() {
    let f = Fixture::new("atomic", 6);
    let out = f.path("out.csv");
    std::fs::write(&out, "old content that is longer than nothing\n").unwrap();
    let export = f.run(&[
        "export",
        "--format",
        "CSV",
        "--bom",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    let body = std::fs::read_to_string(&out).unwrap();
    assert!(body.starts_with("\u{feff}id,time,"), "{body}");
    assert_eq!(body.lines().count(), 7);
    let leftovers: Vec<_> = std::fs::read_dir(&f.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A directory that does not exist: a runtime failure, nothing created.
    let missing = f.path("no/such/dir/out.jsonl");
    let export = f.run(&["export", "-o", missing.to_str().unwrap()]);
    assert_eq!(export.status.code(), Some(1), "{}", text(&export.stderr));
    assert!(
        text(&export.stderr).contains("caused by: "),
        "{}",
        text(&export.stderr)
    );

    // A full device is written in place, and fails cleanly.
    if Path::new("/dev/full").exists() {
        let full = f.run(&["export", "-o", "/dev/full"]);
        assert_eq!(full.status.code(), Some(1), "{}", text(&full.stderr));
        assert!(!text(&full.stderr).contains("panicked"));
        let archive = f.run(&[
            "purge",
            "--older-than",
            "2030-01-01",
            "--archive",
            "/dev/full",
        ]);
        assert_refused(&archive, "a device as the archive");
        assert!(Path::new("/dev/full").exists());
        assert_eq!(rows(&f), 6);
    }
}

#[test]
fn tail_stops_at_max_events_even_while_printing_the_last_ones() {
    let f = Fixture::new("tail-max", 5);
    let out = f.run(&["tail", "--last", "5", "--max-events", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn human_output_escapes_every_hiding_or_line_breaking_character() {
    let f = Fixture::new("terminal", 0);
    let nasty = "a\nb\u{2028}c\u{2029}d\u{202e}e\u{200b}f\u{1b}[2Jg\u{2066}h\u{feff}";
    let mut event = events_for_test(1, 0).remove(0);
    event.actor = Actor::new("1", nasty, "");
    event.resource_target = nasty.into();
    SqliteStore::open(store_path(&f))
        .unwrap()
        .append(&[event])
        .unwrap();
    for command in ["query", "tail"] {
        let args: &[&str] = if command == "query" {
            &["query"]
        } else {
            &["tail", "--last", "1", "--max-events", "1"]
        };
        let out = f.run(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let first = stdout.lines().next().unwrap();
        assert!(
            !first.chars().any(audit_core::format::is_unsafe),
            "{command}: {first:?}"
        );
        assert!(
            first.contains(r"a\nb\u2028c\u2029d\u202ee\u200bf\u001b[2Jg\u2066h\ufeff"),
            "{command}: {first}"
        );
    }
}

/// Runs the binary with its standard output a pipe whose reading end is already closed.
fn run_with_closed_stdout(f: &Fixture, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_audit"))
        .arg("--store")
        .arg(&f.url)
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn bad_flags_and_a_closed_stdout_give_exit_codes_never_panics() {
    let f = Fixture::new("flags", 5);
    let usage: &[&[&str]] = &[
        // durations and dates
        &["purge", "--older-than", "ten days"],
        &["purge", "--older-than", ""],
        &["purge", "--older-than", "-5d"],
        &["purge", "--older-than", "5 parsecs"],
        &["purge", "--older-than", "2024-13-01"],
        &["purge", "--older-than", "99999999999999999999d"],
        &["purge", "--older-than", "100000000000d"],
        &["tail", "--interval", "0s", "--max-events", "0"],
        &["tail", "--interval", "soon", "--max-events", "0"],
        &["query", "date_from:2024-13-45"],
        // formats
        &["export", "--format", "xml"],
        &["export", "--format", ""],
        // cursors
        &["query", "--cursor", "garbage"],
        &[
            "query",
            "--cursor",
            "7fffffffffffffff.00000000000000000000000000000001",
        ],
        &["tail", "--after", "garbage", "--max-events", "0"],
        // sizes
        &["query", "--limit", "0"],
        &["query", "--limit", "10000"],
        &["query", "--limit", "-1"],
        &["purge", "--older-than", "1d", "--batch-size", "0"],
        // filters and users
        &["query", "username:me"],
        &["query", "\u{1b}[2J:x"],
        &["bogus-command"],
    ];
    for args in usage {
        let out = f.run(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{args:?}: raw escape in {err:?}");
    }
    let closed: &[&[&str]] = &[
        &["stats"],
        &["stats", "--json"],
        &["purge", "--older-than", "2000-01-01", "--dry-run"],
        &["purge", "--older-than", "2000-01-01"],
        &["query"],
        &["query", "--json"],
        &["export"],
        &["tail", "--last", "2", "--max-events", "2"],
    ];
    for args in closed {
        let out = run_with_closed_stdout(&f, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Application keys typed by a user are checked by their parser (`AdditionalKey::from_str`),
/// never asserted.
#[test]
fn bad_application_keys_are_usage_errors() {
    let f = Fixture::new("keys", 2);
    for key in ["", "username", "a b", "a:b"] {
        let out = f.run(&["--key", key, "query"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--key {key:?}: {err}");
        assert!(!err.contains("panicked"), "--key {key:?}: {err}");
    }
}
