//! Access-token costs: verifying on a node (the target is ≤ 50 µs) and issuing in the API.
//! `cargo bench -p coil-auth --bench tokens`.

use coil_auth::{AccessGrant, AccessTokenSettings, AccessTokenSigner};
use coil_store::{AccountId, Role, SessionId};

fn main() {
    divan::main();
}

const NOW_MS: u64 = 1_800_000_000_000;

fn token() -> (AccessTokenSigner, String) {
    let signer = AccessTokenSigner::generate(AccessTokenSettings::default());
    let (account, session) = (AccountId::generate(), SessionId::generate());
    let (token, _) = signer
        .issue(
            &AccessGrant {
                account_id: &account,
                display_name: "Ada_Lovelace",
                roles: &[Role::Player, Role::Admin],
                preferred_region: Some("eu-central"),
                session_id: &session,
                guest: false,
            },
            NOW_MS,
        )
        .unwrap();
    (signer, token)
}

#[divan::bench]
fn verify_access_token(bencher: divan::Bencher) {
    let (signer, token) = token();
    let verifier = signer.verifier();
    bencher
        .counter(divan::counter::BytesCount::new(token.len()))
        .bench(|| {
            verifier
                .verify(divan::black_box(&token), NOW_MS + 1_000)
                .unwrap()
        });
}

#[divan::bench]
fn refuse_forged_access_token(bencher: divan::Bencher) {
    let (_, token) = token();
    let other = AccessTokenSigner::generate(AccessTokenSettings::default()).verifier();
    bencher.bench(|| other.verify(divan::black_box(&token), NOW_MS).unwrap_err());
}

#[divan::bench]
fn issue_access_token(bencher: divan::Bencher) {
    let (signer, _) = token();
    let (account, session) = (AccountId::generate(), SessionId::generate());
    bencher.bench(|| {
        signer
            .issue(
                &AccessGrant {
                    account_id: &account,
                    display_name: "Ada_Lovelace",
                    roles: &[Role::Player],
                    preferred_region: None,
                    session_id: &session,
                    guest: false,
                },
                divan::black_box(NOW_MS),
            )
            .unwrap()
    });
}
