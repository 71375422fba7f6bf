//! `POST /v1/reload`: re-read the configuration (as SIGHUP does). No body.

use axum::Json;
use axum::extract::{Extension, State};

use super::{AppState, actor};
use crate::admin::backend::Client;
use crate::admin::error::ApiError;
use crate::admin::types::ReloadReport;

pub(crate) async fn post(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
) -> Result<Json<ReloadReport>, ApiError> {
    let report = state
        .backend
        .reload(actor("POST /v1/reload", client))
        .await?;
    Ok(Json(report))
}
