//! The routes: one file per endpoint, all sharing [`AppState`]. Handlers validate what they
//! are given, call the backend once, and answer JSON; errors are [`ApiError`]s.

mod bounce;
mod flush;
mod health;
mod message;
mod metrics;
mod pools;
mod quarantine;
mod queue;
mod reload;
mod suppressions;
mod suspend;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

use super::backend::{Actor, AdminBackend, Client};
use super::error::ApiError;
use super::limits::{MAX_BODY_BYTES, MAX_CONCURRENT_REQUESTS};

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) backend: Arc<dyn AdminBackend>,
    pub(crate) metrics: PrometheusHandle,
}

/// The actor of a state-changing request on `endpoint`.
pub(crate) fn actor(endpoint: &'static str, client: Client) -> Actor {
    Actor { endpoint, client }
}

/// Every endpoint, without the transport's identity or authentication layer.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::get))
        .route("/v1/queue", get(queue::get))
        .route("/v1/messages/{id}", get(message::get))
        .route("/v1/suspend", get(suspend::list).post(suspend::create))
        .route("/v1/suspend/{id}", delete(suspend::remove))
        .route("/v1/flush", post(flush::post))
        .route("/v1/bounce", post(bounce::post))
        .route("/v1/pools", get(pools::get))
        .route(
            "/v1/suppressions",
            get(suppressions::list)
                .post(suppressions::add)
                .delete(suppressions::remove),
        )
        .route("/v1/quarantine", get(quarantine::list))
        .route(
            "/v1/quarantine/{id}",
            get(quarantine::body).delete(quarantine::discard),
        )
        .route("/v1/reload", post(reload::post))
        .route("/v1/health", get(health::get))
        .route_layer(from_fn(count_requests))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(
            Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            limit_concurrency,
        ))
        .with_state(state)
}

/// Counts requests by route template and status (bounded labels).
async fn count_requests(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    ::metrics::counter!(
        "admin_requests_total",
        "endpoint" => endpoint,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// Runs at most [`MAX_CONCURRENT_REQUESTS`] requests at once; others wait their turn.
async fn limit_concurrency(
    State(slots): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let _permit = slots.acquire().await;
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see docs/admin.md)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// Checks an id taken from a path: 1 to 64 letters, digits, `-` or `_`.
pub(crate) fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= super::limits::MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(super::types::ValidationError::Id.into())
    }
}
