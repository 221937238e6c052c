//! Shared pieces of the node's integration tests: a real node on 127.0.0.1:0 and players that
//! speak the real protocol over real WebSockets.

#![allow(dead_code)] // each test binary uses a different subset

pub mod counter;

use std::net::SocketAddr;
use std::time::Duration;

use coil_arena::client::ClientMirror;
use coil_protocol::arena::{Input, encode_input, encode_respawn};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{Join, ServerEnvelope, decode_server_envelope, encode_join};
use coil_protocol::{PROTOCOL_V11, PROTOCOL_V12};
use coil_server::NodeConfig;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestNode {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub data_dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts the all-in-one shape (node + in-process directory + matchmaker), storing match
    /// results in its database as `coil serve` does.
    pub async fn start(adjust: impl FnOnce(&mut NodeConfig)) -> TestNode {
        TestNode::start_node(adjust, Vec::new(), None).await
    }

    /// Starts the all-in-one shape with the built-in modes and `extra` ones, reporting match
    /// results and flags to `reports`.
    pub async fn start_with_modes(
        adjust: impl FnOnce(&mut NodeConfig),
        extra: Vec<std::sync::Arc<dyn coil_game::GameMode>>,
        reports: coil_server::ReportSink,
    ) -> TestNode {
        TestNode::start_node(adjust, extra, Some(reports)).await
    }

    /// Like [`TestNode::start_with_modes`], with match results stored in the node's database.
    pub async fn start_storing_results(
        adjust: impl FnOnce(&mut NodeConfig),
        extra: Vec<std::sync::Arc<dyn coil_game::GameMode>>,
    ) -> TestNode {
        TestNode::start_node(adjust, extra, None).await
    }

    async fn start_node(
        adjust: impl FnOnce(&mut NodeConfig),
        extra: Vec<std::sync::Arc<dyn coil_game::GameMode>>,
        reports: Option<coil_server::ReportSink>,
    ) -> TestNode {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::for_tests(data_dir.path());
        adjust(&mut config);
        // An extra mode replaces a built-in one of the same name (a test's quicker rules).
        let names: Vec<&'static str> = extra.iter().map(|mode| mode.spec().name).collect();
        let mut available: Vec<_> = coil_server::modes::builtin(&config)
            .into_iter()
            .filter(|mode| !names.contains(&mode.spec().name))
            .collect();
        available.extend(extra);
        let modes = coil_server::Modes::configure(&config, available).unwrap();
        let listener = coil_server::bind(config.listen).unwrap();
        let addr = listener.local_addr().unwrap();
        config.public_url = format!("ws://{addr}");
        let (shutdown, signal) = oneshot::channel::<()>();
        let mut services =
            coil_server::all_in_one(&config, modes, Duration::from_secs(20)).unwrap();
        services.reports = reports;
        let task = tokio::spawn(coil_server::run(config, listener, services, async move {
            let _ = signal.await;
        }));
        // The node is serving once health answers.
        let node = TestNode {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
            data_dir,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while reqwest::get(node.url("/api/health")).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "node did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/api/room/{}", self.addr, room)
    }

    /// Triggers the drain and returns the task running the node.
    pub fn shut_down(&mut self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.take().expect("node already shut down")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(self.url(path)).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.post_json_as(path, body, None).await
    }

    /// `post_json` with `Authorization: Bearer <access_token>` when one is given.
    pub async fn post_json_as(
        &self,
        path: &str,
        body: &serde_json::Value,
        access_token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().post(self.url(path)).json(body);
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Sums every sample of a metric family (all label sets) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A player speaking the real protocol, with the reference Rust client mirror.
pub struct Player {
    pub socket: Socket,
    pub mirror: ClientMirror,
    pub receipts: Vec<String>,
    /// Error frames received: (code, reason).
    pub errors: Vec<(u16, String)>,
    pub closed: bool,
}

impl Player {
    /// A player over an open socket that has sent nothing yet.
    pub fn from_socket(socket: Socket) -> Player {
        Player {
            socket,
            mirror: ClientMirror::new(),
            receipts: Vec::new(),
            errors: Vec::new(),
            closed: false,
        }
    }

    pub async fn connect(node: &TestNode, room: &str) -> Socket {
        let (socket, _) = tokio_tungstenite::connect_async(node.ws_url(room))
            .await
            .unwrap();
        socket
    }

    /// Joins with protocol v11 (no token) and waits for the first state.
    pub async fn join(node: &TestNode, room: &str, name: &str) -> Player {
        let mut player = Player::join_only(node, room, name, PROTOCOL_V11, None).await;
        player
            .wait_until(
                |p| p.mirror.own_snake().is_some(),
                "first state with own snake",
            )
            .await;
        player
    }

    /// Connects and sends a join frame without waiting for anything.
    pub async fn join_only(
        node: &TestNode,
        room: &str,
        name: &str,
        version: u8,
        token: Option<&[u8]>,
    ) -> Player {
        let socket = Player::connect(node, room).await;
        let mut player = Player {
            socket,
            mirror: ClientMirror::new(),
            receipts: Vec::new(),
            errors: Vec::new(),
            closed: false,
        };
        let mut frame = Vec::new();
        let token = if version == PROTOCOL_V12 {
            Some(token.unwrap_or_default())
        } else {
            None
        };
        encode_join(
            &Join {
                version,
                name,
                skin: 3,
                token,
            },
            &mut frame,
        );
        player.send(frame).await;
        player
    }

    pub async fn send(&mut self, frame: Vec<u8>) {
        self.socket
            .send(Message::Binary(frame.into()))
            .await
            .unwrap();
    }

    pub async fn steer(&mut self, angle: f32, boost: bool) {
        let mut frame = Vec::new();
        encode_input(
            Input {
                angle: coil_protocol::arena::angle_to_u16(angle),
                boost,
            },
            &mut frame,
        );
        self.send(frame).await;
    }

    pub async fn respawn(&mut self) {
        let mut frame = Vec::new();
        encode_respawn(&mut frame);
        self.send(frame).await;
    }

    /// Reads one message (or the close) and applies it. Returns false once the socket closed.
    pub async fn read_one(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match tokio::time::timeout(WAIT, self.socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                for frame in server_frames(&bytes) {
                    let (frame_type, payload) = frame.expect("server frames are well formed");
                    match decode_server_envelope(frame_type, payload)
                        .expect("server envelope decodes")
                    {
                        Some(ServerEnvelope::ScoreReceipt { receipt }) => {
                            self.receipts.push(receipt.to_string())
                        }
                        Some(ServerEnvelope::Error { code, reason }) => {
                            self.errors.push((code, reason.to_string()))
                        }
                        _ => {}
                    }
                }
                self.mirror
                    .apply_message(&bytes)
                    .expect("the mirror follows the server's frames");
                true
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                self.closed = true;
                false
            }
            Ok(Some(Ok(_))) => true,
            Err(_) => panic!("no message from the server within {WAIT:?}"),
        }
    }

    /// Reads until `condition` holds, failing the test after [`WAIT`].
    pub async fn wait_until(&mut self, mut condition: impl FnMut(&Player) -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !condition(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            if !self.read_one().await && !condition(self) {
                panic!(
                    "connection closed while waiting for {what}; errors: {:?}",
                    self.errors
                );
            }
        }
    }

    /// Reads until the server closes the connection; returns the error codes received.
    pub async fn read_until_closed(&mut self) -> Vec<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.read_one().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "server did not close the connection"
            );
        }
        self.errors.iter().map(|(code, _)| *code).collect()
    }
}

