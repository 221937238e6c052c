//! Configuration of `coil autoscaler`: flags and environment variables, validated into an
//! [`AutoscalerConfig`] before any socket is bound or any API is called.
//!
//! Every setting is a flag with an environment variable of the same name (`--min-nodes` /
//! `MIN_NODES`); `coil autoscaler --help` lists them all. Policy knobs left unset keep the
//! value of `POLICY_FILE` (JSON, `coil_autoscale::Policy`), or the policy's default. Tests
//! parse flags from a slice, so no test mutates the process environment. A bad value is a
//! [`ConfigError`] naming the variable (the binary prints it and exits 64).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use coil_autoscale::{Policy, RegionId};
use coil_hcloud::{ApiToken, ImageRef};
pub use coil_service::ConfigError;
use coil_service::{invalid, parse_flag};

use crate::hcloud::{DnsConfig, HcloudConfig, UserDataTemplate};
use crate::local::LocalConfig;

/// Which backend starts and stops game nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// `coil node` child processes on 127.0.0.1 (development, demos, tests).
    Local,
    /// Hetzner Cloud servers from the prebaked snapshot.
    Hcloud,
}

/// Flags and environment of `coil autoscaler`.
#[derive(Debug, Clone, Args)]
pub struct AutoscalerArgs {
    // ---- the controller ----
    #[command(flatten)]
    pub redis: coil_service::config::DirectoryRedisArgs,

    /// The nodes' INTERNAL_SECRET: the autoscaler presents it on their /internal/drain and
    /// /internal/evict (and gives it to local nodes). Required.
    #[command(flatten)]
    pub internal_secret: coil_service::config::InternalSecretArgs,

    /// Regions this autoscaler manages, comma separated (e.g. us-east,eu-central).
    #[arg(long, env = "REGIONS", value_name = "REGIONS", default_value = "local")]
    pub regions: String,

