//! The async Hetzner Cloud API client: servers, actions, server types, pricing and DNS zone
//! record sets (RRSets).
//!
//! Owns the HTTP exchange (reqwest with rustls, a timeout on every request, bearer auth), the
//! decoding into [`crate::model`] types, the mapping of error objects into [`HcloudError`], and
//! the rate-limit bookkeeping: every response's `RateLimit-*` headers update a shared snapshot
//! that callers read through [`HcloudClient::rate_limit`] and [`HcloudClient::check_budget`].
//!
//! It must not decide policy: it never retries, never sleeps on a 429 (the error carries
//! `retry_at` and the autoscaler decides), and never logs the token. The only sleeping is the
//! poll interval of [`HcloudClient::wait_for_action`], which the caller chooses.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, HcloudError};
use crate::model::{
    Action, ActionEnvelope, ActionId, ActionStatus, CreateRrsetRequest, CreateServerRequest,
    CreatedRrset, CreatedServer, MAX_PER_PAGE, Page, Pricing, PricingEnvelope, Rrset,
    RrsetsPageWire, Server, ServerEnvelope, ServerId, ServerType, ServerTypesPageWire,
    ServersPageWire, USER_DATA_LIMIT_BYTES,
};
use crate::rate_limit::{BudgetShortfall, RateLimitSnapshot, check_budget};
use crate::token::ApiToken;

/// Hetzner's public endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.hetzner.cloud/v1";

/// A list walk stops after this many pages even if the server keeps offering a `next_page`, so a
/// misbehaving answer cannot loop the client forever (50 per page × 200 = 10,000 servers).
const MAX_PAGES_PER_LIST: u32 = 200;

