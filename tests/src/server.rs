//! A real axum server on 127.0.0.1 and a real HTTP client.

use std::net::SocketAddr;

use axum::Router;

/// A running test server; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves `app` on a free loopback port.
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // With the peer's address in each request, as apps that track client addresses
            // serve themselves.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, task }
    }

    /// Serves `app` on a free loopback port, recording each connection's peer address
    /// (axum's `ConnectInfo<SocketAddr>`, which client-address tracking reads).
    pub async fn start_with_peers(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client with its own cookie jar, like one browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// A client without a cookie jar: every cookie is explicit.
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// The value of cookie `name` set by a response, if any.
pub fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response).iter().find_map(|header| {
        let first = header.split(';').next()?;
        let (key, value) = first.split_once('=')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}
