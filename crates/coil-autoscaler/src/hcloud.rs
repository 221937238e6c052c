//! The Hetzner Cloud executor: game nodes as servers created from the prebaked snapshot.
//!
//! Owns the create path (name, labels `coil-fleet`, `coil-pool=game`, `coil-region`,
//! `coil-node`, user data rendered from `deploy/hetzner/image/node-cloud-init.yaml`, network,
//! firewalls, placement group), following each create action, falling through the configured
//! (server type × location) list when Hetzner has no capacity, the delete path (following the
//! delete action), the listing by label selector that reconciles after a restart, and the
//! request budget: every call first asks `HcloudClient::check_budget`, a 429 blocks calls
//! until its `retry_at`, and creates and lists leave a reserve for deletes (a delete saves
//! money, a create spends it).
//!
//! With [`DnsConfig`] (`DNS_ZONE`) it also owns each node's public name: after a create an `A`
//! record set (and `AAAA` when the server has IPv6) `<name>.<NODES_DOMAIN>` in the zone, with
//! a short TTL and the fleet's labels; on delete their removal; and once per controller pass
//! ([`Executor::reconcile`]) one labelled listing of the zone's record sets that creates what
//! is missing and deletes what belongs to no listed server. A DNS failure never fails or loses
//! a server: it is logged, counted in `coil_autoscaler_dns_failures_total{operation}`, and
//! repaired by the next pass.
//!
//! It must not decide how many servers to run, must not delete a server it did not label as
//! its own game node, and must not log the token or the user data (which carries the TLS key).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use coil_autoscale::{NodeId, RegionId};
use coil_hcloud::{
    ActionId, CreateRrsetRequest, CreateServerRequest, ErrorCode, HcloudClient, HcloudError,
    ImageRef, LabelSelector, RrsetRecord, Server, ServerId, ServerStatus, USER_DATA_LIMIT_BYTES,
};

use crate::executor::{
    CreateFailure, CreateOutcome, Executor, ExecutorError, ManagedNode, NodeControl,
};

pub const LABEL_FLEET: &str = "coil-fleet";
pub const LABEL_POOL: &str = "coil-pool";
pub const POOL_GAME: &str = "game";
pub const LABEL_REGION: &str = "coil-region";
pub const LABEL_NODE: &str = "coil-node";

/// A listing older than this is not reused while the API refuses calls.
const STALE_LISTING_LIMIT: Duration = Duration::from_secs(300);

/// The node's user data: `node-cloud-init.yaml` and what fills its placeholders.
#[derive(Clone)]
pub struct UserDataTemplate {
    pub template: String,
    /// `<node>.<nodes_domain>` is the node's public host name.
    pub nodes_domain: String,
    /// Contents of the fleet-wide node env file (secrets: never logged).
    pub fleet_env: String,
    pub tls_fullchain: String,
    pub tls_privkey: String,
}

impl std::fmt::Debug for UserDataTemplate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("UserDataTemplate")
            .field("nodes_domain", &self.nodes_domain)
            .finish_non_exhaustive()
    }
}

/// The placeholders `node-cloud-init.yaml` declares, all of which are filled.
pub const USER_DATA_PLACEHOLDERS: [&str; 6] = [
    "{{node_name}}",
    "{{region}}",
    "{{public_host}}",
    "{{fleet_env_b64}}",
    "{{tls_fullchain_b64}}",
    "{{tls_privkey_b64}}",
];

impl UserDataTemplate {
    /// Fills every placeholder. Refuses a template with a placeholder it does not know (the
    /// node would boot with a literal `{{...}}` in its config) and a result over 32 KiB.
    pub fn render(&self, node_name: &str, region: &str) -> Result<String, String> {
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let public_host = format!("{node_name}.{}", self.nodes_domain);
        let rendered = self
            .template
            .replace("{{node_name}}", node_name)
            .replace("{{region}}", region)
            .replace("{{public_host}}", &public_host)
            .replace("{{fleet_env_b64}}", &encode(&self.fleet_env))
            .replace("{{tls_fullchain_b64}}", &encode(&self.tls_fullchain))
            .replace("{{tls_privkey_b64}}", &encode(&self.tls_privkey));
        // Placeholders look like `{{name}}`; the template's own comments mention `{{...}}`.
        let mut rest = rendered.as_str();
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                break;
            };
            let inner = &after[..end];
            if inner != "..." {
                return Err(format!(
                    "user data template has an unknown placeholder {{{{{inner}}}}}"
                ));
            }
            rest = &after[end + 2..];
        }
        if rendered.len() > USER_DATA_LIMIT_BYTES {
            return Err(format!(
                "user data renders to {} bytes; Hetzner accepts {USER_DATA_LIMIT_BYTES}",
                rendered.len()
            ));
        }
        Ok(rendered)
    }
}

