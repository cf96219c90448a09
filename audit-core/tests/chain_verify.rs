//! The verifier against every way of tampering with a log: each test builds a chained log in
//! memory, edits it as someone with write access to the database would, and checks that the
//! report names the first event concerned (or lists what it could not check).
#![cfg(feature = "chain")]

use audit_core::chain::{
    ChainHash, ChainHasher, ChainHead, Checkpoint, CheckpointOutcome, ProblemKind, Start,
    UncheckedReason, Verifier, VerifyReport,
};
use audit_core::{Actor, AuditEvent, Diff};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

#[derive(Clone, Debug)]
struct Row {
    seq: u64,
    hash: ChainHash,
    event: AuditEvent,
}

fn start_time() -> DateTime<Utc> {
    "2024-03-01T08:00:00Z".parse().unwrap()
}

fn event(i: u64) -> AuditEvent {
    let diff: Diff = serde_json::from_value(json!({
        "name": {"old": format!("ws-{i}"), "new": format!("ws-{}", i + 1), "secret": false},
        "ttl": {"old": i, "new": 3600.5, "secret": false},
        "token": {"secret": true},
    }))
    .unwrap();
    AuditEvent::builder(if i.is_multiple_of(3) {
        "create"
    } else {
        "write"
    })
    .id_and_time(
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(i)),
        start_time() + Duration::seconds(i as i64),
    )
    .actor(Actor::new(
        format!("u-{}", i % 7),
        "alice",
        "alice@example.com",
    ))
    .organization_id("org-1")
    .ip("192.0.2.1".parse().unwrap())
    .user_agent("curl/8.5")
    .resource_type("workspace")
    .resource_id(format!("ws-{i}"))
    .resource_target("dev")
    .diff(diff)
    .field("build_reason", "autostart")
    .field("attempt", i)
    .request_id(Uuid::from_u128(u128::from(i) << 64))
    .build()
}

/// A log of `n` events, positions 1..=n.
fn log(n: u64) -> Vec<Row> {
    let mut rows: Vec<Row> = (1..=n)
        .map(|seq| Row {
            seq,
            hash: ChainHash::GENESIS,
            event: event(seq),
        })
        .collect();
    rechain(&mut rows, 0, ChainHead::GENESIS);
    rows
}

/// Recomputes the hashes of `rows[from..]`, as someone who rewrites the chain would.
fn rechain(rows: &mut [Row], from: usize, before: ChainHead) {
    let mut hasher = ChainHasher::new();
    let mut prev = if from == 0 {
        before
    } else {
        head_of(&rows[from - 1])
    };
    for row in &mut rows[from..] {
        row.hash = hasher.hash(&prev.hash, row.seq, &row.event);
        prev = head_of(row);
    }
}

fn head_of(row: &Row) -> ChainHead {
    ChainHead {
        seq: row.seq,
        hash: row.hash,
    }
}

fn checkpoint(head: ChainHead) -> Checkpoint {
    Checkpoint::new("test.example/audit", head, start_time())
}

/// What `audit verify` does: the checkpoints and head record first, then one segment.
fn verify(rows: &[Row], start: Start, checkpoints: &[ChainHead]) -> VerifyReport {
    let mut v = Verifier::new();
    for (i, head) in checkpoints.iter().enumerate() {
        v.checkpoint(checkpoint(*head), format!("cp{i}"));
    }
    v.begin(start);
    feed(&mut v, rows);
    v.finish()
}

fn feed(v: &mut Verifier, rows: &[Row]) {
    for row in rows {
        v.event(row.seq, row.hash, &row.event);
    }
}

#[track_caller]
fn first_problem(report: &VerifyReport) -> (Option<u64>, Option<Uuid>, ProblemKind) {
    let p = report
        .first_problem()
        .unwrap_or_else(|| panic!("no problem found:\n{report}"));
    (p.seq, p.id, p.kind.clone())
}

#[test]
fn an_untouched_log_verifies() {
    let rows = log(50);
    let head = head_of(&rows[49]);
    let report = verify(&rows, Start::Genesis, &[head_of(&rows[9]), head]);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, 50);
    assert_eq!(report.head, head);
    assert!(report.unchecked.is_empty(), "{report}");
    assert!(
        report
            .checkpoints
            .iter()
            .all(|c| c.outcome == CheckpointOutcome::Matched)
    );
    let text = report.to_string();
    assert!(
        text.contains("events verified: 50 of 50 (#1..#50)"),
        "{text}"
    );
    assert!(text.ends_with("intact"), "{text}");
}

