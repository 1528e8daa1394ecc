//! Listing an owner's sessions on the SQL stores (issue 14): fills a SQLite file and a
//! PostgreSQL database with sessions spread over owners, then times
//! [`SessionStore::owned_by`] for random owners: median and 99th percentile.
//!
//! ```sh
//! cargo run --release -p session-bench --bin owners_sql
//! cargo run --release -p session-bench --bin owners_sql -- --sessions 200000 --stores postgres
//! DATABASE_URL=postgres://user@host/db cargo run --release -p session-bench --bin owners_sql
//! ```
//!
//! PostgreSQL is started by the test harness (`initdb` into a temporary directory, removed
//! afterwards) unless `DATABASE_URL` names one (a table `owners_bench` is made there, and
//! dropped at the end).
//!
//! The fill is a bulk load in the store's own row format (multi-row `INSERT`s of 1,000 rows,
//! in transactions of 20,000): each row is what `create` writes for a session whose record
//! holds a 16-byte field and the owner (`__owner`, a MessagePack string), with the `owner`
//! column set. Session `i` belongs to owner `i % owners`, so every owner has
//! `sessions / owners` sessions. Then `ANALYZE` (what autovacuum does on its own on a table
//! that grew), then the listings, each checked to return exactly that owner's sessions.
//! For contrast, one `count` (which reads every row) is timed too.
//!
//! Options: `--sessions N` (1,000,000), `--owners M` (100,000), `--lists L` (1,000),
//! `--stores sqlite,postgres` (both).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use integration_tests::postgres_harness::PostgresServer;
use integration_tests::temp::TempDir;
use session_runtime::store::SessionStore;
use session_runtime::{PostgresStore, SessionId, SqliteStore};

type Error = Box<dyn std::error::Error>;

/// Rows per `INSERT`.
const ROWS_PER_INSERT: usize = 1_000;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: usize = 20_000;

