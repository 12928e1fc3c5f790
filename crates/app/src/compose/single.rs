//! The single-account shapes of a post — one TikTok account with its options
//! ([`tiktok::NewPost`]), one Instagram account with its post ([`NewInstagramPost`]) — as the
//! one-target composites they are, so that they are checked, stored and answered by the same
//! pipeline as any other post ([`super::submit`]).

use super::{NewComposite, Schedule, TargetSpec};
use crate::platforms::instagram::options::NewInstagramPost;
use crate::platforms::tiktok::{self, TikTokOptions};

impl From<tiktok::NewPost> for NewComposite {
    fn from(new: tiktok::NewPost) -> Self {
        let tiktok::NewPost {
            account_id,
            mode,
            options,
            media,
            idempotency_key,
            created_by,
        } = new;
        let media = media.items(&options.photos());
        NewComposite {
            caption: options.caption,
            media,
            targets: vec![TargetSpec {
                account_id,
                caption: None,
                tiktok: Some(TikTokOptions {
                    mode: Some(mode),
                    ..options.options
                }),
                instagram: None,
                threads: None,
            }],
            schedule: Schedule::default(),
            idempotency_key,
            created_by,
        }
    }
}

impl From<NewInstagramPost> for NewComposite {
    fn from(new: NewInstagramPost) -> Self {
        let post = new.post;
        let instagram = Some(post.options());
        NewComposite {
            caption: post.caption,
            media: post.items,
            targets: vec![TargetSpec {
                account_id: new.account_id,
                caption: None,
                tiktok: None,
                instagram,
                threads: None,
            }],
            schedule: Schedule::default(),
            idempotency_key: new.idempotency_key,
            created_by: new.created_by,
        }
    }
}
