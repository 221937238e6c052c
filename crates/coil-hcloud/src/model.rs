//! Typed views of the Hetzner Cloud API objects Coil uses: servers, actions, server types,
//! pricing, pagination, and the create-server request.
//!
//! Shapes follow the published API (docs.hetzner.cloud, `cloud.spec.json`). Only fields Coil
//! reads are typed; unknown fields are ignored and optional ones default, so that Hetzner adding
//! a field never breaks decoding. Prices arrive as decimal strings (`"0.0119"`) and are parsed
//! into `f64` here: good enough for a cost model, not for invoicing. This module does no IO.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Hetzner accepts at most 32 KiB of cloud-init user data per server.
pub const USER_DATA_LIMIT_BYTES: usize = 32 * 1024;

/// The largest `per_page` the API accepts on list endpoints.
pub const MAX_PER_PAGE: u32 = 50;

/// A server's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// An action's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(pub u64);

impl fmt::Display for ActionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// `server.status`. Unknown values are kept in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ServerStatus {
    Initializing,
    Starting,
    Running,
    Stopping,
    Off,
    Deleting,
    Migrating,
    Rebuilding,
    Unknown,
    Other(String),
}

impl ServerStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Initializing => "initializing",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Off => "off",
            Self::Deleting => "deleting",
            Self::Migrating => "migrating",
            Self::Rebuilding => "rebuilding",
            Self::Unknown => "unknown",
            Self::Other(status) => status,
        }
    }
}

impl From<String> for ServerStatus {
    fn from(status: String) -> Self {
        match status.as_str() {
            "initializing" => Self::Initializing,
            "starting" => Self::Starting,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "off" => Self::Off,
            "deleting" => Self::Deleting,
            "migrating" => Self::Migrating,
            "rebuilding" => Self::Rebuilding,
            "unknown" => Self::Unknown,
            _ => Self::Other(status),
        }
    }
}

impl From<ServerStatus> for String {
    fn from(status: ServerStatus) -> Self {
        status.as_str().to_owned()
    }
}

/// `action.status`: `running`, `success` or `error`. Unknown values are kept in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ActionStatus {
    Running,
    Success,
    Error,
    Other(String),
}

impl ActionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Error => "error",
            Self::Other(status) => status,
        }
    }
}

impl From<String> for ActionStatus {
    fn from(status: String) -> Self {
        match status.as_str() {
            "running" => Self::Running,
            "success" => Self::Success,
            "error" => Self::Error,
            _ => Self::Other(status),
        }
    }
}

impl From<ActionStatus> for String {
    fn from(status: ActionStatus) -> Self {
        status.as_str().to_owned()
    }
}

/// `action.error`, present when the action failed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ActionError {
    pub code: crate::error::ErrorCode,
    pub message: String,
}

/// A resource an action works on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActionResource {
    pub id: u64,
    #[serde(rename = "type")]
    pub resource_type: String,
}

/// An asynchronous operation (`GET /v1/actions/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Action {
    pub id: ActionId,
    pub command: String,
    pub status: ActionStatus,
    /// 0..=100.
    pub progress: u8,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub resources: Vec<ActionResource>,
    #[serde(default)]
    pub error: Option<ActionError>,
}

/// A price in one currency, without VAT (`net`) and with it (`gross`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    #[serde(deserialize_with = "decimal")]
    pub net: f64,
    #[serde(deserialize_with = "decimal")]
    pub gross: f64,
}

/// What one server type costs in one location.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LocationPrice {
    /// Location name, e.g. `fsn1`.
    pub location: String,
    pub price_hourly: Price,
    pub price_monthly: Price,
    /// Outbound traffic included per month, in bytes.
    #[serde(default)]
    pub included_traffic: u64,
    /// Price per TB of outbound traffic beyond the included amount.
    #[serde(default)]
    pub price_per_tb_traffic: Option<Price>,
}

impl LocationPrice {
    /// Included outbound traffic in TB (10^12 bytes, as Hetzner bills traffic).
    pub fn included_traffic_terabytes(&self) -> f64 {
        self.included_traffic as f64 / 1e12
    }
}

