//! The stand-in's HTTP edge: routes, and one middleware that does what Hetzner's front does
//! for every request (delay knob, rate limit with `RateLimit-*` headers, bearer auth, injected
//! errors, request log).
//!
//! Handlers only translate between HTTP and [`super::state::StandinState`]; the state lock is
//! taken and released inside synchronous blocks and never held across an `.await`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::Value;

use super::state::{ListParameters, Refusal};
use super::{RecordedRequest, StandinHandle, now_unix_seconds};

pub(super) fn router(handle: StandinHandle) -> Router {
    Router::new()
        .route("/v1/servers", get(list_servers).post(create_server))
        .route("/v1/servers/{id}", get(get_server).delete(delete_server))
        .route("/v1/actions/{id}", get(get_action))
        .route("/v1/server_types", get(list_server_types))
        .route("/v1/pricing", get(get_pricing))
        .route(
            "/v1/zones/{zone}/rrsets",
            get(list_rrsets).post(create_rrset),
        )
        .route(
            "/v1/zones/{zone}/rrsets/{name}/{rrset_type}",
            delete(delete_rrset),
        )
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(handle.clone(), front))
        .with_state(handle)
}

fn refusal_response(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(refusal.body())).into_response()
}

fn answer(result: Result<Value, Refusal>, success: StatusCode) -> Response {
    match result {
        Ok(body) => (success, axum::Json(body)).into_response(),
        Err(refusal) => refusal_response(&refusal),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn set_rate_limit_headers(response: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// What Hetzner's front does before and after every handler.
async fn front(State(handle): State<StandinHandle>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);

    let delay = handle.lock().faults.response_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // Rate limiting applies to every request, authenticated or not (as documented), so it
    // runs before the token check.
    let early_answer = {
        let mut state = handle.lock();
        let now = std::time::Instant::now();
        if !state.rate.try_take(now) {
            Some(Refusal::new(
                "rate_limit_exceeded",
                "limit of requests per hour reached",
            ))
        } else if bearer_token(request.headers()) != Some(state.config.token.as_str()) {
            Some(Refusal::new("unauthorized", "unable to authenticate"))
        } else {
            state
                .faults
                .next_response_errors
                .pop_front()
                .map(|injected| Refusal::from_injected(&injected))
        }
    };
    let mut response = match early_answer {
        Some(refusal) => refusal_response(&refusal),
        None => next.run(request).await,
    };

    let mut state = handle.lock();
    let rate = state
        .rate
        .headers(std::time::Instant::now(), now_unix_seconds());
    set_rate_limit_headers(
        &mut response,
        rate.limit,
        rate.remaining,
        rate.reset_unix_seconds,
    );
    state.request_log.push(RecordedRequest {
        method,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

fn parse_id(text: &str) -> Result<u64, Refusal> {
    text.parse::<u64>()
        .map_err(|_| Refusal::new("invalid_input", format!("invalid id {text:?}")))
}

fn list_parameters(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<ListParameters, Refusal> {
    let Query(pairs) =
        query.map_err(|_| Refusal::new("invalid_input", "malformed query string"))?;
    Ok(ListParameters::from_pairs(pairs))
}

async fn list_servers(
    State(handle): State<StandinHandle>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let result =
        list_parameters(query).and_then(|parameters| handle.lock().list_servers(&parameters));
    answer(result, StatusCode::OK)
}

async fn create_server(State(handle): State<StandinHandle>, body: Bytes) -> Response {
    let result = handle.lock().create_server(&body, now_unix_seconds());
    answer(result, StatusCode::CREATED)
}

async fn get_server(State(handle): State<StandinHandle>, Path(id): Path<String>) -> Response {
    let result = parse_id(&id).and_then(|id| handle.lock().get_server(id, now_unix_seconds()));
    answer(result, StatusCode::OK)
}

async fn delete_server(State(handle): State<StandinHandle>, Path(id): Path<String>) -> Response {
    let result = parse_id(&id).and_then(|id| handle.lock().delete_server(id, now_unix_seconds()));
    answer(result, StatusCode::OK)
}

async fn get_action(State(handle): State<StandinHandle>, Path(id): Path<String>) -> Response {
    let result = parse_id(&id).and_then(|id| handle.lock().get_action(id, now_unix_seconds()));
    answer(result, StatusCode::OK)
}

async fn list_server_types(
    State(handle): State<StandinHandle>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let result =
        list_parameters(query).and_then(|parameters| handle.lock().list_server_types(&parameters));
    answer(result, StatusCode::OK)
}

async fn get_pricing(State(handle): State<StandinHandle>) -> Response {
    let body = handle.lock().pricing();
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn list_rrsets(
    State(handle): State<StandinHandle>,
    Path(zone): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let result =
        list_parameters(query).and_then(|parameters| handle.lock().list_rrsets(&zone, &parameters));
    answer(result, StatusCode::OK)
}

async fn create_rrset(
    State(handle): State<StandinHandle>,
    Path(zone): Path<String>,
    body: Bytes,
) -> Response {
    let result = handle.lock().create_rrset(&zone, &body, now_unix_seconds());
    answer(result, StatusCode::CREATED)
}

async fn delete_rrset(
    State(handle): State<StandinHandle>,
    Path((zone, name, rrset_type)): Path<(String, String, String)>,
) -> Response {
    let result = handle
        .lock()
        .delete_rrset(&zone, &name, &rrset_type, now_unix_seconds());
    answer(result, StatusCode::OK)
}

async fn unknown_route() -> Response {
    refusal_response(&Refusal::new("not_found", "resource not found"))
}
