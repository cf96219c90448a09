//! What the load examples share: seeding a store, the server as a child process (as
//! `audit serve` runs it), and a small HTTP client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audit_core::store::Store;
use audit_core::{Actor, AuditEvent, Auditor};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use tokio::net::TcpStream;

/// The program's `--flag value` pairs, or `None` when this process is the server child
/// (started with `serve STORE TOKENS`; it has served and exited by then). A flag that is not
/// in `known` stops the program.
pub(crate) fn flags_or_serve(known: &[&str]) -> Option<HashMap<String, String>> {
    let mut args = std::env::args().skip(1);
    if std::env::args().nth(1).as_deref() == Some("serve") {
        args.next();
        let store = args.next().expect("serve STORE TOKENS");
        let tokens = args.next().expect("serve STORE TOKENS");
        serve(&store, &tokens);
        return None;
    }
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        assert!(
            known.contains(&flag.as_str()),
            "unknown flag {flag}; known: {known:?}"
        );
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        flags.insert(flag, value);
    }
    Some(flags)
}

/// The value of `flag`, parsed, or `default`.
pub(crate) fn flag<T: std::str::FromStr>(
    flags: &HashMap<String, String>,
    flag: &str,
    default: T,
) -> T {
    flags.get(flag).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{flag} {v:?} is not a valid value"))
    })
}

/// The child process: serve `store` to the holders of `tokens` until stdin closes.
pub(crate) fn serve(store: &str, tokens: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let writer = audit_core::store::open(store).unwrap();
    let auditor = Auditor::builder()
        .backend(audit_core::backends::StoreBackend::from_box(writer))
        .build()
        .unwrap();
    let api = audit_http::AuditApi::builder(audit_http::Readers::url(store.parse().unwrap()))
        .authorizer(
            audit_http::tokens::TokenFile::new(tokens)
                .authorizer()
                .unwrap(),
        )
        .auditor(auditor.clone())
        .vocabulary_from_store(vec![])
        .viewer(audit_http::Viewer::token_sign_in())
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
        };
        audit_http::serve(listener, api, stdin_closed)
            .await
            .unwrap();
    });
    auditor.shutdown();
}

/// Where the examples keep their token file (and, by default, their SQLite store).
pub(crate) const DIR: &str = "target/load";

/// The store at `url`, seeded to `events` events.
pub(crate) fn seeded(url: &str, events: u64) -> Box<dyn Store> {
    std::fs::create_dir_all(DIR).unwrap();
    let mut store = audit_core::store::open(url).unwrap();
    seed(&mut *store, events);
    store
}

/// A new owner token named `user`, in the examples' token file: (the file, the token).
pub(crate) fn owner_token(user: &str) -> (audit_http::tokens::TokenFile, String) {
    let tokens = audit_http::tokens::TokenFile::new(std::path::Path::new(DIR).join("tokens.json"));
    let token = tokens
        .create(user, "owner", &[])
        .unwrap()
        .token()
        .to_owned();
    (tokens, token)
}

/// Appends events until the store holds `n`.
pub(crate) fn seed(store: &mut dyn Store, n: u64) {
    let have = store.stats().unwrap().rows;
    if have >= n {
        return;
    }
    let started = Instant::now();
    let mut i = have;
    while i < n {
        let batch: Vec<AuditEvent> = (i..(i + 5000).min(n))
            .map(|k| {
                let user = format!("user{}", k % 500);
                AuditEvent::builder(
                    ["create", "write", "delete", "start", "stop"][(k % 5) as usize],
                )
                .actor(Actor::new(
                    format!("id-{user}"),
                    &user,
                    format!("{user}@example.com"),
                ))
                .resource_type(["workspace", "template", "workspace_build"][(k % 3) as usize])
                .resource_id(k.to_string())
                .resource_target(format!("ws-{k}"))
                .organization_id(format!("org-{}", k % 10))
                .user_agent("coder/2.12.0 (linux/amd64)")
                .build()
            })
            .collect();
        store.append(&batch).unwrap();
        i += batch.len() as u64;
    }
    eprintln!("seeded {} events in {:?}", n - have, started.elapsed());
}

pub(crate) struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub(crate) fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

pub(crate) fn start_server(store: &str, tokens: &str) -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["serve", store, tokens])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Server {
        child,
        addr: line.trim().to_owned(),
    }
}

pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

pub(crate) type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>;

pub(crate) async fn connect(addr: &str) -> Sender {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

pub(crate) fn request(
    addr: &str,
    path: &str,
    token: Option<&str>,
) -> hyper::Request<http_body_util::Empty<Bytes>> {
    let mut r = hyper::Request::get(path).header("host", addr);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(http_body_util::Empty::new()).unwrap()
}

pub(crate) async fn get(addr: &str, path: &str, token: Option<&str>) -> u16 {
    let mut sender = connect(addr).await;
    let response = sender
        .send_request(request(addr, path, token))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}
