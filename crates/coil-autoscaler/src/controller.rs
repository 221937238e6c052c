//! The control loop: observe the fleet, call the pure policy, log and count its decision,
//! carry out its actions through an [`Executor`].
//!
//! One evaluation: list the nodes the executor owns, read every managed region from the room
//! directory, scrape each node's `/metrics` (short timeout, concurrently; a node that does not
//! answer counts as idle), build the `FleetSnapshot`, `decide`, log one line per action with
//! its reasons, count it, execute. `PolicyMemory` lives here in memory; after a restart the
//! policy rebuilds what it needs from the listing and the directory (booting nodes count,
//! DRAINING nodes are adopted with a fresh deadline).
//!
//! Must not: decide anything itself (the policy does), crash on a node or scrape failure, act
//! on a partial view (a failed listing or directory read skips the evaluation rather than
//! mistaking every node for a booting one), or delete a node with players that were not
//! evicted (the executor's guard, and here an eviction is sent instead).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use coil_autoscale::{
    Action, Decision, FleetSnapshot, NodeId, NodeSnapshot, NodeState, Policy, PolicyMemory,
    RegionId, RegionSnapshot, decide,
};
use coil_match::{NodeState as DirectoryNodeState, RoomState};

use crate::executor::{DeleteRequest, Executor, ExecutorError, ManagedNode};
use crate::scrape::{MachineSize, ScrapeHistory, parse_node_metrics};

/// Why an evaluation was skipped.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("listing the executor's nodes failed: {0}")]
    List(#[source] ExecutorError),
    #[error("reading region {region} from the room directory failed: {source}")]
    Directory {
        region: RegionId,
        #[source]
        source: coil_match::DirectoryError,
    },
}

/// Settings of the loop itself (the policy and executor have their own).
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub regions: Vec<RegionId>,
    pub room_soft_cap: u32,
    pub scrape_timeout: Duration,
    /// A matchmaker's `/metrics`, for turned-away matchmakes (demand of a region at zero).
    pub matchmaker_metrics_url: Option<String>,
}

/// What one evaluation saw and did, for tests and the log.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub snapshot: FleetSnapshot,
    pub decision: Decision,
    /// Nodes created by this evaluation's `CreateNodes` actions.
    pub created: Vec<ManagedNode>,
    /// Deletes refused by the guard (an eviction went out instead).
    pub refused_deletes: Vec<NodeId>,
}

/// The autoscaler's state between evaluations.
pub struct Controller<E: Executor> {
    executor: E,
    policy: Policy,
    settings: ControllerSettings,
    memory: PolicyMemory,
    scrapes: ScrapeHistory,
    /// Drain deadlines this controller set; a node here is DRAINING in the snapshot even if it
    /// never registered with the directory (the policy's executor note).
    drain_marks: BTreeMap<NodeId, u64>,
    /// Nodes whose players were told to re-matchmake.
    evicted: BTreeSet<NodeId>,
    /// The matchmaker's turned-away counter at the previous evaluation.
    unplaced_total: Option<f64>,
    http: reqwest::Client,
    warned_unmanaged: BTreeSet<String>,
}

impl<E: Executor> std::fmt::Debug for Controller<E> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Controller")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Region totals and per-node figures from one directory snapshot.
#[derive(Default)]
struct DirectoryNode {
    state: Option<DirectoryNodeState>,
    humans: u32,
    bots: u32,
    reserved: u32,
    room_capacity: u32,
    warm: u32,
    active: u32,
    draining: u32,
}

impl<E: Executor> Controller<E> {
    pub fn new(executor: E, policy: Policy, settings: ControllerSettings) -> Self {
        Self {
            executor,
            policy,
            settings,
            memory: PolicyMemory::default(),
            scrapes: ScrapeHistory::default(),
            drain_marks: BTreeMap::new(),
            evicted: BTreeSet::new(),
            unplaced_total: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            warned_unmanaged: BTreeSet::new(),
        }
    }

    pub fn executor(&self) -> &E {
        &self.executor
    }

    pub fn memory(&self) -> &PolicyMemory {
        &self.memory
    }