#[test]
fn without_a_checkpoint_the_report_says_what_it_cannot_catch() {
    let rows = log(5);
    let report = verify(&rows, Start::Genesis, &[]);
    assert!(report.is_intact());
    assert_eq!(report.unchecked.len(), 1);
    assert_eq!(report.unchecked[0].reason, UncheckedReason::NotSigned);
    assert_eq!((report.unchecked[0].from, report.unchecked[0].to), (1, 5));
    assert!(report.to_string().contains("take a checkpoint"));
}

#[test]
fn an_empty_log_verifies_against_an_empty_checkpoint() {
    let report = verify(&[], Start::Genesis, &[ChainHead::GENESIS]);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.checkpoints[0].outcome, CheckpointOutcome::Matched);
    assert_eq!(report.head, ChainHead::GENESIS);
    assert!(report.unchecked.is_empty());
}

/// Every kind of field edit, made directly on a stored row, is named at that row.
#[test]
fn an_altered_field_is_named_by_its_event() {
    type Edit = Box<dyn Fn(&mut AuditEvent)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "diff value",
            Box::new(|e| {
                e.diff = serde_json::from_value(
                    json!({"name": {"old": "x", "new": "y", "secret": false}}),
                )
                .unwrap()
            }),
        ),
        ("back-dated", Box::new(|e| e.time -= Duration::days(30))),
        ("actor", Box::new(|e| e.actor.username = "mallory".into())),
        ("status", Box::new(|e| e.status_code = 403)),
        ("ip", Box::new(|e| e.ip = None)),
        (
            "additional field",
            Box::new(|e| {
                e.additional_fields
                    .insert("build_reason".into(), json!("initiator"));
            }),
        ),
        ("id", Box::new(|e| e.id = Uuid::from_u128(99))),
    ];
    for (what, edit) in edits {
        let mut rows = log(20);
        edit(&mut rows[7].event);
        let report = verify(&rows, Start::Genesis, &[]);
        let (seq, id, kind) = first_problem(&report);
        assert_eq!(seq, Some(8), "{what}");
        assert_eq!(id, Some(rows[7].event.id), "{what}");
        assert!(matches!(kind, ProblemKind::HashMismatch { .. }), "{what}");
        assert_eq!(
            report.problems_total, 1,
            "{what}: only that event\n{report}"
        );
        assert_eq!(report.events_verified, 19, "{what}");
    }
}

#[test]
fn an_edit_with_its_own_hash_recomputed_shows_at_the_next_event() {
    let mut rows = log(20);
    rows[7].event.resource_target = "prod".into();
    let mut hasher = ChainHasher::new();
    rows[7].hash = hasher.hash(&rows[6].hash, 8, &rows[7].event);
    let report = verify(&rows, Start::Genesis, &[]);
    let (seq, id, _) = first_problem(&report);
    assert_eq!((seq, id), (Some(9), Some(rows[8].event.id)));
}

#[test]
fn a_deleted_row_is_named_by_the_event_after_it() {
    let mut rows = log(20);
    rows.remove(7);
    let report = verify(&rows, Start::Genesis, &[]);
    let (seq, id, kind) = first_problem(&report);
    assert_eq!((seq, id), (Some(9), Some(rows[7].event.id)));
    assert_eq!(kind, ProblemKind::Missing { from: 8, to: 8 });
    assert!(
        report.problems[0]
            .to_string()
            .contains("#8 is missing before event")
    );
    let mut rows = log(5);
    rows.remove(0);
    let (seq, _, kind) = first_problem(&verify(&rows, Start::Genesis, &[]));
    assert_eq!(seq, Some(2));
    assert_eq!(kind, ProblemKind::Missing { from: 1, to: 1 });
}