/// TTL of the per-node records: short, so a deleted node's name stops resolving quickly.
pub const DNS_RECORD_TTL_SECS: u32 = 60;

/// Per-node DNS records in a Hetzner DNS zone (`DNS_ZONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The zone's name, e.g. `example.com`.
    pub zone: String,
    /// `NODES_DOMAIN`: equal to the zone or inside it, e.g. `nodes.example.com`.
    pub nodes_domain: String,
    pub ttl_secs: u32,
}

impl DnsConfig {
    /// `NODES_DOMAIN` relative to the zone: `nodes` for `nodes.example.com` in `example.com`,
    /// `None` when it is the zone itself; an error when it lies outside the zone.
    pub fn nodes_domain_in_zone(zone: &str, nodes_domain: &str) -> Result<Option<String>, String> {
        if nodes_domain == zone {
            return Ok(None);
        }
        match nodes_domain.strip_suffix(&format!(".{zone}")) {
            Some(relative) if !relative.is_empty() => Ok(Some(relative.to_owned())),
            _ => Err(format!(
                "NODES_DOMAIN {nodes_domain} is not inside the zone {zone}"
            )),
        }
    }

    /// The record set name of `server_name` relative to the zone, e.g. `n-abc.nodes`.
    pub fn record_name(&self, server_name: &str) -> String {
        match Self::nodes_domain_in_zone(&self.zone, &self.nodes_domain) {
            Ok(Some(relative)) => format!("{server_name}.{relative}"),
            _ => server_name.to_owned(),
        }
    }
}

/// The addresses a node's records point at: the public IPv4, and `::1` of the server's
/// public IPv6 `/64` (the address Hetzner configures on the server).
pub fn public_addresses(server: &Server) -> NodeAddresses {
    let ipv4 = server
        .public_net
        .ipv4
        .as_ref()
        .and_then(|ipv4| ipv4.ip.parse::<Ipv4Addr>().ok());
    let ipv6 = server.public_net.ipv6.as_ref().and_then(|ipv6| {
        let network = ipv6.ip.split('/').next()?.parse::<Ipv6Addr>().ok()?;
        let mut segments = network.segments();
        segments[7] = 1;
        Some(Ipv6Addr::from(segments))
    });
    (ipv4, ipv6)
}

/// A node's public IPv4 and IPv6 address, each if it has one.
type NodeAddresses = (Option<Ipv4Addr>, Option<Ipv6Addr>);

/// Everything the Hetzner executor needs.
#[derive(Debug, Clone)]
pub struct HcloudConfig {
    /// The `coil-fleet` label value and the server name prefix.
    pub fleet: String,
    /// Tried in order (best first); each in every location of the region before the next type.
    pub server_types: Vec<String>,
    /// Hetzner locations per Coil region, in order of preference.
    pub locations: BTreeMap<RegionId, Vec<String>>,
    /// Locations for regions without their own entry.
    pub default_locations: Vec<String>,
    pub image: ImageRef,
    pub extra_labels: BTreeMap<String, String>,
    pub networks: Vec<u64>,
    pub firewalls: Vec<u64>,
    pub placement_group: Option<u64>,
    pub ssh_keys: Vec<String>,
    pub enable_ipv4: bool,
    /// The port of the node's HTTP listener (metrics, `/internal/*`), reached on the private
    /// address when the server has one.
    pub node_port: u16,
    pub user_data: Option<UserDataTemplate>,
    /// Seats per server type when it differs from `SEATS_PER_NODE`.
    pub seats_by_server_type: BTreeMap<String, u32>,
    /// Requests creates and lists leave for deletes.
    pub budget_reserve: u32,
    /// How long a create or delete action is followed before the executor moves on.
    pub action_timeout: Duration,
    pub action_poll_interval: Duration,
    /// A (type, location) that answered "no capacity" is skipped this long.
    pub capacity_backoff: Duration,
    /// Per-node DNS records; `None` manages no DNS.
    pub dns: Option<DnsConfig>,
}

