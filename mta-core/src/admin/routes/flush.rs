//! `POST /v1/flush`: retry a slice of the queue now.

use axum::Json;
use axum::extract::{Extension, State};

use super::{AppState, actor};
use crate::admin::backend::Client;
use crate::admin::error::{ApiError, JsonBody};
use crate::admin::types::{ActionCount, FlushRequest};

pub(crate) async fn post(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    JsonBody(request): JsonBody<FlushRequest>,
) -> Result<Json<ActionCount>, ApiError> {
    let filter = request.filter.selection(request.all)?;
    let count = state
        .backend
        .flush(filter, actor("POST /v1/flush", client))
        .await?;
    Ok(Json(count))
}