    /// One full evaluation at `now_ms` (Unix ms): observe, decide, log, count, execute.
    pub async fn evaluate(&mut self, now_ms: u64) -> Result<Evaluation, EvaluationError> {
        let listed = self.executor.list().await.map_err(EvaluationError::List)?;
        if !self.policy.dry_run {
            self.executor.reconcile().await;
        }
        let directory = self.executor.node_control().directory().clone();
        let mut region_snapshots = Vec::with_capacity(self.settings.regions.len());
        for region in &self.settings.regions {
            let Ok(directory_region) = coil_match::Region::parse(&region.0) else {
                continue;
            };
            let snapshot = directory
                .region_snapshot(&directory_region, now_ms)
                .await
                .map_err(|source| EvaluationError::Directory {
                    region: region.clone(),
                    source,
                })?;
            region_snapshots.push((region.clone(), snapshot));
        }

        // Forget what belongs to nodes that are gone.
        let listed_ids: BTreeSet<NodeId> = listed.iter().map(|node| node.node.clone()).collect();
        self.drain_marks.retain(|node, _| listed_ids.contains(node));
        self.evicted.retain(|node| listed_ids.contains(node));
        self.scrapes.retain(|node| listed_ids.contains(node));

        let scraped_at = Instant::now();
        let texts = futures_util::future::join_all(listed.iter().map(|node| {
            self.executor
                .node_control()
                .scrape(node, self.settings.scrape_timeout)
        }))
        .await;
        let unplaced = self.read_unplaced().await;

        let mut snapshot = FleetSnapshot::default();
        let mut marks_to_enforce = Vec::new();
        for (index, (region, directory_region)) in region_snapshots.iter().enumerate() {
            let mut nodes: BTreeMap<&str, DirectoryNode> = BTreeMap::new();
            for status in &directory_region.nodes {
                let entry = nodes.entry(status.node_id.as_str()).or_default();
                entry.state = Some(status.state);
                entry.humans = status.humans;
                entry.room_capacity = status.room_capacity;
            }
            let mut region_snapshot = RegionSnapshot::new(region.clone());
            for room in &directory_region.rooms {
                let entry = nodes.entry(room.status.node_id.as_str()).or_default();
                entry.bots = entry.bots.saturating_add(room.status.bots);
                entry.reserved = entry.reserved.saturating_add(room.reserved);
                match room.status.state {
                    RoomState::Warm => entry.warm += 1,
                    RoomState::Active => entry.active += 1,
                    RoomState::Draining => entry.draining += 1,
                    RoomState::Terminated => {}
                }
                let open = matches!(room.status.state, RoomState::Warm | RoomState::Active);
                if open
                    && room.status.humans.saturating_add(room.reserved)
                        >= self.settings.room_soft_cap
                {
                    region_snapshot.rooms_above_soft_cap += 1;
                }
                if room.status.state == RoomState::Warm && room.status.humans == 0 {
                    region_snapshot.warm_rooms += 1;
                }
                region_snapshot.bots = region_snapshot.bots.saturating_add(room.status.bots);
                region_snapshot.seats_reserved =
                    region_snapshot.seats_reserved.saturating_add(room.reserved);
            }
            for status in &directory_region.nodes {
                region_snapshot.humans = region_snapshot.humans.saturating_add(status.humans);
                if !listed_ids.contains(&NodeId::new(status.node_id.as_str()))
                    && self.warned_unmanaged.insert(status.node_id.to_string())
                {
                    // Its players count as demand (region humans) but its seats not as
                    // capacity: the autoscaler cannot retire what it does not own.
                    tracing::warn!(node = %status.node_id, region = %region, "a node in the directory is not managed by this autoscaler");
                }
            }
            if index == 0 {
                region_snapshot.unplaced_requests = unplaced;
            }
            for (node, text) in listed.iter().zip(&texts) {
                if &node.region != region {
                    continue;
                }
                let directory_node = nodes.get(node.node.0.as_str());
                let directory_state = directory_node.and_then(|entry| entry.state);
                let mark = self.drain_marks.get(&node.node).copied();
                let state = match (mark, directory_state) {
                    (Some(_), Some(DirectoryNodeState::Active)) => {
                        marks_to_enforce.push(node.clone());
                        NodeState::Draining
                    }
                    (Some(_), _) | (None, Some(DirectoryNodeState::Draining)) => {
                        NodeState::Draining
                    }
                    (None, Some(DirectoryNodeState::Active)) => NodeState::Active,
                    (None, None) => NodeState::Booting,
                };
                let mut node_snapshot = NodeSnapshot::new(node.node.clone(), state);
                node_snapshot.created_at_ms = node.created_at_ms;
                node_snapshot.drain_deadline_ms = mark;
                node_snapshot.seat_capacity = node.seat_capacity;
                if let Some(entry) = directory_node {
                    node_snapshot.humans = entry.humans;
                    node_snapshot.bots = entry.bots;
                    node_snapshot.seats_reserved = entry.reserved;
                    node_snapshot.room_capacity = entry.room_capacity;
                    node_snapshot.rooms.warm = entry.warm;
                    node_snapshot.rooms.active = entry.active;
                    node_snapshot.rooms.draining = entry.draining;
                }
                if let Some(text) = text {
                    let load = self.scrapes.record(
                        &node.node,
                        parse_node_metrics(text),
                        scraped_at,
                        MachineSize {
                            cores: node.cores,
                            memory_bytes: node.memory_bytes,
                        },
                    );
                    node_snapshot.cpu_utilization = load.cpu_utilization;
                    node_snapshot.memory_utilization = load.memory_utilization;
                    node_snapshot.open_connections = load.open_connections;
                    node_snapshot.egress_bytes_per_second = load.egress_bytes_per_second;
                    node_snapshot.tick_p95_ms = load.tick_p95_ms;
                    node_snapshot.tick_p99_ms = load.tick_p99_ms;
                    node_snapshot.tick_overrun_rate = load.tick_overrun_rate;
                } else if state != NodeState::Booting {
                    tracing::debug!(node = %node.node, "node did not answer its metrics scrape");
                }
                region_snapshot.nodes.push(node_snapshot);
            }
            snapshot.regions.push(region_snapshot);
        }
        for node in &listed {
            if !self.settings.regions.contains(&node.region)
                && self.warned_unmanaged.insert(node.node.0.clone())
            {
                tracing::warn!(node = %node.node, region = %node.region, "a listed node is in a region this autoscaler does not manage (REGIONS)");
            }
        }
        // A node marked by this controller that heartbeats ACTIVE again (it registered after
        // the mark, or the directory lost the mark): mark it in the directory once more.
        for node in &marks_to_enforce {
            if let Ok(directory_id) = coil_match::NodeId::parse(&node.node.0)
                && let Err(error) = directory.mark_node_draining(&directory_id, now_ms).await
            {
                tracing::warn!(node = %node.node, cause = %error, "could not re-mark a draining node");
            }
        }

        let memory = std::mem::take(&mut self.memory);
        let (decision, memory) = decide(&snapshot, &self.policy, memory, now_ms);
        self.memory = memory;
        log_decision(&decision);
        crate::metrics::record_decision(&decision);

        let mut evaluation = Evaluation {
            snapshot,
            decision,
            created: Vec::new(),
            refused_deletes: Vec::new(),
        };
        self.execute(&listed, &mut evaluation, now_ms).await;
        Ok(evaluation)
    }

