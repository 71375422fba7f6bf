//! `GET /v1/quarantine` (list the damaged spool entries set aside),
//! `GET /v1/quarantine/{id}` (a quarantined message's raw bytes, to inspect or re-inject) and
//! `DELETE /v1/quarantine/{id}` (discard a message's entries once dealt with).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::{AppState, actor, check_id};
use crate::admin::backend::Client;
use crate::admin::error::ApiError;
use crate::admin::types::{Discarded, QuarantineList};

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

pub(crate) async fn discard(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<Discarded>, ApiError> {
    check_id(&id)?;
    let entries = state
        .backend
        .discard_quarantined(&id, actor("DELETE /v1/quarantine/{id}", client))
        .await?;
    if entries == 0 {
        return Err(ApiError::not_found(format!("nothing quarantined for {id}")));
    }
    Ok(Json(Discarded {
        discarded: id,
        entries,
    }))
}