#[test]
fn inserted_rows_are_named() {
    // A row slipped in with an existing position.
    let mut rows = log(10);
    let mut forged = rows[4].clone();
    forged.event.action = "delete".into();
    forged.event.id = Uuid::from_u128(7777);
    rows.insert(5, forged);
    let (seq, id, kind) = first_problem(&verify(&rows, Start::Genesis, &[]));
    assert_eq!((seq, id), (Some(5), Some(Uuid::from_u128(7777))));
    assert_eq!(kind, ProblemKind::OutOfOrder { after: 5 });

    // A back-dated row appended with a made-up hash.
    let mut rows = log(10);
    let mut forged = event(3);
    forged.id = Uuid::from_u128(8888);
    forged.time = start_time() - Duration::days(1);
    rows.push(Row {
        seq: 11,
        hash: ChainHash::from_bytes([1; 32]),
        event: forged,
    });
    let (seq, id, _) = first_problem(&verify(&rows, Start::Genesis, &[]));
    assert_eq!((seq, id), (Some(11), Some(Uuid::from_u128(8888))));
}

#[test]
fn an_appended_row_with_a_correct_hash_is_caught_by_the_head_record() {
    let mut rows = log(10);
    let recorded = head_of(&rows[9]);
    let mut forged = event(3);
    forged.id = Uuid::from_u128(4242);
    let hash = ChainHasher::new().hash(&recorded.hash, 11, &forged);
    rows.push(Row {
        seq: 11,
        hash,
        event: forged,
    });
    let mut v = Verifier::new();
    v.head_record(recorded).begin(Start::Genesis);
    feed(&mut v, &rows);
    let report = v.finish();
    let (seq, id, kind) = first_problem(&report);
    assert_eq!((seq, id), (Some(11), Some(Uuid::from_u128(4242))));
    assert_eq!(kind, ProblemKind::BeyondHead { head: 10 });
}

#[test]
fn swapped_rows_are_named_at_the_first_of_them() {
    let mut rows = log(10);
    let (a, b) = (rows[3].event.clone(), rows[4].event.clone());
    rows[3].event = b;
    rows[4].event = a;
    let (seq, id, _) = first_problem(&verify(&rows, Start::Genesis, &[]));
    assert_eq!((seq, id), (Some(4), Some(rows[3].event.id)));
}

#[test]
fn a_rewritten_chain_needs_a_checkpoint_to_be_caught() {
    let original = log(30);
    let mut rows = original.clone();
    rows[12].event.resource_target = "prod".into();
    rechain(&mut rows, 12, ChainHead::GENESIS);
    // The chain alone is consistent: the edit hides…
    let report = verify(&rows, Start::Genesis, &[]);
    assert!(report.is_intact());
    assert_eq!(report.unchecked[0].reason, UncheckedReason::NotSigned);
    // …until a checkpoint taken before the edit is checked. With one at #5 that still
    // matches, the first event it cannot vouch for is #6.
    let cps = [head_of(&original[4]), head_of(&original[29])];
    let report = verify(&rows, Start::Genesis, &cps);
    let (seq, id, kind) = first_problem(&report);
    assert_eq!((seq, id), (Some(6), Some(rows[5].event.id)));
    assert!(
        matches!(kind, ProblemKind::Rewritten { size: 30, .. }),
        "{kind:?}"
    );
    assert_eq!(report.checkpoints[0].outcome, CheckpointOutcome::Matched);
    assert_eq!(report.checkpoints[1].outcome, CheckpointOutcome::Failed);
    assert!(report.to_string().contains("rewritten from event"));
}

#[test]
fn a_truncated_head_is_caught_by_a_checkpoint_or_the_head_record() {
    let original = log(30);
    let rows = &original[..27];
    let report = verify(rows, Start::Genesis, &[head_of(&original[29])]);
    let (seq, id, kind) = first_problem(&report);
    assert_eq!((seq, id), (Some(28), None));
    assert_eq!(
        kind,
        ProblemKind::Truncated {
            from: 28,
            to: 30,
            source: "cp0".into()
        }
    );
    assert!(
        report.problems[0]
            .to_string()
            .contains("#28..#30 are missing at the end")
    );

    let mut v = Verifier::new();
    v.head_record(head_of(&original[29])).begin(Start::Genesis);
    feed(&mut v, rows);
    let report = v.finish();
    assert!(matches!(
        first_problem(&report).2,
        ProblemKind::Truncated {
            from: 28,
            to: 30,
            ..
        }
    ));
    // A head record with another hash for the same position.
    let mut v = Verifier::new();
    v.head_record(ChainHead {
        seq: 27,
        hash: ChainHash::from_bytes([9; 32]),
    })
    .begin(Start::Genesis);
    feed(&mut v, rows);
    let (seq, id, kind) = first_problem(&v.finish());
    assert_eq!((seq, id), (Some(27), Some(rows[26].event.id)));
    assert!(matches!(kind, ProblemKind::HeadMismatch { .. }));
}

