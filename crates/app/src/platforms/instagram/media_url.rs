//! Signed, expiring URLs from which Meta fetches media uploaded to tidepost.
//!
//! Meta downloads `image_url` / `video_url` itself, so an uploaded file must be reachable at a
//! public URL for a while. The URL is `{public_url}/media/{media_id}/{token}?expires={unix}`,
//! where `token` is a vault envelope (AES-256-GCM, authenticated) of `{workspace}:{media}:
//! {expires}`, bound to the media id: it cannot be forged or moved to another file without the
//! keyring, every instance sharing the keyring can check it, and it stops working at `expires`
//! (and when the keyring drops the key it was made with).

use tidepost_domain::now_ms;
use tidepost_store::StoreError;
use tidepost_store::media::{self, Media};
use tidepost_vault::Aad;

use crate::App;

/// Why a media URL was refused (all answered with 404 or 410 and no detail).
#[derive(Debug, thiserror::Error)]
pub enum MediaUrlError {
    #[error("this media link is not valid")]
    Invalid,
    #[error("this media link expired")]
    Expired,
    #[error("the media is gone")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn aad(media_id: &str) -> Aad<'_> {
    Aad::new("media", media_id, "signed_url")
}

/// A URL Meta can fetch `media` from until `now + media_url_ttl_secs`.
pub fn signed_url(app: &App, media: &Media) -> String {
    let expires =
        now_ms() / 1000 + i64::try_from(app.config.meta.media_url_ttl_secs).unwrap_or(86_400);
    signed_url_until(app, media, expires)
}

/// A URL valid until `expires` (unix seconds).
pub fn signed_url_until(app: &App, media: &Media, expires: i64) -> String {
    let payload = format!("{}:{}:{expires}", media.workspace_id, media.id);
    let token = app.keyring.encrypt_str(&payload, &aad(&media.id));
    app.config
        .url(&format!("/media/{}/{token}?expires={expires}", media.id))
}

/// Checks a signed URL's parts and returns the media to serve.
pub async fn open(
    app: &App,
    media_id: &str,
    token: &str,
    now_secs: i64,
) -> Result<Media, MediaUrlError> {
    let payload = app
        .keyring
        .decrypt_str(token, &aad(media_id))
        .map_err(|_| MediaUrlError::Invalid)?;
    let payload = secrecy::ExposeSecret::expose_secret(&payload).to_string();
    let mut parts = payload.splitn(3, ':');
    let (Some(workspace_id), Some(id), Some(expires)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(MediaUrlError::Invalid);
    };
    if id != media_id {
        return Err(MediaUrlError::Invalid);
    }
    let expires: i64 = expires.parse().map_err(|_| MediaUrlError::Invalid)?;
    if expires <= now_secs {
        return Err(MediaUrlError::Expired);
    }
    media::get(&app.db, workspace_id, media_id)
        .await?
        .ok_or(MediaUrlError::Gone)
}
