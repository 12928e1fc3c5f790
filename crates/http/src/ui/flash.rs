//! One-time messages carried across a redirect (post/redirect/get): a form's POST does its work,
//! puts what the next page must show once into a short-lived cookie and answers 303; the page
//! the browser then loads takes the cookie and removes it, so reloading it shows nothing again
//! and repeats nothing.
//!
//! Some of these messages are secrets shown once (a new API key, a webhook signing secret), so
//! the value is sealed with the instance's keyring (AES-256-GCM) together with its kind, the
//! session it belongs to and an expiry: another browser, another session, another page or a
//! copy kept past [`FLASH_TTL_MS`] cannot open it. Secrets never go into the URL.

use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidepost_vault::Aad;
use tidepost_vault::secrecy::ExposeSecret;

use crate::state::HttpState;

/// How long a flash waits for the page that shows it.
pub const FLASH_TTL_MS: i64 = 2 * 60_000;

/// What a flash is for: its cookie's name and the one path it is sent to.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub cookie: &'static str,
    pub path: &'static str,
}

/// A new API key and its secret, for `/settings`.
pub const API_KEY: Kind = Kind {
    cookie: "tidepost_flash_key",
    path: "/settings",
};
/// A new invite and its link, for the members page.
pub const INVITE: Kind = Kind {
    cookie: "tidepost_flash_invite",
    path: "/settings/members",
};
/// A webhook endpoint's new signing secret, for the webhook pages.
pub const WEBHOOK_SECRET: Kind = Kind {
    cookie: "tidepost_flash_webhook",
    path: "/settings/webhooks",
};
/// The account the first-run setup created, for the sign-in page.
pub const SETUP_DONE: Kind = Kind {
    cookie: "tidepost_flash_setup",
    path: "/login",
};

#[derive(Serialize, serde::Deserialize)]
struct Sealed<T> {
    expires_at: i64,
    value: T,
}

fn aad<'a>(kind: &'a Kind, binding: &'a str) -> Aad<'a> {
    Aad::new("flash", binding, kind.cookie)
}

/// The cookie that carries `value` to the next page of `binding` (the session's token hash, or
/// "" before sign-in).
pub fn set<T: Serialize>(
    state: &HttpState,
    kind: Kind,
    binding: &str,
    value: &T,
) -> Cookie<'static> {
    let sealed = Sealed {
        expires_at: tidepost_domain::now_ms() + FLASH_TTL_MS,
        value,
    };
    let text = serde_json::to_vec(&sealed).unwrap_or_default();
    let envelope = state.app.keyring.encrypt(&text, &aad(&kind, binding));
    Cookie::build((kind.cookie, envelope))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.app.config.secure_cookies)
        .path(kind.path)
        .max_age(cookie::time::Duration::milliseconds(FLASH_TTL_MS))
        .build()
}

/// Takes the flash of `kind` the request carried (nothing when absent, expired, or sealed for
/// another session), and removes its cookie from the browser either way.
pub fn take<T: DeserializeOwned>(
    state: &HttpState,
    jar: CookieJar,
    kind: Kind,
    binding: &str,
) -> (CookieJar, Option<T>) {
    let Some(envelope) = jar.get(kind.cookie).map(|c| c.value().to_string()) else {
        return (jar, None);
    };
    let removal = Cookie::build((kind.cookie, ""))
        .path(kind.path)
        .max_age(cookie::time::Duration::seconds(0))
        .build();
    let value = state
        .app
        .keyring
        .decrypt(&envelope, &aad(&kind, binding))
        .ok()
        .and_then(|text| serde_json::from_slice::<Sealed<T>>(text.expose_secret()).ok())
        .filter(|sealed| sealed.expires_at > tidepost_domain::now_ms())
        .map(|sealed| sealed.value);
    (jar.add(removal), value)
}
