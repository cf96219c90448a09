//! `audit token` and `audit serve` end to end: the binary, a token file, a server on
//! 127.0.0.1 at an ephemeral port, a signal to stop it.
#![cfg(feature = "serve")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use audit_core::query::Filter;
use common::{Fixture, text};

fn create_token(f: &Fixture, user: &str, role: &str, orgs: &[&str]) -> String {
    let tokens = f.path("tokens.json");
    let mut args = vec![
        "token",
        "create",
        "--tokens",
        tokens.to_str().unwrap(),
        "--user",
        user,
        "--role",
        role,
    ];
    for org in orgs {
        args.extend(["--org", org]);
    }
    let out = f.run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
    stdout.trim().to_owned()
}

/// A running `audit serve` and the address it printed.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(f: &Fixture) -> Served {
        Self::start_with(f, &[])
    }

    /// `audit serve` with more arguments.
    fn start_with(f: &Fixture, more: &[&std::ffi::OsStr]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_audit"))
            .args(["--store", &f.url, "serve", "--tokens"])
            .arg(f.path("tokens.json"))
            .args(["--listen", "127.0.0.1:0"])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no URL printed: {line:?}"))
            .to_owned();
        Served { child, addr }
    }

    /// A raw HTTP/1.1 GET; the whole response.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        (status, response)
    }

    /// Opens an SSE stream and reads its response head.
    fn open_stream(&self, token: &str) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /api/v2/audit/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut first = [0u8; 256];
        let n = stream.read(&mut first).unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).contains("text/event-stream"));
        stream
    }

    /// Sends `signal` with `stream` open: the server exits successfully, says it stopped, and
    /// the stream ends with the chunked body's terminator (an open stream does not hold the
    /// shutdown up).
    fn stop_cleanly(self, signal: &str, mut stream: TcpStream) {
        let (ok, stderr) = self.signal(signal);
        assert!(ok, "exit status: {stderr}");
        assert!(stderr.contains("stopped"), "{stderr}");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(
            String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
            "the stream ended cleanly"
        );
    }

    /// Sends `signal` (`-TERM`, `-INT`) and waits for the exit; returns (success, stderr).
    fn signal(mut self, signal: &str) -> (bool, String) {
        let killed = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.success(), stderr)
    }
}