#[test]
fn a_purged_log_verifies_from_its_anchor_and_says_what_was_purged() {
    let full = log(40);
    let anchor = head_of(&full[14]);
    let live = &full[15..];
    let cps = [head_of(&full[4]), anchor, head_of(&full[39])];
    let report = verify(live, Start::After(anchor), &cps);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, 25);
    assert_eq!(report.unchecked.len(), 1);
    assert_eq!(report.unchecked[0].reason, UncheckedReason::Purged);
    assert_eq!((report.unchecked[0].from, report.unchecked[0].to), (1, 15));
    let outcomes: Vec<_> = report.checkpoints.iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        [
            CheckpointOutcome::Unchecked,
            CheckpointOutcome::Matched,
            CheckpointOutcome::Matched
        ]
    );
    let text = report.to_string();
    assert!(text.contains("#1..#15: purged"), "{text}");
    assert!(text.contains("checkpoint cp0 at #5"), "{text}");

    // Appending after the purge: still one chain.
    let mut longer = full.clone();
    longer.extend((41..=45).map(|seq| Row {
        seq,
        hash: ChainHash::GENESIS,
        event: event(seq),
    }));
    rechain(&mut longer, 40, ChainHead::GENESIS);
    let report = verify(&longer[15..], Start::After(anchor), &[head_of(&longer[44])]);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.events_verified, 30);

    // An anchor that does not lead to the signed head: a faked purge.
    let fake = ChainHead {
        seq: 15,
        hash: ChainHash::from_bytes([3; 32]),
    };
    let (seq, _, _) = first_problem(&verify(live, Start::After(fake), &[]));
    assert_eq!(seq, Some(16));
}

#[test]
fn archives_join_the_live_log() {
    let full = log(40);
    let anchor = head_of(&full[14]);
    let (archive, live) = full.split_at(15);
    let head = head_of(&full[39]);

    let joined = |archive: &[Row], archive_start: Start| {
        let mut v = Verifier::new();
        v.checkpoint(checkpoint(head), "cp");
        v.begin(archive_start);
        feed(&mut v, archive);
        v.begin(Start::After(anchor));
        feed(&mut v, live);
        v.finish()
    };
    let report = joined(archive, Start::Genesis);
    assert!(report.is_intact(), "{report}");
    assert!(report.unchecked.is_empty(), "{report}");
    assert_eq!(report.events_verified, 40);

    // The archive was edited after the purge.
    let mut edited = archive.to_vec();
    edited[3].event.action = "login".into();
    let (seq, id, _) = first_problem(&joined(&edited, Start::Genesis));
    assert_eq!((seq, id), (Some(4), Some(edited[3].event.id)));

    // The archive's chain was recomputed: it no longer meets the live log's anchor.
    let mut rewritten = archive.to_vec();
    rewritten[3].event.action = "login".into();
    rechain(&mut rewritten, 3, ChainHead::GENESIS);
    let (seq, id, kind) = first_problem(&joined(&rewritten, Start::Genesis));
    assert_eq!((seq, id), (Some(15), None));
    assert!(
        matches!(kind, ProblemKind::SegmentsDisagree { .. }),
        "{kind:?}"
    );

    // An archive missing its oldest part.
    let report = joined(&archive[5..], Start::Unknown);
    assert!(report.is_intact(), "{report}");
    assert_eq!(
        report.unchecked[0].reason,
        UncheckedReason::PredecessorUnknown
    );
    assert_eq!(report.unchecked[0].from, 6);

    // An archive that overlaps the live log (its batch was archived, then the delete failed).
    let mut v = Verifier::new();
    v.begin(Start::Genesis);
    feed(&mut v, &full[..20]);
    v.begin(Start::After(anchor));
    feed(&mut v, live);
    assert!(v.finish().is_intact());

    // Two archives with a gap between them.
    let mut v = Verifier::new();
    v.begin(Start::Genesis);
    feed(&mut v, &full[..5]);
    v.begin(Start::After(head_of(&full[9])));
    feed(&mut v, &full[10..]);
    let report = v.finish();
    assert!(report.is_intact(), "{report}");
    let ranges: Vec<_> = report
        .unchecked
        .iter()
        .map(|u| (u.from, u.to, u.reason))
        .collect();
    assert_eq!(
        ranges,
        [
            (1, 5, UncheckedReason::NotSigned),
            (6, 10, UncheckedReason::NotInAnySegment),
            (11, 40, UncheckedReason::NotSigned)
        ]
    );
}

