//! Storage benchmarks: ingest rate of `Store::append` against raw inserts of the same
//! rows with the same driver, and query latency at 1,000,000 stored events for keyset pages
//! and capped counts against an exact `COUNT(*)` + `OFFSET` page (what Coder's audit page did).
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
//! * `AUDIT_BENCH_RAW_ROWS`: rows for the raw-insert comparison (default 20,000);
//! * `AUDIT_BENCH_REPS`: timed runs of each keyset query (default 100);
//! * `AUDIT_BENCH_SLOW_REPS`: timed runs of each exact-count / offset query (default 10);
//! * `AUDIT_BENCH_STORES`: comma-separated subset of `sqlite,postgres,postgres_partitioned`;
//! * `AUDIT_BENCH_POSTGRES_URL`, else `AUDIT_TEST_POSTGRES_URL`, else
//!   `postgres://postgres@127.0.0.1/test`;
//! * `AUDIT_BENCH_KEEP`: keep the SQLite file and the Postgres schemas after the run;
//! * `AUDIT_BENCH_SEQ_EVENTS`: events for the log position's cost on append (default
//!   100,000 in batches of 1,000, and a twentieth of that in batches of 10; 0 skips it).

#[macro_use]
#[path = "../tests/store_support/previous.rs"]
mod previous;
#[path = "store/dataset.rs"]
mod dataset;
#[path = "store/log_position.rs"]
mod log_position;

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use audit_core::AuditEvent;
use audit_core::query::Filter;
use audit_core::store::postgres::{Options, Partitioning, PostgresStore};
use audit_core::store::sqlite::SqliteStore;
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

