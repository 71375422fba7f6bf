//! `POST /v1/bounce`: fail a slice of the queue now, with or without DSNs. An empty filter
//! is refused unless the request says `"all": true`.

use axum::Json;
use axum::extract::{Extension, State};

use super::{AppState, actor};
use crate::admin::backend::Client;
use crate::admin::error::{ApiError, JsonBody};
use crate::admin::types::{BounceRequest, BounceResult};

pub(crate) async fn post(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    JsonBody(request): JsonBody<BounceRequest>,
) -> Result<Json<BounceResult>, ApiError> {
    let filter = request.filter.selection(request.all)?;
    let result = state
        .backend
        .bounce(filter, request.dsn, actor("POST /v1/bounce", client))
        .await?;
    Ok(Json(result))
}