/// How the client talks to the API.
#[derive(Debug, Clone)]
pub struct HcloudClientConfig {
    /// Base URL including `/v1`, e.g. [`DEFAULT_BASE_URL`] or a stand-in's URL.
    pub base_url: String,
    /// Whole-request timeout, applied to every call. Hetzner answers a create in about 5 s.
    pub request_timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl Default for HcloudClientConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            user_agent: concat!("coil-hcloud/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Filters for one page of `GET /v1/servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListServersQuery {
    /// A label selector string, e.g. built with [`crate::LabelSelector`].
    pub label_selector: Option<String>,
    /// Exact server name.
    pub name: Option<String>,
    /// 1-based page number; `None` for the first page.
    pub page: Option<u32>,
    /// Items per page (at most [`MAX_PER_PAGE`]); `None` for the API default of 25.
    pub per_page: Option<u32>,
}

/// A typed Hetzner Cloud client. Cheap to clone; clones share the connection pool and the
/// rate-limit snapshot.
#[derive(Clone)]
pub struct HcloudClient {
    http: reqwest::Client,
    base_url: String,
    token: ApiToken,
    rate_limit: Arc<Mutex<Option<RateLimitSnapshot>>>,
    requests_in_flight: Arc<AtomicU32>,
}

impl std::fmt::Debug for HcloudClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HcloudClient")
            .field("base_url", &self.base_url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Decrements the in-flight counter however the request ends, including cancellation.
struct InFlightGuard<'counter>(&'counter AtomicU32);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HcloudClient {
    /// Builds a client; fails only if the TLS backend cannot be initialised.
    pub fn new(token: ApiToken, config: HcloudClientConfig) -> Result<Self, HcloudError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent)
            .build()
            .map_err(|source| HcloudError::ClientBuild { source })?;
        Ok(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            token,
            rate_limit: Arc::new(Mutex::new(None)),
            requests_in_flight: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The rate-limit headers of the most recent response that carried them.
    pub fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        *self
            .rate_limit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests sent and not yet answered.
    pub fn requests_in_flight(&self) -> u32 {
        self.requests_in_flight.load(Ordering::Relaxed)
    }

    /// The budget guard: may the caller spend `requests` more requests now? Estimated from the
    /// last snapshot, the documented refill, and requests still in flight. Before the first
    /// response the answer is yes.
    pub fn check_budget(&self, requests: u32) -> Result<(), BudgetShortfall> {
        check_budget(
            self.rate_limit().as_ref(),
            self.requests_in_flight(),
            requests,
            SystemTime::now(),
        )
    }

    /// Shorthand for `check_budget(requests).is_ok()`.
    pub fn may_spend(&self, requests: u32) -> bool {
        self.check_budget(requests).is_ok()
    }

    /// `POST /v1/servers`. Refuses user data over 32 KiB before sending anything.
    pub async fn create_server(
        &self,
        request: &CreateServerRequest,
    ) -> Result<CreatedServer, HcloudError> {
        if let Some(user_data) = &request.user_data
            && user_data.len() > USER_DATA_LIMIT_BYTES
        {
            return Err(HcloudError::UserDataTooLarge {
                size_bytes: user_data.len(),
                limit_bytes: USER_DATA_LIMIT_BYTES,
            });
        }
        let builder = self
            .request(Method::POST, "/servers")?
            .json(&request.to_wire());
        self.send("create_server", builder).await
    }

    /// `GET /v1/servers/{id}`.
    pub async fn get_server(&self, server_id: ServerId) -> Result<Server, HcloudError> {
        let builder = self.request(Method::GET, &format!("/servers/{server_id}"))?;
        let envelope: ServerEnvelope = self.send("get_server", builder).await?;
        Ok(envelope.server)
    }

    /// `DELETE /v1/servers/{id}`; returns the `delete_server` action.
    pub async fn delete_server(&self, server_id: ServerId) -> Result<Action, HcloudError> {
        let builder = self.request(Method::DELETE, &format!("/servers/{server_id}"))?;
        let envelope: ActionEnvelope = self.send("delete_server", builder).await?;
        Ok(envelope.action)
    }

    /// One page of `GET /v1/servers`. Costs one request.
    pub async fn list_servers_page(
        &self,
        query: &ListServersQuery,
    ) -> Result<Page<Server>, HcloudError> {
        let mut parameters: Vec<(&str, String)> = Vec::new();
        if let Some(selector) = &query.label_selector {
            parameters.push(("label_selector", selector.clone()));
        }
        if let Some(name) = &query.name {
            parameters.push(("name", name.clone()));
        }
        if let Some(page) = query.page {
            parameters.push(("page", page.to_string()));
        }
        if let Some(per_page) = query.per_page {
            parameters.push(("per_page", per_page.min(MAX_PER_PAGE).to_string()));
        }
        let builder = self.request(Method::GET, "/servers")?.query(&parameters);
        let wire: ServersPageWire = self.send("list_servers", builder).await?;
        Ok(Page {
            items: wire.servers,
            pagination: wire.meta.and_then(|meta| meta.pagination),
        })
    }

    /// All servers matching `label_selector` (every server if `None`), walking every page at
    /// 50 per page. Costs one request per page.
    pub async fn list_servers(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<Server>, HcloudError> {
        let mut servers = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES_PER_LIST {
            let query = ListServersQuery {
                label_selector: label_selector.map(str::to_owned),
                name: None,
                page: Some(page),
                per_page: Some(MAX_PER_PAGE),
            };
            let result = self.list_servers_page(&query).await?;
            servers.extend(result.items);
            match result
                .pagination
                .and_then(|pagination| pagination.next_page)
            {
                Some(next) if next > page => page = next,
                _ => break,
            }
        }
        Ok(servers)
    }

    /// `GET /v1/actions/{id}`.
    pub async fn get_action(&self, action_id: ActionId) -> Result<Action, HcloudError> {
        let builder = self.request(Method::GET, &format!("/actions/{action_id}"))?;
        let envelope: ActionEnvelope = self.send("get_action", builder).await?;
        Ok(envelope.action)
    }

    /// Polls an action every `poll_interval` until it succeeds (returned), fails
    /// ([`HcloudError::ActionFailed`]), or `give_up_after` has passed
    /// ([`HcloudError::ActionDeadlineExceeded`]). A failing poll (rate limit, timeout) is
    /// returned at once so the caller can decide; each poll costs one request.
    pub async fn wait_for_action(
        &self,
        action_id: ActionId,
        poll_interval: Duration,
        give_up_after: Duration,
    ) -> Result<Action, HcloudError> {
        let deadline = tokio::time::Instant::now() + give_up_after;
        loop {
            let action = self.get_action(action_id).await?;
            match action.status {
                ActionStatus::Success => return Ok(action),
                ActionStatus::Error => {
                    let (code, message) = match action.error {
                        Some(error) => (error.code, error.message),
                        None => (
                            ErrorCode::Unknown("action_error".to_owned()),
                            "action failed without an error object".to_owned(),
                        ),
                    };
                    return Err(HcloudError::ActionFailed {
                        action_id,
                        code,
                        message,
                    });
                }
                ActionStatus::Running | ActionStatus::Other(_) => {}
            }
            let now = tokio::time::Instant::now();
            if now + poll_interval > deadline {
                return Err(HcloudError::ActionDeadlineExceeded {
                    action_id,
                    progress: action.progress,
                });
            }
            tokio::time::sleep(poll_interval).await;
        }
    }

    /// `GET /v1/server_types`, every page.
    pub async fn list_server_types(&self) -> Result<Vec<ServerType>, HcloudError> {
        let mut server_types = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES_PER_LIST {
            let builder = self
                .request(Method::GET, "/server_types")?
                .query(&[("page", page), ("per_page", MAX_PER_PAGE)]);
            let wire: ServerTypesPageWire = self.send("list_server_types", builder).await?;
            server_types.extend(wire.server_types);
            match wire
                .meta
                .and_then(|meta| meta.pagination)
                .and_then(|pagination| pagination.next_page)
            {
                Some(next) if next > page => page = next,
                _ => break,
            }
        }
        Ok(server_types)
    }

    /// `GET /v1/pricing`, with every price parsed into numbers.
    pub async fn get_pricing(&self) -> Result<Pricing, HcloudError> {
        let builder = self.request(Method::GET, "/pricing")?;
        let envelope: PricingEnvelope = self.send("get_pricing", builder).await?;
        Ok(envelope.pricing.into())
    }

    /// `POST /v1/zones/{zone}/rrsets` (`zone`: id or name). The returned action is not
    /// followed: the record set exists once the call succeeds. Answers `uniqueness_error` if
    /// the name and type already exist, `not_found` for an unknown zone.
    pub async fn create_rrset(
        &self,
        zone: &str,
        request: &CreateRrsetRequest,
    ) -> Result<CreatedRrset, HcloudError> {
        let builder = self
            .request_segments(Method::POST, &["zones", zone, "rrsets"])?
            .json(request);
        self.send("create_rrset", builder).await
    }

    /// `DELETE /v1/zones/{zone}/rrsets/{name}/{type}`; returns the `delete_rrset` action.
    /// `not_found` when the zone or the record set does not exist.
    pub async fn delete_rrset(
        &self,
        zone: &str,
        name: &str,
        rrset_type: &str,
    ) -> Result<Action, HcloudError> {
        let builder =
            self.request_segments(Method::DELETE, &["zones", zone, "rrsets", name, rrset_type])?;
        let envelope: ActionEnvelope = self.send("delete_rrset", builder).await?;
        Ok(envelope.action)
    }

    /// One page of `GET /v1/zones/{zone}/rrsets`. Costs one request.
    pub async fn list_rrsets_page(
        &self,
        zone: &str,
        label_selector: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<Page<Rrset>, HcloudError> {
        let mut parameters: Vec<(&str, String)> = Vec::new();
        if let Some(selector) = label_selector {
            parameters.push(("label_selector", selector.to_owned()));
        }
        parameters.push(("page", page.to_string()));
        parameters.push(("per_page", per_page.min(MAX_PER_PAGE).to_string()));
        let builder = self
            .request_segments(Method::GET, &["zones", zone, "rrsets"])?
            .query(&parameters);
        let wire: RrsetsPageWire = self.send("list_rrsets", builder).await?;
        Ok(Page {
            items: wire.rrsets,
            pagination: wire.meta.and_then(|meta| meta.pagination),
        })
    }

    /// Every record set of `zone` matching `label_selector`, walking every page at 50 per
    /// page. Costs one request per page.
    pub async fn list_rrsets(
        &self,
        zone: &str,
        label_selector: Option<&str>,
    ) -> Result<Vec<Rrset>, HcloudError> {
        let mut rrsets = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES_PER_LIST {
            let result = self
                .list_rrsets_page(zone, label_selector, page, MAX_PER_PAGE)
                .await?;
            rrsets.extend(result.items);
            match result
                .pagination
                .and_then(|pagination| pagination.next_page)
            {
                Some(next) if next > page => page = next,
                _ => break,
            }
        }
        Ok(rrsets)
    }

    /// A request to the base URL plus `segments`, each percent-encoded as one path segment (a
    /// zone or record name can never add a path level or a query).
    fn request_segments(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, HcloudError> {
        let invalid = || HcloudError::InvalidUrl {
            url: format!("{}/{}", self.base_url, segments.join("/")),
        };
        if segments
            .iter()
            .any(|segment| segment.is_empty() || *segment == "." || *segment == "..")
        {
            return Err(invalid());
        }
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|_| invalid())?;
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(segments);
        Ok(self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret()))
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, HcloudError> {
        let url = format!("{}{path}", self.base_url);
        let parsed = reqwest::Url::parse(&url).map_err(|_| HcloudError::InvalidUrl { url })?;
        Ok(self
            .http
            .request(method, parsed)
            .bearer_auth(self.token.expose_secret()))
    }

    async fn send<Body: DeserializeOwned>(
        &self,
        operation: &'static str,
        builder: RequestBuilder,
    ) -> Result<Body, HcloudError> {
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlightGuard(&self.requests_in_flight);
        let response = builder.send().await.map_err(|source| {
            // reqwest's error text carries the URL, never the Authorization header.
            tracing::warn!(operation, cause = %source, "hetzner api request failed");
            HcloudError::Transport { operation, source }
        })?;
        let status = response.status();
        let received_at = SystemTime::now();
        let snapshot = RateLimitSnapshot::from_headers(response.headers(), received_at);
        if let Some(snapshot) = snapshot {
            *self
                .rate_limit
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
        }
        let retry_after = retry_after_header(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|source| HcloudError::Transport { operation, source })?;
        tracing::debug!(
            operation,
            status = status.as_u16(),
            remaining = snapshot.map(|snapshot| snapshot.remaining),
            "hetzner api answered"
        );
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|source| HcloudError::Decode { operation, source });
        }
        Err(self.error_from_response(operation, status, &body, snapshot, retry_after, received_at))
    }

    fn error_from_response(
        &self,
        operation: &'static str,
        status: StatusCode,
        body: &[u8],
        snapshot: Option<RateLimitSnapshot>,
        retry_after: Option<Duration>,
        received_at: SystemTime,
    ) -> HcloudError {
        let parsed: Option<crate::model::ErrorEnvelope> = serde_json::from_slice(body).ok();
        let Some(envelope) = parsed else {
            let text = String::from_utf8_lossy(body);
            let body_start: String = text.chars().take(256).collect();
            if status == StatusCode::TOO_MANY_REQUESTS {
                return HcloudError::RateLimited {
                    operation,
                    error: Box::new(ApiError {
                        code: ErrorCode::RateLimitExceeded,
                        message: body_start,
                        status: status.as_u16(),
                        details: None,
                    }),
                    retry_at: rate_limited_retry_at(snapshot, retry_after, received_at),
                    rate_limit: snapshot,
                };
            }
            return HcloudError::UnexpectedStatus {
                operation,
                status: status.as_u16(),
                body_start,
            };
        };
        let error = Box::new(ApiError {
            code: ErrorCode::from_api_code(&envelope.error.code),
            message: envelope.error.message,
            status: status.as_u16(),
            details: envelope.error.details.filter(|details| !details.is_null()),
        });
        tracing::info!(operation, code = %error.code, status = error.status, "hetzner api refused a request");
        if status == StatusCode::TOO_MANY_REQUESTS || error.code == ErrorCode::RateLimitExceeded {
            return HcloudError::RateLimited {
                operation,
                error,
                retry_at: rate_limited_retry_at(snapshot, retry_after, received_at),
                rate_limit: snapshot,
            };
        }
        HcloudError::Api { operation, error }
    }
}

/// `Retry-After` in seconds, if present. Hetzner documents only the `RateLimit-*` headers; a
/// proxy in front of the API may add `Retry-After`, and then it is the more precise hint.
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// When one more request should be accepted after a 429: `Retry-After` if given, else the time
/// the refill restores one request, else one second (the documented refill step).
fn rate_limited_retry_at(
    snapshot: Option<RateLimitSnapshot>,
    retry_after: Option<Duration>,
    received_at: SystemTime,
) -> SystemTime {
    if let Some(wait) = retry_after {
        return received_at + wait;
    }
    match snapshot {
        Some(snapshot) => snapshot.available_at(1).max(received_at),
        None => received_at + Duration::from_secs(1),
    }
}
