//! `GET /v1/queue`: the qshape-like summary, optionally of a slice
//! (`?provider=gmail&tenant=acme&top=50`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use crate::admin::error::{ApiError, QueryParams};
use crate::admin::limits::{DEFAULT_QUEUE_ROWS, MAX_QUEUE_ROWS};
use crate::admin::types::{Filter, QueueQuery, QueueSummary, ValidationError};

/// The query parameters: the filter's criteria and `top`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueParams {
    domain: Option<String>,
    provider: Option<String>,
    source: Option<String>,
    tenant: Option<String>,
    campaign: Option<String>,
    top: Option<usize>,
}

pub(crate) async fn get(
    State(state): State<AppState>,
    QueryParams(params): QueryParams<QueueParams>,
) -> Result<Json<QueueSummary>, ApiError> {
    let filter = Filter {
        domain: params.domain,
        provider: params.provider,
        source: params.source,
        tenant: params.tenant,
        campaign: params.campaign,
    }
    .validated()?;
    let top = params.top.unwrap_or(DEFAULT_QUEUE_ROWS);
    if top == 0 || top > MAX_QUEUE_ROWS {
        return Err(ValidationError::Range {
            what: "top",
            max: MAX_QUEUE_ROWS,
        }
        .into());
    }
    let summary = state
        .backend
        .queue_summary(QueueQuery { filter, top })
        .await?;
    Ok(Json(summary))
}