/// `?1, ?2, …` or `$1, $2, …` for every column.
fn placeholders(mark: char) -> String {
    (1..=audit_core::store::COLUMNS.len())
        .map(|i| format!("{mark}{i}"))
        .collect::<Vec<_>>()
        .join(", ")
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

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
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
    raw_rows: usize,
    reps: usize,
    slow_reps: usize,
    stores: Vec<String>,
    postgres_url: String,
    keep: bool,
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
        let events = env_usize("AUDIT_BENCH_EVENTS", 1_000_000).max(BATCH);
        Config {
            events,
            raw_rows: env_usize("AUDIT_BENCH_RAW_ROWS", 20_000).clamp(BATCH, events) / BATCH
                * BATCH,
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
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------------------------

struct Ingest {
    /// `Store::append` of the first `raw_rows` events (the same rows as the raw inserts, into
    /// an equally empty table).
    store_first: Duration,
    /// `Store::append` of all events.
    store_all: Duration,
    /// One autocommitted INSERT per row.
    raw_autocommit: Option<Duration>,
    /// One INSERT per row, a transaction per 1,000 rows.
    raw_tx: Option<Duration>,
}

/// Appends the whole data set in batches, timing only the `append` calls.
fn load(
    store: &mut dyn Store,
    data: &Dataset,
    raw_rows: usize,
    label: &str,
) -> (Duration, Duration) {
    let (mut first, mut all) = (Duration::ZERO, Duration::ZERO);
    let mut start = 0;
    let progress_every = (data.n / 10).max(BATCH);
    while start < data.n {
        let end = (start + BATCH).min(data.n);
        let batch = data.batch(start..end);
        let t = Instant::now();
        store.append(&batch).expect("append");
        let elapsed = t.elapsed();
        all += elapsed;
        if end <= raw_rows {
            first += elapsed;
        }
        if end.is_multiple_of(progress_every) {
            eprintln!(
                "  {label}: {end} events, {} events/s so far",
                thousands(rate(end, all))
            );
        }
        start = end;
    }
    (first, all)
}

fn sqlite_connection(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    // The store's own connection settings (WAL is a property of the file; synchronous is not).
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

/// Raw rusqlite inserts into a table the store created (so: identical schema and indexes),
/// converting each field exactly as the store does.
fn sqlite_raw(path: &Path, events: &[AuditEvent], tx_every: Option<usize>) -> Duration {
    drop(SqliteStore::open(path).expect("create schema"));
    let conn = sqlite_connection(path);
    let sql = format!(
        "INSERT INTO audit_logs ({}) VALUES ({})",
        columns(),
        placeholders('?')
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let started = Instant::now();
    for (i, e) in events.iter().enumerate() {
        if let Some(n) = tx_every
            && i % n == 0
        {
            if i > 0 {
                conn.execute_batch("COMMIT").unwrap();
            }
            conn.execute_batch("BEGIN").unwrap();
        }
        stmt.execute(sqlite_event_params!(e, i as i64 + 1)).unwrap();
    }
    if tx_every.is_some() {
        conn.execute_batch("COMMIT").unwrap();
    }
    started.elapsed()
}

/// Raw `postgres` inserts (a prepared statement, one row per execution) into a table the store
/// created in `schema`, converting each field exactly as the store does.
fn postgres_raw(
    url: &str,
    schema: &str,
    events: &[AuditEvent],
    tx_every: Option<usize>,
) -> Duration {
    reset_schema(url, schema);
    drop(
        PostgresStore::connect(
            url,
            Options {
                schema: schema.into(),
                ..Options::default()
            },
        )
        .expect("create schema"),
    );
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    let stmt = client
        .prepare(&format!(
            "INSERT INTO audit_logs ({}) VALUES ({})",
            columns(),
            placeholders('$')
        ))
        .unwrap();
    let started = Instant::now();
    for (i, e) in events.iter().enumerate() {
        if let Some(n) = tx_every
            && i % n == 0
        {
            if i > 0 {
                client.batch_execute("COMMIT").unwrap();
            }
            client.batch_execute("BEGIN").unwrap();
        }
        let diff = serde_json::to_value(&e.diff).unwrap();
        let additional = Value::Object(e.additional_fields.clone());
        let status = i32::from(e.status_code);
        let seq = i as i64 + 1;
        client
            .execute(
                &stmt,
                &postgres_event_params!(e, &diff, &additional, &status, &seq),
            )
            .unwrap();
    }
    if tx_every.is_some() {
        client.batch_execute("COMMIT").unwrap();
    }
    let elapsed = started.elapsed();
    drop(client);
    reset_schema(url, schema);
    elapsed
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
    sqlite_where: &'static str,
    postgres_where: &'static str,
    params: Vec<BaselineParam>,
}

#[derive(Clone)]
enum BaselineParam {
    Text(&'static str),
    Time(DateTime<Utc>),
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn cases() -> Vec<Case> {
    let (from, to) = (day(2024, 1, 15), day(2024, 12, 15));
    let (user_from, user_to) = (day(2024, 3, 1), day(2024, 9, 30));
    let next = |d: NaiveDate| midnight(d.succ_opt().unwrap());
    vec![
        Case {
            name: "`date_from:2024-01-15 date_to:2024-12-15` (time only)",
            filter: Filter::default().with_date_from(from).with_date_to(to),
            sqlite_where: "time >= ?1 AND time < ?2",
            postgres_where: "time >= $1 AND time < $2",
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
            sqlite_where: "resource_type = ?1 AND action = ?2",
            postgres_where: "resource_type = $1 AND action = $2",
            params: vec![
                BaselineParam::Text("workspace"),
                BaselineParam::Text("delete"),
            ],
        },
        Case {
            name: "`username:dana date_from:2024-03-01 date_to:2024-09-30`",
            filter: Filter::default()
                .with_username(FILTER_USER)
                .with_date_from(user_from)
                .with_date_to(user_to),
            sqlite_where: "username = ?1 AND time >= ?2 AND time < ?3",
            postgres_where: "lower(username) = lower($1) AND time >= $2 AND time < $3",
            params: vec![
                BaselineParam::Text(FILTER_USER),
                BaselineParam::Time(midnight(user_from)),
                BaselineParam::Time(next(user_to)),
            ],
        },
    ]
}

/// The exact-count + offset pagination of Coder's audit page, on the same table.
trait Baseline {
    fn exact_count(&mut self, case: &Case) -> i64;
    fn offset_page(&mut self, case: &Case, offset: usize) -> usize;
}

struct SqliteBaseline(rusqlite::Connection);

impl SqliteBaseline {
    fn params(case: &Case) -> Vec<rusqlite::types::Value> {
        case.params
            .iter()
            .map(|p| match p {
                BaselineParam::Text(s) => rusqlite::types::Value::Text((*s).into()),
                BaselineParam::Time(t) => rusqlite::types::Value::Integer(t.timestamp_micros()),
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
        self.0
            .query_row(&sql, rusqlite::params_from_iter(Self::params(case)), |r| {
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
        let mut stmt = self.0.prepare_cached(&sql).unwrap();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(Self::params(case)))
            .unwrap();
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
                    BaselineParam::Text(s) => Box::new(s.to_string()),
                    BaselineParam::Time(t) => Box::new(*t),
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
    label: &str,
) -> Vec<QueryRow> {
    let mut out = Vec::new();
    for case in cases() {
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
    ingest: Ingest,
    /// Query passes: (when, rows).
    queries: Vec<(&'static str, Vec<QueryRow>)>,
}

fn report(config: &Config, reports: &[StoreReport]) -> String {
    let mut md = String::new();
    let raw = config.raw_rows;
    let _ = writeln!(
        md,
        "### Ingest ({} events, batches of {BATCH}; raw inserts on the first {} of them)\n",
        thousands(config.events as f64),
        thousands(raw as f64)
    );
    let _ = writeln!(
        md,
        "| store | `append`, first {raw} rows | `append`, all {} rows | raw INSERT per row, autocommit | ratio | raw INSERT per row, 1 tx per {BATCH} rows | ratio |",
        thousands(config.events as f64)
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in reports {
        let first = rate(raw, r.ingest.store_first);
        let cell = |d: Option<Duration>| match d {
            Some(d) => (
                format!("{} ev/s", thousands(rate(raw, d))),
                format!("**{:.1}×**", first / rate(raw, d)),
            ),
            None => ("—".into(), "—".into()),
        };
        let (auto, auto_ratio) = cell(r.ingest.raw_autocommit);
        let (tx, tx_ratio) = cell(r.ingest.raw_tx);
        let _ = writeln!(
            md,
            "| {} | {} ev/s | {} ev/s | {auto} | {auto_ratio} | {tx} | {tx_ratio} |",
            r.name,
            thousands(first),
            thousands(rate(config.events, r.ingest.store_all)),
        );
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
    let path = dir.join("store.db");
    let raw_events = data.batch(0..config.raw_rows);
    eprintln!("sqlite: raw inserts ({} rows, autocommit)", config.raw_rows);
    let raw_autocommit = sqlite_raw(&dir.join("raw.db"), &raw_events, None);
    eprintln!(
        "sqlite: raw inserts ({} rows, 1 tx per {BATCH})",
        config.raw_rows
    );
    let raw_tx = sqlite_raw(&dir.join("raw_tx.db"), &raw_events, Some(BATCH));
    for f in [
        "raw.db",
        "raw.db-wal",
        "raw.db-shm",
        "raw_tx.db",
        "raw_tx.db-wal",
        "raw_tx.db-shm",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let mut store = SqliteStore::open(&path).expect("open");
    let (store_first, store_all) = load(&mut store, data, config.raw_rows, "sqlite");
    // What a process does after a load: close the store and open it again.
    drop(store);
    let mut store = SqliteStore::open(&path).expect("reopen");
    let mut baseline = SqliteBaseline(sqlite_connection(&path));
    let queries = vec![(
        "as loaded",
        run_queries(&mut store, &mut baseline, config, "sqlite"),
    )];
    StoreReport {
        name: "SQLite",
        ingest: Ingest {
            store_first,
            store_all,
            raw_autocommit: Some(raw_autocommit),
            raw_tx: Some(raw_tx),
        },
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
    let (raw_autocommit, raw_tx) = if partitioning == Partitioning::None {
        let raw_events = data.batch(0..config.raw_rows);
        eprintln!(
            "{label}: raw inserts ({} rows, autocommit)",
            config.raw_rows
        );
        let auto = postgres_raw(url, "audit_bench_raw", &raw_events, None);
        eprintln!(
            "{label}: raw inserts ({} rows, 1 tx per {BATCH})",
            config.raw_rows
        );
        let tx = postgres_raw(url, "audit_bench_raw", &raw_events, Some(BATCH));
        (Some(auto), Some(tx))
    } else {
        (None, None)
    };
    reset_schema(url, schema);
    let options = Options {
        schema: schema.into(),
        partitioning,
        ..Options::default()
    };
    let mut store = PostgresStore::connect(url, options.clone()).expect("connect");
    let (store_first, store_all) = load(&mut store, data, config.raw_rows, label);
    drop(store);
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
    let as_loaded = run_queries(&mut store, &mut baseline, config, label);
    // Autovacuum may be off (it is on the benchmark machine's server), so the pass above runs
    // without planner statistics or a visibility map. This is what autovacuum does on a default
    // server after such a load; the store itself never runs it.
    eprintln!("  {label}: VACUUM ANALYZE");
    baseline
        .0
        .batch_execute("VACUUM ANALYZE audit_logs")
        .unwrap();
    let vacuumed = run_queries(&mut store, &mut baseline, config, label);
    let queries = vec![
        ("as loaded", as_loaded),
        ("after `VACUUM ANALYZE`", vacuumed),
    ];
    if !config.keep {
        reset_schema(url, schema);
    }
    StoreReport {
        name,
        ingest: Ingest {
            store_first,
            store_all,
            raw_autocommit,
            raw_tx,
        },
        queries,
    }
}

fn main() {
    let config = Config::from_env();
    let data = Dataset::new(config.events);
    eprintln!(
        "audit store benchmark: {} events, raw inserts on {}, stores {:?}",
        config.events, config.raw_rows, config.stores
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
