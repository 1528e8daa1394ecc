//! Real PostgreSQL servers for the tests, started by the tests themselves, and a proxy that
//! counts what the client sends them.
//!
//! A server is `initdb` into a temporary directory, then `postgres` on a free loopback
//! port, with trust authentication and durability off (tests need no crash safety). When
//! the tests run as root, both run as the `postgres` user (or `nobody`), since PostgreSQL
//! refuses to run as root. Each server is watched by a small shell that owns it and reads
//! its standard input: when the test process ends, however it ends, the pipe closes and
//! the shell stops the server and removes its directory, so no server outlives its tests.
//!
//! Most tests share one server per test binary ([`shared`]) and get a schema of their own
//! ([`Database::fresh_schema`]), which is cheap and keeps them independent; tests that stop
//! the server start their own ([`PostgresServer::start`]). When the PostgreSQL binaries are
//! not installed, starting one panics with an install hint: the tests never skip.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTALL_HINT: &str = "install PostgreSQL's server with `apt-get install postgresql` \
                            (Debian/Ubuntu; its binaries are found in /usr/lib/postgresql/<version>/bin) \
                            or put `initdb` and `postgres` on PATH";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory holding `initdb` and `postgres`: on PATH, or Debian's versioned directory
/// (newest version first).
fn bin_dir() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!("PostgreSQL's initdb and postgres not found: {INSTALL_HINT}"),
    }
}

/// The user to run PostgreSQL as when we are root; `None` when we are not.
fn run_as() -> Option<&'static str> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let known = |user: &str| {
        Command::new("getent")
            .args(["passwd", user])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    Some(if known("postgres") {
        "postgres"
    } else {
        "nobody"
    })
}

/// `program` with `args`, as `user` when given (`setpriv`, which execs: no extra process).
fn command_as(user: Option<&str>, program: &str, args: &[&str]) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("setpriv");
            command.args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
                "--",
                program,
            ]);
            command.args(args);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }
}

/// The shell that owns one `postgres`: `stop` and `start` on its standard input stop and
/// start the server (each answered with a line on its standard output); end of input
/// stops it for good and removes its directory.
const WATCHDOG: &str = r#"
start() {
  "$BIN/postgres" -D "$DIR/data" -p "$PORT" -k "$DIR" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=300 -c shared_buffers=32MB >>"$DIR/server.log" 2>&1 &
  pid=$!
}
start
echo started
while read -r command; do
  case "$command" in
    stop) kill -INT "$pid"; wait "$pid"; echo stopped ;;
    start) start; echo started ;;
  esac
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$DIR"
"#;

/// One PostgreSQL server: its own directory, port and `postgres` process.
pub struct PostgresServer {
    port: u16,
    dir: PathBuf,
    watchdog: Child,
    /// The watchdog's input and output: `None` only while a command is under way.
    control: Option<Control>,
}

struct Control {
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl Control {
    /// Sends `command` and waits for `answer` (blocking: the server may take a while).
    fn tell(&mut self, command: &str, answer: &str) {
        writeln!(self.commands, "{command}").unwrap();
        self.commands.flush().unwrap();
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            answer,
            "the PostgreSQL watchdog did not {command}"
        );
    }
}

