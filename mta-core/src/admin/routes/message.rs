//! `GET /v1/messages/{id}`: one message, or 404.

use axum::Json;
use axum::extract::{Path, State};

use super::{AppState, check_id};
use crate::admin::error::ApiError;
use crate::admin::types::MessageView;

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    check_id(&id)?;
    match state.backend.message(&id).await? {
        Some(message) => Ok(Json(message)),
        None => Err(ApiError::not_found(format!("no message {id} in the queue"))),
    }
}
