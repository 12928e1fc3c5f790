//! `POST /v2/post/publish/status/fetch/`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::App;
use super::auth::JsonBody;
use super::errors::{ApiError, respond};
use super::posting::{PublishIdBody, owned_publish};
use super::state::{Publish, Source};

pub(crate) async fn fetch(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<PublishIdBody>, ApiError>,
) -> Response {
    let result = async {
        let session = app
            .authorize(&headers, super::state::Endpoint::StatusFetch)
            .await?;
        let JsonBody(body) = body?;
        app.tick();
        let publish = owned_publish(&app, &session, &body)?;
        Ok(status_data(&publish))
    }
    .await;
    respond(result)
}

/// The documented `data` of a status fetch. Post ids are `u64`, so they serialize as exact
/// JSON integers.
fn status_data(publish: &Publish) -> Value {
    let mut data = json!({
        "status": publish.status,
        "publicaly_available_post_id": publish.post_ids,
    });
    if let Some(reason) = &publish.fail_reason {
        data["fail_reason"] = json!(reason);
    }
    let bytes_field = if publish.source == Source::FileUpload {
        "uploaded_bytes"
    } else {
        "downloaded_bytes"
    };
    data[bytes_field] = json!(publish.bytes_received);
    data
}