#[test]
fn an_unreadable_row_is_a_problem_and_the_chain_goes_on() {
    let rows = log(10);
    let mut v = Verifier::new();
    v.begin(Start::Genesis);
    feed(&mut v, &rows[..4]);
    v.unreadable(
        Some(5),
        Some(rows[4].event.id),
        Some(rows[4].hash),
        "diff: not JSON",
    );
    feed(&mut v, &rows[5..]);
    let report = v.finish();
    let (seq, id, kind) = first_problem(&report);
    assert_eq!((seq, id), (Some(5), Some(rows[4].event.id)));
    assert!(matches!(kind, ProblemKind::Unreadable { .. }));
    assert_eq!(report.problems_total, 1);
    assert_eq!(report.events_verified, 9);
}

#[test]
fn the_report_lists_at_most_100_problems_and_counts_them_all() {
    let mut rows = log(150);
    for row in &mut rows {
        row.event.status_code = 500;
    }
    let report = verify(&rows, Start::Genesis, &[]);
    assert_eq!(report.problems.len(), 100);
    assert_eq!(report.problems_total, 150);
    assert!(report.to_string().contains("and 50 more problems"));
}

#[test]
fn the_report_serializes_for_the_api() {
    let mut rows = log(3);
    rows.remove(1);
    let report = verify(&rows, Start::Genesis, &[]);
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["problems"][0]["kind"]["kind"], "missing");
    assert_eq!(value["problems"][0]["seq"], 3);
    assert_eq!(value["unchecked"][0]["reason"], "not_signed");
    assert_eq!(value["head"]["seq"], 3);
}

/// One stored field of an event, changed to another value.
fn mutate(e: &mut AuditEvent, field: usize, text: &str, n: i64) {
    match field % 16 {
        0 => e.id = Uuid::from_u128(e.id.as_u128() ^ (n as u128 | 1)),
        1 => e.time += Duration::microseconds(n.rem_euclid(1_000_000) + 1),
        2 => e.actor.id.push_str(text),
        3 => e.actor.username.push_str(text),
        4 => e.actor.email.push_str(text),
        5 => e.organization_id = e.organization_id.take().xor(Some(text.into())),
        6 => {
            e.ip = Some(std::net::IpAddr::from(
                (n as u32).wrapping_add(1).to_be_bytes(),
            ))
        }
        7 => e.user_agent.as_mut().unwrap().push_str(text),
        8 => e.resource_type.push_str(text),
        9 => e.resource_id.push_str(text),
        10 => e.resource_target.push_str(text),
        11 => e.resource_icon.push_str(text),
        12 => e.action.push_str(text),
        13 => {
            e.diff =
                serde_json::from_value(json!({"name": {"old": text, "secret": false}})).unwrap()
        }
        14 => e.status_code = e.status_code.wrapping_add(1 + (n as u16 % 100)),
        _ => {
            e.additional_fields.insert(format!("k{text}"), json!(n));
        }
    }
}

proptest! {
    /// Any change to any stored field of any event is reported at that event.
    #[test]
    fn any_field_change_is_caught_at_its_event(
        index in 0usize..12,
        field in 0usize..16,
        text in "[a-zé☃]{1,4}",
        n in any::<i64>(),
    ) {
        let mut rows = log(12);
        let before = rows[index].event.clone();
        mutate(&mut rows[index].event, field, &text, n);
        prop_assume!(rows[index].event != before);
        let report = verify(&rows, Start::Genesis, &[]);
        let p = report.first_problem().expect("detected");
        prop_assert_eq!(p.seq, Some(index as u64 + 1));
        prop_assert_eq!(p.id, Some(rows[index].event.id));
    }
}
