//! A TCP proxy on loopback that a test can cut and restore: the stand-in for "the database
//! server stopped and started again" that never touches the shared PostgreSQL other tests use.
//!
//! Cut: the listening socket closes (new connections are refused, as by a stopped server) and
//! every open tunnel is dropped (clients see their connections reset or closed, as when a
//! server shuts down). Restore: the same port listens again. Shared by the leaderboard, score
//! writer and chaos tests through `#[path]`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

pub struct OutageProxy {
    pub port: u16,
    target: SocketAddr,
    running: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tunnels: Arc<Mutex<JoinSet<()>>>,
}

impl OutageProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> OutageProxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let proxy = OutageProxy {
            port,
            target,
            running: Mutex::new(None),
            tunnels: Arc::new(Mutex::new(JoinSet::new())),
        };
        proxy.restore();
        proxy
    }

    /// `postgres://…@host:port/…` with the host and port replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"));
        format!(
            "{scheme}://{}127.0.0.1:{}/{path}",
            user.unwrap_or_default(),
            self.port
        )
    }

    /// Refuses new connections and drops the open ones.
    pub fn cut(&self) {
        if let Some(accepting) = self.running.lock().unwrap().take() {
            accepting.abort();
        }
        self.tunnels.lock().unwrap().abort_all();
    }

    /// Listens again on the same port.
    pub fn restore(&self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .unwrap();
        let listener = socket.listen(128).unwrap();
        let (target, tunnels) = (self.target, self.tunnels.clone());
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                tunnels.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.running.lock().unwrap() = Some(accepting);
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// The socket address of a `postgres://` URL (for the proxy's target).
pub fn postgres_address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    let authority = rest.split(['/', '?']).next().unwrap();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{port}").parse().expect("a numeric host")
}
