//! The price table: Hetzner prices as data with their date and sources, parsed and validated.
//!
//! Owns the file format of `deploy/prices/*.json` and the lookups the bill needs (a server
//! type in a region, egress overage, IPs, load balancers, storage). It must not invent a
//! price: every number comes from the file, every row names its source, and `validate`
//! refuses a table with a missing source, a negative price or a duplicate row. It does no IO
//! beyond `PriceTable::load`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a price table is wrong.
#[derive(Debug, Error)]
pub enum PriceTableError {
    #[error("cannot read price table {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("price table {path} is not valid JSON for the format: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("price table is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// A pricing region as the cost model sees it: the Hetzner locations it stands for share
/// prices and traffic terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceRegion {
    Us,
    Eu,
    Sg,
}

impl PriceRegion {
    pub const ALL: [PriceRegion; 3] = [PriceRegion::Us, PriceRegion::Eu, PriceRegion::Sg];

    pub fn as_str(self) -> &'static str {
        match self {
            PriceRegion::Us => "us",
            PriceRegion::Eu => "eu",
            PriceRegion::Sg => "sg",
        }
    }

    /// The pricing region of a Hetzner location name, if it is one we price.
    pub fn of_location(location: &str) -> Option<PriceRegion> {
        match location {
            "ash" | "hil" => Some(PriceRegion::Us),
            "fsn1" | "nbg1" | "hel1" => Some(PriceRegion::Eu),
            "sin" => Some(PriceRegion::Sg),
            _ => None,
        }
    }

    pub fn parse(text: &str) -> Option<PriceRegion> {
        match text.to_ascii_lowercase().as_str() {
            "us" => Some(PriceRegion::Us),
            "eu" => Some(PriceRegion::Eu),
            "sg" | "sin" | "singapore" => Some(PriceRegion::Sg),
            _ => None,
        }
    }
}

impl std::fmt::Display for PriceRegion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One source the table cites, referenced by `id` from rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSource {
    pub id: String,
    pub description: String,
    /// Date of the source (YYYY-MM-DD), as precise as known.
    pub date: String,
}

/// The price of one server type in one pricing region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPrice {
    pub region: PriceRegion,
    pub monthly_eur: f64,
    /// Billing is per started hour up to `monthly_eur`.
    pub hourly_eur: f64,
    /// Outbound traffic included per server per month, TB (10^12 bytes).
    pub included_traffic_tb: f64,
    /// Source ids for this row; an entry `estimate` means the figure is our interpolation.
    pub sources: Vec<String>,
}

/// A cloud server type with its prices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTypeRow {
    /// Hetzner's name, lowercase (`ccx33`).
    pub name: String,
    pub cores: u32,
    /// `shared` or `dedicated`.
    pub cpu: String,
    pub memory_gb: f64,
    pub prices: Vec<ServerPrice>,
}

/// A dedicated root server (Robot), billed monthly with a one-off setup fee.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedicatedRow {
    pub name: String,
    pub region: PriceRegion,
    pub cores: u32,
    pub memory_gb: f64,
    pub monthly_eur: f64,
    pub setup_eur: f64,
    /// Traffic on the 1 Gbit/s port is unmetered: no overage.
    pub unmetered_traffic: bool,
    pub sources: Vec<String>,
}

/// Egress beyond the included traffic, per region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRow {
    pub region: PriceRegion,
    pub overage_eur_per_tb: f64,
    pub sources: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerRow {
    pub name: String,
    pub monthly_eur: f64,
    pub max_connections: u32,
    pub max_targets: u32,
    pub sources: Vec<String>,
}

/// Prices that do not depend on a server type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherPrices {
    pub primary_ipv4_monthly_eur: f64,
    pub floating_ipv4_monthly_eur: f64,
    pub volume_eur_per_gb_month: f64,
    /// Object Storage base price (includes 1 TB stored and 1 TB egress); EU locations only.
    pub object_storage_monthly_eur: f64,
    /// Backups cost this share of the server's price.
    pub backup_fraction_of_server_price: f64,
    pub sources: Vec<String>,
}

/// The whole table, as stored under `deploy/prices/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// When these prices were collected (YYYY-MM-DD).
    pub date: String,
    pub currency: String,
    /// Always "net": prices exclude VAT.
    pub vat: String,
    /// Hours in a billing month for turning a simulated week into a month.
    pub hours_per_month: f64,
    pub notes: Vec<String>,
    pub sources: Vec<PriceSource>,
    pub server_types: Vec<ServerTypeRow>,
    #[serde(default)]
    pub dedicated: Vec<DedicatedRow>,
    pub traffic: Vec<TrafficRow>,
    pub load_balancers: Vec<LoadBalancerRow>,
    pub other: OtherPrices,
}

