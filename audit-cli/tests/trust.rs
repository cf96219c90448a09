//! "Is this log intact?" from the command line: `audit keygen`, `audit checkpoint`,
//! `audit verify` (exit 0 with a summary, 1 naming the first bad event by its id, 2 for bad
//! input), archives joined to the live log, and `audit fingerprint` reading the candidate
//! value from standard input only.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use audit_core::store::Store;
use audit_core::store::sqlite::SqliteStore;
use common::{Fixture, events_for_test, text};

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(args)
        .output()
        .expect("the audit binary runs")
}

fn keys(fixture: &Fixture) -> (String, String) {
    let prefix = fixture.path("log");
    let out = audit(&[
        "keygen",
        "--name",
        "test.example/audit",
        "--out",
        prefix.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (
        fixture.path("log.key").display().to_string(),
        fixture.path("log.pub").display().to_string(),
    )
}

fn sql(fixture: &Fixture, sql: &str) {
    rusqlite::Connection::open(fixture.path("audit.db"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn an_intact_log_verifies_with_its_checkpoints_and_an_edit_is_named() {
    let fixture = Fixture::new("trust-verify", 10);
    let (private, public) = keys(&fixture);
    let dir = fixture.path("checkpoints");
    std::fs::create_dir(&dir).unwrap();
    let out = fixture.run(&[
        "checkpoint",
        "--signing-key",
        &private,
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checkpoint of #10"),
        "{}",
        text(&out.stderr)
    );
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let note = std::fs::read_to_string(&file).unwrap();
    assert!(note.starts_with("test.example/audit\n10\n"), "{note}");

    let out = fixture.run(&[
        "verify",
        "--public-key",
        &public,
        "--checkpoint",
        file.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("events verified: 10 of 10 (#1..#10)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("checkpoints: 2 given, 2 matched"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("intact"), "{stdout}");

    // An edit made directly in the database: exit 1, the event named by its id.
    sql(
        &fixture,
        "UPDATE audit_logs SET resource_target = 'prod' WHERE seq = 4",
    );
    let edited = events_for_test(10, 0)[3].id.to_string();
    let out = fixture.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&edited) && stderr.contains("(#4)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains(&format!("INVALID: event {edited} (#4)")));
    let json = fixture.run(&["verify", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["problems"][0]["id"], edited);

    // An edit before the last checkpoint leaves the head as signed: a new checkpoint only
    // vouches for the head. An edit after it breaks the chain a new one would extend.
    let mut store = SqliteStore::open(fixture.path("audit.db")).unwrap();
    store.append(&events_for_test(2, 10)).unwrap();
    drop(store);
    sql(
        &fixture,
        "UPDATE audit_logs SET action = 'login' WHERE seq = 11",
    );
    let out = fixture.run(&["checkpoint", "--signing-key", &private]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("refusing to sign"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_truncated_head_fails_against_an_outside_checkpoint() {
    let fixture = Fixture::new("trust-truncate", 6);
    let (private, public) = keys(&fixture);
    let checkpoint = fixture.path("cp.txt");
    let out = fixture.run(&[
        "checkpoint",
        "--signing-key",
        &private,
        "--out",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Never overwritten.
    let again = fixture.run(&[
        "checkpoint",
        "--signing-key",
        &private,
        "--out",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    // The newest rows, the head row and the stored checkpoints all rewritten.
    sql(
        &fixture,
        "DELETE FROM audit_logs WHERE seq > 4; \
         UPDATE audit_log_head SET seq = 4, hash = (SELECT hash FROM audit_logs WHERE seq = 4); \
         DELETE FROM audit_checkpoints;",
    );
    assert_eq!(fixture.run(&["verify"]).status.code(), Some(0));
    let out = fixture.run(&[
        "verify",
        "--public-key",
        &public,
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("#5..#6 are missing at the end of the log"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_purge_archive_joins_the_live_log() {
    let fixture = Fixture::new("trust-archive", 10);
    // Events are a day apart from 2024-01-01: purge the first five.
    let archive = fixture.path("archive.jsonl");
    let out = fixture.run(&[
        "purge",
        "--older-than",
        "2024-01-06",
        "--archive",
        archive.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = fixture.run(&["verify"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("#1..#5: purged"),
        "{}",
        text(&out.stdout)
    );
    let out = fixture.run(&["verify", "--archive", archive.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("events verified: 10 of 10"), "{stdout}");
    assert!(!stdout.contains("purged"), "{stdout}");
    // An edited archive no longer joins.
    let edited = std::fs::read_to_string(&archive).unwrap().replacen(
        "\"action\":\"create\"",
        "\"action\":\"login\"",
        1,
    );
    std::fs::write(&archive, edited).unwrap();
    let out = fixture.run(&["verify", "--archive", archive.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    // A CSV export carries no positions or hashes: said so, not read as broken JSON.
    let csv = fixture.path("export.csv");
    let out = fixture.run(&[
        "export",
        "--format",
        "csv",
        "--bom",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = fixture.run(&["verify", "--archive", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("CSV archive"),
        "{}",
        text(&out.stderr)
    );
    // An export (newest first) verifies too.
    let export = fixture.path("export.jsonl");
    let out = fixture.run(&[
        "export",
        "--format",
        "jsonl",
        "-o",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = fixture.run(&["verify", "--archive", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn bad_input_is_a_usage_error() {
    let fixture = Fixture::new("trust-usage", 2);
    let (private, public) = keys(&fixture);
    let cp = fixture.path("cp.txt");
    std::fs::write(&cp, "not a checkpoint\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["verify", "--checkpoint", cp.to_str().unwrap()],
            "needs --public-key",
        ),
        (vec!["verify", "--public-key", &private], "private key"),
        (
            vec!["verify", "--public-key", "/nonexistent"],
            "/nonexistent",
        ),
        (
            vec!["verify", "--archive", "/nonexistent.jsonl"],
            "no archive",
        ),
        (vec!["checkpoint", "--signing-key", &public], "PRIVATE+KEY+"),
    ];
    for (args, says) in cases {
        let out = fixture.run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A malformed checkpoint file given with a key is a problem with the log's evidence.
    let out = fixture.run(&[
        "verify",
        "--public-key",
        &public,
        "--checkpoint",
        cp.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("is not valid"),
        "{}",
        text(&out.stdout)
    );
    // A private key readable by others is refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = fixture.run(&["checkpoint", "--signing-key", &private]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn events_the_application_appends_verify() {
    let fixture = Fixture::new("trust-store", 3);
    let mut store = SqliteStore::open(fixture.path("audit.db")).unwrap();
    store.append(&events_for_test(2, 3)).unwrap();
    drop(store);
    let out = fixture.run(&["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("events verified: 5 of 5"));
}

const SECRET: &str = "hunter2-MARKER-s3cr3t";

fn fingerprint(key: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args([
            "fingerprint",
            "--key-file",
            key,
            "--resource",
            "workspace",
            "--field",
            "agent_token",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn fingerprints_come_from_standard_input_and_never_show_the_value() {
    let fixture = Fixture::new("trust-fingerprint", 0);
    let key = fixture.path("fp.key");
    let out = audit(&[
        "keygen",
        "--fingerprint",
        "--key-id",
        "k7",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = key.to_str().unwrap();
    // The trailing newline of `echo` is not part of the value.
    let with_newline = fingerprint(key, &[], &format!("{SECRET}\n"));
    let without = fingerprint(key, &[], SECRET);
    assert!(with_newline.status.success());
    let line = text(&without.stdout);
    assert_eq!(text(&with_newline.stdout), line);
    assert!(
        line.starts_with("hmac-sha256:k7:")
            && line.trim_end().len() == "hmac-sha256:k7:".len() + 43,
        "{line}"
    );
    // It is the library's fingerprint.
    let keyring = audit_core::fingerprint::Keyring::read_file(std::path::Path::new(key)).unwrap();
    assert_eq!(
        line.trim_end(),
        keyring
            .fingerprint("workspace", "agent_token", SECRET)
            .unwrap()
            .to_string()
    );
    // --check answers with the exit code.
    let yes = fingerprint(key, &["--check", line.trim_end()], SECRET);
    assert_eq!(
        (yes.status.code(), text(&yes.stdout).trim()),
        (Some(0), "matches")
    );
    let no = fingerprint(key, &["--check", line.trim_end()], "guess");
    assert_eq!(
        (no.status.code(), text(&no.stdout).trim()),
        (Some(1), "does not match")
    );
    // JSON values, and bad JSON reported without the input.
    let json = fingerprint(key, &["--json"], "{\"pin\": 1234}");
    assert!(json.status.success());
    let bad = fingerprint(key, &["--json"], &format!("{{\"{SECRET}\": "));
    assert_eq!(bad.status.code(), Some(2));
    // The value shows nowhere.
    for out in [&with_newline, &without, &yes, &no, &bad] {
        for stream in [&out.stdout, &out.stderr] {
            assert!(!text(stream).contains(SECRET), "{}", text(stream));
        }
    }
    // There is no way to pass it on the command line.
    let argv = audit(&[
        "fingerprint",
        "--key-file",
        key,
        "--resource",
        "r",
        "--field",
        "f",
        SECRET,
    ]);
    assert_eq!(argv.status.code(), Some(2));
    assert!(
        text(&argv.stderr).contains("standard input"),
        "{}",
        text(&argv.stderr)
    );
    assert!(
        !text(&argv.stderr).contains(SECRET),
        "{}",
        text(&argv.stderr)
    );
}

/// A checkpoint printed on standard output (for a ticket) and a purge archive outlive the
/// database: `verify --without-store` checks the archive on its own against the checkpoint,
/// and still names an edited event.
#[test]
fn an_archive_verifies_on_its_own_against_a_checkpoint_after_the_database_is_gone() {
    let fixture = Fixture::new("trust-archive-alone", 10);
    let (private, public) = keys(&fixture);
    let out = fixture.run(&["checkpoint", "--signing-key", &private]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let note = text(&out.stdout);
    assert!(note.starts_with("test.example/audit\n10\n"), "{note}");
    let checkpoint = fixture.path("ticket.txt");
    std::fs::write(&checkpoint, &note).unwrap();

    let archive = fixture.path("archive.jsonl");
    let out = fixture.run(&[
        "purge",
        "--older-than",
        "2030-01-01",
        "--archive",
        archive.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(fixture.path("audit.db")).unwrap();

    let verify = |archive: &std::path::Path| {
        fixture.run(&[
            "verify",
            "--without-store",
            "--public-key",
            &public,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--archive",
            archive.to_str().unwrap(),
        ])
    };
    let out = verify(&archive);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("events verified: 10 of 10"), "{stdout}");
    assert!(!fixture.path("audit.db").exists(), "no store was created");

    let edited = std::fs::read_to_string(&archive).unwrap().replacen(
        "\"action\":\"create\"",
        "\"action\":\"login\"",
        1,
    );
    let tampered = fixture.path("tampered.jsonl");
    std::fs::write(&tampered, edited).unwrap();
    let out = verify(&tampered);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not intact"),
        "{}",
        text(&out.stderr)
    );

    let out = fixture.run(&["verify", "--without-store"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--archive"),
        "{}",
        text(&out.stderr)
    );
}