    /// Backend that creates and deletes game nodes: local or hcloud.
    #[arg(
        long,
        env = "EXECUTOR",
        value_name = "EXECUTOR",
        value_enum,
        default_value = "local"
    )]
    pub executor: ExecutorKind,

    /// Decide and log every action, execute none (start here in production).
    #[arg(long, env = "DRY_RUN", value_name = "DRY_RUN", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "0")]
    pub dry_run: bool,

    /// Seconds between two evaluations.
    #[arg(
        long,
        env = "INTERVAL_SECS",
        value_name = "INTERVAL_SECS",
        default_value_t = 15
    )]
    pub interval_secs: u64,

    /// Address of the metrics listener (GET /metrics).
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port of the metrics listener (0 picks a free one).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8789)]
    pub port: u16,

    /// Humans per room at which the matchmaker stops placing (the rooms_above_soft_cap signal).
    #[arg(
        long,
        env = "ROOM_SOFT_CAP",
        value_name = "ROOM_SOFT_CAP",
        default_value_t = 120
    )]
    pub room_soft_cap: u32,

    /// Milliseconds a node's /metrics may take; a node that does not answer counts as idle.
    #[arg(
        long,
        env = "SCRAPE_TIMEOUT_MS",
        value_name = "SCRAPE_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub scrape_timeout_ms: u64,

    /// A matchmaker's metrics URL (http://10.40.1.11:8788/metrics): its turned-away matchmakes
    /// (coil_matchmake_requests_total{result="no_capacity"}) count as demand in the first
    /// region of REGIONS, the only signal that brings a region back from zero nodes.
    #[arg(
        long,
        env = "MATCHMAKER_METRICS_URL",
        value_name = "MATCHMAKER_METRICS_URL"
    )]
    pub matchmaker_metrics_url: Option<String>,

    // ---- the policy (docs/autoscaling.md explains each) ----
    /// JSON file with a full coil_autoscale::Policy (thresholds, per-region limits, schedules).
    /// The settings below override its values when they are set.
    #[arg(long, env = "POLICY_FILE", value_name = "POLICY_FILE")]
    pub policy_file: Option<PathBuf>,

    /// Nodes kept per region even when idle (0 allows scaling to zero). Default 1.
    #[arg(long, env = "MIN_NODES", value_name = "MIN_NODES")]
    pub min_nodes: Option<u32>,

    /// Most servers per region, booting and draining included (they are all billed). Default 20.
    #[arg(long, env = "MAX_NODES", value_name = "MAX_NODES")]
    pub max_nodes: Option<u32>,

    /// Most servers across regions (the Hetzner project's server limit). Default none.
    #[arg(long, env = "MAX_TOTAL_NODES", value_name = "MAX_TOTAL_NODES")]
    pub max_total_nodes: Option<u32>,

    /// Human seats one node serves (rooms × soft cap, or the load generator's measurement).
    /// Default 480.
    #[arg(long, env = "SEATS_PER_NODE", value_name = "SEATS_PER_NODE")]
    pub seats_per_node: Option<u32>,

    /// Share of seats kept free; below it the region scales out at once. Default 0.15.
    #[arg(long, env = "SPARE_SEAT_BUFFER", value_name = "SPARE_SEAT_BUFFER")]
    pub spare_seat_buffer: Option<f64>,

    /// Extra spare share a region must keep after a removal. Default 0.05.
    #[arg(
        long,
        env = "SCALE_IN_BUFFER_MARGIN",
        value_name = "SCALE_IN_BUFFER_MARGIN"
    )]
    pub scale_in_buffer_margin: Option<f64>,

    /// Distinct pressure signals that must be sustained together to scale out. Default 2.
    #[arg(
        long,
        env = "MIN_PRESSURE_SIGNALS",
        value_name = "MIN_PRESSURE_SIGNALS"
    )]
    pub min_pressure_signals: Option<u32>,

    /// Load counts as low below this share of each scale-out threshold. Default 0.6.
    #[arg(
        long,
        env = "LOW_USE_SIGNAL_FRACTION",
        value_name = "LOW_USE_SIGNAL_FRACTION"
    )]
    pub low_use_signal_fraction: Option<f64>,

    /// Seconds signals must press before a pressure scale-out. Default 120.
    #[arg(
        long,
        env = "SCALE_OUT_WINDOW_SECS",
        value_name = "SCALE_OUT_WINDOW_SECS"
    )]
    pub scale_out_window_secs: Option<u64>,

    /// Seconds between two pressure scale-outs. Default 180.
    #[arg(
        long,
        env = "SCALE_OUT_COOLDOWN_SECS",
        value_name = "SCALE_OUT_COOLDOWN_SECS"
    )]
    pub scale_out_cooldown_secs: Option<u64>,

    /// Seconds use must stay low before a node is retired. Default 600.
    #[arg(
        long,
        env = "SCALE_IN_WINDOW_SECS",
        value_name = "SCALE_IN_WINDOW_SECS"
    )]
    pub scale_in_window_secs: Option<u64>,

    /// Seconds after any scale-out before a retirement may start. Default 900.
    #[arg(
        long,
        env = "SCALE_IN_DELAY_AFTER_SCALE_OUT_SECS",
        value_name = "SCALE_IN_DELAY_AFTER_SCALE_OUT_SECS"
    )]
    pub scale_in_delay_after_scale_out_secs: Option<u64>,

    /// Seconds between the end of one retirement and the start of the next. Default 120.
    #[arg(
        long,
        env = "SCALE_IN_COOLDOWN_SECS",
        value_name = "SCALE_IN_COOLDOWN_SECS"
    )]
    pub scale_in_cooldown_secs: Option<u64>,

    /// Seconds a draining node keeps its players before they are evicted. Default 1200, the
    /// nodes' MATCH_DRAIN_DEADLINE_SECS: keep it at least that, or matches in progress are cut.
    #[arg(long, env = "DRAIN_DEADLINE_SECS", value_name = "DRAIN_DEADLINE_SECS")]
    pub drain_deadline_secs: Option<u64>,

    /// Seconds evicted players get to re-matchmake before the server is deleted. Default 30.
    #[arg(long, env = "EVICTION_GRACE_SECS", value_name = "EVICTION_GRACE_SECS")]
    pub eviction_grace_secs: Option<u64>,

    /// Seconds before a mark or delete that did not take effect is issued again. Default 60.
    #[arg(long, env = "ACTION_RETRY_SECS", value_name = "ACTION_RETRY_SECS")]
    pub action_retry_secs: Option<u64>,

    /// Seconds a node may boot before it is retired as failed. Default 600.
    #[arg(long, env = "BOOT_TIMEOUT_SECS", value_name = "BOOT_TIMEOUT_SECS")]
    pub boot_timeout_secs: Option<u64>,

    /// Seconds a requested node counts as capacity before it is listed. Default 120.
    #[arg(
        long,
        env = "PENDING_CREATE_TIMEOUT_SECS",
        value_name = "PENDING_CREATE_TIMEOUT_SECS"
    )]
    pub pending_create_timeout_secs: Option<u64>,

    // ---- EXECUTOR=local ----
    /// The coil binary local nodes run as `coil node`. Default: this executable.
    #[arg(long, env = "COIL_BIN", value_name = "COIL_BIN")]
    pub coil_bin: Option<PathBuf>,

    /// Local node n listens on 127.0.0.1:<BASE_PORT + n> (or the next free port).
    #[arg(
        long,
        env = "BASE_PORT",
        value_name = "BASE_PORT",
        default_value_t = 8800
    )]
    pub base_port: u16,

    /// The matchmaker's join-token public key, given to local nodes (required for local).
    #[arg(
        long,
        env = "JOIN_TOKEN_PUBLIC_KEY",
        value_name = "JOIN_TOKEN_PUBLIC_KEY"
    )]
    pub join_token_public_key: Option<String>,

    /// Extra environment for local nodes, NAME=VALUE, separated by ';' in the variable
    /// (e.g. "MAX_ROOMS=50;ROOM_POPULATION_TARGET=0"). Applied last.
    #[arg(long, env = "NODE_ENV", value_name = "NODE_ENV", value_delimiter = ';')]
    pub node_env: Vec<String>,

    /// Names of the autoscaler's own environment variables copied to local nodes, comma
    /// separated (e.g. DATABASE_URL,TICK_MS).
    #[arg(
        long,
        env = "NODE_ENV_PASSTHROUGH",
        value_name = "NODE_ENV_PASSTHROUGH",
        default_value = ""
    )]
    pub node_env_passthrough: String,

    /// Directory for local nodes' data and logs. Default: a temporary directory removed at exit.
    #[arg(long, env = "LOCAL_DATA_DIR", value_name = "LOCAL_DATA_DIR")]
    pub local_data_dir: Option<PathBuf>,

    /// Seconds a local node may take to exit after SIGTERM before it is killed.
    #[arg(
        long,
        env = "NODE_STOP_TIMEOUT_SECS",
        value_name = "NODE_STOP_TIMEOUT_SECS",
        default_value_t = 15
    )]
    pub node_stop_timeout_secs: u64,

    // ---- EXECUTOR=hcloud ----
    /// Hetzner Cloud API token (read & write). Prefer HCLOUD_TOKEN_FILE.
    #[arg(
        long,
        env = "HCLOUD_TOKEN",
        value_name = "HCLOUD_TOKEN",
        hide_env_values = true
    )]
    pub hcloud_token: Option<String>,

    /// File holding the Hetzner Cloud API token.
    #[arg(long, env = "HCLOUD_TOKEN_FILE", value_name = "HCLOUD_TOKEN_FILE")]
    pub hcloud_token_file: Option<PathBuf>,

    /// Hetzner Cloud API base URL (tests point it at the stand-in).
    #[arg(
        long,
        env = "HCLOUD_API_URL",
        value_name = "HCLOUD_API_URL",
        default_value = coil_hcloud::DEFAULT_BASE_URL
    )]
    pub hcloud_api_url: String,

    /// Fleet name: the coil-fleet label and the server name prefix.
    #[arg(long, env = "FLEET", value_name = "FLEET", default_value = "coil")]
    pub fleet: String,

    /// Server types to create, best first; the next is tried when Hetzner has no capacity.
    #[arg(
        long,
        env = "SERVER_TYPES",
        value_name = "SERVER_TYPES",
        default_value = "ccx33,ccx23,cpx41"
    )]
    pub server_types: String,

    /// Hetzner locations per region, in order: "us-east=ash,hil;eu-central=fsn1,nbg1,hel1".
    /// A plain list ("ash,hil") applies to every region.
    #[arg(long, env = "LOCATIONS", value_name = "LOCATIONS", default_value = "")]
    pub locations: String,

    /// Image of game nodes: the snapshot id (a number) or an image name.
    #[arg(long, env = "SNAPSHOT_ID", value_name = "SNAPSHOT_ID")]
    pub snapshot_id: Option<String>,

    /// Extra labels on game-node servers, "key=value,key2=value2".
    #[arg(long, env = "LABELS", value_name = "LABELS", default_value = "")]
    pub labels: String,

    /// Private network id to attach game nodes to (their /metrics and /internal/* are reached
    /// on the private address).
    #[arg(long, env = "NETWORK_ID", value_name = "NETWORK_ID")]
    pub network_id: Option<u64>,

    /// Firewall ids to apply at create, comma separated (empty when the firewall attaches by
    /// label selector).
    #[arg(
        long,
        env = "FIREWALL_IDS",
        value_name = "FIREWALL_IDS",
        default_value = ""
    )]
    pub firewall_ids: String,

    /// Placement group id for game nodes (a spread group holds at most 10 servers).
    #[arg(long, env = "PLACEMENT_GROUP_ID", value_name = "PLACEMENT_GROUP_ID")]
    pub placement_group_id: Option<u64>,

    /// SSH key names or ids for game nodes, comma separated.
    #[arg(long, env = "SSH_KEYS", value_name = "SSH_KEYS", default_value = "")]
    pub ssh_keys: String,

    /// Give game nodes a public IPv4 (players without IPv6 need it).
    #[arg(long, env = "ENABLE_IPV4", value_name = "ENABLE_IPV4", value_parser = parse_flag, action = clap::ArgAction::Set, default_value = "1")]
    pub enable_ipv4: bool,

    /// Port of the game node's HTTP listener (/metrics, /internal/*).
    #[arg(
        long,
        env = "NODE_PORT",
        value_name = "NODE_PORT",
        default_value_t = 8787
    )]
    pub node_port: u16,

    /// Cloud-init template of game nodes (deploy/hetzner/image/node-cloud-init.yaml).
    #[arg(
        long,
        env = "NODE_USER_DATA_TEMPLATE",
        value_name = "NODE_USER_DATA_TEMPLATE"
    )]
    pub node_user_data_template: Option<PathBuf>,

    /// Domain under which nodes get their names: <node>.<NODES_DOMAIN>.
    #[arg(long, env = "NODES_DOMAIN", value_name = "NODES_DOMAIN")]
    pub nodes_domain: Option<String>,

    /// Hetzner DNS zone (e.g. example.com) holding NODES_DOMAIN: each node gets A/AAAA records
    /// <node>.<NODES_DOMAIN> (TTL 60 s, the fleet's labels), removed with the node and repaired
    /// every pass. The token needs DNS write access in the same project. Unset: no DNS records.
    #[arg(long, env = "DNS_ZONE", value_name = "DNS_ZONE")]
    pub dns_zone: Option<String>,

    /// Env file shared by every node ({{fleet_env_b64}} in the template).
    #[arg(long, env = "NODE_FLEET_ENV_FILE", value_name = "NODE_FLEET_ENV_FILE")]
    pub node_fleet_env_file: Option<PathBuf>,

    /// Certificate chain for <node>.<NODES_DOMAIN> ({{tls_fullchain_b64}}).
    #[arg(long, env = "NODE_TLS_CERT_FILE", value_name = "NODE_TLS_CERT_FILE")]
    pub node_tls_cert_file: Option<PathBuf>,

    /// Its private key ({{tls_privkey_b64}}).
    #[arg(long, env = "NODE_TLS_KEY_FILE", value_name = "NODE_TLS_KEY_FILE")]
    pub node_tls_key_file: Option<PathBuf>,

    /// Seats per server type where it differs from SEATS_PER_NODE: "ccx23=240,cpx41=240".
    #[arg(
        long,
        env = "SEATS_BY_SERVER_TYPE",
        value_name = "SEATS_BY_SERVER_TYPE",
        default_value = ""
    )]
    pub seats_by_server_type: String,

    /// Hetzner API requests creates and lists leave for deletes.
    #[arg(
        long,
        env = "HCLOUD_BUDGET_RESERVE",
        value_name = "HCLOUD_BUDGET_RESERVE",
        default_value_t = 60
    )]
    pub hcloud_budget_reserve: u32,

    /// Seconds a create or delete action is followed before moving on.
    #[arg(
        long,
        env = "HCLOUD_ACTION_TIMEOUT_SECS",
        value_name = "HCLOUD_ACTION_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub hcloud_action_timeout_secs: u64,

    /// Milliseconds between two polls of a running action (each poll is one request).
    #[arg(
        long,
        env = "HCLOUD_ACTION_POLL_MS",
        value_name = "HCLOUD_ACTION_POLL_MS",
        default_value_t = 2000
    )]
    pub hcloud_action_poll_ms: u64,

    /// Seconds a (server type, location) that had no capacity is skipped.
    #[arg(
        long,
        env = "HCLOUD_CAPACITY_BACKOFF_SECS",
        value_name = "HCLOUD_CAPACITY_BACKOFF_SECS",
        default_value_t = 300
    )]
    pub hcloud_capacity_backoff_secs: u64,
}

