//! Identity: the Facebook user, their Pages (with the linked Instagram professional account),
//! Instagram users on either host, and granted permissions.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::{GraphHost, MetaClient};
use crate::error::{Call, ProviderError};
use crate::ids;

/// `GET /me?fields=id,name,picture` (Facebook Login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacebookUser {
    pub id: String,
    pub name: String,
    pub picture_url: Option<String>,
}

/// A Facebook Page the user manages, with its Page token and linked Instagram account.
#[derive(Debug, Clone)]
pub struct Page {
    pub id: String,
    pub name: String,
    pub picture_url: Option<String>,
    /// The Page access token (does not expire when derived from a long-lived user token).
    pub access_token: Option<SecretString>,
    /// Absent when no Instagram professional account is linked to the Page.
    pub instagram_business_account: Option<IgAccountRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IgAccountRef {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
}

/// An Instagram professional account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct IgUser {
    /// The professional account id used in Graph paths (`user_id` on the Instagram host).
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    /// Instagram Login's app-scoped `id` (differs from [`IgUser::id`]); `None` on the
    /// Facebook host.
    #[serde(skip)]
    pub app_scoped_id: Option<String>,
    pub username: String,
    pub name: Option<String>,
    pub profile_picture_url: Option<String>,
    /// `BUSINESS` or `MEDIA_CREATOR` (Instagram host only).
    pub account_type: Option<String>,
    pub followers_count: Option<u64>,
    pub follows_count: Option<u64>,
    pub media_count: Option<u64>,
}

/// One entry of `GET /me/permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Permission {
    pub permission: String,
    /// `granted`, `declined` or `expired`.
    pub status: String,
}

#[derive(Deserialize)]
struct Picture {
    data: PictureData,
}

#[derive(Deserialize)]
struct PictureData {
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawFacebookUser {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    picture: Option<Picture>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    picture: Option<Picture>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    instagram_business_account: Option<IgAccountRef>,
}

/// A Graph list page.
#[derive(Deserialize)]
pub(crate) struct Listing<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Paging {
    pub cursors: Option<Cursors>,
    pub next: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Cursors {
    pub after: Option<String>,
}

#[derive(Deserialize)]
struct RawInstagramMe {
    #[serde(flatten)]
    user: IgUser,
    #[serde(default, deserialize_with = "ids::opt_id")]
    user_id: Option<String>,
}

/// Follows at most this many `paging.next` links.
const MAX_PAGES: usize = 50;

const IG_USER_FIELDS: &str =
    "id,username,name,profile_picture_url,followers_count,follows_count,media_count";

impl MetaClient {
    /// Facebook Login: the user behind `token`.
    pub async fn me(&self, token: &SecretString) -> Result<FacebookUser, ProviderError> {
        let request = self
            .graph_request(Method::GET, GraphHost::Facebook, "me", token)
            .query(&[("fields", "id,name,picture")]);
        let raw: RawFacebookUser = self.graph(Call::idempotent("meta.me"), request).await?;
        Ok(FacebookUser {
            id: raw.id,
            name: raw.name,
            picture_url: raw.picture.and_then(|p| p.data.url),
        })
    }

    /// Facebook Login: what the user granted (they may untick permissions in the dialog).
    pub async fn permissions(
        &self,
        token: &SecretString,
    ) -> Result<Vec<Permission>, ProviderError> {
        let request = self.graph_request(Method::GET, GraphHost::Facebook, "me/permissions", token);
        let listing: Listing<Permission> = self
            .graph(Call::idempotent("meta.permissions"), request)
            .await?;
        Ok(listing.data)
    }

    /// Facebook Login: `DELETE /me/permissions`, which takes back every permission the user
    /// granted the app, so the user token (and the Page tokens derived from it) stop working.
    /// Meta answers `{"success": true}`.
    pub async fn revoke_permissions(&self, token: &SecretString) -> Result<(), ProviderError> {
        #[derive(Deserialize)]
        struct Revoked {
            #[serde(default)]
            success: bool,
        }
        let request =
            self.graph_request(Method::DELETE, GraphHost::Facebook, "me/permissions", token);
        let answer: Revoked = self
            .graph(Call::idempotent("meta.revoke_permissions"), request)
            .await?;
        if answer.success {
            Ok(())
        } else {
            Err(ProviderError::unexpected(
                super::PLATFORM,
                200,
                "an answer to DELETE /me/permissions without success",
            ))
        }
    }

    /// Facebook Login: every Page of the user (all pages of the listing), with Page tokens.
    pub async fn pages(&self, token: &SecretString) -> Result<Vec<Page>, ProviderError> {
        self.pages_with_page_size(token, 100).await
    }

    /// [`MetaClient::pages`] asking for `page_size` Pages per request.
    pub async fn pages_with_page_size(
        &self,
        token: &SecretString,
        page_size: u32,
    ) -> Result<Vec<Page>, ProviderError> {
        let call = Call::idempotent("meta.pages");
        let mut request = self
            .graph_request(Method::GET, GraphHost::Facebook, "me/accounts", token)
            .query(&[
                (
                    "fields",
                    "id,name,picture,access_token,instagram_business_account",
                ),
                ("limit", &page_size.to_string()),
            ]);
        let mut pages = Vec::new();
        for _ in 0..MAX_PAGES {
            let listing: Listing<RawPage> = self.graph(call, request).await?;
            pages.extend(listing.data.into_iter().map(|raw| {
                Page {
                    id: raw.id,
                    name: raw.name,
                    picture_url: raw.picture.and_then(|p| p.data.url),
                    access_token: raw
                        .access_token
                        .filter(|t| !t.is_empty())
                        .map(SecretString::from),
                    instagram_business_account: raw.instagram_business_account,
                }
            }));
            let Some(next) = listing.paging.and_then(|p| p.next) else {
                break;
            };
            request = self
                .http
                .get(next)
                .bearer_auth(secrecy::ExposeSecret::expose_secret(token));
        }
        Ok(pages)
    }

    /// Facebook Login: an Instagram professional account by id.
    pub async fn ig_user(
        &self,
        token: &SecretString,
        ig_user_id: &str,
    ) -> Result<IgUser, ProviderError> {
        let request = self
            .graph_request(Method::GET, GraphHost::Facebook, ig_user_id, token)
            .query(&[("fields", IG_USER_FIELDS)]);
        self.graph(Call::idempotent("meta.ig_user"), request).await
    }

    /// Instagram Login: the account behind `token` (`id` is its professional account id,
    /// `app_scoped_id` Instagram Login's own `id`).
    pub async fn me_instagram(&self, token: &SecretString) -> Result<IgUser, ProviderError> {
        let request = self
            .graph_request(Method::GET, GraphHost::Instagram, "me", token)
            .query(&[(
                "fields",
                "user_id,id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count",
            )]);
        let raw: RawInstagramMe = self
            .graph(Call::idempotent("meta.me_instagram"), request)
            .await?;
        let mut user = raw.user;
        if let Some(user_id) = raw.user_id {
            user.app_scoped_id = Some(std::mem::replace(&mut user.id, user_id));
        }
        Ok(user)
    }
}
