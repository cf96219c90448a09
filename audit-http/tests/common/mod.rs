//! The integration tests' fixture: a store (SQLite, or Postgres when
//! `AUDIT_TEST_POSTGRES_URL` is set), a token file, an auditor that keeps the reads it
//! records, the server on 127.0.0.1:0, and small HTTP, SSE and WebSocket clients; a real
//! browser for the viewer ([`browser`]).
#![allow(dead_code)]

pub(crate) mod browser;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit_core::backends::MemoryBackend;
use audit_core::store::{Store, StoreError};
use audit_core::{Actor, AuditEvent, Auditable, Auditor};
use audit_http::tokens::TokenFile;
use audit_http::{AuditApi, AuditApiBuilder, Readers};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpStream;

/// Every event of the dataset carries this secret; no output may contain it.
pub(crate) const SECRET: &str = "SECRET-MARKER-9f2c";

#[derive(Auditable, Clone, Debug, PartialEq)]
#[audit(resource = "workspace", actions(create, write, delete))]
pub(crate) struct Workspace {
    #[audit(track, id)]
    pub id: u64,
    #[audit(track, target)]
    pub name: String,
    #[audit(secret)]
    pub agent_token: String,
}

#[derive(Auditable, Clone, Debug, PartialEq)]
#[audit(resource = "template", actions(create, write, delete))]
pub(crate) struct Template {
    #[audit(track, id)]
    pub id: u64,
    #[audit(track, target)]
    pub name: String,
}

/// A workspace event in `org` (none: site-wide) by `user`.
pub(crate) fn workspace_event(
    user: &str,
    action: &str,
    org: Option<&str>,
    name: &str,
) -> AuditEvent {
    let ws = Workspace {
        id: 7,
        name: name.into(),
        agent_token: SECRET.into(),
    };
    let (old, new) = match action {
        "create" => (None, Some(&ws)),
        "delete" => (Some(&ws), None),
        _ => (Some(&ws), Some(&ws)),
    };
    let mut changed = ws.clone();
    changed.agent_token = format!("{SECRET}-2");
    changed.name = format!("{name}-2");
    let new = if action == "write" {
        Some(&changed)
    } else {
        new
    };
    let mut b = AuditEvent::builder(action)
        .actor(Actor::new(
            format!("id-{user}"),
            user,
            format!("{user}@example.com"),
        ))
        .resource(old, new)
        .user_agent("=cmd|' /C calc'!A0 Mozilla/5.0");
    if let Some(org) = org {
        b = b.organization_id(org);
    }
    b.build()
}

/// A site-wide login.
pub(crate) fn login(user: &str) -> AuditEvent {
    AuditEvent::builder("login")
        .actor(Actor::new(
            format!("id-{user}"),
            user,
            format!("{user}@example.com"),
        ))
        .resource_type("api_key")
        .build()
}

/// Six events: three in org-1, one in org-2, two site-wide; oldest first.
pub(crate) fn dataset() -> Vec<AuditEvent> {
    vec![
        workspace_event("alice", "create", Some("org-1"), "dev"),
        login("alice"),
        workspace_event("bob", "write", Some("org-2"), "prod"),
        workspace_event("alice", "write", Some("org-1"), "dev"),
        login("root"),
        workspace_event("carol", "delete", Some("org-1"), "old"),
    ]
}

/// Markup in every field of an event.
pub(crate) const MARKUP: [&str; 3] = [
    "<script>window.__pwned=1</script>",
    "\"><svg onload=window.__pwned=2>",
    "<img src=x onerror=window.__pwned=3>",
];

/// Events whose every string holds one of [`MARKUP`], with diffs whose values do too.
pub(crate) fn hostile() -> Vec<AuditEvent> {
    MARKUP
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let diff: audit_core::Diff = serde_json::from_value(serde_json::json!({
                format!("name{m}"): {"old": m, "new": format!("{m}-new"), "secret": false},
                "agent_token": {"secret": true},
            }))
            .unwrap();
            AuditEvent::builder("write")
                .actor(Actor::new(format!("id{m}"), *m, format!("{m}@example.com")))
                .resource_type("workspace")
                .resource_id(format!("{i}{m}"))
                .resource_target(*m)
                .organization_id(format!("org{m}"))
                .user_agent(*m)
                .diff(diff)
                .field(format!("note{m}"), *m)
                .build()
        })
        .collect()
}

