//! Who a request comes from, and whether it may do what it asks.
//!
//! Over the Unix socket there is no token: the socket's mode (0600) lets only the MTA's user
//! (and root) connect, and the peer's uid is recorded. Over TCP every request needs
//! `Authorization: Bearer <token>`, except the two read-only endpoints made for machines
//! that expose no mail data: `GET /metrics` (Prometheus) and `GET /v1/health` (probes).
//! The token is compared in constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::backend::Client;
use super::error::ApiError;
use super::listen::UnixPeer;

/// The token TCP requests must present.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) Arc<str>);

/// Endpoints open over TCP without the token.
pub(crate) fn is_open(method: &Method, path: &str) -> bool {
    method == Method::GET && matches!(path, "/metrics" | "/v1/health")
}

/// Whether the headers carry `Authorization: Bearer <token>`.
pub(crate) fn is_authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some((scheme, presented)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(presented.trim().as_bytes(), token.as_bytes())
}

/// Compares without returning early on the first difference (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware of the TCP listener: records the client, then requires the token.
pub(crate) async fn tcp_guard(
    State(token): State<Token>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(Client::Tcp { ip: peer.ip() });
    if !is_open(request.method(), request.uri().path())
        && !is_authorized(request.headers(), &token.0)
    {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required over TCP (Authorization: Bearer <[admin] token>)",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mta-admin\""),
        );
        return response;
    }
    next.run(request).await
}

/// Middleware of the Unix listener: records the client (its uid, when known).
pub(crate) async fn unix_identity(
    ConnectInfo(peer): ConnectInfo<UnixPeer>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(Client::Unix { uid: peer.uid });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked() {
        let token = "0123456789abcdef";
        let cases: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some("Bearer 0123456789abcdef"), true),
            (Some("bearer 0123456789abcdef"), true),
            (Some("Bearer 0123456789abcdeF"), false),
            (Some("Bearer 0123456789abcde"), false),
            (Some("Basic 0123456789abcdef"), false),
            (Some("0123456789abcdef"), false),
            (Some("Bearer"), false),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(is_authorized(&headers, token), *expected, "{value:?}");
        }
    }

    #[test]
    fn only_metrics_and_health_are_open() {
        assert!(is_open(&Method::GET, "/metrics"));
        assert!(is_open(&Method::GET, "/v1/health"));
        assert!(!is_open(&Method::POST, "/metrics"));
        assert!(!is_open(&Method::GET, "/v1/queue"));
        assert!(!is_open(&Method::GET, "/v1/quarantine"));
        assert!(!is_open(&Method::GET, "/v1/health/"));
        assert!(!is_open(&Method::POST, "/v1/reload"));
    }
}
