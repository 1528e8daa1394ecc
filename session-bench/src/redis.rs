//! A throwaway `redis-server` on a free loopback port, for the Redis cases. A missing
//! `redis-server` is an error with an install hint, never a silently skipped case.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apps::SetupError;

const INSTALL_HINT: &str =
    "the Redis cases need redis-server: install it with `apt-get install -y redis-server redis-tools`";

/// A `redis-server` child process, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1, without persistence, and waits
    /// until it accepts connections.
    ///
    /// # Errors
    /// If `redis-server` is not installed, or does not come up within 10 seconds.
    pub fn start() -> Result<Self, SetupError> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => SetupError(INSTALL_HINT.to_owned()),
                _ => SetupError(format!("cannot run redis-server: {error}; {INSTALL_HINT}")),
            })?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(SetupError(format!(
                    "redis-server exited at start: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(SetupError(format!(
                    "redis-server did not accept connections on port {port} within 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.port = port;
        Ok(server)
    }

    /// The server's URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, SetupError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| SetupError(format!("no free loopback port: {error}")))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| SetupError(format!("no free loopback port: {error}")))
}