/// Which executor runs, with its settings.
#[derive(Debug, Clone)]
pub enum ExecutorSettings {
    Local(LocalConfig),
    Hcloud {
        api_url: String,
        token: ApiToken,
        /// Boxed: the Hetzner settings are several times the size of the local ones.
        config: Box<HcloudConfig>,
    },
}

/// A validated autoscaler configuration.
#[derive(Debug, Clone)]
pub struct AutoscalerConfig {
    pub regions: Vec<RegionId>,
    pub policy: Policy,
    pub interval: Duration,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub internal_secret: String,
    pub metrics_listen: SocketAddr,
    pub room_soft_cap: u32,
    pub scrape_timeout: Duration,
    pub matchmaker_metrics_url: Option<String>,
    pub executor: ExecutorSettings,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pairs(variable: &'static str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    list(text)
        .into_iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                .filter(|(key, _)| !key.is_empty())
                .ok_or_else(|| invalid(variable, format!("{pair:?} is not key=value")))
        })
        .collect()
}

fn read_file(variable: &'static str, path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| invalid(variable, format!("cannot read {}: {error}", path.display())))
}

fn seconds_ms(value: Option<u64>, target: &mut u64) {
    if let Some(seconds) = value {
        *target = seconds.saturating_mul(1000);
    }
}

