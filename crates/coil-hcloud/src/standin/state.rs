//! The stand-in's in-memory project: servers, actions, DNS zones and their record sets, the rate-limit bucket, fault knobs and
//! the request log, plus the JSON the API would answer for each of them.
//!
//! Everything here is synchronous and takes `now` from the caller, so it is driven under one
//! short `std::sync::Mutex` by the routes and the test handle and never crosses an `.await`.
//! The JSON is written out field by field (not produced from the client's types) so that a
//! client decoding bug cannot cancel out against the stand-in.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    InjectedError, RecordedRequest, StandinConfig, StandinServerRecord, StandinServerType,
};
use crate::label_selector::{LabelSelector, is_valid_label_key, is_valid_label_value};
use crate::model::USER_DATA_LIMIT_BYTES;

/// Placement groups of type `spread` hold at most this many servers (hetzner.md).
const PLACEMENT_GROUP_CAPACITY: usize = 10;

/// An error answer: status, `error.code`, `error.message`, `error.details`.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) details: Value,
}

impl Refusal {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: status_for_code(code),
            code: code.to_owned(),
            message: message.into(),
            details: json!({}),
        }
    }

    fn invalid_field(field: &str, problem: &str) -> Self {
        Self {
            details: json!({"fields": [{"name": field, "messages": [problem]}]}),
            ..Self::new(
                "invalid_input",
                format!("invalid input in field '{field}': {problem}"),
            )
        }
    }

    pub(crate) fn from_injected(injected: &InjectedError) -> Self {
        Self {
            status: injected.status,
            code: injected.code.clone(),
            message: injected.message.clone(),
            details: json!({}),
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "details": self.details}})
    }
}

/// The HTTP status the stand-in sends with each error code.
///
/// The client classifies errors by `code`, never by status (except a bare 429), so these only
/// need to be plausible: 401/403/404/409/423/429 follow their HTTP meaning; the statuses of the
/// capacity codes are not stated in the public error table and are a best guess.
pub(crate) fn status_for_code(code: &str) -> u16 {
    match code {
        "invalid_input" | "json_error" => 400,
        "unauthorized" => 401,
        "forbidden" | "token_readonly" | "resource_limit_exceeded" => 403,
        "not_found" => 404,
        "uniqueness_error" | "conflict" => 409,
        "resource_unavailable" | "placement_error" => 412,
        "locked" | "protected" => 423,
        "rate_limit_exceeded" => 429,
        "maintenance" | "unavailable" => 503,
        "timeout" => 504,
        _ => 500,
    }
}

/// A token bucket with Hetzner's documented behaviour: `limit` requests, refilled gradually.
#[derive(Debug)]
pub(crate) struct RateBucket {
    limit: u32,
    refill_per_second: f64,
    tokens: f64,
    last_refill: Instant,
}

/// What goes into the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateHeaders {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset_unix_seconds: u64,
}

impl RateBucket {
    fn new(limit: u32, refill_per_second: f64, now: Instant) -> Self {
        Self {
            limit,
            refill_per_second: refill_per_second.max(0.0),
            tokens: f64::from(limit),
            last_refill: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(f64::from(self.limit));
        self.last_refill = now;
    }

    /// Takes one request from the bucket; `false` if it is empty.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn headers(&mut self, now: Instant, now_unix_seconds: u64) -> RateHeaders {
        self.refill(now);
        let missing = f64::from(self.limit) - self.tokens;
        let seconds_to_full = if missing <= 0.0 {
            0
        } else if self.refill_per_second > 0.0 {
            (missing / self.refill_per_second).ceil().min(1e9) as u64
        } else {
            // Never refills: "full again" lies a year ahead.
            365 * 86_400
        };
        RateHeaders {
            limit: self.limit,
            // In range 0..=limit, so the cast cannot truncate.
            remaining: self.tokens.floor().max(0.0) as u32,
            reset_unix_seconds: now_unix_seconds + seconds_to_full,
        }
    }