#[test]
fn tokens_are_created_listed_and_revoked_and_the_file_keeps_only_hashes() {
    let f = Fixture::new("serve-tokens", 1);
    let token = create_token(&f, "alice", "auditor", &["org-1", "org-2"]);
    assert!(token.starts_with("audit_"), "{token}");
    let file = std::fs::read_to_string(f.path("tokens.json")).unwrap();
    let secret = token.rsplit('_').next().unwrap();
    assert!(!file.contains(secret));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.path("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let tokens = f.path("tokens.json");
    let tokens = tokens.to_str().unwrap();
    let list = f.run(&["token", "list", "--tokens", tokens]);
    let listed = text(&list.stdout);
    assert!(
        listed.contains("alice") && listed.contains("auditor") && listed.contains("org-1,org-2"),
        "{listed}"
    );
    assert!(!listed.contains(secret));
    let id = listed.split_whitespace().next().unwrap().to_owned();
    let json = f.run(&["token", "list", "--tokens", tokens, "--json"]);
    let entry: serde_json::Value = serde_json::from_str(text(&json.stdout).trim()).unwrap();
    assert_eq!(entry["id"], id.as_str());

    let unknown = f.run(&["token", "revoke", "--tokens", tokens, "0000000000000000"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("audit token list"));
    let revoked = f.run(&["token", "revoke", "--tokens", tokens, &id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(text(&f.run(&["token", "list", "--tokens", tokens]).stdout).is_empty());

    let bad_role = f.run(&[
        "token", "create", "--tokens", tokens, "--user", "x", "--role", "admin",
    ]);
    assert_eq!(bad_role.status.code(), Some(2));
    // The store itself is no token file, and is never overwritten as one.
    let store_path = f.url.strip_prefix("sqlite://").unwrap().to_owned();
    let before = std::fs::read(&store_path).unwrap();
    let into_store = f.run(&[
        "token",
        "create",
        "--tokens",
        &store_path,
        "--user",
        "x",
        "--role",
        "owner",
    ]);
    assert_eq!(into_store.status.code(), Some(2));
    assert!(text(&into_store.stderr).contains("not a token file"));
    assert_eq!(std::fs::read(&store_path).unwrap(), before);
}

#[test]
fn serve_refuses_to_start_without_tokens_or_a_store() {
    let f = Fixture::new("serve-refuses", 1);
    let out = f.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--tokens") && err.contains("audit token create"),
        "{err}"
    );

    let out = f.run(&[
        "serve",
        "--tokens",
        f.path("missing.json").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("audit token create"));

    create_token(&f, "root", "owner", &[]);
    let missing_store = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args([
            "--store",
            "sqlite:///nonexistent/dir/audit.db",
            "serve",
            "--tokens",
        ])
        .arg(f.path("tokens.json"))
        .output()
        .unwrap();
    assert_eq!(missing_store.status.code(), Some(2));
    assert!(text(&missing_store.stderr).contains("no SQLite audit store"));
}

#[test]
fn serve_answers_with_tokens_and_stops_cleanly_on_sigterm() {
    let f = Fixture::new("serve-run", 12);
    let owner = create_token(&f, "root", "owner", &[]);
    let member = create_token(&f, "mel", "member", &[]);
    let served = Served::start(&f);

    let (status, body) = served.get("/healthz", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = served.get(
        "/api/v2/audit?limit=5&q=resource_type:workspace",
        Some(&owner),
    );
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["audit_logs"].as_array().unwrap().len(), 5);
    assert_eq!(json["count"], 6);
    assert_eq!(served.get("/api/v2/audit", None).0, 401);
    assert_eq!(served.get("/api/v2/audit", Some(&member)).0, 403);

    // An open stream does not hold the shutdown up.
    let stream = served.open_stream(&owner);
    served.stop_cleanly("-TERM", stream);

    // The reads were recorded in the store, by their readers.
    let mut store = audit_core::store::open(&f.url).unwrap();
    let reads = store
        .page(
            &Filter::default().with_resource_type("audit_log"),
            &audit_core::store::PageRequest::first(100),
        )
        .unwrap();
    let who: Vec<(String, u16)> = reads
        .events
        .iter()
        .map(|e| (e.actor.username.clone(), e.status_code))
        .collect();
    assert!(who.contains(&("root".into(), 200)), "{who:?}");
    assert!(who.contains(&("mel".into(), 403)), "{who:?}");
}

#[test]
fn serve_takes_periodic_checkpoints_even_of_a_quiet_log() {
    let f = Fixture::new("serve-checkpoints", 3);
    create_token(&f, "root", "owner", &[]);
    let prefix = f.path("key");
    let out = Command::new(env!("CARGO_BIN_EXE_audit"))
        .args(["keygen", "--name", "serve.example/audit", "--out"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = f.path("checkpoints");
    std::fs::create_dir(&dir).unwrap();
    let key = f.path("key.key");
    let served = Served::start_with(
        &f,
        &[
            "--checkpoint-every".as_ref(),
            "100ms".as_ref(),
            "--signing-key".as_ref(),
            key.as_os_str(),
            "--checkpoint-dir".as_ref(),
            dir.as_os_str(),
        ],
    );
    // Several periods pass with nothing appended.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&dir).unwrap().count() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic checkpoints"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, stderr) = served.signal("-TERM");
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("failed"), "{stderr}");
    let public = f.path("key.pub");
    let out = f.run(&["verify", "--public-key", public.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("0 failed, 0 not checkable"), "{stdout}");
    assert!(!stdout.contains("not checked"), "{stdout}");
}

#[test]
fn serve_verifies_the_log_periodically_for_the_viewers_integrity_line() {
    let f = Fixture::new("serve-verify", 3);
    let owner = create_token(&f, "root", "owner", &[]);
    let served = Served::start_with(&f, &["--verify-every".as_ref(), "100ms".as_ref()]);
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, page) = served.get("/audit", Some(&owner));
            assert_eq!(status, 200, "{page}");
            if page.contains(needle) {
                return page;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in {page}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("Integrity: verified up to #");
    // An edit made directly in the database is found by the next verification.
    let db = rusqlite::Connection::open(f.path("audit.db")).unwrap();
    let id: Vec<u8> = db
        .query_row("SELECT id FROM audit_logs WHERE seq = 2", [], |row| {
            row.get(0)
        })
        .unwrap();
    let id = uuid::Uuid::from_slice(&id).unwrap();
    db.execute_batch("UPDATE audit_logs SET resource_target = 'tampered' WHERE seq = 2")
        .unwrap();
    let page = wait_for("Integrity: NOT intact");
    assert!(page.contains(&format!("event {id} (#2)")), "{page}");
    let (ok, stderr) = served.signal("-TERM");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("audit serve: the log is NOT intact (verified up to #"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("event {id} (#2)")), "{stderr}");
}

#[test]
fn serve_shows_the_viewer_with_its_token_form() {
    let f = Fixture::new("serve-viewer", 3);
    let owner = create_token(&f, "root", "owner", &[]);
    let served = Served::start(&f);
    let (status, page) = served.get("/audit", None);
    assert_eq!(status, 401, "{page}");
    assert!(
        page.contains(r#"name="token" type="password""#)
            && page.contains(r#"action="/audit/sign-in""#),
        "{page}"
    );
    assert!(page.contains("content-security-policy: default-src 'self'; script-src 'self'"));
    let (status, page) = served.get("/audit?q=resource_type:workspace", Some(&owner));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Showing all 2 events"), "{page}");
    let (ok, stderr) = served.signal("-TERM");
    assert!(ok, "exit status: {stderr}");
}

/// Ctrl-C (SIGINT) stops the server as cleanly as SIGTERM: an open stream ends with the
/// chunked body's terminator, and the server says it stopped.
#[test]
fn serve_stops_cleanly_on_sigint_too() {
    let f = Fixture::new("serve-sigint", 3);
    let owner = create_token(&f, "root", "owner", &[]);
    let served = Served::start(&f);
    let stream = served.open_stream(&owner);
    served.stop_cleanly("-INT", stream);
}
