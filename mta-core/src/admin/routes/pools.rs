//! `GET /v1/pools`: egress sources, warmup and per-provider use.

use axum::Json;
use axum::extract::State;

use super::AppState;
use crate::admin::error::ApiError;
use crate::admin::types::PoolsView;

pub(crate) async fn get(State(state): State<AppState>) -> Result<Json<PoolsView>, ApiError> {
    Ok(Json(state.backend.pools().await?))
}