    pub(crate) fn set_remaining(&mut self, remaining: u32, now: Instant) {
        self.refill(now);
        self.tokens = f64::from(remaining.min(self.limit));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ActionOutcome {
    Running,
    Success,
    Error { code: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerEffect {
    Created(u64),
    Started(u64),
    Deleted(u64),
}

#[derive(Debug, Clone)]
struct StoredAction {
    id: u64,
    command: &'static str,
    outcome: ActionOutcome,
    polls: u32,
    polls_needed: u32,
    started_unix_seconds: u64,
    finished_unix_seconds: Option<u64>,
    server_id: u64,
    effect: ServerEffect,
    /// Set when a test asked this action to fail.
    fail_with: Option<(String, String)>,
}

impl StoredAction {
    fn progress(&self) -> u32 {
        match self.outcome {
            ActionOutcome::Success | ActionOutcome::Error { .. } => 100,
            ActionOutcome::Running if self.polls_needed == 0 => 100,
            ActionOutcome::Running => (self.polls * 100 / self.polls_needed).min(99),
        }
    }

    fn to_json(&self) -> Value {
        let (status, error) = match &self.outcome {
            ActionOutcome::Running => ("running", Value::Null),
            ActionOutcome::Success => ("success", Value::Null),
            ActionOutcome::Error { code, message } => {
                ("error", json!({"code": code, "message": message}))
            }
        };
        json!({
            "id": self.id,
            "command": self.command,
            "status": status,
            "progress": self.progress(),
            "started": rfc3339(self.started_unix_seconds),
            "finished": self.finished_unix_seconds.map(rfc3339),
            "resources": [{"id": self.server_id, "type": "server"}],
            "error": error,
        })
    }
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) next_create_errors: VecDeque<InjectedError>,
    pub(crate) unavailable: BTreeSet<(String, String)>,
    pub(crate) next_response_errors: VecDeque<InjectedError>,
    pub(crate) response_delay: Duration,
    pub(crate) failing_create_actions: VecDeque<(String, String)>,
    /// While set, every `/v1/zones/...` request answers 503 `unavailable` (a DNS outage).
    pub(crate) dns_unavailable: bool,
}

/// The whole in-memory project.
#[derive(Debug)]
pub(crate) struct StandinState {
    pub(crate) config: StandinConfig,
    pub(crate) faults: Faults,
    pub(crate) rate: RateBucket,
    pub(crate) request_log: Vec<RecordedRequest>,
    servers: BTreeMap<u64, StandinServerRecord>,
    actions: BTreeMap<u64, StoredAction>,
    next_server_id: u64,
    next_action_id: u64,
    next_address: u32,
    /// DNS zones by name.
    zones: BTreeMap<String, StoredZone>,
    next_zone_id: u64,
}

/// A primary DNS zone and its record sets, keyed by (name, type).
#[derive(Debug, Clone)]
struct StoredZone {
    id: u64,
    rrsets: BTreeMap<(String, String), StoredRrset>,
}

#[derive(Debug, Clone)]
struct StoredRrset {
    ttl: Option<u32>,
    labels: BTreeMap<String, String>,
    records: Vec<(String, Option<String>)>,
}

/// The body of `POST /v1/zones/{id_or_name}/rrsets` as the stand-in reads it.
#[derive(Debug, Deserialize)]
struct CreateRrsetBody {
    name: Option<String>,
    #[serde(rename = "type")]
    rrset_type: Option<String>,
    ttl: Option<u32>,
    #[serde(default)]
    records: Vec<RrsetRecordBody>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RrsetRecordBody {
    value: String,
    comment: Option<String>,
}

/// Record types the stand-in accepts (Hetzner's list; SOA and NS are managed with the zone).
const RRSET_TYPES: [&str; 11] = [
    "A", "AAAA", "CAA", "CNAME", "DS", "HINFO", "HTTPS", "MX", "PTR", "RP", "SRV",
];

/// The body of `POST /v1/servers` as the stand-in reads it. Fields are loose (`Value`) where
/// the API accepts either an id or a name.
#[derive(Debug, Deserialize)]
struct CreateServerBody {
    name: Option<String>,
    server_type: Option<Value>,
    image: Option<Value>,
    location: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    user_data: Option<String>,
    #[serde(default)]
    networks: Vec<u64>,
    #[serde(default)]
    firewalls: Vec<FirewallBody>,
    placement_group: Option<u64>,
    public_net: Option<PublicNetBody>,
    start_after_create: Option<bool>,
    #[serde(default)]
    ssh_keys: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct FirewallBody {
    firewall: u64,
}

#[derive(Debug, Deserialize)]
struct PublicNetBody {
    enable_ipv4: Option<bool>,
    enable_ipv6: Option<bool>,
}

/// Query parameters of list endpoints, already split.
#[derive(Debug, Default)]
pub(crate) struct ListParameters {
    pub(crate) label_selector: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: Vec<String>,
    /// `type` (record sets), repeatable.
    pub(crate) types: Vec<String>,
    pub(crate) page: Option<String>,
    pub(crate) per_page: Option<String>,
}

impl ListParameters {
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut parameters = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "label_selector" => parameters.label_selector = Some(value),
                "name" => parameters.name = Some(value),
                "status" => parameters.status.push(value),
                "type" => parameters.types.push(value),
                "page" => parameters.page = Some(value),
                "per_page" => parameters.per_page = Some(value),
                _ => {}
            }
        }
        parameters
    }
}

fn id_or_name(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => number.as_u64().map(|id| id.to_string()),
        _ => None,
    }
}

/// RFC 1123 hostname: labels of letters, digits and hyphens, not starting or ending with a
/// hyphen, at most 63 characters each and 253 in total.
fn is_valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
                && bytes
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
        })
}

impl StandinState {
    pub(crate) fn new(config: StandinConfig, now: Instant) -> Self {
        let rate = RateBucket::new(
            config.rate_limit_per_hour,
            config.rate_limit_refill_per_second,
            now,
        );
        Self {
            config,
            faults: Faults::default(),
            rate,
            request_log: Vec::new(),
            servers: BTreeMap::new(),
            actions: BTreeMap::new(),
            next_server_id: 42_000_001,
            next_action_id: 13_000_001,
            next_address: 1,
            zones: BTreeMap::new(),
            next_zone_id: 8_000_001,
        }
    }

    pub(crate) fn servers(&self) -> Vec<StandinServerRecord> {
        self.servers.values().cloned().collect()
    }

    pub(crate) fn server(&self, id: u64) -> Option<StandinServerRecord> {
        self.servers.get(&id).cloned()
    }