type Opener = Arc<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// A store with a token file and a record of reads.
pub(crate) struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub open: Opener,
    /// Set for Postgres: the URL and schema.
    pub postgres: Option<(String, String)>,
    /// Set for SQLite: the store URL.
    pub sqlite_url: Option<String>,
    writer: Mutex<Option<Box<dyn Store>>>,
    pub tokens: Tokens,
    /// What the server recorded about reads of the log.
    pub reads: MemoryBackend,
    auditor: Auditor,
}

/// Opens the Postgres store in `schema`.
pub(crate) fn postgres_opener(url: String, schema: String) -> Opener {
    Arc::new(move || {
        use audit_core::store::postgres::{Options, PostgresStore};
        let options = Options {
            schema: schema.clone(),
            ..Options::default()
        };
        Ok(Box::new(PostgresStore::connect(&url, options)?) as Box<dyn Store>)
    })
}

/// Runs `test` of this test binary in a child process, with `env`: a second process
/// writing the same store.
pub(crate) fn run_child(test: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([test, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start the second process")
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap().take();
        blocking(move || drop(writer));
    }
}

/// One token per kind of caller.
pub(crate) struct Tokens {
    pub file: TokenFile,
    pub owner: String,
    pub auditor: String,
    pub org1: String,
    pub member: String,
}

/// Runs blocking store work from inside an async test.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("audit-http-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tokens(dir: &std::path::Path) -> Tokens {
    let file = TokenFile::new(dir.join("tokens.json"));
    let mk = |user: &str, role: &str, orgs: &[&str]| {
        let orgs: Vec<String> = orgs.iter().map(|o| (*o).to_owned()).collect();
        file.create(user, role, &orgs).unwrap().token().to_owned()
    };
    Tokens {
        owner: mk("root", "owner", &[]),
        auditor: mk("audra", "auditor", &[]),
        org1: mk("olga", "auditor", &["org-1"]),
        member: mk("mel", "member", &[]),
        file,
    }
}

impl Fixture {
    fn new(name: String, open: Opener, postgres: Option<(String, String)>) -> Fixture {
        let dir = temp_dir(&name);
        let writer = Mutex::new(Some(open().expect("open the store")));
        let reads = MemoryBackend::new();
        let auditor = Auditor::builder().backend(reads.clone()).build().unwrap();
        Fixture {
            tokens: tokens(&dir),
            name,
            dir,
            open,
            sqlite_url: None,
            postgres,
            writer,
            reads,
            auditor,
        }
    }

    /// A fresh SQLite store.
    pub(crate) fn sqlite(case: &str) -> Fixture {
        let name = format!("sqlite-{case}");
        let path = temp_dir(&format!("{name}-db")).join("audit.db");
        let url = format!("sqlite://{}", path.display());
        let u = url.clone();
        let open: Opener = Arc::new(move || audit_core::store::open(&u));
        let mut f = Fixture::new(name, open, None);
        f.sqlite_url = Some(url);
        f
    }

