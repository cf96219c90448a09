//! The live streams (SSE and WebSocket) over a real server on 127.0.0.1, against SQLite and
//! (when `AUDIT_TEST_POSTGRES_URL` is set) Postgres: commit order, resuming without gap or
//! duplicate, scope, resets, events from another process, slow readers, shutdown.

mod common;

use std::time::Duration;

use common::{Fixture, Frame, SECRET, WsItem, dataset, login, workspace_event};

const WAIT: Duration = Duration::from_secs(10);

fn seqs(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| {
            let id: u64 =
                f.id.as_deref()
                    .expect("an event frame has an id")
                    .parse()
                    .unwrap();
            assert_eq!(f.json()["seq"], id, "id: is the event's seq");
            id
        })
        .collect()
}

on_every_store! {
    sse_starts_at_now_and_delivers_appends_in_commit_order => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        assert_eq!(stream.headers["x-accel-buffering"], "no");
        assert_eq!(stream.headers["cache-control"], "no-cache");
        // The first frame says where the stream starts: the head, as a position only.
        let prime = stream.next_frame(WAIT).await.unwrap();
        assert_eq!(prime.id.as_deref(), Some("6"));
        assert_eq!(prime.retry.as_deref(), Some("3000"));
        assert_eq!(prime.data, None);
        stream.assert_quiet(Duration::from_millis(300)).await;

        f.append(&[workspace_event("dave", "create", Some("org-1"), "new")]);
        f.append(&[login("erin"), login("frank")]);
        let frames = stream.events(3, WAIT).await;
        assert_eq!(seqs(&frames), [7, 8, 9]);
        let users: Vec<String> = frames.iter().map(|f| f.json()["user"]["username"].as_str().unwrap().to_owned()).collect();
        assert_eq!(users, ["dave", "erin", "frank"]);
        assert_eq!(frames[0].json()["description"], "dave created workspace new");
        assert!(frames.iter().all(|f| !f.data.as_ref().unwrap().contains(SECRET)));
        server.shutdown().await.unwrap();
    };

    sse_resumes_with_last_event_id_with_no_gap_and_no_duplicate => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        f.append(&[login("a1"), login("a2")]);
        let frames = stream.events(2, WAIT).await;
        let last = frames[1].id.clone().unwrap();
        assert_eq!(last, "8");
        drop(stream);

        // Missed while disconnected.
        f.append(&[login("m1"), login("m2"), login("m3")]);
        let mut stream = server
            .sse("/api/v2/audit/stream", &f.tokens.owner, &[("last-event-id", &last)])
            .await;
        let first = stream.next_frame(WAIT).await.unwrap();
        assert_eq!((first.retry.as_deref(), first.id.as_deref()), (Some("3000"), None), "a resumed stream is not re-primed");
        let frames = stream.events(3, WAIT).await;
        assert_eq!(seqs(&frames), [9, 10, 11]);
        f.append(&[login("n1")]);
        assert_eq!(seqs(&stream.events(1, WAIT).await), [12]);
        stream.assert_quiet(Duration::from_millis(300)).await;

        // `?after=` resumes too; `Last-Event-ID` (what a browser sends on reconnect) wins.
        let mut stream = server.sse("/api/v2/audit/stream?after=10", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        assert_eq!(seqs(&stream.events(2, WAIT).await), [11, 12]);
        let mut stream = server
            .sse("/api/v2/audit/stream?after=2", &f.tokens.owner, &[("last-event-id", "11")])
            .await;
        stream.next_frame(WAIT).await.unwrap();
        assert_eq!(seqs(&stream.events(1, WAIT).await), [12]);
        // From the start of the log.
        let mut stream = server.sse("/api/v2/audit/stream?after=0", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        assert_eq!(seqs(&stream.events(12, WAIT).await), (1..=12).collect::<Vec<_>>());
    };

    a_never_delivered_start_still_resumes_without_a_gap => |f: Fixture| async move {
        // A client that connects, receives nothing but the priming position and reconnects,
        // still gets what was appended in between.
        f.append(&dataset());
        let server = f.start().await;
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        let prime = stream.next_frame(WAIT).await.unwrap();
        drop(stream);
        f.append(&[login("between")]);
        let id = prime.id.unwrap();
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[("last-event-id", &id)]).await;
        stream.next_frame(WAIT).await.unwrap();
        let frames = stream.events(1, WAIT).await;
        assert_eq!(frames[0].json()["user"]["username"], "between");
    };

    streams_apply_the_filter_and_the_scope => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut olga = server.sse("/api/v2/audit/stream?q=username:alice", &f.tokens.org1, &[]).await;
        olga.next_frame(WAIT).await.unwrap();
        let mut ws = server.ws("/api/v2/audit/watch", &f.tokens.org1).await;
        f.append(&[
            login("alice"),                                             // site-wide: out of scope
            workspace_event("alice", "write", Some("org-2"), "x"),      // org-2: out of scope
            workspace_event("bob", "write", Some("org-1"), "y"),        // not alice (SSE only)
            workspace_event("alice", "delete", Some("org-1"), "z"),     // in
        ]);
        let frames = olga.events(1, WAIT).await;
        assert_eq!(seqs(&frames), [10]);
        assert_eq!(frames[0].json()["resource_target"], "z");
        olga.assert_quiet(Duration::from_millis(300)).await;
        let mut got = Vec::new();
        for _ in 0..2 {
            match ws.next(WAIT).await {
                WsItem::Json(v) => got.push((v["seq"].as_u64().unwrap(), v["organization_id"].clone())),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, [(9, "org-1".into()), (10, "org-1".into())]);
        // Resuming from before the skipped events does not bring them back.
        let mut again = server.sse("/api/v2/audit/stream?q=username:alice&after=6", &f.tokens.org1, &[]).await;
        again.next_frame(WAIT).await.unwrap();
        assert_eq!(seqs(&again.events(1, WAIT).await), [10]);
    };

    a_resume_point_that_is_gone_is_reset_not_skipped => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        // A position the log never reached (a different or restored store).
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[("last-event-id", "99")]).await;
        let retry = stream.next_frame(WAIT).await.unwrap();
        assert_eq!(retry.id, None);
        let reset = stream.next_frame(WAIT).await.unwrap();
        assert_eq!(reset.event.as_deref(), Some("reset"));
        assert_eq!(reset.id, None, "control frames carry no id");
        let body = reset.json();
        assert_eq!((body["requested"].as_u64(), body["head"].as_u64()), (Some(99), Some(6)));
        assert!(body["message"].as_str().unwrap().contains("reload"));
        let resume = stream.next_frame(WAIT).await.unwrap();
        assert_eq!((resume.id.as_deref(), resume.data.as_deref(), resume.event.as_deref()), (Some("6"), None, None));
        f.append(&[login("after-reset")]);
        assert_eq!(seqs(&stream.events(1, WAIT).await), [7]);

        let mut ws = server.ws("/api/v2/audit/watch?after=99", &f.tokens.owner).await;
        match ws.next(WAIT).await {
            WsItem::Closed(Some((code, reason))) => {
                assert_eq!(code, audit_http::CLOSE_RESET);
                assert!(reason.contains("reload"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    };

    a_purged_resume_point_is_reset_and_the_stream_goes_on => |f: Fixture| async move {
        // Six old events (2020), then newer ones: a purge removes a prefix of the log.
        let old: Vec<_> = (0..6)
            .map(|i| {
                let mut e = login(&format!("old{i}"));
                e.time = "2020-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap()
                    + chrono::Duration::minutes(i);
                e
            })
            .collect();
        f.append(&old);
        f.append(&[login("new1"), login("new2")]);
        let purged = common::blocking(|| {
            f.store_writer(|s| {
                s.purge(
                    &audit_core::store::PurgeOptions::older_than("2021-01-01T00:00:00Z".parse().unwrap()),
                    None,
                    &mut |_| {},
                )
            })
        })
        .unwrap();
        assert_eq!((purged.events, purged.purged_through), (6, 6));
        let server = f.start().await;
        // Resuming after 3: positions 4 to 6 are gone.
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[("last-event-id", "3")]).await;
        stream.next_frame(WAIT).await.unwrap();
        let reset = stream.next_frame(WAIT).await.unwrap();
        assert_eq!((reset.event.as_deref(), reset.id.as_deref()), (Some("reset"), None));
        assert_eq!((reset.json()["first"].as_u64(), reset.json()["head"].as_u64()), (Some(7), Some(8)));
        assert_eq!(stream.next_frame(WAIT).await.unwrap().id.as_deref(), Some("8"));
        f.append(&[login("new3")]);
        assert_eq!(seqs(&stream.events(1, WAIT).await), [9]);
        // Resuming after 6 lost nothing: no reset, the retained events follow.
        let mut stream = server.sse("/api/v2/audit/stream?after=6", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        assert_eq!(seqs(&stream.events(3, WAIT).await), [7, 8, 9]);
    };

    an_organization_filter_narrows_a_scope_and_never_widens_it => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut narrowed = server.sse("/api/v2/audit/stream?q=organization_id:org-2", &f.tokens.org1, &[]).await;
        narrowed.next_frame(WAIT).await.unwrap();
        let mut owner = server.sse("/api/v2/audit/stream?q=organization_id:org-2", &f.tokens.owner, &[]).await;
        owner.next_frame(WAIT).await.unwrap();
        f.append(&[workspace_event("bob", "write", Some("org-2"), "p")]);
        assert_eq!(seqs(&owner.events(1, WAIT).await), [7]);
        narrowed.assert_quiet(Duration::from_millis(300)).await;
        let reply = server.get("/api/v2/audit?q=organization_id:org-2", Some(&f.tokens.org1)).await;
        assert_eq!(reply.json()["count"], 0);
        let reply = server.get("/api/v2/audit?q=organization_id:org-2", Some(&f.tokens.owner)).await;
        assert_eq!(reply.json()["count"], 2);
        let reply = server.get("/api/v2/audit/export?q=organization_id:org-2", Some(&f.tokens.org1)).await;
        assert_eq!(reply.body, "");
    };

    keep_alive_comments_flow_on_idle_streams => |f: Fixture| async move {
        let server = f.start_with(f.builder().keep_alive(Duration::from_millis(100)).build().unwrap()).await;
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        let frame = stream.next(WAIT).await.unwrap();
        assert_eq!(frame.comment.as_deref(), Some("keep-alive"));
        assert_eq!((frame.id, frame.data), (None, None));
    };

    events_from_another_process_reach_every_stream => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut sse = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        sse.next_frame(WAIT).await.unwrap();
        let mut ws = server.ws("/api/v2/audit/watch", &f.tokens.owner).await;
        let env: Vec<(&str, String)> = match (&f.sqlite_url, &f.postgres) {
            (Some(url), _) => vec![("AUDIT_HTTP_CHILD_SQLITE", url.clone())],
            (_, Some((url, schema))) => vec![("AUDIT_HTTP_CHILD_PG_URL", url.clone()), ("AUDIT_HTTP_CHILD_PG_SCHEMA", schema.clone())],
            _ => unreachable!(),
        };
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut child = common::run_child("second_process_writer", &env);
        let frames = sse.events(5, WAIT).await;
        assert_eq!(seqs(&frames), [7, 8, 9, 10, 11]);
        assert!(frames.iter().all(|f| f.json()["user"]["username"].as_str().unwrap().starts_with("child-")));
        for seq in 7..=11 {
            match ws.next(WAIT).await {
                WsItem::Json(v) => assert_eq!(v["seq"], seq),
                other => panic!("{other:?}"),
            }
        }
        assert!(common::blocking(|| child.wait()).unwrap().success());
    };

    a_slow_reader_gets_every_event_from_the_store => |f: Fixture| async move {
        let server = f.start().await;
        let mut stream = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        stream.next_frame(WAIT).await.unwrap();
        // Far more than one store read or one shared batch, appended while nobody reads.
        let events: Vec<_> = (0..1000).map(|i| login(&format!("u{i}"))).collect();
        for chunk in events.chunks(100) {
            f.append(chunk);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let frames = stream.events(1000, WAIT).await;
        assert_eq!(seqs(&frames), (1..=1000).collect::<Vec<_>>());
        stream.assert_quiet(Duration::from_millis(200)).await;
    };

    websocket_messages_are_audit_logs_and_resume_with_after => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut ws = server.ws("/api/v2/audit/watch?after=4", &f.tokens.auditor).await;
        for seq in [5, 6] {
            match ws.next(WAIT).await {
                WsItem::Json(v) => {
                    assert_eq!(v["seq"], seq);
                    assert!(v.get("description").is_some() && v.get("user").is_some());
                    assert!(!v.to_string().contains(SECRET));
                }
                other => panic!("{other:?}"),
            }
        }
        f.append(&[login("late")]);
        match ws.next(WAIT).await {
            WsItem::Json(v) => assert_eq!((v["seq"].as_u64(), v["user"]["username"].as_str()), (Some(7), Some("late"))),
            other => panic!("{other:?}"),
        }
        let reads = f.recorded_reads();
        assert!(reads.iter().any(|e| e.action == "read" && e.actor.username == "audra" && e.additional_fields["endpoint"] == "/api/v2/audit/watch"));
    };

    a_websocket_client_that_talks_too_much_is_cut_off_and_the_server_goes_on => |f: Fixture| async move {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        f.append(&dataset());
        let server = f.start().await;
        let mut ws = server.ws("/api/v2/audit/watch", &f.tokens.owner).await;
        ws.socket.send(Message::text("hello")).await.unwrap();
        ws.socket.send(Message::binary(vec![0u8; 64 * 1024])).await.unwrap();
        // The oversized message ends this socket (a close, or the connection dropped) ...
        let ended = tokio::time::timeout(WAIT, async {
            use futures_util::StreamExt;
            loop {
                match ws.socket.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the socket was not closed");
        // ... and nothing else.
        assert_eq!(server.get("/healthz", None).await.status, 200);
        let mut again = server.ws("/api/v2/audit/watch?after=5", &f.tokens.owner).await;
        match again.next(WAIT).await {
            WsItem::Json(v) => assert_eq!(v["seq"], 6),
            other => panic!("{other:?}"),
        }
    };

    shutdown_ends_every_stream_cleanly => |f: Fixture| async move {
        f.append(&dataset());
        let server = f.start().await;
        let mut sse = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        sse.next_frame(WAIT).await.unwrap();
        let mut ws = server.ws("/api/v2/audit/watch", &f.tokens.owner).await;
        let api = server.api.clone();
        server.shutdown().await.unwrap();
        assert!(api.is_closing());
        assert_eq!(sse.next_frame(WAIT).await, None, "the SSE body ended");
        match ws.next(WAIT).await {
            WsItem::Closed(Some((1001, _))) => {}
            other => panic!("{other:?}"),
        }
    };

    streams_are_bounded_in_number => |f: Fixture| async move {
        let server = f.start_with(f.builder().max_streams(1).build().unwrap()).await;
        let mut first = server.sse("/api/v2/audit/stream", &f.tokens.owner, &[]).await;
        first.next_frame(WAIT).await.unwrap();
        let reply = server.get("/api/v2/audit/stream", Some(&f.tokens.owner)).await;
        assert_eq!(reply.status, 503);
        assert!(reply.message().contains("Too many streams"));
        drop(first);
        // The slot comes back once the first stream is gone.
        let mut ok = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let reply = server.get("/api/v2/audit/watch", Some(&f.tokens.owner)).await;
            if reply.status != 503 {
                assert_eq!(reply.status, 426, "not a WebSocket request: {}", reply.body);
                ok = true;
                break;
            }
        }
        assert!(ok, "the stream slot was never released");
    };
}

/// With Postgres, `NOTIFY audit_events` wakes the streams: delivery does not wait for the
/// (here, very slow) safety-net poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notifications_wake_streams_without_waiting_for_a_poll() {
    let Some(f) = common::blocking(|| Fixture::postgres("notify_wakes")) else {
        return;
    };
    let api = f
        .builder()
        .poll_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let server = f.start_with(api).await;
    let mut stream = server
        .sse("/api/v2/audit/stream", &f.tokens.owner, &[])
        .await;
    stream.next_frame(WAIT).await.unwrap();
    // Give the LISTEN connection a moment to be set up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    f.append(&[login("notified")]);
    let frames = stream.events(1, Duration::from_secs(5)).await;
    assert_eq!(frames[0].json()["user"]["username"], "notified");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Not a test on its own: the second process of `events_from_another_process_reach_every_stream`,
/// appending five events to the store named in its environment (and doing nothing without it).
#[test]
fn second_process_writer() {
    let mut store = if let Ok(url) = std::env::var("AUDIT_HTTP_CHILD_SQLITE") {
        audit_core::store::open(&url).unwrap()
    } else if let (Ok(url), Ok(schema)) = (
        std::env::var("AUDIT_HTTP_CHILD_PG_URL"),
        std::env::var("AUDIT_HTTP_CHILD_PG_SCHEMA"),
    ) {
        common::postgres_opener(url, schema)().unwrap()
    } else {
        return;
    };
    for i in 0..5 {
        store.append(&[login(&format!("child-{i}"))]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}
