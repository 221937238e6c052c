//! `coil fleet prices --refresh` against the Hetzner stand-in over loopback: the refreshed
//! table carries the API's prices, a dated API source, and still validates.

use coil_fleet::prices::{PriceRegion, PriceTable};
use coil_fleet::refresh::refresh_from_api;
use coil_fleet::{FleetArgs, FleetCommand, PricesArgs, run};
use coil_hcloud::standin::{Standin, StandinConfig, StandinPrice};
use coil_hcloud::{ApiToken, HcloudClient, HcloudClientConfig};

const COMMITTED_TABLE: &str = include_str!("../../../deploy/prices/hetzner.json");

#[tokio::test]
async fn refresh_takes_prices_and_allowances_from_the_api() {
    let standin = Standin::start(StandinConfig::default())
        .await
        .expect("stand-in starts");
    // A price the committed table does not have, so the test sees it move.
    standin.handle().set_price(
        "ccx33",
        StandinPrice {
            location: "ash".to_owned(),
            hourly_net: 0.3,
            monthly_net: 151.5,
            included_traffic_bytes: 4_000_000_000_000,
            per_tb_traffic_net: 1.25,
        },
    );
    let client = HcloudClient::new(
        ApiToken::new(standin.token()).expect("token"),
        HcloudClientConfig {
            base_url: standin.base_url(),
            ..HcloudClientConfig::default()
        },
    )
    .expect("client");
    let mut table = PriceTable::parse(COMMITTED_TABLE).expect("committed table");
    let summary = refresh_from_api(&client, &mut table, "2026-11-22")
        .await
        .expect("refresh");
    assert!(summary.rows_updated > 0, "{summary:?}");
    let ccx33 = table
        .server_price("ccx33", PriceRegion::Us)
        .expect("ccx33 us");
    assert_eq!(ccx33.monthly_eur, 151.5);
    assert_eq!(ccx33.hourly_eur, 0.3);
    assert_eq!(ccx33.included_traffic_tb, 4.0);
    assert_eq!(ccx33.sources, vec!["hetzner-api-2026-11-22".to_owned()]);
    assert_eq!(table.overage_eur_per_tb(PriceRegion::Us), 1.25);
    assert_eq!(table.date, "2026-11-22");
    table.validate().expect("refreshed table validates");
    standin.shutdown().await;
}

#[tokio::test]
async fn the_cli_refresh_writes_a_valid_table_and_a_wrong_token_fails() {
    let standin = Standin::start(StandinConfig::default())
        .await
        .expect("stand-in starts");
    let directory = tempfile::tempdir().expect("tempdir");
    let input = directory.path().join("prices.json");
    std::fs::write(&input, COMMITTED_TABLE).expect("write input");
    let token_file = directory.path().join("token");
    std::fs::write(&token_file, format!("{}\n", standin.token())).expect("write token");
    let output = directory.path().join("refreshed.json");
    let args = |token_file: std::path::PathBuf| FleetArgs {
        command: FleetCommand::Prices(PricesArgs {
            prices: input.clone(),
            refresh: true,
            token_file: Some(token_file),
            base_url: standin.base_url(),
            out: Some(output.clone()),
            json: false,
        }),
    };
    run(args(token_file.clone())).await.expect("refresh runs");
    let refreshed = PriceTable::load(&output).expect("refreshed table loads and validates");
    assert!(
        refreshed
            .sources
            .iter()
            .any(|source| source.id.starts_with("hetzner-api-"))
    );
    // The stand-in's catalogue prices ccx33 in ash at the design figure.
    assert_eq!(
        refreshed
            .server_price("ccx33", PriceRegion::Us)
            .map(|price| price.monthly_eur),
        Some(140.99)
    );

    let wrong_token = directory.path().join("wrong");
    std::fs::write(&wrong_token, "not-the-token").expect("write wrong token");
    std::fs::remove_file(&output).expect("remove output");
    assert!(run(args(wrong_token)).await.is_err());
    assert!(!output.exists(), "nothing is written when the API refuses");
    standin.shutdown().await;
}
