//! Real Redis servers for the tests, started by the tests themselves: a single
//! `redis-server`, or a 3-master Redis Cluster made with `redis-cli --cluster create`.
//!
//! Each server is a child process on a free loopback port with its own temporary directory
//! and no persistence; it is killed when its handle is dropped, also when a test panics.
//! Every test starts its own servers, so tests are independent and run in parallel. When
//! `redis-server` or `redis-cli` is not installed, starting one panics with an install hint:
//! the Redis tests never skip silently.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;

const INSTALL_HINT: &str = "install it with `apt-get install redis-server redis-tools` \
                            (Debian/Ubuntu) or put it on PATH";
/// A cluster node's bus port is its port plus this ([`crate::ports`] keeps both below
/// Linux's ephemeral range).
const CLUSTER_BUS_OFFSET: u16 = 10_000;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of `program` on PATH, or a panic that says how to install it.
pub fn find_program(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} not found: {INSTALL_HINT}"))
}

/// A fresh temporary directory, removed by [`RedisServer`]'s drop.
fn temp_dir(port: u16) -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "session-runtime-redis-{}-{}-{port}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One `redis-server` child process.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server on a free port and waits until it answers `PING`.
    pub async fn start() -> Self {
        Self::start_node(false).await
    }

    async fn start_node(cluster: bool) -> Self {
        let mut last_log = String::new();
        // A port found free can be taken before redis binds it: then try another.
        for _ in 0..10 {
            let port = crate::ports::free(if cluster { &[CLUSTER_BUS_OFFSET] } else { &[] });
            let mut server = Self {
                port,
                dir: temp_dir(port),
                cluster,
                child: None,
            };
            match server.spawn_and_wait().await {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not start; its last log:\n{last_log}");
    }

    /// Starts the process and waits for `PING`; on failure, returns the server's log.
    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let log = self.dir.join("redis.log");
        let mut command = Command::new(find_program("redis-server"));
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            // DEBUG SLEEP plays a Redis that is too slow.
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run redis-server: {error}; {INSTALL_HINT}"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!("exited with {status}:\n{log}"));
                }
            }
            if self.ping().await {
                return Ok(());
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                self.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("no PONG within {STARTUP_TIMEOUT:?}:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether our own `redis-server` answers on the port: its `INFO server` names the
    /// child's process id (another test's server that took the port while ours was down
    /// for a restart would answer too).
    async fn ping(&self) -> bool {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return false;
        };
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let attempt = async {
            let mut connection = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("INFO")
                .arg("server")
                .query_async::<String>(&mut connection)
                .await
                .ok()
        };
        let Ok(Some(info)) = tokio::time::timeout(Duration::from_millis(500), attempt).await else {
            return false;
        };
        info.lines()
            .any(|line| line.trim_end() == format!("process_id:{pid}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain connection for the test itself (to inspect or tamper with the data), without
    /// a response timeout (so it can wait out a `DEBUG SLEEP`).
    pub async fn connection(&self) -> MultiplexedConnection {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap()
    }

    /// Kills the server at once (SIGKILL: no goodbye to clients), keeping its port.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with an empty data set).
    pub async fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        loop {
            match self.spawn_and_wait().await {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(log) if started.elapsed() > STARTUP_TIMEOUT => {
                    panic!("redis-server did not restart on port {}:\n{log}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster create`,
    /// and waits until every node reports `cluster_state:ok`.
    pub async fn start() -> Self {
        let cli = find_program("redis-cli");
        let mut nodes = Vec::with_capacity(3);
        for _ in 0..3 {
            nodes.push(RedisServer::start_node(true).await);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = tokio::process::Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok().await;
        cluster
    }

    async fn wait_until_ok(&self) {
        let started = Instant::now();
        for node in &self.nodes {
            let mut connection = node.connection().await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(
                    started.elapsed() < STARTUP_TIMEOUT,
                    "cluster not ready on port {}:\n{info}",
                    node.port
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// One command as Redis' `MONITOR` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitored {
    /// Sent by a client (one round trip), as opposed to run by a Lua script.
    pub from_client: bool,
    /// The command name, upper case, and its arguments.
    pub args: Vec<Vec<u8>>,
}

impl Monitored {
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_uppercase()
    }

    pub fn arg(&self, index: usize) -> &[u8] {
        &self.args[index]
    }
}

/// Records every command some servers run, through `MONITOR`: Redis' own account of what
/// clients sent and what scripts ran.
pub struct Monitor {
    nodes: Vec<NodeMonitor>,
    marks: u32,
}

struct NodeMonitor {
    lines: Arc<Mutex<Vec<String>>>,
    admin: MultiplexedConnection,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    pub async fn start(server: &RedisServer) -> Self {
        Self::start_all([server]).await
    }

    /// Monitors every server given (the nodes of a cluster, say).
    pub async fn start_all<'a>(servers: impl IntoIterator<Item = &'a RedisServer>) -> Self {
        let mut nodes = Vec::new();
        for server in servers {
            let client = redis::Client::open(server.url()).unwrap();
            let monitor = client.get_async_monitor().await.unwrap();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            let task = tokio::spawn(async move {
                let mut stream = monitor.into_on_message::<String>();
                while let Some(line) = stream.next().await {
                    sink.lock().unwrap().push(line);
                }
            });
            nodes.push(NodeMonitor {
                lines,
                admin: server.connection().await,
                task,
            });
        }
        Self { nodes, marks: 0 }
    }

    /// Sends a marker command to every server and waits until each monitor has seen it, so
    /// that everything before it has been recorded too.
    async fn mark(&mut self) -> String {
        self.marks += 1;
        let marker = format!("monitor-mark-{}", self.marks);
        for node in &mut self.nodes {
            let _: String = redis::cmd("ECHO")
                .arg(&marker)
                .query_async(&mut node.admin)
                .await
                .unwrap();
            let started = Instant::now();
            while !node
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(&marker))
            {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "monitor is stuck"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        marker
    }

    /// The commands the servers ran while `work` ran (excluding the markers), server by
    /// server.
    pub async fn during<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Vec<Monitored>) {
        let start = self.mark().await;
        let output = work.await;
        let end = self.mark().await;
        let mut commands = Vec::new();
        for node in &self.nodes {
            let lines = node.lines.lock().unwrap();
            let from = lines.iter().position(|line| line.contains(&start)).unwrap();
            let to = lines.iter().position(|line| line.contains(&end)).unwrap();
            commands.extend(
                lines[from + 1..to]
                    .iter()
                    .map(|line| parse_monitor_line(line)),
            );
        }
        (output, commands)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.task.abort();
        }
    }
}

/// Parses `1700000000.123456 [0 127.0.0.1:5000] "HGETALL" "key"` (or `[0 lua]` for a
/// command run by a script); arguments are quoted with C-style escapes.
fn parse_monitor_line(line: &str) -> Monitored {
    let open = line.find('[').unwrap();
    let close = open + line[open..].find(']').unwrap();
    let from_client = !line[open..close].ends_with(" lua");
    let mut args = Vec::new();
    let mut chars = line[close + 1..].bytes().peekable();
    while let Some(byte) = chars.next() {
        if byte != b'"' {
            continue;
        }
        let mut arg = Vec::new();
        while let Some(byte) = chars.next() {
            match byte {
                b'"' => break,
                b'\\' => match chars.next().unwrap() {
                    b'n' => arg.push(b'\n'),
                    b'r' => arg.push(b'\r'),
                    b't' => arg.push(b'\t'),
                    b'a' => arg.push(7),
                    b'b' => arg.push(8),
                    b'x' => {
                        let hex = [chars.next().unwrap(), chars.next().unwrap()];
                        let hex = std::str::from_utf8(&hex).unwrap();
                        arg.push(u8::from_str_radix(hex, 16).unwrap());
                    }
                    other => arg.push(other),
                },
                other => arg.push(other),
            }
        }
        args.push(arg);
    }
    Monitored { from_client, args }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse_with_escapes() {
        let client = parse_monitor_line(
            r#"1700000000.123456 [0 127.0.0.1:5000] "EVALSHA" "ab" "1" "k\"\\\x01\n""#,
        );
        assert!(client.from_client);
        assert_eq!(client.name(), "EVALSHA");
        assert_eq!(client.arg(3), b"k\"\\\x01\n");
        let script = parse_monitor_line(r#"1700000000.1 [0 lua] "hset" "k" "a" "b""#);
        assert!(!script.from_client);
        assert_eq!(script.name(), "HSET");
    }
}