impl TestNode {
    /// Humans seated on the node (connected or held), as `/api/health` reports them.
    pub async fn humans(&self) -> u64 {
        let (_, health) = self.get_json("/api/health").await;
        health["players"]["human"]
            .as_u64()
            .unwrap_or_else(|| panic!("health has no human count: {health}"))
    }

    /// `POST /api/matchmake` on the all-in-one node.
    pub async fn matchmake(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.post_json("/api/matchmake", &body).await
    }

    /// A guest account for `device` (the same device, the same account): its access token
    /// and account id.
    pub async fn guest(&self, device: &str) -> (String, String) {
        let (status, answer) = self
            .post_json(
                "/api/auth/guest",
                &serde_json::json!({
                    "deviceSecret": format!("{device}-device-secret-0123456789abcdef")
                }),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {answer}");
        (
            answer["accessToken"].as_str().unwrap().to_owned(),
            answer["account"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

/// A join frame as a client sends it.
pub fn join_frame(version: u8, name: &str, token: Option<&[u8]>) -> Vec<u8> {
    let mut frame = Vec::new();
    let token = (version == PROTOCOL_V12).then(|| token.unwrap_or_default());
    encode_join(
        &Join {
            version,
            name,
            skin: 3,
            token,
        },
        &mut frame,
    );
    frame
}

/// The error frames (code, reason) in one server message.
pub fn error_frames(message: &[u8]) -> Vec<(u16, String)> {
    server_frames(message)
        .filter_map(|frame| {
            let (frame_type, payload) = frame.expect("server frames are well formed");
            match decode_server_envelope(frame_type, payload).expect("server envelope decodes") {
                Some(ServerEnvelope::Error { code, reason }) => Some((code, reason.to_string())),
                _ => None,
            }
        })
        .collect()
}

/// Opens a TCP connection to the node with a small receive buffer (set before the connect, so
/// the window the client advertises stays small): the kernel cannot absorb seconds of stream
/// on the client's behalf.
pub async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(bytes).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A TCP stream that, once throttled, reads at most `chunk` bytes per `every`: a client on a
/// link (or with a main loop) too slow for the stream it asked for. Writes pass straight
/// through, so a WebSocket client over it still answers pings — when it gets to them.
pub struct Throttled {
    inner: TcpStream,
    chunk: usize,
    every: Duration,
    next_read: std::pin::Pin<Box<tokio::time::Sleep>>,
    throttled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Throttled {
    /// Starts unthrottled (for the handshake and the join); the returned switch turns the
    /// throttle on and off.
    pub fn new(
        inner: TcpStream,
        chunk: usize,
        every: Duration,
    ) -> (Throttled, std::sync::Arc<std::sync::atomic::AtomicBool>) {
        let throttled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stream = Throttled {
            inner,
            chunk,
            every,
            next_read: Box::pin(tokio::time::sleep(Duration::ZERO)),
            throttled: throttled.clone(),
        };
        (stream, throttled)
    }
}

impl tokio::io::AsyncRead for Throttled {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if !this.throttled.load(std::sync::atomic::Ordering::Relaxed) {
            return std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.next_read.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let mut small = [0u8; 256];
        let limit = this.chunk.min(small.len()).min(buf.remaining());
        let mut small_buf = tokio::io::ReadBuf::new(&mut small[..limit]);
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut small_buf) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(small_buf.filled());
                let next = tokio::time::Instant::now() + this.every;
                this.next_read.as_mut().reset(next);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl tokio::io::AsyncWrite for Throttled {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
