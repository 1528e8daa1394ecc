//! Throughput over real HTTP: the no-session server, ours and the peers, each served by
//! `axum::serve` on a multi-thread Tokio runtime with one worker, driven over loopback by
//! `wrk`, in interleaved rounds; prints medians and ratios to the no-session server.
//!
//! ```sh
//! apt-get install -y wrk redis-server postgresql   # the load generator, Redis, PostgreSQL
//! cargo run --release -p session-bench --bin http
//! cargo run --release -p session-bench --bin http -- --rounds 3 --duration 1 --stores memory,cookie
//! ```
//!
//! Every server is a child process of this binary (`http serve <variant> <store>`), pinned
//! to CPU 0 with `taskset`, and `wrk` (one thread, 8 connections) is pinned to CPU 1, so
//! that the load generator never takes the server's CPU; with fewer than two CPUs, or no
//! `taskset`, nothing is pinned and the output says so. Redis and PostgreSQL (started by
//! this binary, as for `compare`) are not pinned; SQLite is a file in a temporary directory,
//! one per server.
//!
//! Why `wrk`: it is a small C program built for exactly this (epoll, keep-alive
//! connections, a fixed request), so its cost per request is low and stable and does not
//! change with this workspace's code. A Rust client on hyper would share the allocator and
//! the Tokio version under test and cost more per request on the same two CPUs.
//!
//! Two tables: requests per second (what the issue's targets are stated in; on a machine
//! shared with other work it measures the scheduler as much as the code), and the server's
//! CPU time per request, read from `/proc/<pid>/task/*/schedstat` around each run, which
//! stays meaningful when the server does not get a whole CPU.
//!
//! Options: `--rounds N` (5), `--duration S` seconds per run (2), `--connections C` (8),
//! `--stores memory,cookie,redis,sqlite,postgres` (all), `--routes plain,read,write` (all).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};

use integration_tests::postgres_harness::PostgresServer;
use integration_tests::temp::TempDir;
use session_bench::apps::SetupError;
use session_bench::redis::RedisServer;
use session_bench::servers::{prepare, Store, Variant};

