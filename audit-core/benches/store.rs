//! Storage benchmarks: ingest rate of `Store::append` as the log grows, against raw batched
//! inserts of the same events into a table with the three indexes a minimal log needs (in the
//! same run, batch by batch; see `store/ingest.rs`), and query latency at 1,000,000 stored
//! events for keyset pages and capped counts against an exact `COUNT(*)` + `OFFSET` page (what
//! Coder's audit page did).
//!
//! ```text
//! cargo bench -p audit-core --features sqlite,postgres --bench store
//! ```
//!
//! Prints Markdown tables. A hand-written timing loop (median and p99 over many runs) is used
//! rather than criterion: one data set of a million rows is loaded once per store and each
//! query is timed against it, which criterion's model of a cheap, repeatable routine does not
//! fit.
//!
//! Environment (all optional):
//! * `AUDIT_BENCH_EVENTS`: events stored (default 1,000,000);
//! * `AUDIT_BENCH_PREVIOUS`: `0` leaves out the SQLite store of schema version 2 (kept only
//!   in `tests/store_support/previous.rs`), which is otherwise loaded beside the store and the
//!   floor for a before/after comparison in the same run;
//! * `AUDIT_BENCH_INLINE_CHECKPOINTS`: `0` leaves out a second SQLite store that checkpoints
//!   in its appends, as SQLite does by default (`Options::background_wal_checkpoints` off), which
//!   is otherwise loaded beside the store and the floor;
//! * `AUDIT_BENCH_REPS`: timed runs of each keyset query (default 100);
//! * `AUDIT_BENCH_SLOW_REPS`: timed runs of each exact-count / offset query (default 10);
//! * `AUDIT_BENCH_STORES`: comma-separated subset of `sqlite,postgres,postgres_partitioned`;
//! * `AUDIT_BENCH_POSTGRES_URL`, else `AUDIT_TEST_POSTGRES_URL`, else
//!   `postgres://postgres@127.0.0.1/test`;
//! * `AUDIT_BENCH_KEEP`: keep the SQLite file and the Postgres schemas after the run;
//! * `AUDIT_BENCH_SQLITE_QUERIES_ONLY`: the path of a kept SQLite store (`…/store.db`) of the
//!   same number of events: skip the SQLite load and time the queries on it (after a change
//!   to reads, without loading a million events again);
//! * `AUDIT_BENCH_SEQ_EVENTS`: events for the log position's cost on append (default
//!   100,000 in batches of 1,000, and a twentieth of that in batches of 10; 0 skips it).

#[macro_use]
#[path = "../tests/store_support/previous.rs"]
mod previous;
#[path = "store/dataset.rs"]
mod dataset;
#[path = "store/ingest.rs"]
mod ingest;
#[path = "store/log_position.rs"]
mod log_position;

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use audit_core::query::Filter;
use audit_core::store::postgres::{Options, Partitioning, PostgresStore};
use audit_core::store::sqlite::{self, SqliteStore};
use audit_core::store::{Cursor, PageRequest, Store};
use chrono::{DateTime, NaiveDate, Utc};
use dataset::{Dataset, FILTER_USER};
use postgres::types::ToSql;
use serde_json::Value;
use uuid::Uuid;

const BATCH: usize = 1_000;
const PAGE: usize = 50;
/// Page 100 starts after 99 pages of [`PAGE`] events.
const OFFSET_PAGE_100: usize = 99 * PAGE;
const COUNT_CAP: u64 = 10_000;

