//! The monthly bill: from simulated server lifetimes and egress to itemised euros.
//!
//! Owns Hetzner's billing arithmetic as the price table states it (per started hour, capped
//! at the monthly price; included traffic per server; overage per TB), the control-plane
//! inventory the deployment runs (`deploy/hetzner/terraform`), and the month built from a
//! simulated week. It must not simulate anything and does no IO.

use serde::Serialize;

use crate::prices::{PriceRegion, PriceTable};

pub const MINUTES_PER_HOUR: u32 = 60;
pub const HOURS_PER_WEEK: f64 = 168.0;
const BYTES_PER_TB: f64 = 1e12;

/// What one server cost for `hours` of life: every started hour at the hourly price, never
/// more than the monthly price.
pub fn billed_cost_eur(minutes_alive: u32, hourly_eur: f64, monthly_cap_eur: f64) -> f64 {
    let started_hours = minutes_alive.div_ceil(MINUTES_PER_HOUR);
    (f64::from(started_hours) * hourly_eur).min(monthly_cap_eur)
}

/// Started hours of a lifetime.
pub fn billed_hours(minutes_alive: u32) -> u32 {
    minutes_alive.div_ceil(MINUTES_PER_HOUR)
}

/// Traffic beyond `included_tb`, priced.
pub fn overage_eur(egress_tb: f64, included_tb: f64, eur_per_tb: f64) -> f64 {
    (egress_tb - included_tb).max(0.0) * eur_per_tb
}

/// How a game server is bought.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerPurchase {
    Cloud { server_type: String },
    Dedicated { name: String },
}

/// One game server's life within the simulated week.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerLife {
    pub purchase: ServerPurchase,
    /// None: it existed before the week began.
    pub created_minute: Option<u32>,
    /// None: it still exists when the week ends.
    pub deleted_minute: Option<u32>,
    pub egress_bytes: f64,
}

impl ServerLife {
    /// Alive through the whole week: in a repeating week it is never deleted, so it is
    /// billed at the monthly price with its full traffic allowance.
    pub fn is_long_lived(&self) -> bool {
        self.created_minute.is_none() && self.deleted_minute.is_none()
    }

    pub fn minutes_alive(&self, week_minutes: u32) -> u32 {
        self.deleted_minute
            .unwrap_or(week_minutes)
            .saturating_sub(self.created_minute.unwrap_or(0))
    }
}

/// A control-plane server the deployment runs whatever the load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceServer {
    pub role: &'static str,
    pub count: u32,
    pub server_type: &'static str,
    pub backups: bool,
    pub why: &'static str,
}

/// The control plane per region, as `deploy/hetzner/terraform` builds it. US locations sell
/// the CPX*1 line, EU and Singapore the CPX*2 line.
pub fn control_plane(region: PriceRegion) -> Vec<ServiceServer> {
    let (small, medium, tiny) = match region {
        PriceRegion::Us => ("cpx21", "cpx31", "cpx11"),
        PriceRegion::Eu | PriceRegion::Sg => ("cpx22", "cpx32", "cpx22"),
    };
    vec![
        ServiceServer {
            role: "matchmaker",
            count: 2,
            server_type: small,
            backups: false,
            why: "POST /api/matchmake and join tokens; two behind the load balancer so one can fail or be upgraded",
        },
        ServiceServer {
            role: "redis",
            count: 2,
            server_type: small,
            backups: false,
            why: "room directory and seat reservations (Hetzner has no managed Redis): primary + replica with Sentinel",
        },
        ServiceServer {
            role: "postgresql",
            count: 2,
            server_type: small,
            backups: true,
            why: "leaderboard (Hetzner has no managed PostgreSQL): primary + streaming standby, pgBackRest to Object Storage",
        },
        ServiceServer {
            role: "monitoring",
            count: 1,
            server_type: medium,
            backups: false,
            why: "Prometheus, Alertmanager, Grafana: the autoscaler's signals and the alerts",
        },
        ServiceServer {
            role: "autoscaler",
            count: 1,
            server_type: tiny,
            backups: false,
            why: "coil autoscaler: runs decide() and calls the Hetzner API",
        },
    ]
}