/// Source id that marks a figure as our own interpolation rather than a published price.
pub const ESTIMATE_SOURCE: &str = "estimate";

impl PriceTable {
    pub fn load(path: &Path) -> Result<Self, PriceTableError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceTableError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let table = Self::parse(&text).map_err(|error| match error {
            PriceTableError::Parse { source, .. } => PriceTableError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })?;
        Ok(table)
    }

    /// Parses and validates a table.
    pub fn parse(text: &str) -> Result<Self, PriceTableError> {
        let table: PriceTable =
            serde_json::from_str(text).map_err(|source| PriceTableError::Parse {
                path: "<text>".to_owned(),
                source,
            })?;
        table.validate().map_err(PriceTableError::Invalid)?;
        Ok(table)
    }

    /// Every problem with the table: unknown or missing sources, prices that are not
    /// finite and non-negative, duplicate rows, an hourly price that could never reach its
    /// monthly cap.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !is_date(&self.date) {
            errors.push(format!("date {:?} is not YYYY-MM-DD", self.date));
        }
        if self.vat != "net" {
            errors.push(format!("vat must be \"net\", got {:?}", self.vat));
        }
        if !(self.hours_per_month.is_finite() && (672.0..=745.0).contains(&self.hours_per_month)) {
            errors.push(format!(
                "hours_per_month {} is not a month",
                self.hours_per_month
            ));
        }
        let mut known: BTreeSet<&str> = BTreeSet::new();
        known.insert(ESTIMATE_SOURCE);
        for source in &self.sources {
            if !known.insert(source.id.as_str()) {
                errors.push(format!("source {} listed twice", source.id));
            }
            if source.description.trim().is_empty() {
                errors.push(format!("source {} has no description", source.id));
            }
        }
        let check_sources = |what: &str, sources: &[String], errors: &mut Vec<String>| {
            if sources.is_empty() {
                errors.push(format!("{what}: no source"));
            }
            for id in sources {
                if !known.contains(id.as_str()) {
                    errors.push(format!("{what}: unknown source {id}"));
                }
            }
        };
        let check_price = |what: &str, value: f64, errors: &mut Vec<String>| {
            if !(value.is_finite() && value >= 0.0) {
                errors.push(format!("{what}: {value} is not a price"));
            }
        };
        let mut names = BTreeSet::new();
        for row in &self.server_types {
            if !names.insert(row.name.as_str()) {
                errors.push(format!("server type {} listed twice", row.name));
            }
            if row.cores == 0 {
                errors.push(format!("server type {}: zero cores", row.name));
            }
            if row.cpu != "shared" && row.cpu != "dedicated" {
                errors.push(format!(
                    "server type {}: cpu must be shared or dedicated",
                    row.name
                ));
            }
            let mut regions = BTreeSet::new();
            for price in &row.prices {
                let what = format!("{} in {}", row.name, price.region);
                if !regions.insert(price.region) {
                    errors.push(format!("{what}: listed twice"));
                }
                check_price(&what, price.monthly_eur, &mut errors);
                check_price(&what, price.hourly_eur, &mut errors);
                check_price(&what, price.included_traffic_tb, &mut errors);
                if price.hourly_eur <= 0.0 || price.hourly_eur * 745.0 < price.monthly_eur {
                    errors.push(format!(
                        "{what}: hourly {} never reaches the monthly cap {}",
                        price.hourly_eur, price.monthly_eur
                    ));
                }
                check_sources(&what, &price.sources, &mut errors);
            }
        }
        for row in &self.dedicated {
            check_price(&row.name, row.monthly_eur, &mut errors);
            check_price(&row.name, row.setup_eur, &mut errors);
            check_sources(&row.name, &row.sources, &mut errors);
        }
        let mut traffic_regions = BTreeSet::new();
        for row in &self.traffic {
            if !traffic_regions.insert(row.region) {
                errors.push(format!("traffic for {} listed twice", row.region));
            }
            check_price("traffic", row.overage_eur_per_tb, &mut errors);
            check_sources("traffic", &row.sources, &mut errors);
        }
        for region in PriceRegion::ALL {
            if !traffic_regions.contains(&region) {
                errors.push(format!("no traffic price for {region}"));
            }
        }
        for row in &self.load_balancers {
            check_price(&row.name, row.monthly_eur, &mut errors);
            check_sources(&row.name, &row.sources, &mut errors);
        }
        let other = &self.other;
        for (what, value) in [
            ("primary_ipv4", other.primary_ipv4_monthly_eur),
            ("floating_ipv4", other.floating_ipv4_monthly_eur),
            ("volume", other.volume_eur_per_gb_month),
            ("object_storage", other.object_storage_monthly_eur),
            ("backup_fraction", other.backup_fraction_of_server_price),
        ] {
            check_price(what, value, &mut errors);
        }
        check_sources("other", &other.sources, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn server_type(&self, name: &str) -> Option<&ServerTypeRow> {
        self.server_types
            .iter()
            .find(|row| row.name.eq_ignore_ascii_case(name))
    }

    pub fn server_price(&self, name: &str, region: PriceRegion) -> Option<&ServerPrice> {
        self.server_type(name)?
            .prices
            .iter()
            .find(|price| price.region == region)
    }

    pub fn dedicated(&self, name: &str) -> Option<&DedicatedRow> {
        self.dedicated
            .iter()
            .find(|row| row.name.eq_ignore_ascii_case(name))
    }

    pub fn overage_eur_per_tb(&self, region: PriceRegion) -> f64 {
        self.traffic
            .iter()
            .find(|row| row.region == region)
            .map_or(0.0, |row| row.overage_eur_per_tb)
    }

    pub fn load_balancer(&self, name: &str) -> Option<&LoadBalancerRow> {
        self.load_balancers
            .iter()
            .find(|row| row.name.eq_ignore_ascii_case(name))
    }
}

fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED_TABLE: &str = include_str!("../../../deploy/prices/hetzner.json");

    #[test]
    fn the_committed_table_parses_validates_and_prices_the_types_the_plan_uses() {
        let table = PriceTable::parse(COMMITTED_TABLE).expect("committed table is valid");
        let ccx33_us = table
            .server_price("ccx33", PriceRegion::Us)
            .expect("ccx33 us");
        assert_eq!(ccx33_us.monthly_eur, 140.99);
        assert!(table.server_price("cpx41", PriceRegion::Us).is_some());
        assert!(table.server_price("cpx42", PriceRegion::Eu).is_some());
        assert!(table.server_price("cpx42", PriceRegion::Us).is_none());
        assert_eq!(table.overage_eur_per_tb(PriceRegion::Sg), 7.40);
        assert!(
            table
                .dedicated("ax42")
                .is_some_and(|row| row.unmetered_traffic)
        );
    }

    #[test]
    fn validation_names_every_problem() {
        let mut table = PriceTable::parse(COMMITTED_TABLE).expect("valid");
        table.date = "last tuesday".to_owned();
        table.server_types[0].prices[0].monthly_eur = -1.0;
        table.server_types[0].prices[0].sources = vec!["nowhere".to_owned()];
        table.traffic.retain(|row| row.region != PriceRegion::Sg);
        let duplicate = table.server_types[1].clone();
        table.server_types.push(duplicate);
        let errors = table.validate().expect_err("broken table");
        let joined = errors.join("\n");
        assert!(joined.contains("not YYYY-MM-DD"), "{joined}");
        assert!(joined.contains("is not a price"), "{joined}");
        assert!(joined.contains("unknown source nowhere"), "{joined}");
        assert!(joined.contains("no traffic price for sg"), "{joined}");
        assert!(joined.contains("listed twice"), "{joined}");
    }

    #[test]
    fn unknown_fields_and_garbage_are_errors_not_panics() {
        assert!(PriceTable::parse("").is_err());
        assert!(PriceTable::parse("{\"date\": 5}").is_err());
        let with_extra = COMMITTED_TABLE.replacen('{', "{\"surprise\": 1,", 1);
        assert!(matches!(
            PriceTable::parse(&with_extra),
            Err(PriceTableError::Parse { .. })
        ));
    }

    #[test]
    fn an_hourly_price_that_never_reaches_the_cap_is_refused() {
        let mut table = PriceTable::parse(COMMITTED_TABLE).expect("valid");
        table.server_types[0].prices[0].hourly_eur = 0.0001;
        let errors = table.validate().expect_err("unreachable cap");
        assert!(errors.iter().any(|error| error.contains("never reaches")));
    }
}