    /// A fresh schema on the Postgres of `AUDIT_TEST_POSTGRES_URL`, or `None` (with the
    /// reason printed) when it is unset outside CI.
    pub(crate) fn postgres(case: &str) -> Option<Fixture> {
        let Ok(url) = std::env::var("AUDIT_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set AUDIT_TEST_POSTGRES_URL: the Postgres cases cannot be skipped in CI"
            );
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: skipping the Postgres HTTP cases: AUDIT_TEST_POSTGRES_URL is not set \
                     (e.g. AUDIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1/test)"
                );
            });
            return None;
        };
        // Postgres names are at most 63 bytes: a prefix of the case and a hash of all of it.
        let hash = case.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x1_0000_0000_01b3)
        });
        let schema = format!("http_{}_{:08x}", &case[..case.len().min(40)], hash as u32);
        let mut admin = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("Postgres at AUDIT_TEST_POSTGRES_URL is unreachable: {e}"));
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .unwrap();
        let (u, s) = (url.clone(), schema.clone());
        let open: Opener = Arc::new(move || {
            use audit_core::store::postgres::{Options, PostgresStore};
            let options = Options {
                schema: s.clone(),
                ..Options::default()
            };
            Ok(Box::new(PostgresStore::connect(&u, options)?) as Box<dyn Store>)
        });
        Some(Fixture::new(
            format!("postgres-{case}"),
            open,
            Some((url, schema)),
        ))
    }

    /// Appends through the fixture's own writer connection. Stores are synchronous (the
    /// Postgres client runs its own runtime), so this steps out of the async runtime.
    pub(crate) fn append(&self, events: &[AuditEvent]) {
        blocking(|| {
            self.writer
                .lock()
                .unwrap()
                .as_mut()
                .unwrap()
                .append(events)
                .unwrap()
        });
    }

    /// Runs `f` with the fixture's writer connection.
    pub(crate) fn store_writer<T>(&self, f: impl FnOnce(&mut dyn Store) -> T) -> T {
        f(&mut **self.writer.lock().unwrap().as_mut().unwrap())
    }

    /// A reader connection of the test's own, outside the server.
    pub(crate) fn store(&self) -> Box<dyn Store> {
        blocking(|| (self.open)().unwrap())
    }

    /// The builder every test starts from: this store, its tokens, its auditor, fast polls.
    pub(crate) fn builder(&self) -> AuditApiBuilder {
        let open = Arc::clone(&self.open);
        let mut readers = Readers::open_with(move || open());
        if let Some((url, _)) = &self.postgres {
            readers = readers.listen_postgres(url.clone());
        }
        AuditApi::builder(readers)
            .authorizer(self.tokens.file.authorizer().unwrap())
            .auditor(self.auditor.clone())
            .poll_interval(Duration::from_millis(50))
    }

    pub(crate) async fn start(&self) -> Server {
        self.start_with(self.builder().build().unwrap()).await
    }

    pub(crate) async fn start_with(&self, api: AuditApi) -> Server {
        Server::start(api).await
    }

    /// Waits until the auditor has written what it was given, then returns the reads.
    pub(crate) fn recorded_reads(&self) -> Vec<AuditEvent> {
        self.auditor.flush();
        self.reads.events()
    }
}

/// Runs a test body against SQLite and, when configured, Postgres.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident => $body:expr;)+) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $crate::common::blocking(|| $crate::common::Fixture::sqlite(stringify!($name)));
                    ($body)(fixture).await;
                }
            )+
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fixture) = $crate::common::blocking(|| $crate::common::Fixture::postgres(stringify!($name))) else {
                        return;
                    };
                    ($body)(fixture).await;
                }
            )+
        }
    };
}

/// The server, on 127.0.0.1 at an ephemeral port.
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub api: AuditApi,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `message` of a JSON error body.
    pub(crate) fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

impl Server {
    pub(crate) async fn start(api: AuditApi) -> Server {
        Server::start_on(api, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Serves `api` on `addr` (a server that was stopped can come back on its address).
    pub(crate) async fn start_on(api: AuditApi, addr: SocketAddr) -> Server {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(audit_http::serve(listener, api.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            api,
            stop: Some(stop),
            task,
        }
    }

    /// Starts a graceful shutdown and waits (at most 10 s) for the server to finish.
    pub(crate) async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server did not shut down within 10 s")
            .unwrap()
    }

    async fn send(&self, path: &str, headers: &[(&str, &str)]) -> hyper::Response<Incoming> {
        send_to(self.addr, path, headers).await
    }

    /// GET `path` with `token` as a Bearer token.
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        get(self.addr, path, token).await
    }

    /// GET `path` with these headers.
    pub(crate) async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        read_reply(self.send(path, headers).await).await
    }