impl AutoscalerArgs {
    /// Checks every value and builds the configuration. Reads the files it names (policy,
    /// secrets, user-data template) so that a missing file fails at start, not at first create.
    pub fn validate(self) -> Result<AutoscalerConfig, ConfigError> {
        let regions: Vec<RegionId> = list(&self.regions).into_iter().map(RegionId::new).collect();
        if regions.is_empty() {
            return Err(invalid("REGIONS", "name at least one region"));
        }
        for region in &regions {
            if coil_match::Region::parse(&region.0).is_err()
                || !coil_hcloud::label_selector::is_valid_label_value(&region.0)
            {
                return Err(invalid(
                    "REGIONS",
                    format!(
                        "{region} must be 1-32 letters, digits, '-' or '_', starting and ending with a letter or digit"
                    ),
                ));
            }
        }
        self.redis.validate()?;
        let internal_secret = self
            .internal_secret
            .require("nodes refuse drain requests without it")?;
        if !(1..=3600).contains(&self.interval_secs) {
            return Err(invalid("INTERVAL_SECS", "must be within 1..=3600"));
        }
        if self.room_soft_cap == 0 {
            return Err(invalid("ROOM_SOFT_CAP", "must be at least 1"));
        }
        if !(50..=30_000).contains(&self.scrape_timeout_ms) {
            return Err(invalid("SCRAPE_TIMEOUT_MS", "must be within 50..=30000"));
        }
        let policy = self.policy()?;
        let executor = match self.executor {
            ExecutorKind::Local => self.local_settings(&internal_secret)?,
            ExecutorKind::Hcloud => self.hcloud_settings()?,
        };
        Ok(AutoscalerConfig {
            regions,
            policy,
            interval: Duration::from_secs(self.interval_secs),
            redis_url: self.redis.redis_url,
            redis_key_prefix: self.redis.redis_key_prefix,
            internal_secret,
            metrics_listen: SocketAddr::new(self.host, self.port),
            room_soft_cap: self.room_soft_cap,
            scrape_timeout: Duration::from_millis(self.scrape_timeout_ms),
            matchmaker_metrics_url: self.matchmaker_metrics_url,
            executor,
        })
    }