/// A location a server type is offered in (`server_type.locations`, newer API versions).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerTypeLocation {
    pub id: u64,
    pub name: String,
}

/// A server type (`GET /v1/server_types`, and embedded in every server).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerType {
    pub id: u64,
    /// e.g. `cpx32`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub cores: u32,
    /// Memory in GB.
    pub memory: f64,
    /// Disk in GB.
    pub disk: u64,
    /// `shared` or `dedicated`.
    #[serde(default)]
    pub cpu_type: String,
    /// `x86` or `arm`.
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub storage_type: String,
    /// Deprecated types can no longer be ordered in some or all locations.
    #[serde(default, deserialize_with = "null_as_false")]
    pub deprecated: bool,
    #[serde(default)]
    pub prices: Vec<LocationPrice>,
    #[serde(default)]
    pub locations: Vec<ServerTypeLocation>,
}

impl ServerType {
    /// This type's price in `location`, if it is sold there.
    pub fn price_in(&self, location: &str) -> Option<&LocationPrice> {
        self.prices.iter().find(|price| price.location == location)
    }
}

/// A location (`fsn1`, `nbg1`, `hel1`, `ash`, `hil`, `sin`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Location {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub city: String,
    /// e.g. `eu-central`, `us-east`.
    #[serde(default)]
    pub network_zone: String,
}

/// The datacenter a server runs in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Datacenter {
    pub id: u64,
    /// e.g. `fsn1-dc14`.
    pub name: String,
    pub location: Location,
}

/// The image a server was created from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Image {
    pub id: u64,
    /// `system`, `snapshot`, `backup` or `app`.
    #[serde(rename = "type")]
    pub image_type: String,
    /// System images have names; snapshots usually do not.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// A public IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublicIpv4 {
    pub ip: String,
    #[serde(default)]
    pub blocked: bool,
}

/// A public IPv6 network (`/64`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublicIpv6 {
    pub ip: String,
    #[serde(default)]
    pub blocked: bool,
}

/// A firewall applied to a server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppliedFirewall {
    pub id: u64,
    #[serde(default)]
    pub status: String,
}

/// `server.public_net`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PublicNet {
    #[serde(default)]
    pub ipv4: Option<PublicIpv4>,
    #[serde(default)]
    pub ipv6: Option<PublicIpv6>,
    #[serde(default)]
    pub firewalls: Vec<AppliedFirewall>,
}

/// One private network a server is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrivateNet {
    pub network: u64,
    pub ip: String,
}

/// The placement group a server belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlacementGroupRef {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub group_type: String,
}

/// A server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Server {
    pub id: ServerId,
    pub name: String,
    pub status: ServerStatus,
    /// ISO 8601 creation time.
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub public_net: PublicNet,
    #[serde(default)]
    pub private_net: Vec<PrivateNet>,
    pub server_type: ServerType,
    pub datacenter: Datacenter,
    #[serde(default)]
    pub image: Option<Image>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub placement_group: Option<PlacementGroupRef>,
    /// Included outbound traffic in bytes per month.
    #[serde(default)]
    pub included_traffic: Option<u64>,
    /// Outbound traffic this billing period, in bytes.
    #[serde(default)]
    pub outgoing_traffic: Option<u64>,
    #[serde(default)]
    pub ingoing_traffic: Option<u64>,
    /// A running action holds the server.
    #[serde(default)]
    pub locked: bool,
}

impl Server {
    /// The location name the server runs in, e.g. `fsn1`.
    pub fn location_name(&self) -> &str {
        &self.datacenter.location.name
    }
}

/// `meta.pagination` of a list response. The optional fields are `null` on the first or last
/// page, or when the total is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Pagination {
    pub page: u32,
    pub per_page: u32,
    #[serde(default)]
    pub previous_page: Option<u32>,
    #[serde(default)]
    pub next_page: Option<u32>,
    #[serde(default)]
    pub last_page: Option<u32>,
    #[serde(default)]
    pub total_entries: Option<u64>,
}

