//! Every metric the accounts API exports, declared once. Labels are outcomes and reasons,
//! never an account, a session or an address.

use metrics::counter;

/// `coil_accounts_created_total{kind="registered"|"guest"|"upgraded"}`.
pub fn account_created(kind: &'static str) {
    counter!("coil_accounts_created_total", "kind" => kind).increment(1);
}

/// `coil_logins_total{result="ok"|"invalid"|"banned"}`.
pub fn login(result: &'static str) {
    counter!("coil_logins_total", "result" => result).increment(1);
}

/// `coil_refreshes_total{result="ok"|"invalid"|"replayed"|"banned"}`.
pub fn refresh(result: &'static str) {
    counter!("coil_refreshes_total", "result" => result).increment(1);
}

/// `coil_sessions_started_total`.
pub fn session_started() {
    counter!("coil_sessions_started_total").increment(1);
}

/// `coil_sessions_ended_total{reason}`.
pub fn session_ended(reason: &'static str) {
    counter!("coil_sessions_ended_total", "reason" => reason).increment(1);
}

/// `coil_bans_total`.
pub fn ban() {
    counter!("coil_bans_total").increment(1);
}

/// `coil_api_requests_total{route, status}`: every accounts route's answers.
pub fn request(route: &'static str, status: u16) {
    counter!("coil_api_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
}
