//! Rate limits on the game node's own routes: WebSocket join attempts (`GET /api/room/{room}`)
//! and leaderboard submissions (`POST /api/leaderboard`), per client address. A middleware
//! rather than edits to the node's handlers, so the node's routes stay the node's.
//!
//! In `coil serve` the limits and limiter are the accounts platform's (in memory); a fleet
//! `coil node` has no platform (it never holds the signing key) and builds [`NodeLimits`] from
//! `NodeLimitArgs` over the fleet's Redis limiter, so a client's budget holds across nodes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coil_auth::{RateDecision, RateLimiter};

use crate::config::NodeLimitConfig;
use crate::error::ApiError;
use crate::platform::Platform;

/// The node routes' limits and the limiter that counts them.
#[derive(Debug, Clone)]
pub struct NodeLimits {
    config: Arc<NodeLimitConfig>,
    limiter: Arc<dyn RateLimiter>,
}

impl NodeLimits {
    pub fn new(config: NodeLimitConfig, limiter: Arc<dyn RateLimiter>) -> NodeLimits {
        NodeLimits {
            config: Arc::new(config),
            limiter,
        }
    }

    /// The limits of the accounts platform (`coil serve`: its limiter and settings).
    pub fn of_platform(platform: &Platform) -> NodeLimits {
        let config = platform.config();
        NodeLimits::new(
            NodeLimitConfig {
                trusted_proxies: config.trusted_proxies.clone(),
                exempt: config.limits.exempt.clone(),
                leaderboard_ip: config.limits.leaderboard_ip,
                join_ip: config.limits.join_ip,
            },
            platform.limiter(),
        )
    }
}

/// Wraps `router` (the node's routes) with the join and leaderboard limits.
pub fn apply(router: Router, limits: NodeLimits) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        limits,
        limit_node_requests,
    ))
}

async fn limit_node_requests(
    State(limits): State<NodeLimits>,
    request: Request,
    next: Next,
) -> Response {
    let config = &limits.config;
    let path = request.uri().path();
    let rule = if request.method() == Method::GET && path.starts_with("/api/room/") {
        config.join_ip
    } else if request.method() == Method::POST && path == "/api/leaderboard" {
        config.leaderboard_ip
    } else {
        None
    };
    if let Some(rule) = rule {
        let peer = request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(address)| *address)
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let address = config
            .trusted_proxies
            .client_address(peer, request.headers());
        if !config.exempt.contains(address.0)
            && let RateDecision::Limited { retry_after } =
                limits.limiter.check(&rule, &address.rate_limit_key()).await
        {
            return ApiError::RateLimited { retry_after }.into_response();
        }
    }
    next.run(request).await
}