/// One page of a list endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<Item> {
    pub items: Vec<Item>,
    /// `None` if the response carried no `meta.pagination`.
    pub pagination: Option<Pagination>,
}

/// Server-type prices in `GET /v1/pricing`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerTypePricing {
    pub id: u64,
    pub name: String,
    pub prices: Vec<LocationPrice>,
}

/// Hourly and monthly price of something billed per location without traffic (primary IPs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LocationPriceWithoutTraffic {
    pub location: String,
    #[serde(default)]
    pub price_hourly: Option<Price>,
    pub price_monthly: Price,
}

/// Primary IP prices by address family (`ipv4`, `ipv6`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PrimaryIpPricing {
    #[serde(rename = "type")]
    pub ip_type: String,
    pub prices: Vec<LocationPriceWithoutTraffic>,
}

/// The project's price list (`GET /v1/pricing`), parsed into numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    /// e.g. `EUR`.
    pub currency: String,
    /// VAT in percent, e.g. 19.0.
    pub vat_rate_percent: f64,
    pub server_types: Vec<ServerTypePricing>,
    pub primary_ips: Vec<PrimaryIpPricing>,
    /// Backups cost this percentage of the server price.
    pub server_backup_percent: Option<f64>,
}

impl Pricing {
    /// The price of `server_type` (by name, e.g. `ccx33`) in `location`.
    pub fn server_price(&self, server_type: &str, location: &str) -> Option<&LocationPrice> {
        self.server_types
            .iter()
            .find(|pricing| pricing.name.eq_ignore_ascii_case(server_type))?
            .prices
            .iter()
            .find(|price| price.location == location)
    }

    /// The monthly price of a primary IPv4 address in `location`.
    pub fn primary_ipv4_monthly(&self, location: &str) -> Option<Price> {
        self.primary_ips
            .iter()
            .find(|pricing| pricing.ip_type == "ipv4")?
            .prices
            .iter()
            .find(|price| price.location == location)
            .map(|price| price.price_monthly)
    }
}

/// The wire shape of `GET /v1/pricing`; converted into [`Pricing`].
#[derive(Debug, Deserialize)]
pub(crate) struct PricingEnvelope {
    pub(crate) pricing: PricingWire,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PricingWire {
    currency: String,
    #[serde(deserialize_with = "decimal")]
    vat_rate: f64,
    #[serde(default)]
    server_types: Vec<ServerTypePricing>,
    #[serde(default)]
    primary_ips: Vec<PrimaryIpPricing>,
    #[serde(default)]
    server_backup: Option<ServerBackupWire>,
}

#[derive(Debug, Deserialize)]
struct ServerBackupWire {
    #[serde(deserialize_with = "decimal")]
    percentage: f64,
}

impl From<PricingWire> for Pricing {
    fn from(wire: PricingWire) -> Self {
        Self {
            currency: wire.currency,
            vat_rate_percent: wire.vat_rate,
            server_types: wire.server_types,
            primary_ips: wire.primary_ips,
            server_backup_percent: wire.server_backup.map(|backup| backup.percentage),
        }
    }
}

/// Which image to create a server from: a system image by name (`ubuntu-24.04`) or any image,
/// including a snapshot, by id. The API takes both as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Id(u64),
    Name(String),
}

impl ImageRef {
    fn to_wire(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            Self::Name(name) => name.clone(),
        }
    }
}

/// What to create. Build with [`CreateServerRequest::new`] and set the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateServerRequest {
    /// Unique per project, a valid hostname.
    pub name: String,
    /// Server type name (`cpx32`) or id as a string.
    pub server_type: String,
    pub image: ImageRef,
    /// Location name (`fsn1`); `None` lets Hetzner choose.
    pub location: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Cloud-init user data, at most [`USER_DATA_LIMIT_BYTES`]; checked before sending.
    pub user_data: Option<String>,
    /// Private network ids to attach.
    pub networks: Vec<u64>,
    /// Firewall ids to apply.
    pub firewalls: Vec<u64>,
    pub placement_group: Option<u64>,
    /// SSH key names or ids.
    pub ssh_keys: Vec<String>,
    /// Give the server a primary IPv4 address (billed monthly).
    pub enable_ipv4: bool,
    /// Give the server a primary IPv6 network (free).
    pub enable_ipv6: bool,
    pub start_after_create: bool,
}

