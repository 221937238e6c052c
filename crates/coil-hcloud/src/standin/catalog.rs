//! The stand-in's default catalogue: locations, server types with prices, images.
//!
//! Monthly net prices and included traffic come from `/work/shared/design/hetzner.md` (new
//! orders from 2026-06-15, net of VAT, without the primary IPv4). Hourly prices, disk sizes,
//! ids, the US/Singapore traffic allowances between the published end points, and the image
//! ids are **fixture values** chosen for tests: never read them as Hetzner's prices. The cost
//! model must take live figures from `GET /v1/pricing` of the real API.

use super::{StandinConfig, StandinImage, StandinLocation, StandinPrice, StandinServerType};

const TERABYTE: u64 = 1_000_000_000_000;

/// Hours per month used to derive fixture hourly prices from monthly ones.
const FIXTURE_HOURS_PER_MONTH: f64 = 730.0;

fn location(
    id: u64,
    name: &str,
    description: &str,
    country: &str,
    city: &str,
    network_zone: &str,
    datacenter_name: &str,
) -> StandinLocation {
    StandinLocation {
        id,
        name: name.to_owned(),
        description: description.to_owned(),
        country: country.to_owned(),
        city: city.to_owned(),
        network_zone: network_zone.to_owned(),
        datacenter_name: datacenter_name.to_owned(),
    }
}

fn price(
    location: &str,
    monthly_net: f64,
    included_terabytes: f64,
    per_tb_net: f64,
) -> StandinPrice {
    StandinPrice {
        location: location.to_owned(),
        hourly_net: (monthly_net / FIXTURE_HOURS_PER_MONTH * 10_000.0).ceil() / 10_000.0,
        monthly_net,
        // Whole bytes; the allowances are multiples of 0.5 TB so this is exact.
        included_traffic_bytes: (included_terabytes * TERABYTE as f64) as u64,
        per_tb_traffic_net: per_tb_net,
    }
}

const EU: [&str; 3] = ["fsn1", "nbg1", "hel1"];
const US: [&str; 2] = ["ash", "hil"];
const EU_US_PER_TB: f64 = 1.00;
const SINGAPORE_PER_TB: f64 = 7.40;

struct TypeRow {
    id: u64,
    name: &'static str,
    cores: u32,
    memory_gb: f64,
    disk_gb: u64,
    cpu_type: &'static str,
    /// (monthly net, included TB) in EU, US and Singapore; `None` where not sold.
    eu: Option<(f64, f64)>,
    us: Option<(f64, f64)>,
    singapore: Option<(f64, f64)>,
}

const TYPE_ROWS: [TypeRow; 11] = [
    TypeRow {
        id: 1011,
        name: "cpx11",
        cores: 2,
        memory_gb: 2.0,
        disk_gb: 40,
        cpu_type: "shared",
        eu: None,
        us: Some((17.49, 1.0)),
        singapore: None,
    },
    TypeRow {
        id: 1021,
        name: "cpx21",
        cores: 3,
        memory_gb: 4.0,
        disk_gb: 80,
        cpu_type: "shared",
        eu: None,
        us: Some((31.99, 2.0)),
        singapore: None,
    },
    TypeRow {
        id: 1031,
        name: "cpx31",
        cores: 4,
        memory_gb: 8.0,
        disk_gb: 160,
        cpu_type: "shared",
        eu: None,
        us: Some((62.49, 3.0)),
        singapore: None,
    },
    TypeRow {
        id: 1041,
        name: "cpx41",
        cores: 8,
        memory_gb: 16.0,
        disk_gb: 240,
        cpu_type: "shared",
        eu: None,
        us: Some((120.49, 4.0)),
        singapore: None,
    },
    TypeRow {
        id: 1022,
        name: "cpx22",
        cores: 2,
        memory_gb: 4.0,
        disk_gb: 80,
        cpu_type: "shared",
        eu: Some((19.49, 20.0)),
        us: None,
        singapore: Some((26.49, 0.5)),
    },
    TypeRow {
        id: 1032,
        name: "cpx32",
        cores: 4,
        memory_gb: 8.0,
        disk_gb: 160,
        cpu_type: "shared",
        eu: Some((35.49, 20.0)),
        us: None,
        singapore: Some((48.99, 1.0)),
    },
    TypeRow {
        id: 1042,
        name: "cpx42",
        cores: 8,
        memory_gb: 16.0,
        disk_gb: 320,
        cpu_type: "shared",
        eu: Some((69.49, 20.0)),
        us: None,
        singapore: Some((93.49, 2.0)),
    },
    TypeRow {
        id: 2013,
        name: "ccx13",
        cores: 2,
        memory_gb: 8.0,
        disk_gb: 80,
        cpu_type: "dedicated",
        eu: Some((42.99, 20.0)),
        us: Some((43.49, 1.0)),
        singapore: Some((53.99, 1.0)),
    },
    TypeRow {
        id: 2023,
        name: "ccx23",
        cores: 4,
        memory_gb: 16.0,
        disk_gb: 160,
        cpu_type: "dedicated",
        eu: Some((85.99, 20.0)),
        us: Some((87.49, 2.0)),
        singapore: Some((108.49, 2.0)),
    },
    TypeRow {
        id: 2033,
        name: "ccx33",
        cores: 8,
        memory_gb: 32.0,
        disk_gb: 240,
        cpu_type: "dedicated",
        eu: Some((138.49, 30.0)),
        us: Some((140.99, 3.0)),
        singapore: Some((174.49, 3.0)),
    },
    TypeRow {
        id: 2043,
        name: "ccx43",
        cores: 16,
        memory_gb: 64.0,
        disk_gb: 360,
        cpu_type: "dedicated",
        eu: Some((275.99, 20.0)),
        us: None,
        singapore: None,
    },
];