    fn policy(&self) -> Result<Policy, ConfigError> {
        let mut policy = match &self.policy_file {
            Some(path) => serde_json::from_str::<Policy>(&read_file("POLICY_FILE", path)?)
                .map_err(|error| invalid("POLICY_FILE", error.to_string()))?,
            None => Policy::default(),
        };
        policy.dry_run = policy.dry_run || self.dry_run;
        if let Some(min_nodes) = self.min_nodes {
            policy.default_limits.min_nodes = min_nodes;
        }
        if let Some(max_nodes) = self.max_nodes {
            policy.default_limits.max_nodes = max_nodes;
        }
        if self.max_total_nodes.is_some() {
            policy.max_total_nodes = self.max_total_nodes;
        }
        if let Some(seats) = self.seats_per_node {
            policy.seats_per_node = seats;
        }
        if let Some(buffer) = self.spare_seat_buffer {
            policy.spare_seat_buffer = buffer;
        }
        if let Some(margin) = self.scale_in_buffer_margin {
            policy.scale_in_buffer_margin = margin;
        }
        if let Some(signals) = self.min_pressure_signals {
            policy.min_pressure_signals = signals;
        }
        if let Some(fraction) = self.low_use_signal_fraction {
            policy.low_use_signal_fraction = fraction;
        }
        seconds_ms(self.scale_out_window_secs, &mut policy.scale_out_window_ms);
        seconds_ms(
            self.scale_out_cooldown_secs,
            &mut policy.scale_out_cooldown_ms,
        );
        seconds_ms(self.scale_in_window_secs, &mut policy.scale_in_window_ms);
        seconds_ms(
            self.scale_in_delay_after_scale_out_secs,
            &mut policy.scale_in_delay_after_scale_out_ms,
        );
        seconds_ms(
            self.scale_in_cooldown_secs,
            &mut policy.scale_in_cooldown_ms,
        );
        seconds_ms(self.drain_deadline_secs, &mut policy.drain_deadline_ms);
        seconds_ms(self.eviction_grace_secs, &mut policy.eviction_grace_ms);
        seconds_ms(self.action_retry_secs, &mut policy.action_retry_ms);
        seconds_ms(self.boot_timeout_secs, &mut policy.boot_timeout_ms);
        seconds_ms(
            self.pending_create_timeout_secs,
            &mut policy.pending_create_timeout_ms,
        );
        // Windows are only trusted when watched; an interval longer than the policy's
        // staleness limit would restart them at every evaluation.
        policy.stale_history_after_ms = policy
            .stale_history_after_ms
            .max(self.interval_secs.saturating_mul(3000));
        if let Err(errors) = policy.validate() {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let variable = if self.policy_file.is_some() {
                "POLICY_FILE"
            } else {
                "policy settings"
            };
            return Err(invalid(variable, text.join("; ")));
        }
        Ok(policy)
    }

