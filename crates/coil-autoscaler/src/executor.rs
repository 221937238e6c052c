//! The executor boundary: what the controller asks of a fleet backend (create, mark draining,
//! evict, delete, list), and the node-side calls both backends share.
//!
//! Owns the [`Executor`] trait, the [`ManagedNode`] listing entry, [`NodeControl`] (room
//! directory mark + the node's `/internal/drain`, `/internal/evict` and `/metrics`) and the
//! delete guard. It must not decide anything: which node, how many and when come from
//! `coil_autoscale::decide`. The one judgement it keeps is the last line of defence: a node
//! that still holds players is never deleted unless its players were told to re-matchmake.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use coil_autoscale::{NodeId, RegionId};
use coil_match::RoomDirectory;

/// One game node the executor owns (a child process or a Hetzner server).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedNode {
    /// The node id it registers with in the room directory (server name, `local-<n>`).
    pub node: NodeId,
    pub region: RegionId,
    /// `http://host:port` where the autoscaler reaches `/metrics` and `/internal/*`; `None`
    /// while the server has no address yet.
    pub internal_url: Option<String>,
    /// When the server or process was created (Unix ms).
    pub created_at_ms: u64,
    /// Seats when they differ from the policy's `seats_per_node` (a fallback server type).
    pub seat_capacity: Option<u32>,
    /// Size of the machine, to turn process CPU seconds and resident memory into shares.
    pub cores: u32,
    pub memory_bytes: u64,
    /// The Hetzner server id, for deletes.
    pub server_id: Option<u64>,
}

/// Why one node could not be created, as a bounded metric label plus detail for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFailure {
    /// `coil_autoscaler_create_failures_total{reason}`: one of [`crate::metrics::CREATE_FAILURE_REASONS`].
    pub reason: &'static str,
    pub detail: String,
}

/// What a `create(region, count)` achieved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateOutcome {
    pub created: Vec<ManagedNode>,
    /// Every refused attempt, including the ones a fallback later made up for.
    pub failures: Vec<CreateFailure>,
}

/// Executor failures other than refused creates.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(
        "refusing to delete {node}: {humans} player(s) and {connections} socket(s) left and no eviction was sent"
    )]
    WouldCutOffPlayers {
        node: NodeId,
        humans: u32,
        connections: u32,
    },
    #[error("node {node} has no address to call")]
    NoAddress { node: NodeId },
    #[error("node {node} answered HTTP {status} to {operation}")]
    NodeRefused {
        node: NodeId,
        operation: &'static str,
        status: u16,
    },
    #[error("node {node} did not answer {operation}: {source}")]
    NodeUnreachable {
        node: NodeId,
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("room directory failed during {operation}: {source}")]
    Directory {
        operation: &'static str,
        #[source]
        source: coil_match::DirectoryError,
    },
    #[error("hetzner api failed during {operation}: {source}")]
    Hcloud {
        operation: &'static str,
        #[source]
        source: coil_hcloud::HcloudError,
    },
    #[error("hetzner api budget exhausted until {until_unix_ms} (unix ms)")]
    BudgetExhausted { until_unix_ms: u64 },
    #[error("local process failed during {operation}: {source}")]
    Process {
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What the controller knows about a node it asks to delete; the guard's input.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteRequest {
    pub node: ManagedNode,
    pub humans: u32,
    pub seats_reserved: u32,
    pub open_connections: u32,
    /// Players were told to re-matchmake (`/internal/evict` answered).
    pub evicted: bool,
}

impl DeleteRequest {
    /// The policy only deletes a drained-empty node, or one whose players were evicted in an
    /// earlier decision; this checks it again with the executor's own view, so a policy bug or
    /// a lost eviction can never cut players off.
    pub fn check(&self) -> Result<(), ExecutorError> {
        let empty = self.humans == 0 && self.seats_reserved == 0 && self.open_connections == 0;
        if empty || self.evicted {
            Ok(())
        } else {
            Err(ExecutorError::WouldCutOffPlayers {
                node: self.node.node.clone(),
                humans: self.humans,
                connections: self.open_connections,
            })
        }
    }
}

/// A fleet backend. Implementations: [`crate::local::LocalExecutor`],
/// [`crate::hcloud::HcloudExecutor`]. Methods take `&self` so the controller can share one.
pub trait Executor: Send + Sync {
    /// The directory and node HTTP calls shared by every backend.
    fn node_control(&self) -> &NodeControl;

    /// Every node this executor owns now (reconcile: after a restart, what exists is adopted).
    fn list(&self) -> impl Future<Output = Result<Vec<ManagedNode>, ExecutorError>> + Send;

    /// Starts `count` nodes in `region`, falling back where the backend can.
    fn create(&self, region: &RegionId, count: u32) -> impl Future<Output = CreateOutcome> + Send;

    /// Removes the server or process for good; the guard has already passed.
    fn destroy(&self, node: &ManagedNode)
    -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Stops what must not outlive the autoscaler (local children); bounded.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;