impl CreateServerRequest {
    /// A request with no labels, networks or user data, both IP families on, started at once.
    pub fn new(name: impl Into<String>, server_type: impl Into<String>, image: ImageRef) -> Self {
        Self {
            name: name.into(),
            server_type: server_type.into(),
            image,
            location: None,
            labels: BTreeMap::new(),
            user_data: None,
            networks: Vec::new(),
            firewalls: Vec::new(),
            placement_group: None,
            ssh_keys: Vec::new(),
            enable_ipv4: true,
            enable_ipv6: true,
            start_after_create: true,
        }
    }

    pub(crate) fn to_wire(&self) -> CreateServerWire<'_> {
        CreateServerWire {
            name: &self.name,
            server_type: &self.server_type,
            image: self.image.to_wire(),
            location: self.location.as_deref(),
            labels: &self.labels,
            user_data: self.user_data.as_deref(),
            networks: &self.networks,
            firewalls: self
                .firewalls
                .iter()
                .map(|firewall| FirewallWire {
                    firewall: *firewall,
                })
                .collect(),
            placement_group: self.placement_group,
            ssh_keys: &self.ssh_keys,
            public_net: PublicNetWire {
                enable_ipv4: self.enable_ipv4,
                enable_ipv6: self.enable_ipv6,
            },
            start_after_create: self.start_after_create,
        }
    }
}

/// The JSON body of `POST /v1/servers`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateServerWire<'request> {
    name: &'request str,
    server_type: &'request str,
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'request str>,
    labels: &'request BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<&'request str>,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    networks: &'request [u64],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    firewalls: Vec<FirewallWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    placement_group: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ssh_keys: &'request [String],
    public_net: PublicNetWire,
    start_after_create: bool,
}

#[derive(Debug, Serialize)]
struct FirewallWire {
    firewall: u64,
}

#[derive(Debug, Serialize)]
struct PublicNetWire {
    enable_ipv4: bool,
    enable_ipv6: bool,
}