    pub(crate) fn set_server_status(&mut self, id: u64, status: &str) -> bool {
        match self.servers.get_mut(&id) {
            Some(server) => {
                server.status = status.to_owned();
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove_server(&mut self, id: u64) -> bool {
        self.servers.remove(&id).is_some()
    }

    fn server_type_by_id_or_name(&self, reference: &str) -> Option<&StandinServerType> {
        self.config.server_types.iter().find(|server_type| {
            server_type.name.eq_ignore_ascii_case(reference)
                || server_type.id.to_string() == reference
        })
    }

    fn new_action(
        &mut self,
        command: &'static str,
        server_id: u64,
        effect: ServerEffect,
        now_unix_seconds: u64,
    ) -> u64 {
        let id = self.next_action_id;
        self.next_action_id += 1;
        let action = StoredAction {
            id,
            command,
            outcome: ActionOutcome::Running,
            polls: 0,
            polls_needed: self.config.action_polls_to_finish,
            started_unix_seconds: now_unix_seconds,
            finished_unix_seconds: None,
            server_id,
            effect,
            fail_with: None,
        };
        self.actions.insert(id, action);
        id
    }

    /// Finishes an action and applies its effect on the server it concerns.
    fn finish_action(&mut self, action_id: u64, now_unix_seconds: u64) {
        let Some(action) = self.actions.get_mut(&action_id) else {
            return;
        };
        if action.outcome != ActionOutcome::Running {
            return;
        }
        action.finished_unix_seconds = Some(now_unix_seconds);
        let failed = action.fail_with.take();
        action.outcome = match &failed {
            Some((code, message)) => ActionOutcome::Error {
                code: code.clone(),
                message: message.clone(),
            },
            None => ActionOutcome::Success,
        };
        let effect = action.effect;
        match effect {
            ServerEffect::Created(server_id) => {
                if let Some(server) = self.servers.get_mut(&server_id) {
                    // A failed create leaves the server off: it still exists (and would still
                    // be billed) until someone deletes it, which is what an executor must
                    // survive.
                    server.status = if failed.is_none() && server.start_after_create {
                        "running".to_owned()
                    } else {
                        "off".to_owned()
                    };
                }
            }
            ServerEffect::Started(_) => {}
            ServerEffect::Deleted(server_id) => {
                if failed.is_none() {
                    self.servers.remove(&server_id);
                }
            }
        }
    }

    /// One observation of an action: it advances one step and finishes on its last one.
    fn observe_action(&mut self, action_id: u64, now_unix_seconds: u64) {
        let finished = match self.actions.get_mut(&action_id) {
            Some(action) if action.outcome == ActionOutcome::Running => {
                action.polls += 1;
                action.polls >= action.polls_needed
            }
            _ => false,
        };
        if finished {
            self.finish_action(action_id, now_unix_seconds);
        }
    }

    pub(crate) fn complete_all_actions(&mut self, now_unix_seconds: u64) {
        let running: Vec<u64> = self
            .actions
            .values()
            .filter(|action| action.outcome == ActionOutcome::Running)
            .map(|action| action.id)
            .collect();
        for action_id in running {
            self.finish_action(action_id, now_unix_seconds);
        }
    }

    fn running_action_for(&self, server_id: u64, command: &str) -> Option<u64> {
        self.actions
            .values()
            .find(|action| {
                action.server_id == server_id
                    && action.command == command
                    && action.outcome == ActionOutcome::Running
            })
            .map(|action| action.id)
    }

    /// `POST /v1/servers`.
    pub(crate) fn create_server(
        &mut self,
        body: &[u8],
        now_unix_seconds: u64,
    ) -> Result<Value, Refusal> {
        let body: CreateServerBody = serde_json::from_slice(body)
            .map_err(|error| Refusal::new("json_error", format!("invalid JSON: {error}")))?;

        let name = body
            .name
            .ok_or_else(|| Refusal::invalid_field("name", "is required"))?;
        if !is_valid_hostname(&name) {
            return Err(Refusal::invalid_field("name", "must be a valid hostname"));
        }
        let type_reference = body
            .server_type
            .as_ref()
            .and_then(id_or_name)
            .ok_or_else(|| Refusal::invalid_field("server_type", "is required"))?;
        let server_type = self
            .server_type_by_id_or_name(&type_reference)
            .cloned()
            .ok_or_else(|| Refusal::invalid_field("server_type", "server type not found"))?;
        let image_reference = body
            .image
            .as_ref()
            .and_then(id_or_name)
            .ok_or_else(|| Refusal::invalid_field("image", "is required"))?;
        let image = self
            .config
            .images
            .iter()
            .find(|image| {
                image.id.to_string() == image_reference
                    || image.name.as_deref() == Some(image_reference.as_str())
            })
            .cloned()
            .ok_or_else(|| Refusal::invalid_field("image", "image not found"))?;
        let location = match body.location {
            Some(location) => {
                if !self
                    .config
                    .locations
                    .iter()
                    .any(|known| known.name == location)
                {
                    return Err(Refusal::invalid_field("location", "location not found"));
                }
                location
            }
            // Without a location Hetzner picks one; the stand-in picks the first that sells
            // the type.
            None => server_type
                .prices
                .first()
                .map(|price| price.location.clone())
                .ok_or_else(|| Refusal::invalid_field("server_type", "not sold anywhere"))?,
        };
        if !server_type
            .prices
            .iter()
            .any(|price| price.location == location)
        {
            return Err(Refusal::invalid_field(
                "server_type",
                &format!(
                    "server type {} is not available in location {location}",
                    server_type.name
                ),
            ));
        }
        if let Some(user_data) = &body.user_data
            && user_data.len() > USER_DATA_LIMIT_BYTES
        {
            return Err(Refusal::invalid_field("user_data", "is too long"));
        }
        for (key, value) in &body.labels {
            if !is_valid_label_key(key) || key.starts_with("hetzner.cloud/") {
                return Err(Refusal::invalid_field("labels", "invalid label key"));
            }
            if !is_valid_label_value(value) {
                return Err(Refusal::invalid_field("labels", "invalid label value"));
            }
        }
        if self.servers.values().any(|server| server.name == name) {
            return Err(Refusal {
                details: json!({"fields": [{"name": "name"}]}),
                ..Refusal::new("uniqueness_error", "server name is already used")
            });
        }

        // Capacity, after validation: Hetzner only rations requests that are otherwise valid.
        if let Some(injected) = self.faults.next_create_errors.pop_front() {
            return Err(Refusal::from_injected(&injected));
        }
        if self
            .faults
            .unavailable
            .contains(&(server_type.name.clone(), location.clone()))
        {
            return Err(Refusal::new(
                "resource_unavailable",
                format!(
                    "server type {} is unavailable in {location}",
                    server_type.name
                ),
            ));
        }
        if let Some(limit) = self.config.project_server_limit
            && self.servers.len() >= limit
        {
            return Err(Refusal {
                details: json!({"limits": [{"name": "server_limit"}]}),
                ..Refusal::new("resource_limit_exceeded", "server limit exceeded")
            });
        }
        if let Some(group) = body.placement_group
            && self
                .servers
                .values()
                .filter(|server| server.placement_group == Some(group))
                .count()
                >= PLACEMENT_GROUP_CAPACITY
        {
            return Err(Refusal::new(
                "placement_error",
                format!("placement group {group} is full"),
            ));
        }

        let id = self.next_server_id;
        self.next_server_id += 1;
        let address = self.next_address;
        self.next_address += 1;
        let public_net = body.public_net.unwrap_or(PublicNetBody {
            enable_ipv4: None,
            enable_ipv6: None,
        });
        let start_after_create = body.start_after_create.unwrap_or(true);
        let record = StandinServerRecord {
            id,
            name,
            status: "initializing".to_owned(),
            server_type: server_type.name.clone(),
            location,
            image_id: image.id,
            labels: body.labels,
            user_data: body.user_data,
            networks: body.networks,
            firewalls: body
                .firewalls
                .iter()
                .map(|firewall| firewall.firewall)
                .collect(),
            placement_group: body.placement_group,
            ipv4: public_net.enable_ipv4.unwrap_or(true).then(|| {
                // 198.18.0.0/15 is reserved for testing (RFC 2544), so no real host is named.
                format!("198.18.{}.{}", (address >> 8) & 0xff, address & 0xff)
            }),
            ipv6: public_net
                .enable_ipv6
                .unwrap_or(true)
                .then(|| format!("2001:db8:{address:x}::/64")),
            private_address: address,
            created_unix_seconds: now_unix_seconds,
            start_after_create,
        };
        self.servers.insert(id, record);
        let create_action = self.new_action(
            "create_server",
            id,
            ServerEffect::Created(id),
            now_unix_seconds,
        );
        if let Some(failure) = self.faults.failing_create_actions.pop_front()
            && let Some(action) = self.actions.get_mut(&create_action)
        {
            action.fail_with = Some(failure);
        }
        let mut next_actions = Vec::new();
        if start_after_create {
            next_actions.push(self.new_action(
                "start_server",
                id,
                ServerEffect::Started(id),
                now_unix_seconds,
            ));
        }
        if self.config.action_polls_to_finish == 0 {
            self.finish_action(create_action, now_unix_seconds);
            for action_id in &next_actions {
                self.finish_action(*action_id, now_unix_seconds);
            }
        }
        let root_password = if body.ssh_keys.is_empty() {
            Value::String(format!("fixture-password-{id}"))
        } else {
            Value::Null
        };
        Ok(json!({
            "server": self.server_json(id),
            "action": self.action_json(create_action),
            "next_actions": next_actions.iter().map(|action_id| self.action_json(*action_id)).collect::<Vec<_>>(),
            "root_password": root_password,
        }))
    }

    /// `GET /v1/servers/{id}`. Reading a server observes its running create or delete action,
    /// so a caller that polls the server instead of the action also sees it progress.
    pub(crate) fn get_server(&mut self, id: u64, now_unix_seconds: u64) -> Result<Value, Refusal> {
        if !self.servers.contains_key(&id) {
            return Err(Refusal::new(
                "not_found",
                format!("server with ID '{id}' not found"),
            ));
        }
        for command in ["create_server", "delete_server"] {
            if let Some(action_id) = self.running_action_for(id, command) {
                self.observe_action(action_id, now_unix_seconds);
            }
        }
        match self.servers.get(&id) {
            Some(_) => Ok(json!({"server": self.server_json(id)})),
            // The observation finished a delete.
            None => Err(Refusal::new(
                "not_found",
                format!("server with ID '{id}' not found"),
            )),
        }
    }

    /// `DELETE /v1/servers/{id}`.
    pub(crate) fn delete_server(
        &mut self,
        id: u64,
        now_unix_seconds: u64,
    ) -> Result<Value, Refusal> {
        let Some(server) = self.servers.get_mut(&id) else {
            return Err(Refusal::new(
                "not_found",
                format!("server with ID '{id}' not found"),
            ));
        };
        if server.status == "deleting" {
            return Err(Refusal::new(
                "locked",
                "server is locked by a running delete action",
            ));
        }
        server.status = "deleting".to_owned();
        let action_id = self.new_action(
            "delete_server",
            id,
            ServerEffect::Deleted(id),
            now_unix_seconds,
        );
        let response = json!({"action": self.action_json(action_id)});
        if self.config.action_polls_to_finish == 0 {
            self.finish_action(action_id, now_unix_seconds);
        }
        Ok(response)
    }

    /// `GET /v1/actions/{id}`: observes the action, advancing it one step.
    pub(crate) fn get_action(&mut self, id: u64, now_unix_seconds: u64) -> Result<Value, Refusal> {
        if !self.actions.contains_key(&id) {
            return Err(Refusal::new(
                "not_found",
                format!("action with ID '{id}' not found"),
            ));
        }
        self.observe_action(id, now_unix_seconds);
        Ok(json!({"action": self.action_json(id)}))
    }

    /// `GET /v1/servers`.
    pub(crate) fn list_servers(&self, parameters: &ListParameters) -> Result<Value, Refusal> {
        let selector = match &parameters.label_selector {
            Some(text) => LabelSelector::parse(text)
                .map_err(|error| Refusal::invalid_field("label_selector", &error.to_string()))?,
            None => LabelSelector::everything(),
        };
        let (page, per_page) = page_parameters(parameters)?;
        let matching: Vec<u64> = self
            .servers
            .values()
            .filter(|server| selector.matches(&server.labels))
            .filter(|server| {
                parameters
                    .name
                    .as_ref()
                    .is_none_or(|name| &server.name == name)
            })
            .filter(|server| {
                parameters.status.is_empty() || parameters.status.contains(&server.status)
            })
            .map(|server| server.id)
            .collect();
        let (ids, pagination) = paginate(&matching, page, per_page);
        let servers: Vec<Value> = ids.iter().map(|id| self.server_json(*id)).collect();
        Ok(json!({"servers": servers, "meta": {"pagination": pagination}}))
    }

    /// Adds a primary zone (no record sets); returns its id, or the existing one's.
    pub(crate) fn add_zone(&mut self, name: &str) -> u64 {
        if let Some(zone) = self.zones.get(name) {
            return zone.id;
        }
        let id = self.next_zone_id;
        self.next_zone_id += 1;
        self.zones.insert(
            name.to_owned(),
            StoredZone {
                id,
                rrsets: BTreeMap::new(),
            },
        );
        id
    }

    /// Every record set of a zone as the API would list it; `None` for an unknown zone.
    pub(crate) fn rrsets_json(&self, zone: &str) -> Option<Vec<Value>> {
        let (_, stored) = self.zone(zone)?;
        Some(
            stored
                .rrsets
                .iter()
                .map(|(key, rrset)| rrset_json(stored.id, key, rrset))
                .collect(),
        )
    }

    /// The zone named or numbered `id_or_name`.
    fn zone(&self, id_or_name: &str) -> Option<(&String, &StoredZone)> {
        match id_or_name.parse::<u64>() {
            Ok(id) => self.zones.iter().find(|(_, zone)| zone.id == id),
            Err(_) => self.zones.get_key_value(id_or_name),
        }
    }

    fn zone_mut(&mut self, id_or_name: &str) -> Result<&mut StoredZone, Refusal> {
        let name = self
            .zone(id_or_name)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| Refusal::new("not_found", "zone not found"))?;
        self.zones
            .get_mut(&name)
            .ok_or_else(|| Refusal::new("not_found", "zone not found"))
    }

    fn dns_gate(&self) -> Result<(), Refusal> {
        if self.faults.dns_unavailable {
            return Err(Refusal::new(
                "unavailable",
                "DNS service temporarily unavailable",
            ));
        }
        Ok(())
    }

    fn dns_action(&mut self, command: &str, zone_id: u64, now_unix_seconds: u64) -> Value {
        // DNS actions finish at once here; they are not kept for `GET /v1/actions/{id}`.
        let id = self.next_action_id;
        self.next_action_id += 1;
        json!({
            "id": id,
            "command": command,
            "status": "success",
            "progress": 100,
            "started": rfc3339(now_unix_seconds),
            "finished": rfc3339(now_unix_seconds),
            "resources": [{"id": zone_id, "type": "zone"}],
            "error": null,
        })
    }

    /// `POST /v1/zones/{id_or_name}/rrsets`.
    pub(crate) fn create_rrset(
        &mut self,
        zone: &str,
        body: &[u8],
        now_unix_seconds: u64,
    ) -> Result<Value, Refusal> {
        self.dns_gate()?;
        let body: CreateRrsetBody = serde_json::from_slice(body)
            .map_err(|error| Refusal::new("json_error", format!("invalid JSON: {error}")))?;
        let zone_name = self
            .zone(zone)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| Refusal::new("not_found", "zone not found"))?;
        let name = body
            .name
            .ok_or_else(|| Refusal::invalid_field("name", "is required"))?;
        let relative_ok = name == "@"
            || (is_valid_hostname(&name.replace(['_', '*'], "a"))
                && name == name.to_ascii_lowercase()
                && name != zone_name
                && !name.ends_with(&format!(".{zone_name}")));
        if !relative_ok {
            return Err(Refusal::invalid_field(
                "name",
                "must be lower case, relative to the zone, without a trailing dot",
            ));
        }
        let rrset_type = body
            .rrset_type
            .filter(|rrset_type| RRSET_TYPES.contains(&rrset_type.as_str()))
            .ok_or_else(|| Refusal::invalid_field("type", "unknown record type"))?;
        if let Some(ttl) = body.ttl
            && !(60..=2_147_483_647).contains(&ttl)
        {
            // The lower bound is the stand-in's assumption, not a documented Hetzner limit.
            return Err(Refusal::invalid_field("ttl", "must be at least 60"));
        }
        if body.records.is_empty() {
            return Err(Refusal::invalid_field("records", "must not be empty"));
        }
        let mut values = BTreeSet::new();
        for record in &body.records {
            let valid = match rrset_type.as_str() {
                "A" => record.value.parse::<std::net::Ipv4Addr>().is_ok(),
                "AAAA" => record.value.parse::<std::net::Ipv6Addr>().is_ok(),
                _ => !record.value.is_empty(),
            };
            if !valid || !values.insert(record.value.clone()) {
                return Err(Refusal::invalid_field(
                    "records",
                    "values must be valid for the type and distinct",
                ));
            }
        }
        for (key, value) in &body.labels {
            if !is_valid_label_key(key) || !is_valid_label_value(value) {
                return Err(Refusal::invalid_field("labels", "invalid label"));
            }
        }
        let stored_zone = self.zone_mut(zone)?;
        let key = (name, rrset_type);
        if stored_zone.rrsets.contains_key(&key) {
            return Err(Refusal::new(
                "uniqueness_error",
                "an RRSet with this name and type already exists",
            ));
        }
        let rrset = StoredRrset {
            ttl: body.ttl,
            labels: body.labels,
            records: body
                .records
                .into_iter()
                .map(|record| (record.value, record.comment))
                .collect(),
        };
        let zone_id = stored_zone.id;
        let rrset_value = rrset_json(zone_id, &key, &rrset);
        stored_zone.rrsets.insert(key, rrset);
        let action = self.dns_action("create_rrset", zone_id, now_unix_seconds);
        Ok(json!({"rrset": rrset_value, "action": action}))
    }

    /// `DELETE /v1/zones/{id_or_name}/rrsets/{name}/{type}`.
    pub(crate) fn delete_rrset(
        &mut self,
        zone: &str,
        name: &str,
        rrset_type: &str,
        now_unix_seconds: u64,
    ) -> Result<Value, Refusal> {
        self.dns_gate()?;
        let stored_zone = self.zone_mut(zone)?;
        let zone_id = stored_zone.id;
        stored_zone
            .rrsets
            .remove(&(name.to_owned(), rrset_type.to_owned()))
            .ok_or_else(|| Refusal::new("not_found", "RRSet not found"))?;
        let action = self.dns_action("delete_rrset", zone_id, now_unix_seconds);
        Ok(json!({"action": action}))
    }

    /// `GET /v1/zones/{id_or_name}/rrsets`: `label_selector`, `name` and `type` filters,
    /// paginated.
    pub(crate) fn list_rrsets(
        &self,
        zone: &str,
        parameters: &ListParameters,
    ) -> Result<Value, Refusal> {
        self.dns_gate()?;
        let (_, stored_zone) = self
            .zone(zone)
            .ok_or_else(|| Refusal::new("not_found", "zone not found"))?;
        let selector = match &parameters.label_selector {
            Some(text) => LabelSelector::parse(text)
                .map_err(|error| Refusal::invalid_field("label_selector", &error.to_string()))?,
            None => LabelSelector::everything(),
        };
        let (page, per_page) = page_parameters(parameters)?;
        let matching: Vec<&(String, String)> = stored_zone
            .rrsets
            .iter()
            .filter(|(_, rrset)| selector.matches(&rrset.labels))
            .filter(|((name, _), _)| parameters.name.as_ref().is_none_or(|wanted| name == wanted))
            .filter(|((_, rrset_type), _)| {
                parameters.types.is_empty() || parameters.types.contains(rrset_type)
            })
            .map(|(key, _)| key)
            .collect();
        let (keys, pagination) = paginate(&matching, page, per_page);
        let rrsets: Vec<Value> = keys
            .iter()
            .filter_map(|key| {
                stored_zone
                    .rrsets
                    .get(*key)
                    .map(|rrset| rrset_json(stored_zone.id, key, rrset))
            })
            .collect();
        Ok(json!({"rrsets": rrsets, "meta": {"pagination": pagination}}))
    }

    /// `GET /v1/server_types`.
    pub(crate) fn list_server_types(&self, parameters: &ListParameters) -> Result<Value, Refusal> {
        let (page, per_page) = page_parameters(parameters)?;
        let matching: Vec<usize> = self
            .config
            .server_types
            .iter()
            .enumerate()
            .filter(|(_, server_type)| {
                parameters
                    .name
                    .as_ref()
                    .is_none_or(|name| &server_type.name == name)
            })
            .map(|(index, _)| index)
            .collect();
        let (indexes, pagination) = paginate(&matching, page, per_page);
        let server_types: Vec<Value> = indexes
            .iter()
            .map(|index| self.server_type_json(&self.config.server_types[*index]))
            .collect();
        Ok(json!({"server_types": server_types, "meta": {"pagination": pagination}}))
    }

    /// `GET /v1/pricing`.
    pub(crate) fn pricing(&self) -> Value {
        let server_types: Vec<Value> = self
            .config
            .server_types
            .iter()
            .map(|server_type| {
                json!({
                    "id": server_type.id,
                    "name": server_type.name,
                    "prices": self.price_list_json(server_type),
                })
            })
            .collect();
        let ipv4_prices: Vec<Value> = self
            .config
            .locations
            .iter()
            .map(|location| {
                json!({
                    "location": location.name,
                    "price_hourly": self.money(self.config.primary_ipv4_monthly_net / 730.0),
                    "price_monthly": self.money(self.config.primary_ipv4_monthly_net),
                })
            })
            .collect();
        let ipv6_prices: Vec<Value> = self
            .config
            .locations
            .iter()
            .map(|location| {
                json!({
                    "location": location.name,
                    "price_hourly": self.money(0.0),
                    "price_monthly": self.money(0.0),
                })
            })
            .collect();
        json!({
            "pricing": {
                "currency": self.config.currency,
                "vat_rate": format!("{:.2}", self.config.vat_rate_percent),
                "server_backup": {"percentage": "20.00"},
                "volume": {"price_per_gb_month": self.money(0.0572)},
                "image": {"price_per_gb_month": self.money(0.0143)},
                "primary_ips": [
                    {"type": "ipv4", "prices": ipv4_prices},
                    {"type": "ipv6", "prices": ipv6_prices},
                ],
                "floating_ips": [],
                "load_balancer_types": [],
                "server_types": server_types,
            }
        })
    }

    /// A net price and its gross (VAT added), as the API's decimal strings.
    fn money(&self, net: f64) -> Value {
        let gross = net * (1.0 + self.config.vat_rate_percent / 100.0);
        json!({"net": format!("{net:.10}"), "gross": format!("{gross:.10}")})
    }

    fn price_list_json(&self, server_type: &StandinServerType) -> Vec<Value> {
        server_type
            .prices
            .iter()
            .map(|price| {
                json!({
                    "location": price.location,
                    "price_hourly": self.money(price.hourly_net),
                    "price_monthly": self.money(price.monthly_net),
                    "included_traffic": price.included_traffic_bytes,
                    "price_per_tb_traffic": self.money(price.per_tb_traffic_net),
                })
            })
            .collect()
    }

    fn server_type_json(&self, server_type: &StandinServerType) -> Value {
        let locations: Vec<Value> = server_type
            .prices
            .iter()
            .filter_map(|price| {
                self.config
                    .locations
                    .iter()
                    .find(|location| location.name == price.location)
            })
            .map(|location| json!({"id": location.id, "name": location.name, "deprecation": null}))
            .collect();
        json!({
            "id": server_type.id,
            "name": server_type.name,
            "description": server_type.description,
            "cores": server_type.cores,
            "memory": server_type.memory_gb,
            "disk": server_type.disk_gb,
            "deprecated": false,
            "deprecation": null,
            "prices": self.price_list_json(server_type),
            "storage_type": "local",
            "cpu_type": server_type.cpu_type,
            "architecture": server_type.architecture,
            "category": if server_type.cpu_type == "dedicated" { "dedicated_cpu" } else { "regular_purpose" },
            "locations": locations,
        })
    }

    fn action_json(&self, action_id: u64) -> Value {
        self.actions
            .get(&action_id)
            .map(StoredAction::to_json)
            .unwrap_or(Value::Null)
    }

    fn server_json(&self, id: u64) -> Value {
        let Some(server) = self.servers.get(&id) else {
            return Value::Null;
        };
        let server_type = self
            .server_type_by_id_or_name(&server.server_type)
            .map(|server_type| self.server_type_json(server_type))
            .unwrap_or(Value::Null);
        let included_traffic = self
            .server_type_by_id_or_name(&server.server_type)
            .and_then(|server_type| {
                server_type
                    .prices
                    .iter()
                    .find(|price| price.location == server.location)
            })
            .map(|price| price.included_traffic_bytes)
            .unwrap_or(0);
        let location = self
            .config
            .locations
            .iter()
            .find(|location| location.name == server.location);
        let datacenter = match location {
            Some(location) => json!({
                "id": location.id,
                "name": location.datacenter_name,
                "description": format!("{} virtual DC", location.description),
                "location": {
                    "id": location.id,
                    "name": location.name,
                    "description": location.description,
                    "country": location.country,
                    "city": location.city,
                    "latitude": 0.0,
                    "longitude": 0.0,
                    "network_zone": location.network_zone,
                },
                "server_types": {"supported": [], "available": [], "available_for_migration": []},
            }),
            None => Value::Null,
        };
        let image = self
            .config
            .images
            .iter()
            .find(|image| image.id == server.image_id)
            .map(|image| {
                json!({
                    "id": image.id,
                    "type": image.image_type,
                    "status": "available",
                    "name": image.name,
                    "description": image.description,
                    "os_flavor": "ubuntu",
                    "architecture": "x86",
                    "labels": {},
                })
            })
            .unwrap_or(Value::Null);
        let ipv4 = server.ipv4.as_ref().map(|ip| {
            json!({"id": server.id + 500_000_000, "ip": ip, "blocked": false, "dns_ptr": format!("static.{ip}.clients.your-server.de")})
        });
        let ipv6 = server.ipv6.as_ref().map(
            |ip| json!({"id": server.id + 600_000_000, "ip": ip, "blocked": false, "dns_ptr": []}),
        );
        let firewalls: Vec<Value> = server
            .firewalls
            .iter()
            .map(|firewall| json!({"id": firewall, "status": "applied"}))
            .collect();
        let private_net: Vec<Value> = server
            .networks
            .iter()
            .map(|network| {
                json!({
                    "network": network,
                    "ip": format!("10.0.{}.{}", (server.private_address >> 8) & 0xff, server.private_address & 0xff),
                    "alias_ips": [],
                    "mac_address": format!("86:00:00:{:02x}:{:02x}:{:02x}", (server.private_address >> 16) & 0xff, (server.private_address >> 8) & 0xff, server.private_address & 0xff),
                })
            })
            .collect();
        let placement_group = server.placement_group.map(|group| {
            let members: Vec<u64> = self
                .servers
                .values()
                .filter(|other| other.placement_group == Some(group))
                .map(|other| other.id)
                .collect();
            json!({"id": group, "name": format!("placement-group-{group}"), "type": "spread", "servers": members, "labels": {}, "created": rfc3339(server.created_unix_seconds)})
        });
        let locked = self.actions.values().any(|action| {
            action.server_id == id
                && action.outcome == ActionOutcome::Running
                && action.command != "start_server"
        });
        json!({
            "id": server.id,
            "name": server.name,
            "status": server.status,
            "created": rfc3339(server.created_unix_seconds),
            "public_net": {
                "ipv4": ipv4,
                "ipv6": ipv6,
                "floating_ips": [],
                "firewalls": firewalls,
            },
            "private_net": private_net,
            "server_type": server_type,
            "datacenter": datacenter,
            "image": image,
            "iso": null,
            "rescue_enabled": false,
            "locked": locked,
            "backup_window": null,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": included_traffic,
            "protection": {"delete": false, "rebuild": false},
            "labels": server.labels,
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": self.server_type_by_id_or_name(&server.server_type).map(|server_type| server_type.disk_gb).unwrap_or(0),
            "placement_group": placement_group,
        })
    }
}

/// `page` (from 1) and `per_page` (1..=50, default 25) as the API documents them.
fn rrset_json(zone_id: u64, key: &(String, String), rrset: &StoredRrset) -> Value {
    let records: Vec<Value> = rrset
        .records
        .iter()
        .map(|(value, comment)| json!({"value": value, "comment": comment}))
        .collect();
    json!({
        "id": format!("{}/{}", key.0, key.1),
        "name": key.0,
        "type": key.1,
        "ttl": rrset.ttl,
        "labels": rrset.labels,
        "protection": {"change": false},
        "records": records,
        "zone": zone_id,
    })
}

fn page_parameters(parameters: &ListParameters) -> Result<(u64, u64), Refusal> {
    let page = match &parameters.page {
        None => 1,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| Refusal::invalid_field("page", "must be a positive integer"))?,
    };
    let per_page = match &parameters.per_page {
        None => 25,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|per_page| (1..=50).contains(per_page))
            .ok_or_else(|| Refusal::invalid_field("per_page", "must be between 1 and 50"))?,
    };
    Ok((page, per_page))
}