const WRK_HINT: &str = "the HTTP benchmark drives its servers with wrk: install it with \
                        `apt-get install -y wrk`";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        _ => Options::parse(&args).and_then(|options| bench(&options)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("http: {error}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

// ---------------------------------------------------------------------------------------
// The server side: `http serve <variant> <store> [redis-url]`.

/// Serves one variant on a free loopback port: prints `READY <port> <cookie>` once it
/// listens, then serves until its standard input closes (the parent exited or killed it).
fn serve(args: &[String]) -> Result<(), Error> {
    let (variant, store) =
        match args {
            [variant, store, ..] => (
                Variant::parse(variant).ok_or("unknown variant")?,
                Store::parse(store).ok_or("unknown store")?,
            ),
            _ => return Err(
                "usage: http serve <none|ours|peer> <memory|cookie|redis|sqlite|postgres> [url]"
                    .into(),
            ),
        };
    let url = args.get(2).cloned();
    // The parent going away closes our stdin: then stop.
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .is_ok_and(|read| read > 0)
        {
            sink.clear();
        }
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let prepared = prepare(variant, store, url.as_deref()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        println!("READY {port} {}", prepared.cookie.to_str()?);
        axum::serve(listener, prepared.router).await?;
        Ok(())
    })
}

/// A running server child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    cookie: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(
        variant: Variant,
        store: Store,
        url: Option<&str>,
        pin: Option<&str>,
    ) -> Result<Self, Error> {
        let exe = std::env::current_exe()?;
        let mut command = match pin {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpu]).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command.args(["serve", variant.name(), store.name()]);
        if let Some(url) = url {
            command.arg(url);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let mut parts = line.trim_end().splitn(3, ' ');
        let (Some("READY"), Some(port), Some(cookie)) = (parts.next(), parts.next(), parts.next())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the {} {} server did not start (it said {line:?})",
                variant.name(),
                store.name()
            )
            .into());
        };
        Ok(Self {
            port: port.parse()?,
            cookie: cookie.to_owned(),
            child,
            _stdout: stdout,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The load side.

struct Options {
    rounds: usize,
    duration: u32,
    connections: u32,
    stores: Vec<Store>,
    routes: Vec<&'static str>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, Error> {
        let mut options = Self {
            rounds: 5,
            duration: 2,
            connections: 8,
            stores: Store::ALL.to_vec(),
            routes: vec!["plain", "read", "write"],
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--rounds" => options.rounds = value.parse()?,
                "--duration" => options.duration = value.parse()?,
                "--connections" => options.connections = value.parse()?,
                "--stores" => {
                    options.stores = value
                        .split(',')
                        .map(|name| Store::parse(name).ok_or(format!("unknown store {name}")))
                        .collect::<Result<_, _>>()?;
                }
                "--routes" => {
                    options.routes = value
                        .split(',')
                        .map(|name| {
                            ["plain", "read", "write"]
                                .into_iter()
                                .find(|route| *route == name)
                                .ok_or(format!("unknown route {name}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unknown option {flag}").into()),
            }
        }
        if options.rounds == 0 || options.duration == 0 {
            return Err("rounds and duration must be at least 1".into());
        }
        Ok(options)
    }
}

/// One thing measured: a route of one server.
struct Target<'a> {
    label: String,
    route: &'static str,
    store: Option<Store>,
    variant: Variant,
    server: &'a Server,
    /// Requests per second, one per round.
    rates: Vec<f64>,
    /// The server's CPU time per request in µs, one per round.
    cpu: Vec<f64>,
}

fn bench(options: &Options) -> Result<(), Error> {
    check_wrk()?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pinned = cpus >= 2 && which("taskset");
    let (server_cpu, client_cpu) = if pinned {
        (Some("0"), Some("1"))
    } else {
        (None, None)
    };
    eprintln!(
        "{}",
        if pinned {
            "servers pinned to CPU 0, wrk to CPU 1".to_owned()
        } else {
            format!("not pinned ({cpus} CPUs, taskset {})", which("taskset"))
        }
    );
    let redis = if options.stores.contains(&Store::Redis) {
        Some(RedisServer::start()?)
    } else {
        None
    };
    let redis_url = redis.as_ref().map(RedisServer::url);
    // PostgreSQL is started (and stopped, when dropped) by the test harness, on a runtime of
    // its own; SQLite files go in a temporary directory removed at the end.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let postgres = options
        .stores
        .contains(&Store::Postgres)
        .then(|| runtime.block_on(PostgresServer::start()));
    let sqlite = TempDir::new("bench-http-sqlite");
    let none = Server::start(Variant::None, Store::Memory, None, server_cpu)?;
    let mut servers = Vec::new();
    for &store in &options.stores {
        for variant in [Variant::Ours, Variant::Peer] {
            let url = match store {
                Store::Memory | Store::Cookie => None,
                Store::Redis => redis_url.clone(),
                Store::Sqlite => Some(sqlite.sqlite_url(&format!("{}.db", variant.name()))),
                Store::Postgres => postgres.as_ref().map(|server| server.url("postgres")),
            };
            servers.push((
                store,
                variant,
                Server::start(variant, store, url.as_deref(), server_cpu)?,
            ));
        }
    }
    let mut targets = Vec::new();
    for &route in &options.routes {
        targets.push(Target {
            label: format!("none /{route}"),
            route,
            store: None,
            variant: Variant::None,
            server: &none,
            rates: Vec::new(),
            cpu: Vec::new(),
        });
        for (store, variant, server) in &servers {
            targets.push(Target {
                label: format!("{} {} /{route}", variant.name(), store.name()),
                route,
                store: Some(*store),
                variant: *variant,
                server,
                rates: Vec::new(),
                cpu: Vec::new(),
            });
        }
    }
    // Warm-up: every target once, briefly (connections, allocator, caches, JIT-free but
    // lazily initialised state such as the Redis scripts).
    for target in &targets {
        wrk(target, 1, options.connections, client_cpu)?;
    }
    for round in 0..options.rounds {
        eprintln!("round {} of {} ({})", round + 1, options.rounds, load());
        // Rotate the order each round, so that no target is always first or last.
        let len = targets.len();
        for step in 0..len {
            let index = (step + round * 7) % len;
            let target = &targets[index];
            let before = cpu_ns(target.server.child.id());
            let run = wrk(target, options.duration, options.connections, client_cpu)?;
            let cpu = cpu_ns(target.server.child.id()).saturating_sub(before) as f64
                / 1000.0
                / run.requests.max(1) as f64;
            eprintln!(
                "  {:<26} {:>10.0} req/s {:>7.2} µs CPU/request",
                target.label, run.rate, cpu
            );
            targets[index].rates.push(run.rate);
            targets[index].cpu.push(cpu);
        }
    }
    report(options, &targets);
    Ok(())
}

fn report(options: &Options, targets: &[Target<'_>]) {
    println!(
        "\nreq/s: medians of {} interleaved rounds of {} s (wrk -t1 -c{}); ratios per round, \
         then the median (min–max)\n",
        options.rounds, options.duration, options.connections
    );
    println!(
        "| route | store | no session | ours | ours / none | peer | peer / none | ours / peer (> 1: ours faster) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &route in &options.routes {
        let find = |store: Option<Store>, variant: Variant| {
            targets
                .iter()
                .find(|t| t.route == route && t.store == store && t.variant == variant)
        };
        let Some(none) = find(None, Variant::None) else {
            continue;
        };
        for &store in &options.stores {
            let (Some(ours), Some(peer)) = (
                find(Some(store), Variant::Ours),
                find(Some(store), Variant::Peer),
            ) else {
                continue;
            };
            println!(
                "| /{route} | {} | {} | {} | {} | {} | {} | {} |",
                store.name(),
                thousands(median(&none.rates)),
                thousands(median(&ours.rates)),
                ratio(&ours.rates, &none.rates),
                thousands(median(&peer.rates)),
                ratio(&peer.rates, &none.rates),
                ratio(&ours.rates, &peer.rates),
            );
        }
    }
    println!(
        "\nThe server's CPU time per request (µs, all its threads, from /proc schedstat): \
         medians; \"none / ours\" is the throughput a fully busy CPU would allow, relative to \
         the no-session server, per round then the median (min–max). Steadier than req/s on \
         a shared machine.\n"
    );
    println!("| route | store | no session µs | ours µs | none / ours | peer µs | none / peer | peer / ours (> 1: ours cheaper) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &route in &options.routes {
        let find = |store: Option<Store>, variant: Variant| {
            targets
                .iter()
                .find(|t| t.route == route && t.store == store && t.variant == variant)
        };
        let Some(none) = find(None, Variant::None) else {
            continue;
        };
        for &store in &options.stores {
            let (Some(ours), Some(peer)) = (
                find(Some(store), Variant::Ours),
                find(Some(store), Variant::Peer),
            ) else {
                continue;
            };
            println!(
                "| /{route} | {} | {:.2} | {:.2} | {} | {:.2} | {} | {} |",
                store.name(),
                median(&none.cpu),
                median(&ours.cpu),
                ratio(&none.cpu, &ours.cpu),
                median(&peer.cpu),
                ratio(&none.cpu, &peer.cpu),
                ratio(&peer.cpu, &ours.cpu),
            );
        }
    }
    println!("\n{}", load());
}

/// The CPU time all threads of process `pid` have used so far, in ns (0 if unknown).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => sorted[len / 2],
        len => (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0,
    }
}

/// The median and range of the per-round ratios `a / b`.
fn ratio(a: &[f64], b: &[f64]) -> String {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({min:.2}–{max:.2})", median(&ratios))
}

fn thousands(rate: f64) -> String {
    format!("{:.1}k", rate / 1000.0)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "load average unknown".to_owned(),
        |text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            format!("load average {}", fields.join(" "))
        },
    )
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn check_wrk() -> Result<(), Error> {
    match Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(SetupError(WRK_HINT.to_owned()).into())
        }
        Err(error) => Err(format!("cannot run wrk: {error}; {WRK_HINT}").into()),
    }
}

