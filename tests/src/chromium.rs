//! Headless Chromium driven over the DevTools protocol (a WebSocket, JSON messages): open a
//! page, run JavaScript in it, wait for the page a navigation lands on. Debian's
//! `chromium`; a missing browser fails the test with an install hint.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const INSTALL_HINT: &str =
    "install it with `apt-get install chromium` (Debian/Ubuntu) or put `chromium` on PATH";

/// A hang guard, not a performance bound: a browser that says nothing for this long is
/// stuck, and the test fails saying so instead of hanging the suite.
const STUCK: Duration = Duration::from_secs(60);

/// The path of `chromium` on PATH, or a panic that says how to install it.
pub fn find_chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("chromium not found: {INSTALL_HINT}"))
}

/// One headless Chromium with its own profile, and one page (tab) in it.
pub struct Chromium {
    child: Child,
    profile: PathBuf,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
}

impl Chromium {
    /// Starts the browser and opens a blank page.
    pub async fn start() -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let program = find_chromium();
        let profile = std::env::temp_dir().join(format!(
            "session-runtime-chromium-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start chromium ({error}): {INSTALL_HINT}"));
        // Chromium prints where its DevTools endpoint listens; a thread reads its stderr
        // (and keeps draining it, so the browser never blocks on a full pipe).
        let stderr = child.stderr.take().unwrap();
        let (found, endpoint) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            let mut seen = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                match line.strip_prefix("DevTools listening on ") {
                    Some(url) => {
                        if let Some(found) = found.take() {
                            let _ = found.send(Ok(url.trim().to_owned()));
                        }
                    }
                    None if found.is_some() => {
                        seen.push_str(&line);
                        seen.push('\n');
                    }
                    None => {}
                }
            }
            if let Some(found) = found {
                let _ = found.send(Err(seen));
            }
        });
        let url = tokio::time::timeout(STUCK, endpoint)
            .await
            .expect("chromium did not start")
            .unwrap()
            .unwrap_or_else(|seen| panic!("chromium exited without a DevTools endpoint:\n{seen}"));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut browser = Self {
            child,
            profile,
            socket,
            session: String::new(),
            next_id: 0,
        };
        let target = browser
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.page("Page.enable", json!({})).await;
        browser
    }

    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        self.next_id
    }

    async fn next_message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(STUCK, self.socket.next())
                .await
                .expect("chromium stopped answering")
                .expect("chromium closed the DevTools connection")
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Sends a command and waits for its answer, skipping events; `load`: also waits for
    /// the page's `load` event (the command navigates).
    async fn run(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        load: bool,
    ) -> Value {
        let id = self.send(session, method, params).await;
        let (mut answer, mut loaded) = (None, !load);
        while answer.is_none() || !loaded {
            let message = self.next_message().await;
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                answer = Some(message["result"].clone());
            } else if message["method"] == "Page.loadEventFired" {
                loaded = true;
            }
        }
        answer.unwrap()
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.run(session, method, params, false).await
    }

    async fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.run(Some(&session), method, params, false).await
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn open(&mut self, url: &str) {
        let session = self.session.clone();
        self.run(Some(&session), "Page.navigate", json!({ "url": url }), true)
            .await;
    }

    /// Evaluates `expression` in the page and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .page(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Evaluates `expression`, which navigates (a form submission), and waits until the
    /// page it leads to has loaded.
    pub async fn eval_and_wait(&mut self, expression: &str) {
        let session = self.session.clone();
        self.run(
            Some(&session),
            "Runtime.evaluate",
            json!({ "expression": expression }),
            true,
        )
        .await;
    }

    /// The page's visible text.
    pub async fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's URL.
    pub async fn url(&mut self) -> String {
        self.eval("location.href")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Stop the browser and wait for it, so that its profile can be removed for good.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