fn paginate<Item: Copy>(items: &[Item], page: u64, per_page: u64) -> (Vec<Item>, Value) {
    let total = items.len() as u64;
    let last_page = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page);
    let selected: Vec<Item> = items
        .iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .copied()
        .collect();
    let pagination = json!({
        "page": page,
        "per_page": per_page,
        "previous_page": if page > 1 { Some(page - 1) } else { None },
        "next_page": if page < last_page { Some(page + 1) } else { None },
        "last_page": last_page,
        "total_entries": total,
    });
    (selected, pagination)
}

/// Formats UNIX seconds as `YYYY-MM-DDTHH:MM:SS+00:00`, the API's timestamp style.
pub(crate) fn rfc3339(unix_seconds: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    // humantime writes `…Z`; Hetzner's API writes the offset.
    let text = humantime::format_rfc3339_seconds(at).to_string();
    format!("{}+00:00", text.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_the_api_does() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(1_795_304_096), "2026-11-21T23:34:56+00:00");
    }

    #[test]
    fn pagination_meta_follows_the_published_shape() {
        let items: Vec<u32> = (0..7).collect();
        let (first, meta) = paginate(&items, 1, 3);
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(meta["previous_page"], Value::Null);
        assert_eq!(meta["next_page"], 2);
        assert_eq!(meta["last_page"], 3);
        assert_eq!(meta["total_entries"], 7);
        let (last, meta) = paginate(&items, 3, 3);
        assert_eq!(last, vec![6]);
        assert_eq!(meta["next_page"], Value::Null);
        let (beyond, _) = paginate(&items, 9, 3);
        assert!(beyond.is_empty());
    }

    #[test]
    fn the_bucket_refuses_when_empty_and_reports_reset() {
        let start = Instant::now();
        let mut bucket = RateBucket::new(3, 1.0, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        let headers = bucket.headers(start, 1_000);
        assert_eq!(headers.remaining, 0);
        assert_eq!(headers.reset_unix_seconds, 1_003);
        assert!(bucket.try_take(start + Duration::from_millis(1_500)));
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        assert!(is_valid_hostname("coil-node-fsn1-7"));
        assert!(is_valid_hostname("a.b"));
        assert!(!is_valid_hostname("-bad"));
        assert!(!is_valid_hostname("under_score"));
        assert!(!is_valid_hostname(""));
    }
}
