//! A secret field's value reaches no output: JSON lines, text lines, `tracing`, the memory
//! backend, nor `Debug` of events, guards or backends.

use audit_core::backends::{JsonLinesBackend, MemoryBackend, SharedBuffer, TextBackend};
use audit_core::{Actor, AuditEvent, Auditable, Auditor, RequestContext, action, format};

mod common;

const MARKER: &str = "SECRET-MARKER-123";

#[derive(Auditable, Clone, Debug)]
#[audit(resource = "api_key", actions(create, write, delete))]
struct ApiKey {
    #[audit(track, id)]
    id: u64,
    #[audit(track, target)]
    name: String,
    #[audit(secret, reason = "the key itself")]
    hashed_secret: String,
    #[audit(secret)]
    scopes: Vec<String>,
}

fn key(secret: &str) -> ApiKey {
    ApiKey {
        id: 1,
        name: "ci".into(),
        hashed_secret: format!("{MARKER}-{secret}"),
        scopes: vec![format!("{MARKER}-scope-{secret}")],
    }
}

#[test]
fn a_secret_value_reaches_no_output() {
    let json = SharedBuffer::new();
    let text = SharedBuffer::new();
    let memory = MemoryBackend::new();
    let builder = Auditor::builder()
        .backend(JsonLinesBackend::new(json.clone()))
        .backend(TextBackend::new(text.clone()))
        .backend(memory.clone());
    #[cfg(feature = "tracing")]
    let capture = common::TracingCapture::global();
    #[cfg(feature = "tracing")]
    let builder = builder.backend(audit_core::backends::TracingBackend::new());
    let auditor = builder.build().unwrap();

    let ctx = RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"));
    let mut debug = String::new();

    let mut create = auditor.request::<ApiKey>(&ctx, action::CREATE);
    create.set_new(key("a")).set_status(201);
    debug += &format!("{create:?}");
    drop(create);

    let mut write = auditor.request::<ApiKey>(&ctx, action::WRITE);
    write.set_old(key("a")).set_new(key("b")).set_status(200);
    debug += &format!("{write:?}");
    write.commit().unwrap();

    let mut delete = auditor.request::<ApiKey>(&ctx, action::DELETE);
    delete.set_old(key("b")).set_status(204);
    drop(delete);

    let mut failed = auditor.request::<ApiKey>(&ctx, action::WRITE);
    failed.set_old(key("b")).set_new(key("c")).set_status(403);
    drop(failed);

    auditor
        .background(
            action::VIEW,
            Actor::system("cli"),
            Some(&key("b")),
            Some(&key("d")),
            200,
            [("k", "v")],
        )
        .unwrap();
    auditor
        .record(
            AuditEvent::builder(action::WRITE)
                .resource(Some(&key("d")), Some(&key("e")))
                .build(),
        )
        .unwrap();
    auditor.flush();

    let events = memory.events();
    assert_eq!(events.len(), 6);
    // the secret changes are recorded, as changes
    assert!(
        events[1]
            .diff
            .get("hashed_secret")
            .is_some_and(|c| c.is_secret())
    );
    assert!(events[1].diff.get("scopes").is_some_and(|c| c.is_secret()));

    for e in &events {
        debug += &format!("{e:?} {e:#?} {}", e.description());
        debug += &format::json_line(e);
        debug += &format::text_line(e);
        debug += &serde_json::to_string_pretty(e).unwrap();
    }
    debug += &format!("{memory:?} {auditor:?} {:?}", auditor.stats());

    let outputs = [
        ("json lines", json.contents()),
        ("text lines", text.contents()),
        ("debug and renderings", debug),
        #[cfg(feature = "tracing")]
        ("tracing", capture.lines().join("\n")),
    ];
    for (name, output) in &outputs {
        assert!(output.len() > 100, "{name} output is empty");
        assert!(
            !output.contains(MARKER),
            "the secret leaked into {name}: {output}"
        );
        assert!(!output.contains("MARKER"), "{name}");
    }
    assert_eq!(outputs[0].1.lines().count(), 6);
    assert_eq!(outputs[1].1.lines().count(), 6);
    #[cfg(feature = "tracing")]
    assert_eq!(
        outputs[3]
            .1
            .lines()
            .filter(|l| l.contains(" audit "))
            .count(),
        6
    );
}