    async fn execute(&mut self, listed: &[ManagedNode], evaluation: &mut Evaluation, now_ms: u64) {
        let find = |node: &NodeId| listed.iter().find(|listed| &listed.node == node);
        let actions = evaluation.decision.actions_to_execute().to_vec();
        for action in &actions {
            match action {
                Action::CreateNodes { region, count, .. } => {
                    let outcome = self.executor.create(region, *count).await;
                    for failure in &outcome.failures {
                        crate::metrics::create_failed(failure.reason);
                    }
                    let created = u32::try_from(outcome.created.len()).unwrap_or(u32::MAX);
                    let failed = count.saturating_sub(created);
                    if failed > 0 {
                        self.memory.record_creations_failed(region, failed);
                        let reasons: Vec<&str> = outcome
                            .failures
                            .iter()
                            .map(|failure| failure.reason)
                            .collect();
                        let detail = outcome
                            .failures
                            .last()
                            .map_or(String::new(), |failure| failure.detail.clone());
                        tracing::error!(region = %region, wanted = *count, created, failed, reasons = ?reasons, last_error = %detail, "could not create every game node the policy asked for");
                    }
                    evaluation.created.extend(outcome.created);
                }
                Action::MarkDraining {
                    node, deadline_ms, ..
                } => {
                    let Some(managed) = find(node) else {
                        continue;
                    };
                    match self
                        .executor
                        .mark_draining(managed, *deadline_ms, now_ms)
                        .await
                    {
                        Ok(_) => {
                            self.drain_marks.insert(node.clone(), *deadline_ms);
                        }
                        Err(error) => {
                            tracing::warn!(node = %node, cause = %error, "marking a node draining failed; the policy retries");
                        }
                    }
                }
                Action::EvictPlayers { node, .. } => {
                    let Some(managed) = find(node) else {
                        continue;
                    };
                    self.evict(managed).await;
                }
                Action::DeleteNode { node, .. } => {
                    let Some(managed) = find(node) else {
                        continue;
                    };
                    let observed = evaluation
                        .snapshot
                        .regions
                        .iter()
                        .flat_map(|region| &region.nodes)
                        .find(|snapshot| &snapshot.node == node);
                    let request = DeleteRequest {
                        node: managed.clone(),
                        humans: observed.map_or(0, |snapshot| snapshot.humans),
                        seats_reserved: observed.map_or(0, |snapshot| snapshot.seats_reserved),
                        open_connections: observed.map_or(0, |snapshot| snapshot.open_connections),
                        evicted: self.evicted.contains(node),
                    };
                    match self.executor.delete(&request).await {
                        Ok(()) => {
                            self.drain_marks.remove(node);
                            self.evicted.remove(node);
                        }
                        Err(error @ ExecutorError::WouldCutOffPlayers { .. }) => {
                            tracing::error!(node = %node, cause = %error, "delete refused; telling the players to re-matchmake first");
                            evaluation.refused_deletes.push(node.clone());
                            self.evict(managed).await;
                        }
                        Err(error) => {
                            tracing::warn!(node = %node, cause = %error, "deleting a node failed; the policy retries");
                        }
                    }
                }
                Action::Hold { .. } => {}
            }
        }
    }

