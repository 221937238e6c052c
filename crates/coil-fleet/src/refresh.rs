//! `coil fleet prices --refresh`: rewrite the price table from the Hetzner API.
//!
//! Owns the mapping from `GET /v1/pricing` and `GET /v1/server_types` onto the table's rows:
//! per pricing region, the first location the API prices (US: ash, hil; EU: fsn1, nbg1, hel1;
//! Singapore: sin). It keeps rows the API does not list (dedicated servers, load balancers it
//! has no number for) and marks every refreshed row with a dated API source. It must not
//! write files (the caller does) and never prints the token.

use coil_hcloud::{HcloudClient, Pricing, ServerType};

use crate::prices::{PriceRegion, PriceSource, PriceTable, ServerPrice, ServerTypeRow};

/// What a refresh changed, for the operator.
#[derive(Debug, Default, PartialEq)]
pub struct RefreshSummary {
    pub rows_updated: usize,
    pub rows_added: usize,
    pub unchanged_rows: Vec<String>,
}

/// Reads both endpoints and applies them to `table`.
pub async fn refresh_from_api(
    client: &HcloudClient,
    table: &mut PriceTable,
    today: &str,
) -> Result<RefreshSummary, coil_hcloud::HcloudError> {
    let pricing = client.get_pricing().await?;
    let server_types = client.list_server_types().await?;
    Ok(apply(table, &pricing, &server_types, today))
}

const LOCATION_ORDER: [&str; 6] = ["ash", "hil", "fsn1", "nbg1", "hel1", "sin"];

/// Pure part of the refresh, testable without a network.
pub fn apply(
    table: &mut PriceTable,
    pricing: &Pricing,
    server_types: &[ServerType],
    today: &str,
) -> RefreshSummary {
    let source_id = format!("hetzner-api-{today}");
    let mut summary = RefreshSummary::default();
    let mut touched = std::collections::BTreeSet::new();
    for server_type in server_types {
        if server_type.deprecated {
            continue;
        }
        let name = server_type.name.to_ascii_lowercase();
        for region in PriceRegion::ALL {
            // /v1/pricing is authoritative for money; /v1/server_types fills in if absent.
            let location_price = LOCATION_ORDER
                .iter()
                .filter(|location| PriceRegion::of_location(location) == Some(region))
                .find_map(|location| {
                    pricing
                        .server_price(&name, location)
                        .or_else(|| server_type.price_in(location))
                });
            let Some(price) = location_price else {
                continue;
            };
            let fresh = ServerPrice {
                region,
                monthly_eur: price.price_monthly.net,
                hourly_eur: price.price_hourly.net,
                included_traffic_tb: price.included_traffic_terabytes(),
                sources: vec![source_id.clone()],
            };
            let row = match table.server_types.iter().position(|row| row.name == name) {
                Some(index) => &mut table.server_types[index],
                None => {
                    table.server_types.push(ServerTypeRow {
                        name: name.clone(),
                        cores: server_type.cores,
                        cpu: if server_type.cpu_type == "dedicated" {
                            "dedicated".to_owned()
                        } else {
                            "shared".to_owned()
                        },
                        memory_gb: server_type.memory,
                        prices: Vec::new(),
                    });
                    summary.rows_added += 1;
                    table.server_types.last_mut().expect("just pushed")
                }
            };
            match row
                .prices
                .iter_mut()
                .find(|existing| existing.region == region)
            {
                Some(existing) => {
                    *existing = fresh;
                    summary.rows_updated += 1;
                }
                None => row.prices.push(fresh),
            }
            touched.insert((name.clone(), region));
            if let Some(per_tb) = price.price_per_tb_traffic
                && let Some(traffic) = table.traffic.iter_mut().find(|row| row.region == region)
            {
                traffic.overage_eur_per_tb = per_tb.net;
                traffic.sources = vec![source_id.clone()];
            }
        }
    }
    for row in &table.server_types {
        for price in &row.prices {
            if !touched.contains(&(row.name.clone(), price.region)) {
                summary
                    .unchanged_rows
                    .push(format!("{} {}", row.name, price.region));
            }
        }
    }
    if let Some(ipv4) = LOCATION_ORDER
        .iter()
        .find_map(|location| pricing.primary_ipv4_monthly(location))
    {
        table.other.primary_ipv4_monthly_eur = ipv4.net;
    }
    if let Some(percent) = pricing.server_backup_percent {
        table.other.backup_fraction_of_server_price = percent / 100.0;
    }
    table.sources.retain(|source| source.id != source_id);
    table.sources.push(PriceSource {
        id: source_id,
        description: format!(
            "Hetzner Cloud API GET /v1/pricing and GET /v1/server_types (currency {}, net of VAT)",
            pricing.currency
        ),
        date: today.to_owned(),
    });
    table.date = today.to_owned();
    summary
}

/// Today's date (UTC) as YYYY-MM-DD from the system clock. Only the CLI calls this.
pub fn today_utc() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    civil_date(seconds / 86_400)
}

/// Days since 1970-01-01 to a civil date, `YYYY-MM-DD`.
pub fn civil_date(days_since_epoch: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(days_since_epoch * 86_400);
    let mut text = humantime::format_rfc3339_seconds(at).to_string();
    text.truncate("YYYY-MM-DD".len());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right_around_known_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(4), "1970-01-05");
        // 2026-11-22 is day 20,779.
        assert_eq!(civil_date(20_779), "2026-11-22");
        assert_eq!(civil_date(19_417), "2023-03-01");
    }
}