fn server_type(row: &TypeRow) -> StandinServerType {
    let mut prices = Vec::new();
    if let Some((monthly, terabytes)) = row.eu {
        prices.extend(
            EU.iter()
                .map(|name| price(name, monthly, terabytes, EU_US_PER_TB)),
        );
    }
    if let Some((monthly, terabytes)) = row.us {
        prices.extend(
            US.iter()
                .map(|name| price(name, monthly, terabytes, EU_US_PER_TB)),
        );
    }
    if let Some((monthly, terabytes)) = row.singapore {
        prices.push(price("sin", monthly, terabytes, SINGAPORE_PER_TB));
    }
    let kind = if row.cpu_type == "dedicated" {
        "dedicated"
    } else {
        "shared"
    };
    StandinServerType {
        id: row.id,
        name: row.name.to_owned(),
        description: format!("{} ({kind} vCPU)", row.name.to_uppercase()),
        cores: row.cores,
        memory_gb: row.memory_gb,
        disk_gb: row.disk_gb,
        cpu_type: row.cpu_type.to_owned(),
        architecture: "x86".to_owned(),
        prices,
    }
}

/// The default stand-in configuration: the catalogue above, 3600 requests per hour refilled at
/// one per second, actions finishing on their second poll, no project server limit.
pub(super) fn default_config() -> StandinConfig {
    StandinConfig {
        token: "standin-test-token".to_owned(),
        rate_limit_per_hour: 3600,
        rate_limit_refill_per_second: 1.0,
        action_polls_to_finish: 2,
        project_server_limit: None,
        currency: "EUR".to_owned(),
        vat_rate_percent: 19.0,
        primary_ipv4_monthly_net: 0.50,
        locations: vec![
            location(
                1,
                "fsn1",
                "Falkenstein DC Park 1",
                "DE",
                "Falkenstein",
                "eu-central",
                "fsn1-dc14",
            ),
            location(
                2,
                "nbg1",
                "Nuremberg DC Park 1",
                "DE",
                "Nuremberg",
                "eu-central",
                "nbg1-dc3",
            ),
            location(
                3,
                "hel1",
                "Helsinki DC Park 1",
                "FI",
                "Helsinki",
                "eu-central",
                "hel1-dc2",
            ),
            location(
                4,
                "ash",
                "Ashburn, VA",
                "US",
                "Ashburn, VA",
                "us-east",
                "ash-dc1",
            ),
            location(
                5,
                "hil",
                "Hillsboro, OR",
                "US",
                "Hillsboro, OR",
                "us-west",
                "hil-dc1",
            ),
            location(
                6,
                "sin",
                "Singapore",
                "SG",
                "Singapore",
                "ap-southeast",
                "sin-dc1",
            ),
        ],
        server_types: TYPE_ROWS.iter().map(server_type).collect(),
        images: vec![
            StandinImage {
                id: 161_547_269,
                image_type: "system".to_owned(),
                name: Some("ubuntu-24.04".to_owned()),
                description: "Ubuntu 24.04".to_owned(),
            },
            StandinImage {
                id: 114_690_387,
                image_type: "system".to_owned(),
                name: Some("debian-12".to_owned()),
                description: "Debian 12".to_owned(),
            },
            StandinImage {
                id: 300_000_001,
                image_type: "snapshot".to_owned(),
                name: None,
                description: "coil-node prebaked snapshot (fixture)".to_owned(),
            },
        ],
    }
}