    async fn evict(&mut self, node: &ManagedNode) {
        match self.executor.evict(node).await {
            Ok(()) => {
                self.evicted.insert(node.node.clone());
            }
            Err(error) => {
                tracing::warn!(node = %node.node, cause = %error, "evicting players failed; retried before any delete");
            }
        }
    }

    /// Matchmakes turned away since the previous evaluation, from the matchmaker's counter.
    async fn read_unplaced(&mut self) -> u32 {
        let Some(url) = &self.settings.matchmaker_metrics_url else {
            return 0;
        };
        let text = match self.http.get(url).send().await {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            _ => None,
        };
        let Some(text) = text else {
            return 0;
        };
        let total: f64 = text
            .lines()
            .filter(|line| {
                line.starts_with("coil_matchmake_requests_total")
                    && line.contains("result=\"no_capacity\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|value| value.is_finite())
            .sum();
        let previous = self.unplaced_total.replace(total);
        match previous {
            Some(previous) if total >= previous => {
                (total - previous).min(f64::from(u32::MAX)) as u32
            }
            _ => 0,
        }
    }
}

/// One line per action, with its reasons (Display) and the numbers behind it (structured).
fn log_decision(decision: &Decision) {
    for action in &decision.actions {
        let assessment = decision
            .regions
            .iter()
            .find(|assessment| &assessment.region == action.region());
        let node = action.node().map(|node| node.0.as_str()).unwrap_or("");
        let (capacity, demand, spare) = assessment.map_or((0, 0, 1.0), |assessment| {
            (
                assessment.capacity_seats,
                assessment.demand_seats,
                assessment.spare_fraction,
            )
        });
        tracing::info!(
            action = action.metric_label(),
            region = %action.region(),
            node,
            capacity_seats = capacity,
            demand_seats = demand,
            spare_fraction = spare,
            dry_run = decision.dry_run,
            "{action}"
        );
    }
}