/// One line of the bill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BillLine {
    pub item: String,
    pub detail: String,
    pub monthly_eur: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonthlyBill {
    pub region: PriceRegion,
    pub lines: Vec<BillLine>,
    pub total_eur: f64,
    /// Game servers only (cloud + dedicated + their IPv4).
    pub game_servers_eur: f64,
    pub egress_overage_eur: f64,
    /// The overage if allowances pooled across all servers of the project (unconfirmed).
    pub egress_overage_if_pooled_eur: f64,
    pub egress_tb_per_month: f64,
    pub included_tb_per_month: f64,
    pub game_server_hours_per_month: f64,
}

/// Errors are only missing prices: the table lacks a type the simulation used.
#[derive(Debug, thiserror::Error)]
pub enum BillError {
    #[error("the price table has no price for {0} in {1}")]
    MissingPrice(String, PriceRegion),
}

/// Builds the month from a simulated week: long-lived servers at their monthly price,
/// the rest at their started hours × `hours_per_month / 168`; egress the same way.
pub fn monthly_bill(
    prices: &PriceTable,
    region: PriceRegion,
    lives: &[ServerLife],
    week_minutes: u32,
) -> Result<MonthlyBill, BillError> {
    let weeks_per_month = prices.hours_per_month / HOURS_PER_WEEK;
    let ipv4_monthly = prices.other.primary_ipv4_monthly_eur;
    let per_tb = prices.overage_eur_per_tb(region);
    let mut lines = Vec::new();

    // Game servers, grouped by purchase and long-lived or not.
    struct Group {
        count: u32,
        hours_per_month: f64,
        eur: f64,
    }
    let mut groups: Vec<(String, Group)> = Vec::new();
    let mut ipv4_eur = 0.0;
    let mut overage_per_server = 0.0;
    let mut egress_tb_month = 0.0;
    let mut included_tb_month = 0.0;
    let mut metered_egress_tb_month = 0.0;
    let mut server_hours_month = 0.0;
    for life in lives {
        let minutes = life.minutes_alive(week_minutes);
        let egress_tb = life.egress_bytes / BYTES_PER_TB * weeks_per_month;
        egress_tb_month += egress_tb;
        let (label, eur, hours, included_tb, metered) = match &life.purchase {
            ServerPurchase::Cloud { server_type } => {
                let price = prices
                    .server_price(server_type, region)
                    .ok_or_else(|| BillError::MissingPrice(server_type.clone(), region))?;
                if life.is_long_lived() {
                    (
                        format!("{server_type} long-lived"),
                        price.monthly_eur,
                        prices.hours_per_month,
                        price.included_traffic_tb,
                        true,
                    )
                } else {
                    let hours = f64::from(billed_hours(minutes)) * weeks_per_month;
                    let eur = billed_cost_eur(minutes, price.hourly_eur, price.monthly_eur)
                        * weeks_per_month;
                    // Allowances of hourly servers are assumed prorated by hours billed.
                    let included =
                        price.included_traffic_tb * (hours / prices.hours_per_month).min(1.0);
                    (
                        format!("{server_type} autoscaled"),
                        eur,
                        hours,
                        included,
                        true,
                    )
                }
            }
            ServerPurchase::Dedicated { name } => {
                let row = prices
                    .dedicated(name)
                    .ok_or_else(|| BillError::MissingPrice(name.clone(), region))?;
                // Setup fee spread over a year: a dedicated server is a commitment.
                let eur = row.monthly_eur + row.setup_eur / 12.0;
                (
                    format!("{name} dedicated"),
                    eur,
                    prices.hours_per_month,
                    0.0,
                    !row.unmetered_traffic,
                )
            }
        };
        server_hours_month += hours;
        ipv4_eur += ipv4_monthly * (hours / prices.hours_per_month).min(1.0);
        if metered {
            overage_per_server += overage_eur(egress_tb, included_tb, per_tb);
            metered_egress_tb_month += egress_tb;
            included_tb_month += included_tb;
        }
        match groups.iter_mut().find(|(name, _)| *name == label) {
            Some((_, group)) => {
                group.count += 1;
                group.hours_per_month += hours;
                group.eur += eur;
            }
            None => groups.push((
                label,
                Group {
                    count: 1,
                    hours_per_month: hours,
                    eur,
                },
            )),
        }
    }
    let mut game_servers_eur = ipv4_eur;
    for (label, group) in &groups {
        game_servers_eur += group.eur;
        lines.push(BillLine {
            item: format!("game servers: {label}"),
            detail: format!(
                "{} servers in the week, {:.0} server-hours/month",
                group.count, group.hours_per_month
            ),
            monthly_eur: group.eur,
        });
    }
    lines.push(BillLine {
        item: "primary IPv4, game servers".to_owned(),
        detail: format!("€{ipv4_monthly:.2}/month each, prorated by hours"),
        monthly_eur: ipv4_eur,
    });
    lines.push(BillLine {
        item: "egress above included traffic".to_owned(),
        detail: format!(
            "{egress_tb_month:.1} TB/month out, {included_tb_month:.1} TB included (per server, not pooled), €{per_tb:.2}/TB"
        ),
        monthly_eur: overage_per_server,
    });

    // Control plane and shared services.
    let lb = prices.load_balancer("lb11");
    let lb_eur = lb.map_or(0.0, |row| row.monthly_eur);
    lines.push(BillLine {
        item: "load balancer lb11".to_owned(),
        detail: "HTTPS for the matchmaker API (players connect to nodes directly)".to_owned(),
        monthly_eur: lb_eur,
    });
    let mut control_included_tb = 0.0;
    for service in control_plane(region) {
        let price = prices
            .server_price(service.server_type, region)
            .ok_or_else(|| BillError::MissingPrice(service.server_type.to_owned(), region))?;
        control_included_tb += price.included_traffic_tb * f64::from(service.count);
        let each = price.monthly_eur + ipv4_monthly;
        let backups = if service.backups {
            price.monthly_eur * prices.other.backup_fraction_of_server_price
        } else {
            0.0
        };
        lines.push(BillLine {
            item: format!(
                "{} ×{} {}",
                service.role, service.count, service.server_type
            ),
            detail: format!(
                "{}{}",
                service.why,
                if service.backups {
                    ", + Hetzner backups at 20%"
                } else {
                    ""
                }
            ),
            monthly_eur: (each + backups) * f64::from(service.count),
        });
    }
    lines.push(BillLine {
        item: "object storage".to_owned(),
        detail: "PostgreSQL WAL and base backups (EU locations only; a US fleet ships them across the Atlantic)".to_owned(),
        monthly_eur: prices.other.object_storage_monthly_eur,
    });

    let pooled_overage = overage_eur(
        metered_egress_tb_month,
        included_tb_month + control_included_tb,
        per_tb,
    );
    let total_eur = lines.iter().map(|line| line.monthly_eur).sum();
    Ok(MonthlyBill {
        region,
        lines,
        total_eur,
        game_servers_eur,
        egress_overage_eur: overage_per_server,
        egress_overage_if_pooled_eur: pooled_overage,
        egress_tb_per_month: egress_tb_month,
        included_tb_per_month: included_tb_month,
        game_server_hours_per_month: server_hours_month,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        PriceTable::parse(include_str!("../../../deploy/prices/hetzner.json")).expect("valid")
    }

    #[test]
    fn every_started_hour_is_billed_and_the_month_caps_it() {
        assert_eq!(billed_hours(0), 0);
        assert_eq!(billed_hours(1), 1);
        assert_eq!(billed_hours(60), 1);
        assert_eq!(billed_hours(61), 2);
        assert!((billed_cost_eur(61, 0.25, 100.0) - 0.5).abs() < 1e-12);
        // 500 hours at 0.25 = 125 > cap 100.
        assert_eq!(billed_cost_eur(500 * 60, 0.25, 100.0), 100.0);
    }

    #[test]
    fn overage_is_only_what_exceeds_the_allowance() {
        assert_eq!(overage_eur(2.0, 3.0, 1.0), 0.0);
        assert!((overage_eur(5.5, 3.0, 1.0) - 2.5).abs() < 1e-12);
        assert!((overage_eur(5.5, 3.0, 7.4) - 18.5).abs() < 1e-9);
    }

    #[test]
    fn a_long_lived_server_costs_its_monthly_price_and_a_short_one_its_hours() {
        let prices = table();
        let ccx33 = prices
            .server_price("ccx33", PriceRegion::Us)
            .expect("ccx33")
            .clone();
        let week = 7 * 24 * 60;
        let long_lived = ServerLife {
            purchase: ServerPurchase::Cloud {
                server_type: "ccx33".to_owned(),
            },
            created_minute: None,
            deleted_minute: None,
            egress_bytes: 0.0,
        };
        let short = ServerLife {
            created_minute: Some(100),
            deleted_minute: Some(100 + 121), // three started hours
            ..long_lived.clone()
        };
        let bill = monthly_bill(&prices, PriceRegion::Us, &[long_lived], week).expect("bill");
        let ipv4 = prices.other.primary_ipv4_monthly_eur;
        assert!((bill.game_servers_eur - (ccx33.monthly_eur + ipv4)).abs() < 1e-9);
        let bill = monthly_bill(&prices, PriceRegion::Us, &[short], week).expect("bill");
        let weeks_per_month = prices.hours_per_month / 168.0;
        let expected_server = 3.0 * ccx33.hourly_eur * weeks_per_month;
        let expected_ipv4 = ipv4 * 3.0 * weeks_per_month / prices.hours_per_month;
        assert!(
            (bill.game_servers_eur - expected_server - expected_ipv4).abs() < 1e-9,
            "{} vs {}",
            bill.game_servers_eur,
            expected_server + expected_ipv4
        );
        let sum: f64 = bill.lines.iter().map(|line| line.monthly_eur).sum();
        assert!((bill.total_eur - sum).abs() < 1e-9);
    }

    #[test]
    fn egress_above_the_allowance_is_billed_per_server_and_pooling_can_only_lower_it() {
        let prices = table();
        let week = 7 * 24 * 60;
        let weeks_per_month = prices.hours_per_month / 168.0;
        // 10 TB in a month on a server that includes 3 TB (US ccx33): 7 TB overage.
        let busy = ServerLife {
            purchase: ServerPurchase::Cloud {
                server_type: "ccx33".to_owned(),
            },
            created_minute: None,
            deleted_minute: None,
            egress_bytes: 10.0e12 / weeks_per_month,
        };
        let idle = ServerLife {
            egress_bytes: 0.0,
            ..busy.clone()
        };
        let bill = monthly_bill(&prices, PriceRegion::Us, &[busy, idle], week).expect("bill");
        assert!(
            (bill.egress_overage_eur - 7.0).abs() < 1e-6,
            "{}",
            bill.egress_overage_eur
        );
        assert!(bill.egress_overage_if_pooled_eur < bill.egress_overage_eur);
        assert!((bill.egress_tb_per_month - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_dedicated_server_has_no_overage_and_a_missing_price_is_an_error() {
        let prices = table();
        let week = 7 * 24 * 60;
        let dedicated = ServerLife {
            purchase: ServerPurchase::Dedicated {
                name: "ax42".to_owned(),
            },
            created_minute: None,
            deleted_minute: None,
            egress_bytes: 500e12,
        };
        let bill = monthly_bill(&prices, PriceRegion::Eu, &[dedicated], week).expect("bill");
        assert_eq!(bill.egress_overage_eur, 0.0);
        let unknown = ServerLife {
            purchase: ServerPurchase::Cloud {
                server_type: "cpx42".to_owned(),
            },
            created_minute: None,
            deleted_minute: None,
            egress_bytes: 0.0,
        };
        assert!(monthly_bill(&prices, PriceRegion::Us, &[unknown], week).is_err());
    }
}