/// The store's column list (`seq, id, time, …`), as SQL text.
fn columns() -> String {
    audit_core::store::COLUMNS.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Stats {
    median: Duration,
    p99: Duration,
}

impl Stats {
    fn cell(&self) -> String {
        format!("{} / {}", ms(self.median), ms(self.p99))
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Median and p99 (nearest rank) of `reps` timed runs after one untimed warm-up run.
fn measure<T>(reps: usize, mut f: impl FnMut() -> T) -> Stats {
    black_box(f());
    let mut times: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    let rank = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    Stats {
        median: if times.len() % 2 == 1 {
            times[times.len() / 2]
        } else {
            (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2
        },
        p99: rank(0.99),
    }
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

struct Config {
    events: usize,
    previous: bool,
    inline_checkpoints: bool,
    reps: usize,
    slow_reps: usize,
    stores: Vec<String>,
    postgres_url: String,
    keep: bool,
    sqlite_queries_only: Option<PathBuf>,
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
        Err(_) => default,
    }
}

impl Config {
    fn from_env() -> Self {
        let events = env_usize("AUDIT_BENCH_EVENTS", 1_000_000).max(BATCH) / BATCH * BATCH;
        Config {
            events,
            previous: env_usize("AUDIT_BENCH_PREVIOUS", 1) != 0,
            inline_checkpoints: env_usize("AUDIT_BENCH_INLINE_CHECKPOINTS", 1) != 0,
            reps: env_usize("AUDIT_BENCH_REPS", 100),
            slow_reps: env_usize("AUDIT_BENCH_SLOW_REPS", 10),
            stores: std::env::var("AUDIT_BENCH_STORES")
                .unwrap_or_else(|_| "sqlite,postgres,postgres_partitioned".into())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            postgres_url: std::env::var("AUDIT_BENCH_POSTGRES_URL")
                .or_else(|_| std::env::var("AUDIT_TEST_POSTGRES_URL"))
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".into()),
            keep: std::env::var_os("AUDIT_BENCH_KEEP").is_some(),
            sqlite_queries_only: std::env::var_os("AUDIT_BENCH_SQLITE_QUERIES_ONLY")
                .map(PathBuf::from),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------------------------

fn sqlite_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    // The store's own connection settings (WAL is a property of the file; synchronous is not).
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

fn reset_schema(url: &str, schema: &str) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("Postgres at {url} is unreachable: {e}"));
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    filter: Filter,
    /// The filter as hand-written SQL for the exact-count / offset baseline:
    /// (SQLite WHERE, Postgres WHERE, parameters as text/time).
    sqlite_where: String,
    postgres_where: String,
    params: Vec<BaselineParam>,
}

#[derive(Clone)]
enum BaselineParam {
    Text(String),
    Time(DateTime<Utc>),
    /// A request id: 16 bytes or its text in SQLite (as the store at hand keeps it), `uuid` in
    /// Postgres.
    RequestId(Uuid),
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// A case for a filter on one key: `column = ?` (or `lower(column) = lower(?)` on Postgres).
fn one_key(name: &'static str, filter: Filter, column: &str, value: BaselineParam) -> Case {
    let postgres_where = match column {
        "username" | "email" => format!("lower({column}) = lower($1)"),
        _ => format!("{column} = $1"),
    };
    Case {
        name,
        filter,
        sqlite_where: format!("{column} = ?1"),
        postgres_where,
        params: vec![value],
    }
}

/// The filters timed: the three of earlier runs, then one on each key, from the most common
/// values to a rare email, target and request id, and a username nobody has.
fn cases(data: &Dataset) -> Vec<Case> {
    let (from, to) = (day(2024, 1, 15), day(2024, 12, 15));
    let (user_from, user_to) = (day(2024, 3, 1), day(2024, 9, 30));
    let next = |d: NaiveDate| midnight(d.succ_opt().unwrap());
    let text = |s: &str| BaselineParam::Text(s.to_owned());
    // Keys of an event from the middle of the log.
    let sample = (data.n / 2..data.n)
        .map(|i| data.event(i))
        .find(|e| e.request_id.is_some())
        .expect("an event with a request id");
    let request_id = sample.request_id.expect("found above");
    let rare_email = format!("{}@example.com", dataset::RARE_USER);
    let dana_email = format!("{FILTER_USER}@example.com");
    vec![
        Case {
            name: "`date_from:2024-01-15 date_to:2024-12-15` (time only)",
            filter: Filter::default().with_date_from(from).with_date_to(to),
            sqlite_where: "time >= ?1 AND time < ?2".into(),
            postgres_where: "time >= $1 AND time < $2".into(),
            params: vec![
                BaselineParam::Time(midnight(from)),
                BaselineParam::Time(next(to)),
            ],
        },
        Case {
            name: "`resource_type:workspace action:delete`",
            filter: Filter::default()
                .with_resource_type("workspace")
                .with_action("delete"),
            sqlite_where: "resource_type = ?1 AND action = ?2".into(),
            postgres_where: "resource_type = $1 AND action = $2".into(),
            params: vec![text("workspace"), text("delete")],
        },
        Case {
            name: "`username:dana date_from:2024-03-01 date_to:2024-09-30`",
            filter: Filter::default()
                .with_username(FILTER_USER)
                .with_date_from(user_from)
                .with_date_to(user_to),
            sqlite_where: "username = ?1 AND time >= ?2 AND time < ?3".into(),
            postgres_where: "lower(username) = lower($1) AND time >= $2 AND time < $3".into(),
            params: vec![
                text(FILTER_USER),
                BaselineParam::Time(midnight(user_from)),
                BaselineParam::Time(next(user_to)),
            ],
        },
        one_key(
            "`resource_type:workspace`",
            Filter::default().with_resource_type("workspace"),
            "resource_type",
            text("workspace"),
        ),
        one_key(
            "`action:delete`",
            Filter::default().with_action("delete"),
            "action",
            text("delete"),
        ),
        one_key(
            "`email:dana@example.com`",
            Filter::default().with_email(&dana_email),
            "email",
            text(&dana_email),
        ),
        one_key(
            "`resource_id:…` (one resource)",
            Filter::default().with_resource_id(&sample.resource_id),
            "resource_id",
            text(&sample.resource_id),
        ),
        one_key(
            "`resource_target:…` (one target)",
            Filter::default().with_resource_target(&sample.resource_target),
            "resource_target",
            text(&sample.resource_target),
        ),
        one_key(
            "`email:quinn@example.com` (a rare email)",
            Filter::default().with_email(&rare_email),
            "email",
            text(&rare_email),
        ),
        one_key(
            "`request_id:…`",
            Filter::default().with_request_id(request_id),
            "request_id",
            BaselineParam::RequestId(request_id),
        ),
        one_key(
            "`username:nobody` (no events)",
            Filter::default().with_username("nobody"),
            "username",
            text("nobody"),
        ),
    ]
}

/// The exact-count + offset pagination of Coder's audit page, on the same table.
trait Baseline {
    fn exact_count(&mut self, case: &Case) -> i64;
    fn offset_page(&mut self, case: &Case, offset: usize) -> usize;
}

struct SqliteBaseline {
    conn: rusqlite::Connection,
    /// Whether request ids are stored as text (schema 2) rather than 16 bytes.
    text_request_ids: bool,
}

impl SqliteBaseline {
    fn new(conn: rusqlite::Connection) -> Self {
        let kind: Option<String> = conn
            .query_row(
                "SELECT typeof(request_id) FROM audit_logs WHERE request_id IS NOT NULL LIMIT 1",
                [],
                |r| r.get(0),
            )
            .ok();
        SqliteBaseline {
            conn,
            text_request_ids: kind.as_deref() == Some("text"),
        }
    }

    fn params(&self, case: &Case) -> Vec<rusqlite::types::Value> {
        use rusqlite::types::Value as V;
        case.params
            .iter()
            .map(|p| match p {
                BaselineParam::Text(s) => V::Text(s.clone()),
                BaselineParam::Time(t) => V::Integer(t.timestamp_micros()),
                BaselineParam::RequestId(id) if self.text_request_ids => V::Text(id.to_string()),
                BaselineParam::RequestId(id) => V::Blob(id.as_bytes().to_vec()),
            })
            .collect()
    }
}

impl Baseline for SqliteBaseline {
    fn exact_count(&mut self, case: &Case) -> i64 {
        let sql = format!(
            "SELECT COUNT(*) FROM audit_logs WHERE {}",
            case.sqlite_where
        );
        self.conn
            .query_row(&sql, rusqlite::params_from_iter(self.params(case)), |r| {
                r.get(0)
            })
            .unwrap()
    }

    fn offset_page(&mut self, case: &Case, offset: usize) -> usize {
        let sql = format!(
            "SELECT {} FROM audit_logs WHERE {} ORDER BY time DESC, id DESC LIMIT {PAGE} OFFSET {offset}",
            columns(),
            case.sqlite_where
        );
        let params = self.params(case);
        let mut stmt = self.conn.prepare_cached(&sql).unwrap();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            // Read every column, as a page render would.
            for c in 0..audit_core::store::COLUMNS.len() {
                black_box(row.get_ref(c).unwrap());
            }
            n += 1;
        }
        n
    }
}

struct PostgresBaseline(postgres::Client);

impl PostgresBaseline {
    fn params(case: &Case) -> Vec<Box<dyn ToSql + Sync>> {
        case.params
            .iter()
            .map(|p| -> Box<dyn ToSql + Sync> {
                match p {
                    BaselineParam::Text(s) => Box::new(s.clone()),
                    BaselineParam::Time(t) => Box::new(*t),
                    BaselineParam::RequestId(id) => Box::new(*id),
                }
            })
            .collect()
    }
}

impl Baseline for PostgresBaseline {
    fn exact_count(&mut self, case: &Case) -> i64 {
        let params = Self::params(case);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM audit_logs WHERE {}",
            case.postgres_where
        );
        self.0.query_one(&sql, &refs).unwrap().get(0)
    }

    fn offset_page(&mut self, case: &Case, offset: usize) -> usize {
        let params = Self::params(case);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let sql = format!(
            "SELECT {} FROM audit_logs WHERE {} ORDER BY time DESC, id DESC LIMIT {PAGE} OFFSET {offset}",
            columns(),
            case.postgres_where
        );
        let rows = self.0.query(&sql, &refs).unwrap();
        for row in &rows {
            let id: Uuid = row.get("id");
            let diff: Value = row.get("diff");
            black_box((id, diff));
        }
        rows.len()
    }
}

struct QueryRow {
    case: &'static str,
    matching: i64,
    page1: Stats,
    page100: Option<Stats>,
    count: Stats,
    count_result: String,
    exact_count: Stats,
    offset_page: Option<Stats>,
}

fn run_queries(
    store: &mut dyn Store,
    baseline: &mut dyn Baseline,
    config: &Config,
    data: &Dataset,
    label: &str,
) -> Vec<QueryRow> {
    let mut out = Vec::new();
    for case in cases(data) {
        eprintln!("  {label}: {}", case.name);
        let matching = baseline.exact_count(&case);
        let first = PageRequest::first(PAGE);
        let page1 = measure(config.reps, || store.page(&case.filter, &first).unwrap());
        // Follow cursors to the end of page 99; page 100 starts there.
        let mut cursor: Option<Cursor> = None;
        for _ in 0..99 {
            let request = PageRequest {
                limit: PAGE,
                cursor,
            };
            cursor = store.page(&case.filter, &request).unwrap().next;
            if cursor.is_none() {
                break;
            }
        }
        let page100 = cursor.map(|c| {
            let request = PageRequest::after(PAGE, c);
            let page = store.page(&case.filter, &request).unwrap();
            assert_eq!(
                page.events.len(),
                PAGE.min(matching as usize - OFFSET_PAGE_100)
            );
            measure(config.reps, || store.page(&case.filter, &request).unwrap())
        });
        let count_result = store.count(&case.filter, COUNT_CAP).unwrap().to_string();
        let count = measure(config.reps, || {
            store.count(&case.filter, COUNT_CAP).unwrap()
        });
        let exact_count = measure(config.slow_reps, || baseline.exact_count(&case));
        let offset_page = (matching as usize > OFFSET_PAGE_100).then(|| {
            measure(config.slow_reps, || {
                baseline.offset_page(&case, OFFSET_PAGE_100)
            })
        });
        out.push(QueryRow {
            case: case.name,
            matching,
            page1,
            page100,
            count,
            count_result,
            exact_count,
            offset_page,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

struct StoreReport {
    name: &'static str,
    /// `None` when the queries ran on a kept store.
    ingest: Option<ingest::Load>,
    /// Opening a store of the previous schema, as large as the store, with a writer.
    migration: Option<Duration>,
    /// Query passes: (when, rows).
    queries: Vec<(&'static str, Vec<QueryRow>)>,
}

fn report(config: &Config, reports: &[StoreReport]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Ingest ({} events, batches of {BATCH}, every target given each batch in turn; \
         ev/s, and the ratio to the first row)\n",
        thousands(config.events as f64),
    );
    for r in reports {
        if let Some(load) = &r.ingest {
            let _ = writeln!(md, "{}", load.table(r.name, config.events));
        }
        if let Some(took) = r.migration {
            let _ = writeln!(
                md,
                "Migrating the schema 2 store of {} events to this build's layout (a writer's \
                 open): {:.1} s\n",
                thousands(config.events as f64),
                took.as_secs_f64()
            );
        }
    }
    for (r, (when, rows)) in reports
        .iter()
        .flat_map(|r| r.queries.iter().map(move |q| (r, q)))
    {
        let _ = writeln!(
            md,
            "\n### Queries, {}, {when} ({} stored events; ms, median / p99; {PAGE} events a page)\n",
            r.name,
            thousands(config.events as f64)
        );
        let _ = writeln!(
            md,
            "| filter | matching | page 1 (keyset) | page 100 (cursor) | `count` capped at {} | exact `COUNT(*)` | `OFFSET {OFFSET_PAGE_100} LIMIT {PAGE}` |",
            thousands(COUNT_CAP as f64)
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for q in rows {
            let opt = |s: &Option<Stats>| s.map_or_else(|| "n/a".into(), |s| s.cell());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} ({}) | {} | {} |",
                q.case,
                thousands(q.matching as f64),
                q.page1.cell(),
                opt(&q.page100),
                q.count.cell(),
                q.count_result,
                q.exact_count.cell(),
                opt(&q.offset_page),
            );
        }
    }
    let _ = writeln!(
        md,
        "\nKeyset queries and capped counts: {} timed runs each; exact count and offset: {} runs each; one untimed warm-up run before each. p99 is the nearest rank.",
        config.reps, config.slow_reps
    );
    md
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn bench_sqlite(config: &Config, data: &Dataset, dir: &Path) -> StoreReport {
    if let Some(path) = &config.sqlite_queries_only {
        return sqlite_queries(config, data, path, None, None);
    }
    let path = dir.join("store.db");
    let mut floor = ingest::SqliteFloor::create(&dir.join("floor.db"));
    let mut store = SqliteStore::open(&path).expect("open");
    // The same store with SQLite's own checkpoints, in the append that passes 1,000 pages.
    let inline_options = sqlite::Options {
        background_wal_checkpoints: false,
        ..sqlite::Options::default()
    };
    let mut inline = config
        .inline_checkpoints
        .then(|| SqliteStore::open_with(dir.join("inline.db"), inline_options).expect("open"));
    let mut v2 = config
        .previous
        .then(|| previous::SqliteV2::create(&dir.join("v2.db")));
    let mut targets = vec![
        ingest::Target::raw("raw INSERTs, 3-index table", &mut floor),
        ingest::Target::store("`append`", &mut store),
    ];
    if let Some(inline) = inline.as_mut() {
        targets.push(ingest::Target::store(
            "`append`, checkpoints in the append (SQLite's)",
            inline,
        ));
    }
    if let Some(v2) = v2.as_mut() {
        targets.push(ingest::Target::raw("`append` of schema 2", v2));
    }
    eprintln!(
        "sqlite: loading {} events into {} targets",
        data.n,
        targets.len()
    );
    let load = ingest::interleave(&mut targets, data, "sqlite");
    drop(targets);
    let had_v2 = v2.is_some();
    if let Some(inline) = &inline {
        eprintln!(
            "sqlite: `append` checkpoints: {:?}; CPU time of its checkpoint thread: {}",
            store.wal_checkpoint_stats(),
            checkpoint_thread_cpu().map_or("unknown".into(), |s| format!("{s:.2} s"))
        );
        eprintln!(
            "sqlite: inline target's: {:?}",
            inline.wal_checkpoint_stats()
        );
    }
    drop((floor, store, inline, v2));
    // The copy of schema 2, now as large as the store: what migrating it takes.
    let migration = had_v2.then(|| {
        eprintln!("sqlite: migrating the schema 2 store of {} events", data.n);
        let started = Instant::now();
        let mut migrated = SqliteStore::open(dir.join("v2.db")).expect("migrate");
        let took = started.elapsed();
        assert_eq!(migrated.head().unwrap().head, data.n as u64);
        took
    });
    for f in ["floor.db", "inline.db", "v2.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{f}{suffix}")));
        }
    }
    sqlite_queries(config, data, &path, Some(load), migration)
}

/// The CPU time (user and system) of this process's SQLite checkpoint threads so far, from
/// `/proc` (Linux only).
fn checkpoint_thread_cpu() -> Option<f64> {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).ok()?;
        if !name.starts_with("audit-sqlite-ch") {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        total += (utime + stime) / ticks_per_second;
    }
    Some(total)
}

/// The queries on the SQLite store at `path`, opened again as a process does after a load.
fn sqlite_queries(
    config: &Config,
    data: &Dataset,
    path: &Path,
    ingest: Option<ingest::Load>,
    migration: Option<Duration>,
) -> StoreReport {
    let mut store = SqliteStore::open(path).expect("reopen");
    assert_eq!(
        store.head().expect("head").head,
        data.n as u64,
        "the store holds a different number of events than AUDIT_BENCH_EVENTS"
    );
    let mut baseline = SqliteBaseline::new(sqlite_connection(path));
    let queries = vec![(
        "as loaded",
        run_queries(&mut store, &mut baseline, config, data, "sqlite"),
    )];
    StoreReport {
        name: "SQLite",
        ingest,
        migration,
        queries,
    }
}

fn bench_postgres(config: &Config, data: &Dataset, partitioning: Partitioning) -> StoreReport {
    let url = &config.postgres_url;
    let (schema, name, label) = match partitioning {
        Partitioning::None => ("audit_bench", "Postgres", "postgres"),
        Partitioning::Monthly => (
            "audit_bench_part",
            "Postgres, monthly partitions",
            "postgres_partitioned",
        ),
    };
    reset_schema(url, schema);
    let options = Options {
        schema: schema.into(),
        partitioning,
        ..Options::default()
    };
    let mut store = PostgresStore::connect(url, options.clone()).expect("connect");
    // The floor is loaded beside the plain layout only.
    let mut floor = (partitioning == Partitioning::None)
        .then(|| ingest::PostgresFloor::create(url, "audit_bench_floor"));
    let mut targets = Vec::new();
    if let Some(floor) = floor.as_mut() {
        targets.push(ingest::Target::raw("raw `COPY`, 3-index table", floor));
    }
    targets.push(ingest::Target::store("`append`", &mut store));
    eprintln!(
        "{label}: loading {} events into {} targets",
        data.n,
        targets.len()
    );
    let load = ingest::interleave(&mut targets, data, label);
    drop(targets);
    drop((store, floor));
    reset_schema(url, "audit_bench_floor");
    let mut store = PostgresStore::connect(url, options).expect("reconnect");
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    // Report what autovacuum had analyzed by then (the bench itself runs no ANALYZE).
    for row in client
        .query(
            "SELECT count(*), count(last_autoanalyze), COALESCE(sum(n_mod_since_analyze), 0)::bigint \
             FROM pg_stat_user_tables WHERE schemaname = $1 AND relname LIKE 'audit_logs%'",
            &[&schema],
        )
        .unwrap()
    {
        eprintln!(
            "  {label}: {} tables, {} auto-analyzed, {} rows changed since their last analyze",
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        );
    }
    let mut baseline = PostgresBaseline(client);
    let as_loaded = run_queries(&mut store, &mut baseline, config, data, label);
    // Autovacuum may be off (it is on the benchmark machine's server), so the pass above runs
    // without planner statistics or a visibility map. This is what autovacuum does on a default
    // server after such a load; the store itself never runs it.
    eprintln!("  {label}: VACUUM ANALYZE");
    baseline
        .0
        .batch_execute("VACUUM ANALYZE audit_logs")
        .unwrap();
    let vacuumed = run_queries(&mut store, &mut baseline, config, data, label);
    let queries = vec![
        ("as loaded", as_loaded),
        ("after `VACUUM ANALYZE`", vacuumed),
    ];
    if !config.keep {
        reset_schema(url, schema);
    }
    StoreReport {
        name,
        ingest: Some(load),
        migration: None,
        queries,
    }
}

fn main() {
    let config = Config::from_env();
    let data = Dataset::new(config.events);
    eprintln!(
        "audit store benchmark: {} events, stores {:?}",
        config.events, config.stores
    );
    let dir: PathBuf = std::env::temp_dir().join(format!("audit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log_position = log_position::run(&config, &data, &dir);
    let mut reports = Vec::new();
    for store in &config.stores {
        let r = match store.as_str() {
            "sqlite" => bench_sqlite(&config, &data, &dir),
            "postgres" => bench_postgres(&config, &data, Partitioning::None),
            "postgres_partitioned" => bench_postgres(&config, &data, Partitioning::Monthly),
            other => panic!("unknown store `{other}` in AUDIT_BENCH_STORES"),
        };
        reports.push(r);
    }
    if config.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("{}", report(&config, &reports));
    println!("{log_position}");
}
