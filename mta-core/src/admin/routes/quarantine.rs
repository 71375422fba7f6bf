//! `GET /v1/quarantine` (list the damaged spool entries set aside) and
//! `GET /v1/quarantine/{id}` (a quarantined message's raw bytes, to inspect or re-inject).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::{AppState, check_id};
use crate::admin::error::ApiError;
use crate::admin::types::QuarantineList;

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<QuarantineList>, ApiError> {
    Ok(Json(state.backend.quarantine().await?))
}

pub(crate) async fn body(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_id(&id)?;
    match state.backend.quarantined_body(&id).await? {
        Some(bytes) => Ok(([(CONTENT_TYPE, "message/rfc822")], bytes)),
        None => Err(ApiError::not_found(format!(
            "no quarantined message body {id}"
        ))),
    }
}
