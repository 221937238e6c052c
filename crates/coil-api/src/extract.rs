//! Extractors other routes use: "the verified access claims of this request" ([`Caller`],
//! [`MaybeCaller`]) and the TCP peer ([`Peer`]). Any router whose state implements
//! [`AuthState`] can use the first two (lobbies, parties and admin routes will).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use coil_auth::{AccessClaims, Authenticator};

use crate::error::ApiError;
use crate::service::Accounts;

/// A state that can check bearer tokens.
pub trait AuthState {
    fn authenticator(&self) -> &Authenticator;
}

impl AuthState for Arc<Accounts> {
    fn authenticator(&self) -> &Authenticator {
        &self.platform.inner.authenticator
    }
}

impl AuthState for Authenticator {
    fn authenticator(&self) -> &Authenticator {
        self
    }
}

/// The verified, unrevoked claims of the request's `Authorization: Bearer` token; refuses
/// the request (401/403/503 JSON) when there is none or it does not pass.
#[derive(Debug, Clone)]
pub struct Caller(pub AccessClaims);

/// Like [`Caller`], but a request without an `Authorization` header is `MaybeCaller(None)`;
/// a header that does not pass is still refused.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<AccessClaims>);

impl<S: AuthState + Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = state
            .authenticator()
            .authenticate_headers(&parts.headers)
            .await?;
        Ok(MaybeCaller(claims))
    }
}

impl<S: AuthState + Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match MaybeCaller::from_request_parts(parts, state).await? {
            MaybeCaller(Some(claims)) => Ok(Caller(claims)),
            MaybeCaller(None) => Err(ApiError::Unauthenticated),
        }
    }
}

/// The TCP peer, when the server was started with
/// `into_make_service_with_connect_info::<SocketAddr>()`; `None` otherwise. Never refuses.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| *address),
        ))
    }
}
