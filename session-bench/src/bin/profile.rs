//! Runs one variant of one `compare` case in a loop, for a profiler:
//!
//! ```sh
//! cargo build --release -p session-bench --bin profile
//! valgrind --tool=callgrind target/release/profile e2e_memory_read ours 20000
//! perf record -g target/release/profile e2e_memory_read ours 2000000
//! ```
//!
//! Arguments: the case name (an end-to-end case of `compare`, the SQL ones included, `cookie_open_<N>B`,
//! `cookie_seal_<N>B`, `cookie_tampered_<N>B` for `N` bytes of session data,
//! `memory_store_load_100k` or `memory_store_save_100k`), the variant (`ours`, `peer`,
//! `baseline`, or `identity`: the baseline behind a layer that does nothing; for the cookie
//! cases `ours`, `peer`, and `ours_without` / `peer_without`: the same request without the
//! codec step, whose profile to subtract), and the iteration count.

use std::process::ExitCode;

use session_bench::cases::{self, Codec, Stores};
use session_bench::redis::RedisServer;
use session_bench::timing::{runtime, time_async};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [case, variant, iters] = args.as_slice() else {
        eprintln!("usage: profile <case> <ours|peer|baseline|identity|ours_without|peer_without> <iterations>");
        return ExitCode::FAILURE;
    };
    let Ok(iters) = iters.parse::<u64>() else {
        eprintln!("profile: the iteration count is not a number");
        return ExitCode::FAILURE;
    };
    match run(case, variant, iters) {
        Ok(elapsed) => {
            eprintln!(
                "{case} {variant}: {:.1} ns/op",
                elapsed.as_nanos() as f64 / iters as f64
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("profile: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    case: &str,
    variant: &str,
    iters: u64,
) -> Result<std::time::Duration, Box<dyn std::error::Error>> {
    let rt = &runtime()?;
    let cookie_case = ["cookie_open_", "cookie_seal_", "cookie_tampered_"]
        .into_iter()
        .find_map(|prefix| Some((prefix, case.strip_prefix(prefix)?)));
    if let Some((prefix, size)) = cookie_case {
        let bytes: usize = size.trim_end_matches('B').parse()?;
        let codec = rt.block_on(Codec::new(bytes))?;
        let (ours, peer) = match prefix {
            "cookie_open_" => (&codec.ours_open, Some(&codec.peer_open)),
            "cookie_seal_" => (&codec.ours_seal, Some(&codec.peer_seal)),
            _ => (&codec.ours_tampered, None),
        };
        let target = match (variant, peer) {
            ("ours", _) => &ours.with,
            ("ours_without", _) => &ours.without,
            ("peer", Some(peer)) => &peer.with,
            ("peer_without", Some(peer)) => &peer.without,
            _ => return Err(format!("no variant {variant} for {case}").into()),
        };
        return Ok(time_async(rt, iters, || target.call()));
    }
    if let Some(operation) = case
        .strip_prefix("memory_store_")
        .and_then(|rest| rest.strip_suffix("_100k"))
    {
        let stores = rt.block_on(Stores::new(100_000))?;
        let mut index = 0usize;
        let mut next = || {
            index = index.wrapping_add(7_919);
            index
        };
        return Ok(match (operation, variant) {
            ("load", "ours") => time_async(rt, iters, || stores.ours_load(next())),
            ("load", "peer") => time_async(rt, iters, || stores.peer_load(next())),
            ("save", "ours") => time_async(rt, iters, || stores.ours_save(next())),
            ("save", "peer") => time_async(rt, iters, || stores.peer_save(next())),
            _ => return Err(format!("no variant {variant} for {case}").into()),
        });
    }
    let _redis;
    let _sql;
    let cases = if case.starts_with("e2e_sqlite") || case.starts_with("e2e_postgres") {
        let databases = rt.block_on(cases::SqlDatabases::start());
        let cases = rt.block_on(cases::sql_end_to_end(&databases))?;
        _sql = databases;
        cases
    } else if case.starts_with("e2e_redis") {
        let server = RedisServer::start()?;
        let cases = rt.block_on(cases::redis_end_to_end(&server))?;
        _redis = server;
        cases
    } else {
        rt.block_on(cases::end_to_end())?
    };
    let Some(found) = cases.into_iter().find(|c| c.name == case) else {
        return Err(format!("no case {case}").into());
    };
    let target = match variant {
        "ours" => found.ours,
        "baseline" => found.baseline,
        "identity" => found
            .baseline
            .with_router(&session_bench::apps::identity_layered()),
        "peer" => found.peer.ok_or("this case has no peer")?,
        _ => return Err(format!("no variant {variant}").into()),
    };
    Ok(time_async(rt, iters, || target.call()))
}
