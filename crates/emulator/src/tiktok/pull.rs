//! PULL_FROM_URL: the emulator really downloads the media (video or photos) with `ctx.http`,
//! streaming to disk and hashing on the fly. Redirects, non-2xx answers, oversize media and
//! transport errors fail the publish with `video_pull_failed` / `photo_pull_failed`; cancel
//! stops the download.

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::App;
use super::lifecycle::fail;
use super::posting::MAX_VIDEO;
use super::state::Source;

const MAX_PHOTO: u64 = 20 * 1024 * 1024;

impl App {
    /// Starts downloading `urls` for a publish in the background.
    pub fn start_pull(&self, publish_id: &str, urls: Vec<String>) {
        let Some(publish) = self.store().publish(publish_id).cloned() else {
            return;
        };
        let app = self.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                _ = publish.cancel.cancelled() => return,
                result = app.pull_all(&publish.publish_id, &urls, publish.source) => result,
            };
            app.finish_pull(&publish.publish_id, result);
        });
    }

    async fn pull_all(
        &self,
        publish_id: &str,
        urls: &[String],
        source: Source,
    ) -> Result<String, String> {
        let limit = if source == Source::Photo {
            MAX_PHOTO
        } else {
            MAX_VIDEO
        };
        let mut hasher = Sha256::new();
        for (index, url) in urls.iter().enumerate() {
            self.pull_one(publish_id, index, url, limit, &mut hasher)
                .await?;
        }
        Ok(hex::encode(hasher.finalize()))
    }

    async fn pull_one(
        &self,
        publish_id: &str,
        index: usize,
        url: &str,
        limit: u64,
        hasher: &mut Sha256,
    ) -> Result<(), String> {
        let path = {
            let store = self.store();
            let publish = store.publish(publish_id).ok_or("publish gone")?;
            publish.file_path(&self.ctx, index)
        };
        let response = self
            .ctx
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.url().as_str() != url || !response.status().is_success() {
            return Err(format!(
                "{url} answered {} (redirects are not followed)",
                response.status()
            ));
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| e.to_string())?;
        }
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| e.to_string())?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut size: u64 = 0;
        let mut stream = response.bytes_stream();
        while let Some(data) = stream.next().await {
            let data = data.map_err(|e| e.to_string())?;
            size += data.len() as u64;
            if size > limit {
                return Err(format!("{url} is larger than {limit} bytes"));
            }
            hasher.update(&data);
            file.write_all(&data).await.map_err(|e| e.to_string())?;
            if let Some(publish) = self.store().publish_mut(publish_id) {
                publish.bytes_received += data.len() as u64;
            }
        }
        file.flush().await.map_err(|e| e.to_string())?;
        if let Some(publish) = self.store().publish_mut(publish_id) {
            publish.chunks_received += 1;
        }
        Ok(())
    }

    fn finish_pull(&self, publish_id: &str, result: Result<String, String>) {
        let now = self.now_ms();
        let event = {
            let mut store = self.store();
            let Some(publish) = store
                .publish_mut(publish_id)
                .filter(|p| p.status.is_processing())
            else {
                return;
            };
            match result {
                Ok(sha256) => {
                    publish.sha256 = Some(sha256);
                    publish.transfer_done_ms = Some(now);
                    None
                }
                Err(message) => {
                    tracing::info!(%publish_id, %message, "tiktok pull failed");
                    let reason = if publish.source == Source::Photo {
                        "photo_pull_failed"
                    } else {
                        "video_pull_failed"
                    };
                    Some(fail(publish, reason))
                }
            }
        };
        if let Some(event) = event {
            self.emit(vec![event]);
        }
    }
}