    fn local_settings(&self, internal_secret: &str) -> Result<ExecutorSettings, ConfigError> {
        let coil_bin = match &self.coil_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(|error| {
                invalid("COIL_BIN", format!("cannot find this executable: {error}"))
            })?,
        };
        let join_token_public_key = self
            .join_token_public_key
            .as_deref()
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                invalid(
                    "JOIN_TOKEN_PUBLIC_KEY",
                    "required for EXECUTOR=local (coil matchmaker --print-public-key)",
                )
            })?
            .to_owned();
        let mut node_env = Vec::new();
        for name in list(&self.node_env_passthrough) {
            if let Ok(value) = std::env::var(&name) {
                node_env.push((name, value));
            }
        }
        for entry in self
            .node_env
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
        {
            let (name, value) = entry
                .split_once('=')
                .filter(|(name, _)| !name.trim().is_empty())
                .ok_or_else(|| invalid("NODE_ENV", format!("{entry:?} is not NAME=VALUE")))?;
            node_env.push((name.trim().to_owned(), value.to_owned()));
        }
        if !(1..=600).contains(&self.node_stop_timeout_secs) {
            return Err(invalid("NODE_STOP_TIMEOUT_SECS", "must be within 1..=600"));
        }
        Ok(ExecutorSettings::Local(LocalConfig {
            coil_bin,
            base_port: self.base_port,
            redis_url: self.redis.redis_url.clone(),
            redis_key_prefix: self.redis.redis_key_prefix.clone(),
            join_token_public_key,
            internal_secret: internal_secret.to_owned(),
            node_env,
            data_dir: self.local_data_dir.clone(),
            stop_timeout: Duration::from_secs(self.node_stop_timeout_secs),
        }))
    }

    /// `DNS_ZONE`: a lower-case domain name containing `NODES_DOMAIN` (or equal to it).
    fn dns_settings(&self) -> Result<Option<DnsConfig>, ConfigError> {
        let Some(zone) = self
            .dns_zone
            .as_deref()
            .map(|zone| zone.trim().trim_end_matches('.'))
            .filter(|zone| !zone.is_empty())
        else {
            return Ok(None);
        };
        let valid_name = zone.len() <= 253
            && zone.contains('.')
            && zone.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
                    })
            });
        if !valid_name {
            return Err(invalid(
                "DNS_ZONE",
                format!("{zone:?} is not a lower-case domain name such as example.com"),
            ));
        }
        let nodes_domain = match self
            .nodes_domain
            .as_deref()
            .map(|domain| domain.trim().trim_matches('.'))
        {
            Some(domain) if !domain.is_empty() => domain.to_ascii_lowercase(),
            _ => {
                return Err(invalid(
                    "NODES_DOMAIN",
                    "required with DNS_ZONE: node records are <node>.<NODES_DOMAIN>",
                ));
            }
        };
        DnsConfig::nodes_domain_in_zone(zone, &nodes_domain)
            .map_err(|problem| invalid("DNS_ZONE", problem))?;
        Ok(Some(DnsConfig {
            zone: zone.to_owned(),
            nodes_domain,
            ttl_secs: crate::hcloud::DNS_RECORD_TTL_SECS,
        }))
    }

    fn hcloud_settings(&self) -> Result<ExecutorSettings, ConfigError> {
        let token = match (&self.hcloud_token, &self.hcloud_token_file) {
            (Some(token), _) => ApiToken::new(token.clone())
                .map_err(|error| invalid("HCLOUD_TOKEN", error.to_string()))?,
            (None, Some(path)) => ApiToken::from_file(path)
                .map_err(|error| invalid("HCLOUD_TOKEN_FILE", error.to_string()))?,
            (None, None) => {
                return Err(invalid(
                    "HCLOUD_TOKEN_FILE",
                    "required for EXECUTOR=hcloud (or HCLOUD_TOKEN)",
                ));
            }
        };
        let fleet = self.fleet.trim().to_owned();
        if !coil_hcloud::label_selector::is_valid_label_value(&fleet) || fleet.is_empty() {
            return Err(invalid(
                "FLEET",
                "must be a valid label value (letters, digits, '-', '_', '.')",
            ));
        }
        let server_types = list(&self.server_types);
        if server_types.is_empty() {
            return Err(invalid("SERVER_TYPES", "name at least one server type"));
        }
        let mut locations = BTreeMap::new();
        let mut default_locations = Vec::new();
        for entry in self
            .locations
            .split(';')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            match entry.split_once('=') {
                Some((region, names)) => {
                    locations.insert(RegionId::new(region.trim()), list(names));
                }
                None => default_locations = list(entry),
            }
        }
        if default_locations.is_empty() && locations.is_empty() {
            return Err(invalid(
                "LOCATIONS",
                "required for EXECUTOR=hcloud, e.g. \"us-east=ash,hil\"",
            ));
        }
        let image = match self.snapshot_id.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => match text.parse::<u64>() {
                Ok(id) => ImageRef::Id(id),
                Err(_) => ImageRef::Name(text.to_owned()),
            },
            _ => return Err(invalid("SNAPSHOT_ID", "required for EXECUTOR=hcloud")),
        };
        let extra_labels: BTreeMap<String, String> =
            pairs("LABELS", &self.labels)?.into_iter().collect();
        for (key, value) in &extra_labels {
            if !coil_hcloud::label_selector::is_valid_label_key(key)
                || !coil_hcloud::label_selector::is_valid_label_value(value)
            {
                return Err(invalid(
                    "LABELS",
                    format!("{key}={value} is not a valid label"),
                ));
            }
        }
        let firewalls = list(&self.firewall_ids)
            .iter()
            .map(|id| id.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("FIREWALL_IDS", "must be numeric ids, comma separated"))?;
        let seats_by_server_type = pairs("SEATS_BY_SERVER_TYPE", &self.seats_by_server_type)?
            .into_iter()
            .map(|(server_type, seats)| {
                seats
                    .parse::<u32>()
                    .ok()
                    .filter(|seats| *seats > 0)
                    .map(|seats| (server_type, seats))
                    .ok_or_else(|| {
                        invalid("SEATS_BY_SERVER_TYPE", "seats must be positive numbers")
                    })
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let user_data = match &self.node_user_data_template {
            None => None,
            Some(path) => {
                let template = read_file("NODE_USER_DATA_TEMPLATE", path)?;
                let optional_file = |variable: &'static str,
                                     placeholder: &str,
                                     path: &Option<PathBuf>|
                 -> Result<String, ConfigError> {
                    match path {
                        Some(path) => read_file(variable, path),
                        None if template.contains(placeholder) => Err(invalid(
                            variable,
                            format!("the user data template uses {placeholder}"),
                        )),
                        None => Ok(String::new()),
                    }
                };
                let nodes_domain = match &self.nodes_domain {
                    Some(domain) => domain.trim().trim_matches('.').to_owned(),
                    None if template.contains("{{public_host}}") => {
                        return Err(invalid(
                            "NODES_DOMAIN",
                            "the user data template uses {{public_host}}",
                        ));
                    }
                    None => String::new(),
                };
                let user_data = UserDataTemplate {
                    fleet_env: optional_file(
                        "NODE_FLEET_ENV_FILE",
                        "{{fleet_env_b64}}",
                        &self.node_fleet_env_file,
                    )?,
                    tls_fullchain: optional_file(
                        "NODE_TLS_CERT_FILE",
                        "{{tls_fullchain_b64}}",
                        &self.node_tls_cert_file,
                    )?,
                    tls_privkey: optional_file(
                        "NODE_TLS_KEY_FILE",
                        "{{tls_privkey_b64}}",
                        &self.node_tls_key_file,
                    )?,
                    template,
                    nodes_domain,
                };
                // Render once now so a bad template fails at start.
                user_data
                    .render(
                        &crate::hcloud::server_name(&fleet, &RegionId::new("check"), 0),
                        "check",
                    )
                    .map_err(|problem| invalid("NODE_USER_DATA_TEMPLATE", problem))?;
                Some(user_data)
            }
        };
        let dns = self.dns_settings()?;
        if !(1..=600).contains(&self.hcloud_action_timeout_secs) {
            return Err(invalid(
                "HCLOUD_ACTION_TIMEOUT_SECS",
                "must be within 1..=600",
            ));
        }
        if !(10..=60_000).contains(&self.hcloud_action_poll_ms) {
            return Err(invalid(
                "HCLOUD_ACTION_POLL_MS",
                "must be within 10..=60000",
            ));
        }
        Ok(ExecutorSettings::Hcloud {
            api_url: self.hcloud_api_url.clone(),
            token,
            config: Box::new(HcloudConfig {
                fleet,
                server_types,
                locations,
                default_locations,
                image,
                extra_labels,
                networks: self.network_id.into_iter().collect(),
                firewalls,
                placement_group: self.placement_group_id,
                ssh_keys: list(&self.ssh_keys),
                enable_ipv4: self.enable_ipv4,
                node_port: self.node_port,
                user_data,
                seats_by_server_type,
                budget_reserve: self.hcloud_budget_reserve,
                action_timeout: Duration::from_secs(self.hcloud_action_timeout_secs),
                action_poll_interval: Duration::from_millis(self.hcloud_action_poll_ms),
                capacity_backoff: Duration::from_secs(self.hcloud_capacity_backoff_secs),
                dns,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AutoscalerArgs,
    }

    fn parse(extra: &[&str]) -> Result<AutoscalerConfig, String> {
        let mut full = vec![
            "coil",
            "--redis-url",
            "redis://127.0.0.1:6379",
            "--join-token-public-key",
            "AAAA",
        ];
        if !extra.contains(&"--internal-secret") {
            full.extend_from_slice(&["--internal-secret", "0123456789abcdef"]);
        }
        full.extend_from_slice(extra);
        let cli = Cli::try_parse_from(full).map_err(|error| error.to_string())?;
        cli.args.validate().map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_give_a_local_autoscaler_with_the_default_policy() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.regions, vec![RegionId::new("local")]);
        assert_eq!(config.interval, Duration::from_secs(15));
        assert_eq!(config.metrics_listen.port(), 8789);
        assert_eq!(
            config.policy.seats_per_node,
            Policy::default().seats_per_node
        );
        assert!(!config.policy.dry_run);
        assert!(matches!(config.executor, ExecutorSettings::Local(_)));
    }

    #[test]
    fn policy_knobs_override_the_defaults() {
        let config = parse(&[
            "--min-nodes",
            "0",
            "--max-nodes",
            "7",
            "--seats-per-node",
            "12",
            "--scale-in-window-secs",
            "3",
            "--dry-run",
            "1",
            "--node-env",
            "MAX_ROOMS=2;ROOM_POPULATION_TARGET=0",
        ])
        .unwrap();
        assert_eq!(config.policy.default_limits.min_nodes, 0);
        assert_eq!(config.policy.default_limits.max_nodes, 7);
        assert_eq!(config.policy.seats_per_node, 12);
        assert_eq!(config.policy.scale_in_window_ms, 3_000);
        assert!(config.policy.dry_run);
        let ExecutorSettings::Local(local) = config.executor else {
            panic!("local executor expected");
        };
        assert_eq!(
            local.node_env,
            vec![
                ("MAX_ROOMS".to_owned(), "2".to_owned()),
                ("ROOM_POPULATION_TARGET".to_owned(), "0".to_owned())
            ]
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: [(&[&str], &str); 7] = [
            (&["--regions", "bad region"], "REGIONS"),
            (&["--internal-secret", "short"], "INTERNAL_SECRET"),
            (&["--interval-secs", "0"], "INTERVAL_SECS"),
            (&["--spare-seat-buffer", "1.5"], "policy settings"),
            (&["--node-env", "NOEQUALS"], "NODE_ENV"),
            (&["--executor", "hcloud"], "HCLOUD_TOKEN_FILE"),
            (
                &[
                    "--executor",
                    "hcloud",
                    "--hcloud-token",
                    "t0ken",
                    "--locations",
                    "ash",
                ],
                "SNAPSHOT_ID",
            ),
        ];
        for (flags, variable) in cases {
            let error = parse(flags).unwrap_err();
            assert!(error.starts_with(variable), "{flags:?}: {error}");
        }
        assert!(parse(&["--port", "many"]).unwrap_err().contains("PORT"));
    }

    #[test]
    fn hcloud_settings_parse_locations_labels_and_seats() {
        let config = parse(&[
            "--executor",
            "hcloud",
            "--hcloud-token",
            "t0ken",
            "--snapshot-id",
            "4711",
            "--locations",
            "us-east=ash,hil;fsn1",
            "--labels",
            "team=game",
            "--seats-by-server-type",
            "ccx23=240",
            "--firewall-ids",
            "1,2",
        ])
        .unwrap();
        let ExecutorSettings::Hcloud { config, .. } = config.executor else {
            panic!("hcloud executor expected");
        };
        assert_eq!(config.image, ImageRef::Id(4711));
        assert_eq!(
            config.locations.get(&RegionId::new("us-east")),
            Some(&vec!["ash".to_owned(), "hil".to_owned()])
        );
        assert_eq!(config.default_locations, vec!["fsn1".to_owned()]);
        assert_eq!(
            config.extra_labels.get("team").map(String::as_str),
            Some("game")
        );
        assert_eq!(config.seats_by_server_type.get("ccx23"), Some(&240));
        assert_eq!(config.firewalls, vec![1, 2]);
        assert_eq!(config.server_types, vec!["ccx33", "ccx23", "cpx41"]);
        assert_eq!(config.dns, None, "no DNS_ZONE, no DNS management");
    }

    fn hcloud_with(extra: &[&str]) -> Result<AutoscalerConfig, String> {
        let mut flags = vec![
            "--executor",
            "hcloud",
            "--hcloud-token",
            "t0ken",
            "--snapshot-id",
            "4711",
            "--locations",
            "ash",
        ];
        flags.extend_from_slice(extra);
        parse(&flags)
    }

    #[test]
    fn dns_zone_must_hold_nodes_domain() {
        let config = hcloud_with(&[
            "--dns-zone",
            "example.com.",
            "--nodes-domain",
            "nodes.example.com",
        ])
        .unwrap();
        let ExecutorSettings::Hcloud { config, .. } = config.executor else {
            panic!("hcloud executor expected");
        };
        let dns = config.dns.expect("DNS_ZONE set");
        assert_eq!(dns.zone, "example.com");
        assert_eq!(dns.ttl_secs, 60);
        assert_eq!(dns.record_name("coil-ash-abcdef"), "coil-ash-abcdef.nodes");

        let at_apex =
            hcloud_with(&["--dns-zone", "example.com", "--nodes-domain", "example.com"]).unwrap();
        let ExecutorSettings::Hcloud { config, .. } = at_apex.executor else {
            panic!("hcloud executor expected");
        };
        assert_eq!(config.dns.unwrap().record_name("n-1"), "n-1");

        let cases: [(&[&str], &str); 4] = [
            (&["--dns-zone", "example.com"], "NODES_DOMAIN"),
            (
                &[
                    "--dns-zone",
                    "example.com",
                    "--nodes-domain",
                    "nodes.other.org",
                ],
                "DNS_ZONE",
            ),
            (
                &[
                    "--dns-zone",
                    "ample.com",
                    "--nodes-domain",
                    "nodes.example.com",
                ],
                "DNS_ZONE",
            ),
            (
                &[
                    "--dns-zone",
                    "Example..com",
                    "--nodes-domain",
                    "example.com",
                ],
                "DNS_ZONE",
            ),
        ];
        for (flags, variable) in cases {
            let error = hcloud_with(flags).unwrap_err();
            assert!(error.starts_with(variable), "{flags:?}: {error}");
        }
    }
}
