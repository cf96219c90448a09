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

/// With fingerprints on and a chained store: the value is in no output still (the store's
/// file, its exports, a checkpoint, a verification report, the fingerprints themselves, error
/// messages), while the fingerprints answer "was it set to X?".
#[cfg(all(feature = "fingerprint", feature = "sqlite"))]
#[test]
fn with_fingerprints_and_a_chained_store_a_secret_value_reaches_no_output() {
    use audit_core::backends::StoreBackend;
    use audit_core::chain::SigningKey;
    use audit_core::fingerprint::{FingerprintKey, Keyring};
    use audit_core::query::Filter;
    use audit_core::store::Store;
    use audit_core::store::export::{Format, export};
    use audit_core::store::sqlite::SqliteStore;
    use audit_core::store::verify::{VerifyOptions, take_checkpoint, verify};
    use audit_core::{Change, Diff};

    let dir = std::env::temp_dir().join(format!("audit-secrets-chain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.db");
    let json = SharedBuffer::new();
    let key_bytes = [0x5a; 32];
    let auditor = Auditor::builder()
        .backend(StoreBackend::new(SqliteStore::open(&path).unwrap()))
        .backend(JsonLinesBackend::new(json.clone()))
        .fingerprint_key("k1", &key_bytes)
        .build()
        .unwrap();
    let ctx = RequestContext::new(Actor::new("u-1", "alice", "alice@example.com"));
    let mut write = auditor.request::<ApiKey>(&ctx, action::WRITE);
    write.set_old(key("a")).set_new(key("b")).set_status(200);
    write.commit().unwrap();
    let mut create = auditor.request::<ApiKey>(&ctx, action::CREATE);
    create.set_new(key("c")).set_status(201);
    create.commit().unwrap();
    auditor.shutdown();

    let mut store = SqliteStore::open(&path).unwrap();
    let events = store.newer(&Filter::default(), Some(0), 10).unwrap();
    assert_eq!(events.len(), 2);
    // The fingerprints are those of the values, under the key, domain-separated by field.
    let keyring = Keyring::new(FingerprintKey::new("k1", &key_bytes).unwrap());
    let Some(Change::FingerprintedSecret { old, new }) = events[0].diff.get("hashed_secret") else {
        panic!("no fingerprints: {:?}", events[0].diff)
    };
    let (old, new) = (old.clone().unwrap(), new.clone().unwrap());
    for (fingerprint, value) in [(&old, format!("{MARKER}-a")), (&new, format!("{MARKER}-b"))] {
        let fingerprint = fingerprint.parse().unwrap();
        assert!(
            keyring
                .matches(&fingerprint, "api_key", "hashed_secret", &value)
                .unwrap()
        );
        assert!(
            !keyring
                .matches(&fingerprint, "api_key", "scopes", &value)
                .unwrap()
        );
    }
    assert!(matches!(
        events[1].diff.get("scopes"),
        Some(Change::FingerprintedSecret {
            old: None,
            new: Some(_)
        })
    ));

    let signing = SigningKey::generate("secrets.example/audit").unwrap();
    let (_, checkpoint) = take_checkpoint(&mut store, &signing, chrono::Utc::now()).unwrap();
    let report = verify(&mut store, &VerifyOptions::default()).unwrap();
    assert!(report.is_intact(), "{report}");
    let mut exported = Vec::new();
    for format in [Format::JsonLines, Format::Csv] {
        export(
            &mut store,
            &Filter::default(),
            format,
            &mut exported,
            &mut |_| {},
        )
        .unwrap();
    }
    drop(store);

    // A value that fails to serialize, with the value in its error message, is recorded
    // without fingerprints and without the message.
    struct Leaky;
    impl PartialEq for Leaky {
        fn eq(&self, _: &Self) -> bool {
            false
        }
    }
    impl serde::Serialize for Leaky {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(format!(
                "cannot serialize {MARKER}"
            )))
        }
    }
    #[derive(Auditable)]
    #[audit(resource = "leaky")]
    struct Holder {
        #[audit(secret)]
        value: Leaky,
    }
    let diff: Diff = audit_core::diff_fingerprinted(
        Some(&Holder { value: Leaky }),
        Some(&Holder { value: Leaky }),
        &FingerprintKey::new("k1", &key_bytes).unwrap(),
    );
    assert_eq!(diff.get("value"), Some(&Change::Secret));
    let error = FingerprintKey::new("k1", &key_bytes)
        .unwrap()
        .fingerprint("leaky", "value", &Leaky)
        .unwrap_err()
        .to_string();

    let outputs = [
        (
            "the store's file",
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
        ),
        ("json lines", json.contents()),
        ("exports", String::from_utf8(exported).unwrap()),
        ("checkpoint", checkpoint),
        (
            "report",
            format!("{report} {}", serde_json::to_string(&report).unwrap()),
        ),
        ("diff", serde_json::to_string(&diff).unwrap()),
        ("fingerprint error", error),
        ("fingerprints", format!("{old} {new}")),
        ("debug", format!("{auditor:?} {keyring:?} {signing:?}")),
    ];
    for (name, output) in &outputs {
        assert!(!output.is_empty(), "{name} is empty");
        assert!(
            !output.contains(MARKER),
            "the secret leaked into {name}: {output}"
        );
    }
    assert!(outputs[1].1.contains("hmac-sha256:k1:"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A fingerprint key the builder cannot use fails `build` with a message that says why, and
/// the key's own error as its cause; the key bytes appear in neither.
#[cfg(feature = "fingerprint")]
#[test]
fn an_unusable_fingerprint_key_fails_the_build_with_its_cause() {
    use audit_core::fingerprint::FingerprintError;

    let err = Auditor::builder()
        .backend(MemoryBackend::new())
        .fingerprint_key("k1", b"short")
        .build()
        .expect_err("a 5-byte key is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let cause = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<FingerprintError>())
        .expect("the cause is the fingerprint key's error");
    assert!(
        matches!(cause, FingerprintError::KeyTooShort(5)),
        "{cause:?}"
    );
    assert!(err.to_string().contains('5'), "{err}");
    assert!(!format!("{err:?}").contains("short"), "{err:?}");

    let err = Auditor::builder()
        .fingerprint_key("bad id with spaces", &[7; 32])
        .build()
        .expect_err("a key id with spaces is refused");
    assert!(
        err.get_ref()
            .is_some_and(|inner| inner.is::<FingerprintError>())
    );
}