/// What `POST /v1/servers` answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreatedServer {
    pub server: Server,
    /// The `create_server` action; the server is usable when it succeeds.
    pub action: Action,
    /// Follow-up actions such as `start_server`.
    #[serde(default)]
    pub next_actions: Vec<Action>,
    /// Only set when no SSH key was given.
    #[serde(default)]
    pub root_password: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerEnvelope {
    pub(crate) server: Server,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionEnvelope {
    pub(crate) action: Action,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MetaWire {
    #[serde(default)]
    pub(crate) pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServersPageWire {
    pub(crate) servers: Vec<Server>,
    #[serde(default)]
    pub(crate) meta: Option<MetaWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerTypesPageWire {
    pub(crate) server_types: Vec<ServerType>,
    #[serde(default)]
    pub(crate) meta: Option<MetaWire>,
}

/// The error object of every failed call.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: ErrorWire,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorWire {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) details: Option<serde_json::Value>,
}

/// Parses a decimal string (`"0.0119"`) or a JSON number into a finite, non-negative `f64`.
fn decimal<'de, D>(deserializer: D) -> Result<f64, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrNumber {
        Text(String),
        Number(f64),
    }
    let value = match StringOrNumber::deserialize(deserializer)? {
        StringOrNumber::Text(text) => text.trim().parse::<f64>().map_err(|_| {
            serde::de::Error::custom(format!("price {text:?} is not a decimal number"))
        })?,
        StringOrNumber::Number(number) => number,
    };
    if !value.is_finite() || value < 0.0 {
        return Err(serde::de::Error::custom(format!(
            "price {value} is not a finite non-negative number"
        )));
    }
    Ok(value)
}

fn null_as_false<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_from_decimal_strings_and_refuse_garbage() {
        let price: Price =
            serde_json::from_str(r#"{"net": "0.0119000000", "gross": "0.0141610000"}"#).unwrap();
        assert!((price.net - 0.0119).abs() < 1e-12);
        assert!((price.gross - 0.014161).abs() < 1e-12);
        assert!(serde_json::from_str::<Price>(r#"{"net": "abc", "gross": "1"}"#).is_err());
        assert!(serde_json::from_str::<Price>(r#"{"net": "-1", "gross": "1"}"#).is_err());
        assert!(serde_json::from_str::<Price>(r#"{"net": "NaN", "gross": "1"}"#).is_err());
    }

    #[test]
    fn the_create_body_uses_the_published_field_shapes() {
        let mut request = CreateServerRequest::new("node-1", "cpx32", ImageRef::Id(4711));
        request.location = Some("fsn1".to_owned());
        request.firewalls = vec![9];
        request.enable_ipv4 = false;
        let body = serde_json::to_value(request.to_wire()).unwrap();
        assert_eq!(body["image"], "4711");
        assert_eq!(body["firewalls"], serde_json::json!([{"firewall": 9}]));
        assert_eq!(
            body["public_net"],
            serde_json::json!({"enable_ipv4": false, "enable_ipv6": true})
        );
        assert_eq!(body["location"], "fsn1");
        assert!(body.get("user_data").is_none());
        assert!(body.get("networks").is_none());
    }

    #[test]
    fn unknown_statuses_are_kept_verbatim() {
        let status: ServerStatus = serde_json::from_str(r#""hibernating""#).unwrap();
        assert_eq!(status, ServerStatus::Other("hibernating".to_owned()));
        let status: ActionStatus = serde_json::from_str(r#""success""#).unwrap();
        assert_eq!(status, ActionStatus::Success);
    }
}

// --- DNS: zone RRSets -------------------------------------------------------------------------
//
// Shapes of the Hetzner Cloud DNS API (GA late 2025, same base URL and token as servers), as
// relied on here and checked against: the `hcloud` crate 0.25 (generated from Hetzner's
// OpenAPI 0.28: `ResourceRecordSet` = {id "name/TYPE", name, type, ttl (null = zone default),
// labels, protection {change}, records [{value, comment}], zone}; `ResourceRecordSetToCreate`
// = {name, type, ttl?, records, labels?} for `POST /zones/{id_or_name}/rrsets`), the
// hetznercloud Java client's `RRSetsResponse {rrsets, meta}` / `RRSetResponse`, the hcloud CLI
// (`hcloud zone rrset list <zone>` with `-l` selectors, id `www/A`), and the Ansible and
// Pulumi docs for `zone_rrset` (names relative to the zone, `@` for the apex, lower case, no
// trailing dot). `POST` answers `{rrset, action}`; `DELETE
// /zones/{id_or_name}/rrsets/{name}/{type}` answers `{action}`; the list is paginated like
// every other list (`page`, `per_page` ≤ 50, `meta.pagination`).

/// One record of an RRSet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RrsetRecord {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A resource record set: every record of one name and type in a zone.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rrset {
    /// `<name>/<type>`, e.g. `www/A`.
    #[serde(default)]
    pub id: String,
    /// Relative to the zone (`@` for the apex).
    pub name: String,
    #[serde(rename = "type")]
    pub rrset_type: String,
    /// `None`: the zone's default TTL.
    #[serde(default)]
    pub ttl: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub records: Vec<RrsetRecord>,
    /// The zone's id.
    #[serde(default)]
    pub zone: Option<u64>,
}

/// The body of `POST /v1/zones/{id_or_name}/rrsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateRrsetRequest {
    /// Relative to the zone, lower case, without a trailing dot or the zone name.
    pub name: String,
    #[serde(rename = "type")]
    pub rrset_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    pub records: Vec<RrsetRecord>,
    pub labels: BTreeMap<String, String>,
}

/// What `POST /v1/zones/{id_or_name}/rrsets` answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreatedRrset {
    pub rrset: Rrset,
    pub action: Action,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RrsetsPageWire {
    pub(crate) rrsets: Vec<Rrset>,
    #[serde(default)]
    pub(crate) meta: Option<MetaWire>,
}