#[derive(Default)]
struct HcloudState {
    /// No calls before this moment (a 429's retry_at).
    blocked_until: Option<SystemTime>,
    /// (server type, location) → skip until.
    unavailable_until: BTreeMap<(String, String), Instant>,
    last_listing: Option<(Instant, Vec<ManagedNode>)>,
    /// The records the last fresh server listing asks for (record name → A, AAAA), taken by
    /// the next [`Executor::reconcile`] so each listing is reconciled at most once.
    dns_wanted: Option<BTreeMap<String, NodeAddresses>>,
}

/// Game nodes as Hetzner Cloud servers.
pub struct HcloudExecutor {
    client: HcloudClient,
    config: HcloudConfig,
    control: NodeControl,
    state: Mutex<HcloudState>,
}

impl std::fmt::Debug for HcloudExecutor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HcloudExecutor")
            .field("fleet", &self.config.fleet)
            .finish_non_exhaustive()
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |duration| {
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Parses the API's `YYYY-MM-DDTHH:MM:SS(.fff)?(+HH:MM|Z)` into Unix ms (whole seconds: enough
/// for a server's age). The calendar is humantime's; the offset, which it does not take, is ours.
pub fn parse_timestamp_ms(text: &str) -> Option<u64> {
    let (local, offset_seconds) = match text.strip_suffix('Z') {
        Some(local) => (local, 0),
        None => {
            let (local, offset) = text.split_at_checked(text.len().checked_sub(6)?)?;
            let sign = match offset.as_bytes() {
                [b'+', _, _, b':', _, _] => 1,
                [b'-', _, _, b':', _, _] => -1,
                _ => return None,
            };
            let hours: i64 = offset.get(1..3)?.parse().ok()?;
            let minutes: i64 = offset.get(4..6)?.parse().ok()?;
            (local, sign * (hours * 3600 + minutes * 60))
        }
    };
    let whole_seconds = local.split('.').next()?;
    let as_if_utc = humantime::parse_rfc3339(&format!("{whole_seconds}Z")).ok()?;
    let seconds = i64::try_from(as_if_utc.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    u64::try_from(seconds - offset_seconds)
        .ok()?
        .checked_mul(1000)
}

/// `coil_autoscaler_create_failures_total{reason}` for an API failure.
fn failure_reason(error: &HcloudError) -> &'static str {
    match error.code() {
        Some(ErrorCode::ResourceUnavailable) => "resource_unavailable",
        Some(ErrorCode::ResourceLimitExceeded) => "resource_limit_exceeded",
        Some(ErrorCode::PlacementError) => "placement_error",
        Some(ErrorCode::RateLimitExceeded) => "rate_limited",
        _ => match error {
            HcloudError::RateLimited { .. } => "rate_limited",
            HcloudError::Transport { .. } => "transport",
            HcloudError::UserDataTooLarge { .. } => "config",
            _ => "api_error",
        },
    }
}

/// A server name that is a valid host name and a valid directory node id (≤ 32 characters):
/// `<fleet>-<region>-<6 hex>`, lower case, anything else turned into '-'.
pub fn server_name(fleet: &str, region: &RegionId, suffix: u32) -> String {
    let raw = format!("{fleet}-{}", region.0).to_ascii_lowercase();
    let mut prefix: String = raw
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character
            } else {
                '-'
            }
        })
        .take(25)
        .collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    if prefix.is_empty() || !prefix.starts_with(|character: char| character.is_ascii_alphabetic()) {
        prefix.insert(0, 'n');
    }
    format!("{prefix}-{:06x}", suffix & 0x00ff_ffff)
}