/// Runs wrk against `target` for `seconds` and returns its requests per second; fails on
/// any non-2xx answer or socket error, so that a broken server is never measured as fast.
/// What one wrk run measured.
struct Run {
    rate: f64,
    requests: u64,
}

fn wrk(
    target: &Target<'_>,
    seconds: u32,
    connections: u32,
    pin: Option<&str>,
) -> Result<Run, Error> {
    let url = format!("http://127.0.0.1:{}/{}", target.server.port, target.route);
    let mut command = match pin {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", cpu, "wrk"]);
            command
        }
        None => Command::new("wrk"),
    };
    command
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--timeout", "5s", "-H"])
        .arg(format!("Cookie: {}", target.server.cookie))
        .arg(&url);
    let output = command.output().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Error::from(WRK_HINT),
        _ => Error::from(format!("cannot run wrk: {error}")),
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed on {}: {}{}",
            target.label,
            text,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    for bad in ["Non-2xx or 3xx responses", "Socket errors"] {
        if text.contains(bad) {
            return Err(format!("{}: {bad}:\n{text}", target.label).into());
        }
    }
    let rate = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse::<f64>().ok());
    // "  123456 requests in 2.00s, 15.21MB read"
    let requests = text
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok());
    match (rate, requests) {
        (Some(rate), Some(requests)) => Ok(Run { rate, requests }),
        _ => Err(format!(
            "no Requests/sec or request count in wrk's output for {}:\n{text}",
            target.label
        )
        .into()),
    }
}