    /// Repairs what the backend keeps beside its nodes (Hetzner: per-node DNS records) from
    /// the state the last `list` saw. Called once per controller pass right after `list`,
    /// never in a dry run; failures are the backend's to log and count. Default: nothing.
    fn reconcile(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// No new players on `node` (directory mark), and tells the node to drain by `deadline_ms`.
    /// `Ok(true)` when either step took effect, so the controller records the node as draining
    /// even if it never registered with the directory.
    fn mark_draining(
        &self,
        node: &ManagedNode,
        deadline_ms: u64,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, ExecutorError>> + Send {
        self.node_control().mark_draining(node, deadline_ms, now_ms)
    }

    /// Tells the node's players to re-matchmake now (`/internal/evict`).
    fn evict(&self, node: &ManagedNode) -> impl Future<Output = Result<(), ExecutorError>> + Send {
        self.node_control().evict(node)
    }

    /// Deletes the node after checking it holds no players (or they were evicted), then forgets
    /// it in the directory so the next snapshot does not wait for its entries to expire.
    fn delete(
        &self,
        request: &DeleteRequest,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send {
        async move {
            request.check()?;
            self.destroy(&request.node).await?;
            self.node_control().forget(&request.node.node).await;
            Ok(())
        }
    }
}

/// The calls every backend makes the same way: directory marks and the node's own endpoints.
#[derive(Clone)]
pub struct NodeControl {
    directory: Arc<dyn RoomDirectory>,
    http: reqwest::Client,
    internal_secret: String,
}

impl std::fmt::Debug for NodeControl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NodeControl")
            .finish_non_exhaustive()
    }
}

/// Every call to a node is bounded by this unless the caller gives a shorter scrape timeout.
const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(3);

impl NodeControl {
    pub fn new(directory: Arc<dyn RoomDirectory>, internal_secret: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(NODE_CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        Self {
            directory,
            http,
            internal_secret,
        }
    }

    pub fn directory(&self) -> &Arc<dyn RoomDirectory> {
        &self.directory
    }

    fn url(node: &ManagedNode, path: &str) -> Result<String, ExecutorError> {
        node.internal_url
            .as_deref()
            .map(|base| format!("{}{path}", base.trim_end_matches('/')))
            .ok_or_else(|| ExecutorError::NoAddress {
                node: node.node.clone(),
            })
    }

    async fn post(
        &self,
        node: &ManagedNode,
        operation: &'static str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(), ExecutorError> {
        let url = Self::url(node, path)?;
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.internal_secret)
            .json(&body)
            .send()
            .await
            .map_err(|source| ExecutorError::NodeUnreachable {
                node: node.node.clone(),
                operation,
                source,
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(ExecutorError::NodeRefused {
                node: node.node.clone(),
                operation,
                status: response.status().as_u16(),
            })
        }
    }

    /// Directory mark first (it is what stops placements), then the node's own drain.
    pub async fn mark_draining(
        &self,
        node: &ManagedNode,
        deadline_ms: u64,
        now_ms: u64,
    ) -> Result<bool, ExecutorError> {
        let mut took_effect = false;
        let mut first_error = None;
        match coil_match::NodeId::parse(&node.node.0) {
            Ok(directory_id) => match self
                .directory
                .mark_node_draining(&directory_id, now_ms)
                .await
            {
                // Unknown to the directory (never registered): the controller's own record
                // makes it draining; placing someone there is impossible anyway.
                Ok(_known) => took_effect = true,
                Err(source) => {
                    first_error = Some(ExecutorError::Directory {
                        operation: "mark node draining",
                        source,
                    });
                }
            },
            Err(_) => took_effect = true,
        }
        let deadline_secs = deadline_ms.saturating_sub(now_ms).div_ceil(1000);
        match self
            .post(
                node,
                "drain",
                "/internal/drain",
                serde_json::json!({ "deadlineSecs": deadline_secs }),
            )
            .await
        {
            Ok(()) => took_effect = true,
            Err(error) => {
                tracing::warn!(node = %node.node, cause = %error, "node did not take the drain request");
                first_error.get_or_insert(error);
            }
        }
        match (took_effect, first_error) {
            (true, _) | (false, None) => Ok(true),
            (false, Some(error)) => Err(error),
        }
    }

    pub async fn evict(&self, node: &ManagedNode) -> Result<(), ExecutorError> {
        self.post(node, "evict", "/internal/evict", serde_json::json!({}))
            .await
    }

    /// The node's metrics text, or `None` if it does not answer within `timeout`.
    pub async fn scrape(&self, node: &ManagedNode, timeout: Duration) -> Option<String> {
        let url = Self::url(node, "/metrics").ok()?;
        let response = self.http.get(url).timeout(timeout).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// Removes the node's directory entries (best effort: they expire without heartbeats).
    pub async fn forget(&self, node: &NodeId) {
        if let Ok(directory_id) = coil_match::NodeId::parse(&node.0)
            && let Err(error) = self.directory.remove_node(&directory_id).await
        {
            tracing::warn!(node = %node, cause = %error, "could not remove a deleted node from the directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(humans: u32, connections: u32, evicted: bool) -> DeleteRequest {
        DeleteRequest {
            node: ManagedNode {
                node: NodeId::new("n1"),
                region: RegionId::new("local"),
                internal_url: None,
                created_at_ms: 0,
                seat_capacity: None,
                cores: 1,
                memory_bytes: 0,
                server_id: None,
            },
            humans,
            seats_reserved: 0,
            open_connections: connections,
            evicted,
        }
    }

    #[test]
    fn the_delete_guard_refuses_a_node_with_players_that_were_not_evicted() {
        assert!(request(0, 0, false).check().is_ok());
        assert!(request(3, 3, true).check().is_ok());
        assert!(matches!(
            request(3, 3, false).check(),
            Err(ExecutorError::WouldCutOffPlayers { humans: 3, .. })
        ));
        assert!(
            request(0, 1, false).check().is_err(),
            "an open socket is a person"
        );
    }
}
