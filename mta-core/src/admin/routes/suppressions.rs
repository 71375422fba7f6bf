//! `GET /v1/suppressions` (one page), `POST /v1/suppressions` (add up to 10000),
//! `DELETE /v1/suppressions?address=..&tenant=..` (remove one).

use axum::Json;
use axum::extract::{Extension, State};

use super::{AppState, actor};
use crate::admin::backend::Client;
use crate::admin::error::{ApiError, JsonBody, QueryParams};
use crate::admin::limits::MAX_SUPPRESSIONS_PER_REQUEST;
use crate::admin::types::{
    NewSuppressions, SuppressionChange, SuppressionKey, SuppressionPage, SuppressionQuery,
};

pub(crate) async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<SuppressionQuery>,
) -> Result<Json<SuppressionPage>, ApiError> {
    let query = query.validated()?;
    Ok(Json(state.backend.suppressions(query).await?))
}

pub(crate) async fn add(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    JsonBody(request): JsonBody<NewSuppressions>,
) -> Result<Json<SuppressionChange>, ApiError> {
    let count = request.entries.len();
    if count == 0 || count > MAX_SUPPRESSIONS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "entries: between 1 and {MAX_SUPPRESSIONS_PER_REQUEST} per request"
        )));
    }
    let entries = request
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            entry
                .validated()
                .map_err(|e| ApiError::bad_request(format!("entries[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let change = state
        .backend
        .add_suppressions(entries, actor("POST /v1/suppressions", client))
        .await?;
    Ok(Json(change))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    QueryParams(key): QueryParams<SuppressionKey>,
) -> Result<Json<SuppressionChange>, ApiError> {
    let key = key.validated()?;
    let address = key.address.clone();
    if state
        .backend
        .remove_suppression(key, actor("DELETE /v1/suppressions", client))
        .await?
    {
        Ok(Json(SuppressionChange {
            changed: 1,
            unchanged: 0,
        }))
    } else {
        Err(ApiError::not_found(format!("{address} is not suppressed")))
    }
}
