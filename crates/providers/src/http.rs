//! The one place requests are sent: transport errors are classified (with the call's
//! idempotency) and stripped of URLs, and each call is logged by label and status only.

use bytes::Bytes;
use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use tidepost_domain::Platform;

use crate::error::{Call, ProviderError};

/// A provider's answer, read whole (API answers are small; uploads never come back here with
/// a body worth keeping).
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub(crate) async fn send(
    platform: Platform,
    call: Call,
    request: RequestBuilder,
) -> Result<Answer, ProviderError> {
    let transport = |err| ProviderError::transport(platform, call, err);
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(transport)?;
    tracing::debug!(provider = %platform, call = call.label, status, "provider call");
    Ok(Answer {
        status,
        headers,
        body,
    })
}