struct Options {
    sessions: usize,
    owners: usize,
    lists: usize,
    stores: Vec<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, Error> {
        let mut options = Self {
            sessions: 1_000_000,
            owners: 100_000,
            lists: 1_000,
            stores: vec!["sqlite".into(), "postgres".into()],
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--sessions" => options.sessions = value.parse()?,
                "--owners" => options.owners = value.parse()?,
                "--lists" => options.lists = value.parse()?,
                "--stores" => options.stores = value.split(',').map(str::to_owned).collect(),
                other => return Err(format!("unknown option {other}").into()),
            }
        }
        if options.owners == 0 || options.sessions < options.owners {
            return Err("need at least one owner, and at least as many sessions as owners".into());
        }
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Options::parse(&args).and_then(|options| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(run(&options))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("owners_sql: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), Error> {
    println!(
        "{} sessions over {} owners ({} each), {} lists of random owners",
        options.sessions,
        options.owners,
        options.sessions / options.owners,
        options.lists
    );
    println!("| store | fill | fill rate | owned_by median | owned_by p99 | count (reads all) |");
    println!("|---|---|---|---|---|---|");
    for store in &options.stores {
        match store.as_str() {
            "sqlite" => sqlite(options).await?,
            "postgres" => postgres(options).await?,
            other => return Err(format!("unknown store {other}").into()),
        }
    }
    Ok(())
}

async fn sqlite(options: &Options) -> Result<(), Error> {
    let dir = TempDir::new("owners-bench");
    let store = SqliteStore::connect(&dir.sqlite_url("sessions.db")).await?;
    store.migrate().await?;
    let pool = store.pool().clone();
    let started = Instant::now();
    for batch in batches(options) {
        let mut tx = pool.begin().await?;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql("\"http_sessions\"", chunk.len(), |n| format!("?{n}"), "");
            bind_rows(sqlx::query(&sql), chunk)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let fill = started.elapsed();
    sqlx::query("ANALYZE").execute(&pool).await?;
    report("SQLite (temp file, WAL)", options, &store, fill).await
}

async fn postgres(options: &Options) -> Result<(), Error> {
    let (url, _server, table) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None, "owners_bench"),
        Err(_) => {
            let server = PostgresServer::start().await;
            (server.url("postgres"), Some(server), "http_sessions")
        }
    };
    let store = PostgresStore::builder()
        .table(table)
        // The bulk statements are large; listings are not.
        .query_timeout(Duration::from_secs(120))
        .connect(&url)
        .await?;
    store.migrate().await?;
    let pool = store.pool().clone();
    let quoted = format!("\"{table}\"");
    let started = Instant::now();
    for batch in batches(options) {
        let mut tx = pool.begin().await?;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(&quoted, chunk.len(), |n| format!("${n}"), "::jsonb");
            bind_rows(sqlx::query(&sql), chunk)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    let fill = started.elapsed();
    sqlx::query(&format!("ANALYZE {quoted}"))
        .execute(&pool)
        .await?;
    let result = report("PostgreSQL (local server)", options, &store, fill).await;
    if table == "owners_bench" {
        for drop in ["owners_bench", "owners_bench_migrations"] {
            sqlx::query(&format!("DROP TABLE IF EXISTS \"{drop}\""))
                .execute(&pool)
                .await?;
        }
    }
    result
}

/// One session row as `create` writes it.
struct Fill {
    id: [u8; 32],
    now: i64,
    expires: i64,
    fields: String,
    owner: String,
}

/// The rows to insert, a transaction's worth at a time.
fn batches(options: &Options) -> impl Iterator<Item = Vec<Fill>> + '_ {
    let now = i64::try_from(session_bench::cases::now_ms()).unwrap_or(i64::MAX);
    let data = STANDARD_NO_PAD.encode([7u8; 16]);
    (0..options.sessions)
        .step_by(ROWS_PER_TRANSACTION)
        .map(move |start| {
            (start..options.sessions.min(start + ROWS_PER_TRANSACTION))
                .map(|i| {
                    let owner = owner_of(i % options.owners);
                    let mut packed = Vec::new();
                    // Writing to a Vec cannot fail.
                    let _ = rmp::encode::write_str(&mut packed, &owner);
                    let fields = serde_json::json!({
                        "__owner": STANDARD_NO_PAD.encode(&packed),
                        "data": data,
                    })
                    .to_string();
                    Fill {
                        id: SessionId::generate().map_or([0; 32], |id| *id.digest().as_bytes()),
                        now,
                        expires: now + 86_400_000,
                        fields,
                        owner,
                    }
                })
                .collect()
        })
}

fn owner_of(index: usize) -> String {
    format!("user-{index}")
}

/// `INSERT` of `rows` rows into `table`, with placeholders made by `placeholder`.
fn insert_sql(
    table: &str,
    rows: usize,
    placeholder: impl Fn(usize) -> String,
    json_cast: &str,
) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let p = |column: usize| placeholder(row * 6 + column);
            format!(
                "({}, 1, {}, {}, {}, {}{json_cast}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6)
            )
        })
        .collect();
    format!(
        "INSERT INTO {table} (id, version, created_ms, seen_ms, expires_ms, fields, owner) VALUES {}",
        values.join(", ")
    )
}

fn bind_rows<'q, DB: sqlx::Database>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    rows: &'q [Fill],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for row in rows {
        query = query
            .bind(row.id.as_slice())
            .bind(row.now)
            .bind(row.now)
            .bind(row.expires)
            .bind(row.fields.as_str())
            .bind(row.owner.as_str());
    }
    query
}

/// Times the listings and one count, and prints the table row.
async fn report(
    name: &str,
    options: &Options,
    store: &impl SessionStore,
    fill: Duration,
) -> Result<(), Error> {
    let now = session_bench::cases::now_ms();
    let each = options.sessions / options.owners;
    // A fixed xorshift: the same owners every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut times = Vec::with_capacity(options.lists);
    for _ in 0..options.lists {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let owner = owner_of(usize::try_from(state % options.owners as u64)?);
        let started = Instant::now();
        let listed = store.owned_by(&owner, now).await?;
        times.push(started.elapsed());
        if listed.len() < each || listed.len() > each + 1 {
            return Err(format!("{owner}: {} sessions listed, not {each}", listed.len()).into());
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    let started = Instant::now();
    let counted = store.count(now).await?;
    let count = started.elapsed();
    if counted != options.sessions as u64 {
        return Err(format!("count says {counted}, not {}", options.sessions).into());
    }
    let rate = options.sessions as f64 / fill.as_secs_f64();
    println!(
        "| {name} | {:.1} s | {:.0} rows/s | {} | {} | {} |",
        fill.as_secs_f64(),
        rate,
        micros(median),
        micros(p99),
        micros(count)
    );
    Ok(())
}

fn micros(duration: Duration) -> String {
    let us = duration.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{us:.0} µs")
    }
}