impl HcloudExecutor {
    pub fn new(client: HcloudClient, config: HcloudConfig, control: NodeControl) -> Self {
        Self {
            client,
            config,
            control,
            state: Mutex::new(HcloudState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HcloudState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The label selector of this fleet's game nodes.
    pub fn selector(&self) -> String {
        LabelSelector::everything()
            .with_equals(LABEL_FLEET, &self.config.fleet)
            .with_equals(LABEL_POOL, POOL_GAME)
            .to_string()
    }

    /// May `requests` calls go out now (plus `reserve` kept back)?
    fn gate(&self, requests: u32, reserve: u32) -> Result<(), ExecutorError> {
        let now = SystemTime::now();
        {
            let mut state = self.lock();
            match state.blocked_until {
                Some(until) if until > now => {
                    return Err(ExecutorError::BudgetExhausted {
                        until_unix_ms: unix_ms(until),
                    });
                }
                Some(_) => state.blocked_until = None,
                None => {}
            }
        }
        self.client
            .check_budget(requests.saturating_add(reserve))
            .map_err(|shortfall| ExecutorError::BudgetExhausted {
                until_unix_ms: unix_ms(shortfall.enough_at),
            })
    }

    /// Records what a call taught about the budget: the remaining count, and a 429's retry_at.
    fn observe(&self, error: Option<&HcloudError>) {
        if let Some(snapshot) = self.client.rate_limit() {
            crate::metrics::api_requests_remaining(snapshot.remaining);
        }
        if let Some(retry_at) = error.and_then(HcloudError::retry_at) {
            tracing::warn!(
                retry_in_ms = retry_at
                    .duration_since(SystemTime::now())
                    .map_or(0, |wait| wait.as_millis() as u64),
                "hetzner api rate limit reached; no calls until it refills"
            );
            self.lock().blocked_until = Some(retry_at);
        }
    }

    fn managed_from_server(&self, server: &Server) -> Option<ManagedNode> {
        if server.status == ServerStatus::Deleting {
            return None;
        }
        let region = server.labels.get(LABEL_REGION)?;
        let address = server
            .private_net
            .first()
            .map(|network| network.ip.clone())
            .or_else(|| server.public_net.ipv4.as_ref().map(|ipv4| ipv4.ip.clone()));
        let memory_bytes =
            if server.server_type.memory.is_finite() && server.server_type.memory > 0.0 {
                (server.server_type.memory * 1_073_741_824.0) as u64
            } else {
                0
            };
        Some(ManagedNode {
            node: NodeId::new(server.name.clone()),
            region: RegionId::new(region.clone()),
            internal_url: address.map(|ip| format!("http://{ip}:{}", self.config.node_port)),
            created_at_ms: parse_timestamp_ms(&server.created).unwrap_or(0),
            seat_capacity: self
                .config
                .seats_by_server_type
                .get(&server.server_type.name)
                .copied(),
            cores: server.server_type.cores,
            memory_bytes,
            server_id: Some(server.id.0),
        })
    }

    /// (server type, location) options for `region`, best first, skipping the ones that just
    /// answered "no capacity" unless every option did.
    fn options(&self, region: &RegionId) -> Vec<(String, String)> {
        let locations = self
            .config
            .locations
            .get(region)
            .unwrap_or(&self.config.default_locations);
        let all: Vec<(String, String)> = self
            .config
            .server_types
            .iter()
            .flat_map(|server_type| {
                locations
                    .iter()
                    .map(move |location| (server_type.clone(), location.clone()))
            })
            .collect();
        let now = Instant::now();
        let state = self.lock();
        let available: Vec<(String, String)> = all
            .iter()
            .filter(|option| {
                state
                    .unavailable_until
                    .get(*option)
                    .is_none_or(|until| *until <= now)
            })
            .cloned()
            .collect();
        if available.is_empty() { all } else { available }
    }

    fn mark_unavailable(&self, option: &(String, String)) {
        let until = Instant::now() + self.config.capacity_backoff;
        self.lock().unavailable_until.insert(option.clone(), until);
    }

    fn request_for(
        &self,
        name: &str,
        region: &RegionId,
        server_type: &str,
        location: &str,
    ) -> Result<CreateServerRequest, CreateFailure> {
        let mut request = CreateServerRequest::new(name, server_type, self.config.image.clone());
        request.location = Some(location.to_owned());
        request.labels = self.config.extra_labels.clone();
        request
            .labels
            .insert(LABEL_FLEET.to_owned(), self.config.fleet.clone());
        request
            .labels
            .insert(LABEL_POOL.to_owned(), POOL_GAME.to_owned());
        request
            .labels
            .insert(LABEL_REGION.to_owned(), region.0.clone());
        request
            .labels
            .insert(LABEL_NODE.to_owned(), name.to_owned());
        request.networks = self.config.networks.clone();
        request.firewalls = self.config.firewalls.clone();
        request.placement_group = self.config.placement_group;
        request.ssh_keys = self.config.ssh_keys.clone();
        request.enable_ipv4 = self.config.enable_ipv4;
        if let Some(template) = &self.config.user_data {
            request.user_data =
                Some(
                    template
                        .render(name, &region.0)
                        .map_err(|detail| CreateFailure {
                            reason: "config",
                            detail,
                        })?,
                );
        }
        Ok(request)
    }

    /// Follows an action until it finishes or `action_timeout` passes. `Ok(false)` when it is
    /// still running (or the poll was refused): the caller treats the server as existing.
    async fn follow(&self, action: ActionId) -> Result<bool, HcloudError> {
        let result = self
            .client
            .wait_for_action(
                action,
                self.config.action_poll_interval,
                self.config.action_timeout,
            )
            .await;
        self.observe(result.as_ref().err());
        match result {
            Ok(_) => Ok(true),
            Err(HcloudError::ActionDeadlineExceeded { .. }) => Ok(false),
            Err(error) if error.retry_at().is_some() || error.is_timeout() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Creates one node, trying each option in turn. `Err` carries every failure.
    async fn create_one(&self, region: &RegionId) -> (Option<ManagedNode>, Vec<CreateFailure>) {
        let mut failures = Vec::new();
        for option in self.options(region) {
            let (server_type, location) = (&option.0, &option.1);
            if let Err(error) = self.gate(1, self.config.budget_reserve) {
                failures.push(CreateFailure {
                    reason: "rate_limited",
                    detail: error.to_string(),
                });
                // Every further option would be refused the same way.
                return (None, failures);
            }
            let name = server_name(&self.config.fleet, region, rand::random::<u32>());
            let request = match self.request_for(&name, region, server_type, location) {
                Ok(request) => request,
                Err(failure) => {
                    failures.push(failure);
                    return (None, failures);
                }
            };
            let created = self.client.create_server(&request).await;
            self.observe(created.as_ref().err());
            let created = match created {
                Ok(created) => created,
                Err(error) => {
                    let reason = failure_reason(&error);
                    tracing::warn!(region = %region, server_type = %server_type, location = %location, reason, cause = %error, "hetzner refused a game node");
                    failures.push(CreateFailure {
                        reason,
                        detail: error.to_string(),
                    });
                    if error.is_capacity_problem() {
                        self.mark_unavailable(&option);
                        continue;
                    }
                    // Rate limits, bad configuration, outages: the next option would fare no
                    // better; the policy asks again after its retry interval.
                    return (None, failures);
                }
            };
            match self.follow(created.action.id).await {
                Ok(_) => {
                    let Some(node) = self.managed_from_server(&created.server) else {
                        failures.push(CreateFailure {
                            reason: "api_error",
                            detail: format!("created server {name} came back without its labels"),
                        });
                        return (None, failures);
                    };
                    tracing::info!(node = %node.node, region = %region, server_type = %server_type, location = %location, server_id = created.server.id.0, "created a game node");
                    self.create_records_for(&created.server).await;
                    return (Some(node), failures);
                }
                Err(error) => {
                    let reason = failure_reason(&error);
                    tracing::warn!(region = %region, server_type = %server_type, location = %location, reason, cause = %error, "a game node's create action failed; deleting the server");
                    failures.push(CreateFailure {
                        reason,
                        detail: error.to_string(),
                    });
                    // A failed create still leaves a billed server behind.
                    self.delete_server(created.server.id).await.ok();
                    if error.is_capacity_problem() {
                        self.mark_unavailable(&option);
                        continue;
                    }
                    return (None, failures);
                }
            }
        }
        (None, failures)
    }

    /// The labels of a node's record sets: the fleet's selector labels plus region and node.
    fn record_labels(&self, server_name: &str, region: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (LABEL_FLEET.to_owned(), self.config.fleet.clone()),
            (LABEL_POOL.to_owned(), POOL_GAME.to_owned()),
            (LABEL_NODE.to_owned(), server_name.to_owned()),
        ]);
        if let Some(region) = region {
            labels.insert(LABEL_REGION.to_owned(), region.to_owned());
        }
        labels
    }

    /// Logs and counts a DNS failure; the next reconcile repairs what it left.
    fn dns_failed(&self, operation: &'static str, name: &str, error: &ExecutorError) {
        crate::metrics::dns_failed(operation);
        tracing::warn!(operation, record = %name, cause = %error, "a node's DNS record could not be changed; the next pass retries");
    }

    /// Creates one record set. `uniqueness_error` (it exists already) counts as done.
    async fn create_record(
        &self,
        dns: &DnsConfig,
        name: &str,
        rrset_type: &str,
        value: String,
        labels: BTreeMap<String, String>,
    ) -> Result<(), ExecutorError> {
        self.gate(1, self.config.budget_reserve)?;
        let request = CreateRrsetRequest {
            name: name.to_owned(),
            rrset_type: rrset_type.to_owned(),
            ttl: Some(dns.ttl_secs),
            records: vec![RrsetRecord {
                value,
                comment: None,
            }],
            labels,
        };
        let created = self.client.create_rrset(&dns.zone, &request).await;
        self.observe(created.as_ref().err());
        match created {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some(&ErrorCode::UniquenessError) => Ok(()),
            Err(source) => Err(ExecutorError::Hcloud {
                operation: "create dns record",
                source,
            }),
        }
    }

    /// Deletes one record set; one that does not exist is fine.
    async fn delete_record(
        &self,
        dns: &DnsConfig,
        name: &str,
        rrset_type: &str,
    ) -> Result<(), ExecutorError> {
        // Like server deletes, these spend no reserve.
        self.gate(1, 0)?;
        let deleted = self.client.delete_rrset(&dns.zone, name, rrset_type).await;
        self.observe(deleted.as_ref().err());
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(source) => Err(ExecutorError::Hcloud {
                operation: "delete dns record",
                source,
            }),
        }
    }

    /// A new server's records. Failures are logged and counted, never returned.
    async fn create_records_for(&self, server: &Server) {
        let Some(dns) = &self.config.dns else {
            return;
        };
        let name = dns.record_name(&server.name);
        let labels = self.record_labels(
            &server.name,
            server.labels.get(LABEL_REGION).map(String::as_str),
        );
        let (ipv4, ipv6) = public_addresses(server);
        let wanted = [
            ("A", ipv4.map(|ip| ip.to_string())),
            ("AAAA", ipv6.map(|ip| ip.to_string())),
        ];
        for (rrset_type, value) in wanted {
            let Some(value) = value else { continue };
            if let Err(error) = self
                .create_record(dns, &name, rrset_type, value, labels.clone())
                .await
            {
                self.dns_failed("create", &name, &error);
            }
        }
    }

    /// A deleted server's records (both types: a missing one is fine). Failures are logged
    /// and counted; the next reconcile deletes what is left.
    async fn delete_records_for(&self, server_name: &str) {
        let Some(dns) = &self.config.dns else {
            return;
        };
        let name = dns.record_name(server_name);
        for rrset_type in ["A", "AAAA"] {
            if let Err(error) = self.delete_record(dns, &name, rrset_type).await {
                self.dns_failed("delete", &name, &error);
            }
        }
    }

    /// One pass of DNS repair against the servers of the last fresh listing: one labelled
    /// listing of the zone, then a create for each missing or wrong record set and a delete for
    /// each labelled record set whose server is gone.
    async fn reconcile_dns(&self) {
        let Some(dns) = &self.config.dns else {
            return;
        };
        let Some(wanted) = self.lock().dns_wanted.take() else {
            return;
        };
        if let Err(error) = self.gate(1, self.config.budget_reserve) {
            tracing::debug!(cause = %error, "dns reconcile skipped");
            return;
        }
        let selector = self.selector();
        let listed = self.client.list_rrsets(&dns.zone, Some(&selector)).await;
        self.observe(listed.as_ref().err());
        let existing = match listed {
            Ok(existing) => existing,
            Err(source) => {
                let error = ExecutorError::Hcloud {
                    operation: "list dns records",
                    source,
                };
                self.dns_failed("list", &dns.zone, &error);
                return;
            }
        };
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for rrset in &existing {
            let wanted_value =
                wanted
                    .get(&rrset.name)
                    .and_then(|(ipv4, ipv6)| match rrset.rrset_type.as_str() {
                        "A" => ipv4.map(|ip| ip.to_string()),
                        "AAAA" => ipv6.map(|ip| ip.to_string()),
                        _ => None,
                    });
            // Compared as addresses, so another spelling of the same IPv6 is not churned.
            let values: Vec<String> = rrset
                .records
                .iter()
                .map(|record| {
                    record
                        .value
                        .parse::<std::net::IpAddr>()
                        .map_or_else(|_| record.value.clone(), |ip| ip.to_string())
                })
                .collect();
            match wanted_value {
                Some(value) if values == [value.as_str()] => {
                    seen.insert((rrset.name.clone(), rrset.rrset_type.clone()));
                }
                // Only our own kinds of record are touched.
                _ if rrset.rrset_type != "A" && rrset.rrset_type != "AAAA" => {}
                // No such server, or it points elsewhere: delete (a wrong one is recreated).
                _ => {
                    if let Err(error) = self
                        .delete_record(dns, &rrset.name, &rrset.rrset_type)
                        .await
                    {
                        self.dns_failed("delete", &rrset.name, &error);
                        // Not recreated this pass: the create would collide with it.
                        seen.insert((rrset.name.clone(), rrset.rrset_type.clone()));
                    } else {
                        tracing::info!(record = %rrset.name, rrset_type = %rrset.rrset_type, "deleted a DNS record without its server");
                    }
                }
            }
        }
        for (name, (ipv4, ipv6)) in &wanted {
            let node = self.lock().last_listing.as_ref().and_then(|(_, nodes)| {
                nodes
                    .iter()
                    .find(|node| dns.record_name(&node.node.0) == *name)
                    .map(|node| (node.node.0.clone(), node.region.0.clone()))
            });
            let labels = match &node {
                Some((server_name, region)) => self.record_labels(server_name, Some(region)),
                None => self.record_labels(name, None),
            };
            for (rrset_type, value) in [
                ("A", ipv4.map(|ip| ip.to_string())),
                ("AAAA", ipv6.map(|ip| ip.to_string())),
            ] {
                let Some(value) = value else { continue };
                if seen.contains(&(name.clone(), rrset_type.to_owned())) {
                    continue;
                }
                match self
                    .create_record(dns, name, rrset_type, value, labels.clone())
                    .await
                {
                    Ok(()) => {
                        tracing::info!(record = %name, rrset_type, "created a missing DNS record")
                    }
                    Err(error) => self.dns_failed("create", name, &error),
                }
            }
        }
    }

    async fn delete_server(&self, server_id: ServerId) -> Result<(), ExecutorError> {
        // Deletes spend no reserve: they are what the reserve is for.
        self.gate(1, 0)?;
        let deleted = self.client.delete_server(server_id).await;
        self.observe(deleted.as_ref().err());
        let action = match deleted {
            Ok(action) => action,
            Err(error) if error.is_not_found() => return Ok(()),
            Err(source) => {
                return Err(ExecutorError::Hcloud {
                    operation: "delete server",
                    source,
                });
            }
        };
        self.follow(action.id)
            .await
            .map(|_| ())
            .map_err(|source| ExecutorError::Hcloud {
                operation: "delete server action",
                source,
            })
    }
}

impl Executor for HcloudExecutor {
    fn node_control(&self) -> &NodeControl {
        &self.control
    }

    async fn list(&self) -> Result<Vec<ManagedNode>, ExecutorError> {
        let cached = || {
            self.lock()
                .last_listing
                .as_ref()
                .filter(|(at, _)| at.elapsed() < STALE_LISTING_LIMIT)
                .map(|(_, nodes)| nodes.clone())
        };
        if let Err(error) = self.gate(1, self.config.budget_reserve) {
            return cached().ok_or(error);
        }
        let selector = self.selector();
        let listed = self.client.list_servers(Some(&selector)).await;
        self.observe(listed.as_ref().err());
        match listed {
            Ok(servers) => {
                let nodes: Vec<ManagedNode> = servers
                    .iter()
                    .filter_map(|server| self.managed_from_server(server))
                    .collect();
                let dns_wanted = self.config.dns.as_ref().map(|dns| {
                    servers
                        .iter()
                        .filter(|server| self.managed_from_server(server).is_some())
                        .map(|server| (dns.record_name(&server.name), public_addresses(server)))
                        .collect()
                });
                let mut state = self.lock();
                state.last_listing = Some((Instant::now(), nodes.clone()));
                state.dns_wanted = dns_wanted;
                Ok(nodes)
            }
            Err(source) => {
                tracing::warn!(cause = %source, "listing game nodes failed");
                cached().ok_or(ExecutorError::Hcloud {
                    operation: "list servers",
                    source,
                })
            }
        }
    }

    async fn create(&self, region: &RegionId, count: u32) -> CreateOutcome {
        let mut outcome = CreateOutcome::default();
        for _ in 0..count {
            let (node, failures) = self.create_one(region).await;
            let gave_up = node.is_none();
            outcome.failures.extend(failures);
            match node {
                Some(node) => outcome.created.push(node),
                None => {
                    outcome.failures.push(CreateFailure {
                        reason: "all_options_failed",
                        detail: format!(
                            "no server type and location could create a node in {region}"
                        ),
                    });
                }
            }
            if gave_up
                && outcome
                    .failures
                    .iter()
                    .any(|failure| failure.reason == "rate_limited" || failure.reason == "config")
            {
                // Later nodes of this batch would be refused the same way.
                break;
            }
        }
        outcome
    }

    async fn destroy(&self, node: &ManagedNode) -> Result<(), ExecutorError> {
        let Some(server_id) = node.server_id else {
            return Ok(());
        };
        self.delete_server(ServerId(server_id)).await?;
        {
            let mut state = self.lock();
            if let Some((_, nodes)) = state.last_listing.as_mut() {
                nodes.retain(|listed| listed.node != node.node);
            }
        }
        tracing::info!(node = %node.node, server_id, "deleted a game node");
        self.delete_records_for(&node.node.0).await;
        Ok(())
    }

    async fn reconcile(&self) {
        self.reconcile_dns().await;
    }

    async fn shutdown(&self) {
        // Servers outlive the autoscaler on purpose: the next one adopts them by label.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_like_the_api_writes_them() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(
            parse_timestamp_ms("2016-01-30T23:50:00+00:00"),
            Some(1_454_197_800_000)
        );
        assert_eq!(
            parse_timestamp_ms("2016-01-31T00:50:00+01:00"),
            Some(1_454_197_800_000)
        );
        assert_eq!(
            parse_timestamp_ms("2016-01-30T23:50:00.123Z"),
            Some(1_454_197_800_000)
        );
        for bad in [
            "",
            "yesterday",
            "2016-13-30T23:50:00+00:00",
            "2016-01-30T23:50:00",
        ] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_names_are_host_names_and_directory_ids() {
        let name = server_name("coil", &RegionId::new("us_east"), 0xabcdef);
        assert_eq!(name, "coil-us-east-abcdef");
        let long = server_name(&"f".repeat(40), &RegionId::new("r"), 1);
        assert!(long.len() <= 32, "{long}");
        assert!(coil_match::NodeId::parse(&long).is_ok());
        assert!(server_name("9", &RegionId::new("x"), 1).starts_with('n'));
    }

    #[test]
    fn user_data_fills_every_placeholder_of_the_shipped_template() {
        let template = include_str!("../../../deploy/hetzner/image/node-cloud-init.yaml");
        let user_data = UserDataTemplate {
            template: template.to_owned(),
            nodes_domain: "nodes.example.com".to_owned(),
            fleet_env: "JOIN_TOKEN_PUBLIC_KEY=abc\n".to_owned(),
            tls_fullchain: "CHAIN".to_owned(),
            tls_privkey: "KEY".to_owned(),
        };
        let rendered = user_data.render("coil-ash-000001", "us-east").unwrap();
        assert!(rendered.contains("hostname: \"coil-ash-000001\""));
        assert!(rendered.contains("coil-ash-000001.nodes.example.com"));
        assert!(rendered.contains(&base64::engine::general_purpose::STANDARD.encode("KEY")));
        for placeholder in USER_DATA_PLACEHOLDERS {
            assert!(!rendered.contains(placeholder), "{placeholder} left");
        }
        let unknown = UserDataTemplate {
            template: "a: {{mystery}}".to_owned(),
            ..user_data.clone()
        };
        assert!(
            unknown
                .render("n", "r")
                .unwrap_err()
                .contains("{{mystery}}")
        );
        let huge = UserDataTemplate {
            fleet_env: "x".repeat(USER_DATA_LIMIT_BYTES),
            ..user_data
        };
        assert!(huge.render("n", "r").is_err());
    }
}