impl PostgresServer {
    /// Starts a new server and waits until it accepts connections.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("starting PostgreSQL panicked")
            .ready()
            .await
    }

    fn start_blocking() -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        let user = run_as();
        let dir = std::env::temp_dir().join(format!(
            "session-runtime-pg-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(user) = user {
            let owned = Command::new("chown")
                .args([user, dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(owned.success(), "chown {user} {}", dir.display());
        }
        let initdb = bin.join("initdb");
        let data = dir.join("data");
        let output = command_as(
            user,
            initdb.to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}; {INSTALL_HINT}", initdb.display()));
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = crate::ports::free(&[]);
        let mut watchdog = command_as(user, "sh", &["-c", WATCHDOG])
            .env("BIN", &bin)
            .env("DIR", &dir)
            .env("PORT", port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let commands = watchdog.stdin.take().unwrap();
        let mut answers = BufReader::new(watchdog.stdout.take().unwrap());
        let mut line = String::new();
        answers.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "started");
        Self {
            port,
            dir,
            watchdog,
            control: Some(Control { commands, answers }),
        }
    }

    /// Waits until the server accepts connections (and runs queries); panics with the
    /// server's log if it does not within the start-up timeout or its process ended.
    async fn ready(mut self) -> Self {
        let started = Instant::now();
        loop {
            use sqlx::Connection as _;
            if let Ok(mut connection) = sqlx::PgConnection::connect(&self.url("postgres")).await {
                if sqlx::query("SELECT 1")
                    .execute(&mut connection)
                    .await
                    .is_ok()
                {
                    return self;
                }
            }
            let ended = self.watchdog.try_wait().ok().flatten().is_some();
            if ended || started.elapsed() > STARTUP_TIMEOUT {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("PostgreSQL did not start on port {}:\n{log}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` as the superuser `postgres`, without TLS.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Runs `command` on a blocking thread, so that the runtime (and the requests it
    /// serves meanwhile) does not wait for the server's shutdown or start.
    async fn tell(&mut self, command: &'static str, answer: &'static str) {
        let mut control = self.control.take().unwrap();
        let control = tokio::task::spawn_blocking(move || {
            control.tell(command, answer);
            control
        })
        .await
        .unwrap();
        self.control = Some(control);
    }

    /// Stops the server (fast shutdown: connections are cut), keeping its data.
    pub async fn stop(&mut self) {
        self.tell("stop", "stopped").await;
    }

    /// Starts the stopped server again on the same port and waits until it is ready.
    pub async fn restart(mut self) -> Self {
        self.tell("start", "started").await;
        self.ready().await
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // End of input: the watchdog stops the server and removes its directory.
        drop(self.control.take());
        let _ = self.watchdog.wait();
    }
}

/// One connection to a server that is up, for the harness itself.
async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test PostgreSQL: {error}"))
}

/// The server shared by the tests of this test binary, started by the first that asks. It
/// lives as long as the process (its watchdog stops it when the process ends).
pub async fn shared() -> &'static Database {
    static SERVER: OnceLock<Database> = OnceLock::new();
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _starting = STARTING.lock().await;
    if let Some(database) = SERVER.get() {
        return database;
    }
    // The server does not depend on the runtime that started it: it outlives this test.
    let database = PostgresServer::start().await;
    let url = database.url("postgres");
    SERVER.get_or_init(|| Database {
        server: Mutex::new(Some(database)),
        url,
    })
}

/// The shared server, as the tests see it.
pub struct Database {
    server: Mutex<Option<PostgresServer>>,
    url: String,
}

impl Database {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new schema no other test uses, created empty.
    pub async fn fresh_schema(&self) -> String {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "t{}_{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut connect(&self.url).await)
            .await
            .unwrap();
        schema
    }

    pub fn port(&self) -> u16 {
        self.server.lock().unwrap().as_ref().unwrap().port()
    }
}

/// What a client sent through a [`WireCounter`], message by message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// One statement executed (extended protocol): the first word of its SQL (`SELECT`,
    /// `UPDATE`, ..).
    Statement(String),
    /// A statement prepared (sent once per connection and statement).
    Prepare(String),
    /// A simple-protocol query (`Q`), by its first word.
    Query(String),
    /// A `Sync`: the client waits for the server's answer. One closing statements is their
    /// round trip; a lone one is the pool checking a connection.
    Sync { after_statements: bool },
}

/// A TCP proxy in front of a real PostgreSQL that decodes the frames clients send and
/// records them, so a test can count statements and round trips exactly.
pub struct WireCounter {
    port: u16,
    sent: Arc<Mutex<Vec<Sent>>>,
    /// Bytes the clients sent after their start-up messages.
    bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl WireCounter {
    pub async fn start(upstream_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let record = Arc::clone(&sent);
        let counted = Arc::clone(&bytes);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).await
                    else {
                        return;
                    };
                    let (mut from_client, to_client_writer) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    let mut to_client = to_client_writer;
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    });
                    let _ = relay_client(&mut from_client, &mut to_server, &record, &counted).await;
                });
            }
        });
        Self { port, sent, bytes }
    }

    /// The bytes clients sent since the last call (message frames, start-up excluded).
    pub fn take_bytes(&self) -> usize {
        self.bytes.swap(0, Ordering::SeqCst)
    }

    /// The URL of `database` through the proxy.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// What was sent since the last call.
    pub fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }

    /// The statements sent since the last call, by their first word, leaving pool checks
    /// aside; and the number of round trips they took.
    pub fn statements(&self) -> (Vec<String>, usize) {
        let sent = self.take();
        let statements = sent
            .iter()
            .filter_map(|sent| match sent {
                Sent::Statement(word) | Sent::Query(word) => Some(word.clone()),
                _ => None,
            })
            .collect();
        let round_trips = sent
            .iter()
            .filter(|sent| {
                matches!(
                    sent,
                    Sent::Sync {
                        after_statements: true
                    } | Sent::Query(_)
                )
            })
            .count();
        (statements, round_trips)
    }
}

/// Copies the client's bytes to the server, recording each frame: the untyped start-up
/// message first, then typed messages (`type`, `i32` length, body).
async fn relay_client(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    record: &Mutex<Vec<Sent>>,
    bytes: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<()> {
    let mut length = [0u8; 4];
    from.read_exact(&mut length).await?;
    let mut startup = vec![0u8; (u32::from_be_bytes(length) as usize).saturating_sub(4)];
    from.read_exact(&mut startup).await?;
    to.write_all(&length).await?;
    to.write_all(&startup).await?;
    let mut prepared: HashMap<String, String> = HashMap::new();
    let mut bound = String::new();
    let mut since_sync = false;
    loop {
        let mut header = [0u8; 5];
        from.read_exact(&mut header).await?;
        let kind = header[0];
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        from.read_exact(&mut body).await?;
        to.write_all(&header).await?;
        to.write_all(&body).await?;
        bytes.fetch_add(header.len() + body.len(), Ordering::SeqCst);
        let strings = |body: &[u8]| -> Vec<String> {
            body.split(|&byte| byte == 0)
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect()
        };
        let first_word = |sql: &str| {
            sql.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_uppercase()
        };
        let event = match kind {
            b'P' => {
                let parts = strings(&body);
                prepared.insert(parts[0].clone(), parts[1].clone());
                since_sync = true;
                Some(Sent::Prepare(first_word(&parts[1])))
            }
            b'B' => {
                let parts = strings(&body);
                bound = prepared.get(&parts[1]).cloned().unwrap_or_default();
                None
            }
            b'E' => {
                since_sync = true;
                Some(Sent::Statement(first_word(&bound)))
            }
            b'Q' => Some(Sent::Query(first_word(&strings(&body)[0]))),
            b'S' => {
                let event = Sent::Sync {
                    after_statements: since_sync,
                };
                since_sync = false;
                Some(event)
            }
            b'X' => return Ok(()),
            _ => None,
        };
        if let Some(event) = event {
            record.lock().unwrap().push(event);
        }
    }
}
