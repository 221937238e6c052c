//! A real node started in this test process on 127.0.0.1:0 (optionally with the matchmaker on
//! the same port, as `coil serve` runs it), shared by the load generator's integration tests.

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;
use std::time::Duration;

use coil_server::NodeConfig;
use tokio::sync::oneshot;

pub struct TestNode {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start() -> TestNode {
        TestNode::start_shape(false).await
    }

    /// `with_matchmaker`: the all-in-one shape (matchmaker on the same port, v12 tokens).
    pub async fn start_shape(with_matchmaker: bool) -> TestNode {
        TestNode::start_configured(with_matchmaker, |_| {}).await
    }

    pub async fn start_configured(
        with_matchmaker: bool,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::for_tests(data_dir.path());
        configure(&mut config);
        let listener = coil_server::bind(config.listen).unwrap();
        let addr = listener.local_addr().unwrap();
        config.public_url = format!("ws://{addr}");
        // Only matchmaker tokens get in, so a direct v11 join could not pass for one.
        config.allow_protocol_v11 = !with_matchmaker;
        let (shutdown, signal) = oneshot::channel::<()>();
        let services = if with_matchmaker {
            coil_server::all_in_one(
                &config,
                coil_server::modes::configured(&config).unwrap(),
                Duration::from_secs(20),
            )
            .unwrap()
        } else {
            coil_server::NodeServices::standalone(coil_server::modes::configured(&config).unwrap())
        };
        let task = tokio::spawn(coil_server::run(config, listener, services, async move {
            let _ = signal.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let health = format!("http://{addr}/api/health");
        while reqwest::get(&health).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "node did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestNode {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
            _data_dir: data_dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}