    /// Opens an SSE stream; panics unless it is a 200 `text/event-stream`.
    pub(crate) async fn sse(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> SseClient {
        let auth = format!("Bearer {token}");
        let mut all = vec![
            ("authorization", auth.as_str()),
            ("accept", "text/event-stream"),
        ];
        all.extend_from_slice(headers);
        let response = self.send(path, &all).await;
        assert_eq!(response.status(), 200, "SSE status");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/event-stream");
        SseClient {
            headers,
            body: response.into_body(),
            buffer: String::new(),
            ended: false,
        }
    }

    /// Opens a WebSocket.
    pub(crate) async fn ws(&self, path: &str, token: &str) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        WsClient { socket }
    }
}

/// Sends a GET on a fresh connection.
async fn send_to(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> hyper::Response<Incoming> {
    send_method(addr, "GET", path, headers, String::new()).await
}

/// POSTs `body` (a form) to `path` on a fresh connection; the whole response.
pub(crate) async fn post_form(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    read_reply(send_method(addr, "POST", path, &all, body.to_owned()).await).await
}

async fn send_method(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .unwrap();
    sender.send_request(request).await.unwrap()
}

/// Reads a whole response (within 20 s).
async fn read_reply(response: hyper::Response<Incoming>) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the body did not end within 20 s")
        .expect("the body failed")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    }
}

/// GET `path` from the server at `addr`, with `token` as a Bearer token.
pub(crate) async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    read_reply(send_to(addr, path, &headers).await).await
}

/// One SSE frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<String>,
    pub comment: Option<String>,
}

impl Frame {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().expect("a data frame")).unwrap()
    }
}

pub(crate) struct SseClient {
    pub headers: hyper::HeaderMap,
    body: Incoming,
    buffer: String,
    pub ended: bool,
}

impl SseClient {
    /// The next frame, or `None` when the stream ended; panics after `wait`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse_frame(&raw));
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => panic!("no SSE frame within {wait:?}; buffered: {:?}", self.buffer),
                Ok(None) => self.ended = true,
                Ok(Some(Err(e))) => panic!("SSE body failed: {e}"),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// The next frame that is not a keep-alive comment.
    pub(crate) async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        loop {
            let frame = self.next(wait).await?;
            if frame.comment.is_none() || frame.data.is_some() || frame.id.is_some() {
                return Some(frame);
            }
        }
    }

    /// The next `n` event frames (with data), skipping keep-alives.
    pub(crate) async fn events(&mut self, n: usize, wait: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = self
                .next_frame(wait)
                .await
                .unwrap_or_else(|| panic!("the stream ended after {} events", out.len()));
            if frame.data.is_some() {
                out.push(frame);
            }
        }
        out
    }

    /// Asserts that nothing but keep-alives arrives within `wait`.
    pub(crate) async fn assert_quiet(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let frame = parse_frame(&raw);
                assert!(
                    frame.comment.is_some() && frame.data.is_none() && frame.id.is_none(),
                    "unexpected frame: {frame:?}"
                );
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return,
                Ok(None) => panic!("the stream ended"),
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }
}

fn parse_frame(raw: &str) -> Frame {
    let mut frame = Frame::default();
    for line in raw.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comment = Some(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "id" => frame.id = Some(value),
            "event" => frame.event = Some(value),
            "retry" => frame.retry = Some(value),
            "data" => {
                assert!(frame.data.is_none(), "a multi-line data field: {raw:?}");
                frame.data = Some(value);
            }
            other => panic!("unknown SSE field {other:?} in {raw:?}"),
        }
    }
    frame
}

pub(crate) struct WsClient {
    pub socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

/// What a WebSocket delivered.
#[derive(Debug)]
pub(crate) enum WsItem {
    Json(serde_json::Value),
    Closed(Option<(u16, String)>),
}

impl WsClient {
    /// The next text message or the close, skipping pings.
    pub(crate) async fn next(&mut self, wait: Duration) -> WsItem {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(wait, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no WebSocket message within {wait:?}"));
            match message {
                None => return WsItem::Closed(None),
                Some(Err(e)) => panic!("WebSocket failed: {e}"),
                Some(Ok(Message::Text(text))) => {
                    return WsItem::Json(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return WsItem::Closed(
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())),
                    );
                }
                Some(Ok(_)) => {}
            }
        }
    }
}
