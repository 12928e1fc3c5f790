//! Sending mail (invites) over SMTP with `lettre` (tokio, rustls). Without `smtp_url` nothing
//! is sent and the invite link is only shown to copy. A mail that cannot be sent never fails
//! the invite: the link is shown either way, with why the mail did not go.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{ConfigError, RawSettings};

/// How long one mail may take (connecting, TLS, the SMTP conversation).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// `smtp_url` and `smtp_from`.
#[derive(Clone)]
pub struct MailSettings {
    /// May carry a password: never shown, never logged.
    url: SecretString,
    from: Mailbox,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("url", &"********")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl MailSettings {
    pub fn from_raw(raw: &RawSettings) -> Result<Option<Self>, ConfigError> {
        let url = raw.get("smtp_url").map(|(v, o)| (v.trim().to_string(), o));
        let from = raw.get("smtp_from").map(|(v, o)| (v.trim().to_string(), o));
        let (url, url_origin) = match url {
            Some((url, origin)) if !url.is_empty() => (url, origin),
            _ => return Ok(None),
        };
        // The URL is checked now (the message names no part of it: it may hold a password).
        if AsyncSmtpTransport::<Tokio1Executor>::from_url(&url).is_err() {
            return Err(ConfigError::Invalid {
                setting: "smtp_url",
                origin: url_origin.to_string(),
                message: "expected smtp://HOST:PORT or smtps://USER:PASSWORD@HOST:PORT (with ?tls=required for STARTTLS)".into(),
            });
        }
        let Some((from, from_origin)) = from.filter(|(f, _)| !f.is_empty()) else {
            return Err(ConfigError::Missing {
                setting: "smtp_from",
                message:
                    "smtp_url is set: give the sender too, e.g. `tidepost <noreply@example.com>`"
                        .into(),
            });
        };
        let from = from.parse::<Mailbox>().map_err(|e| ConfigError::Invalid {
            setting: "smtp_from",
            origin: from_origin.to_string(),
            message: format!("{from:?} is not a mail address ({e})"),
        })?;
        Ok(Some(Self {
            url: SecretString::from(url),
            from,
        }))
    }
}

/// What happened to a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// No SMTP server is configured.
    NotConfigured,
    Sent,
    /// Sending failed; the reason as a person reads it (no secret in it).
    Failed(String),
}

/// A plain-text mail to send.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: String,
}

/// Sends `mail` through the configured server; never an error, see [`Delivery`].
pub async fn send(settings: Option<&MailSettings>, mail: Mail<'_>) -> Delivery {
    let Some(settings) = settings else {
        return Delivery::NotConfigured;
    };
    let to = match mail.to.parse::<Mailbox>() {
        Ok(to) => to,
        Err(e) => return Delivery::Failed(format!("{:?} is not a mail address ({e})", mail.to)),
    };
    let message = match Message::builder()
        .from(settings.from.clone())
        .to(to)
        .subject(mail.subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.body)
    {
        Ok(message) => message,
        Err(e) => return Delivery::Failed(format!("the mail could not be built: {e}")),
    };
    let transport =
        match AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url.expose_secret()) {
            Ok(builder) => builder.timeout(Some(SEND_TIMEOUT)).build(),
            Err(_) => return Delivery::Failed("smtp_url is not a valid SMTP URL".into()),
        };
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Delivery::Sent,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "an invite mail could not be sent");
            Delivery::Failed(format!(
                "the mail server refused or could not be reached: {e}"
            ))
        }
        Err(_) => Delivery::Failed(format!(
            "the mail server did not answer within {} seconds",
            SEND_TIMEOUT.as_secs()
        )),
    }
}
