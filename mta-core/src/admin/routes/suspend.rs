//! `POST /v1/suspend` (suspend a scope), `GET /v1/suspend` (list),
//! `DELETE /v1/suspend/{id}` (resume).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;

use super::{AppState, actor, check_id};
use crate::admin::backend::Client;
use crate::admin::error::{ApiError, JsonBody};
use crate::admin::types::{NewSuspension, Resumed, Suspension, SuspensionList};

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    JsonBody(new): JsonBody<NewSuspension>,
) -> Result<(StatusCode, Json<Suspension>), ApiError> {
    let new = new.validated()?;
    let suspension = state
        .backend
        .suspend(new, actor("POST /v1/suspend", client))
        .await?;
    Ok((StatusCode::CREATED, Json(suspension)))
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<SuspensionList>, ApiError> {
    let suspensions = state.backend.suspensions().await?;
    Ok(Json(SuspensionList { suspensions }))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<Resumed>, ApiError> {
    check_id(&id)?;
    if state
        .backend
        .resume(&id, actor("DELETE /v1/suspend/{id}", client))
        .await?
    {
        Ok(Json(Resumed { resumed: id }))
    } else {
        Err(ApiError::not_found(format!("no suspension {id}")))
    }
}
