//! `GET /v1/health`: 200 with the report when the MTA works (`ok` or `degraded`), 503 with
//! the same report when it is `failing`, so probes need not parse the body.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use crate::admin::types::{Health, HealthStatus};

pub(crate) async fn get(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let health = state.backend.health().await;
    let status = match health.status {
        HealthStatus::Ok | HealthStatus::Degraded => StatusCode::OK,
        HealthStatus::Failing => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(health))
}
