//! `GET /api/v2/audit/verify`: owners only, the report of `audit verify`, the stored
//! checkpoints checked with the configured keys, a tampered store named, the request
//! recorded, and the outcome kept for the viewer's integrity line (owners only).

mod common;

use audit_core::chain::SigningKey;
use common::{Fixture, SECRET, dataset};

fn signing_key() -> SigningKey {
    SigningKey::from_seed("http.example/audit", &[3; 32]).unwrap()
}

/// Edits event 3 directly in the database, around the store.
fn tamper(f: &Fixture) {
    let sql = "UPDATE audit_logs SET resource_target = 'tampered' WHERE seq = 3";
    if let Some(url) = &f.sqlite_url {
        let path = url.trim_start_matches("sqlite://");
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    } else if let Some((url, schema)) = &f.postgres {
        let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
            .unwrap();
    }
}

on_every_store! {
    owners_get_the_report_and_others_are_refused => |f: Fixture| async move {
        f.append(&dataset());
        common::blocking(|| {
            f.store_writer(|s| {
                audit_core::store::verify::take_checkpoint(s, &signing_key(), chrono::Utc::now())
                    .unwrap()
            })
        });
        let api = f.builder().checkpoint_keys(vec![signing_key().verifier()]).build().unwrap();
        assert_eq!(api.last_verification(), None);
        let server = f.start_with(api).await;

        // The viewer's integrity line: for owners only, and "not verified" until a
        // verification runs.
        let page = server.get("/audit", Some(&f.tokens.owner)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains(r#"<p id="integrity" class="integrity unknown">Integrity: not verified since the server started"#),
            "{}",
            page.body
        );
        let page = server.get("/audit", Some(&f.tokens.auditor)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(!page.body.contains(r#"id="integrity""#), "{}", page.body);

        for (token, status) in [
            (None, 401),
            (Some(f.tokens.member.as_str()), 403),
            (Some(f.tokens.auditor.as_str()), 403),
            (Some(f.tokens.org1.as_str()), 403),
        ] {
            let reply = server.get("/api/v2/audit/verify", token).await;
            assert_eq!(reply.status, status, "{}", reply.body);
        }
        let reply = server.get("/api/v2/audit/verify", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), "no-store");
        let json = reply.json();
        assert_eq!(json["intact"], true, "{json}");
        assert_eq!(json["report"]["events_verified"], 6);
        assert_eq!(json["report"]["head"]["seq"], 6);
        assert_eq!(json["report"]["checkpoints"][0]["outcome"], "matched");
        assert!(!reply.body.contains(SECRET));

        let last = server.api.last_verification().expect("kept for the viewer");
        assert!(last.intact);
        assert_eq!(last.head.seq, 6);
        assert_eq!(last.first_problem, None);
        let page = server.get("/audit", Some(&f.tokens.owner)).await;
        let line = format!(
            r#"<p id="integrity" class="integrity ok">Integrity: verified up to #6 at {}.</p>"#,
            last.verified_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        assert!(page.body.contains(&line), "{line}\n{}", page.body);

        // The server's own verification (audit serve --verify-every) is kept too, and is not
        // a read of the log: it shows no one any event.
        let own = server.api.verify().await.unwrap();
        assert!(own.intact);
        assert!(own.verified_at >= last.verified_at);
        assert_eq!(server.api.last_verification(), Some(own));

        // The verification is a read of the log, recorded like the others; so are refusals.
        let reads = f.recorded_reads();
        let verifies: Vec<u16> = reads
            .iter()
            .filter(|e| e.action == "verify" && e.resource_type == "audit_log")
            .map(|e| e.status_code)
            .collect();
        assert_eq!(verifies, [403, 403, 403, 200]);
        server.shutdown().await.unwrap();
    };

    a_tampered_store_is_named_in_the_report => |f: Fixture| async move {
        let events = dataset();
        f.append(&events);
        let server = f.start().await;
        common::blocking(|| tamper(&f));
        let reply = server.get("/api/v2/audit/verify", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json = reply.json();
        assert_eq!(json["intact"], false);
        let problem = &json["report"]["problems"][0];
        assert_eq!(problem["seq"], 3, "{json}");
        assert_eq!(problem["kind"]["kind"], "hash_mismatch");
        assert_eq!(problem["id"], events[2].id.to_string());
        let last = server.api.last_verification().unwrap();
        assert!(!last.intact);
        let named = format!("event {} (#3)", events[2].id);
        assert!(last.first_problem.as_deref().unwrap().contains(&named), "{last:?}");
        // Owners see it in the viewer, naming the event.
        let page = server.get("/audit", Some(&f.tokens.owner)).await;
        assert!(
            page.body.contains(r#"<p id="integrity" class="integrity bad" role="alert">Integrity: NOT intact"#),
            "{}",
            page.body
        );
        assert!(page.body.contains(&named), "{}", page.body);
        // Without keys, the report says the stored checkpoints (none here) and the newest
        // events were not covered by a signature.
        assert_eq!(json["report"]["unchecked"][0]["reason"], "not_signed");
        server.shutdown().await.unwrap();
    };
}
