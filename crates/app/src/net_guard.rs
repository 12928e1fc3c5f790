//! The SSRF guard: what tidepost agrees to fetch or post to when a URL comes from a user.
//!
//! Outbound webhooks (and any other code that requests a URL a tenant typed) go through here:
//!
//! - [`parse_url`] accepts only absolute `http://` and `https://` URLs with a host and without
//!   a user name or password.
//! - [`check_url`] resolves the host and refuses it when any address it resolves to is not
//!   public ([`non_public`]: loopback, private, link-local, unique-local, CGNAT, multicast,
//!   unspecified, reserved ranges, and IPv4 addresses embedded in IPv6: mapped, compatible,
//!   NAT64, 6to4), unless the [`NetPolicy`] allows private targets (the operator's
//!   `webhooks_allow_private`, on in sandbox mode). Use it when a URL is saved, for a clear
//!   error at once.
//! - [`client`] is the HTTP client for the request itself. Its DNS resolver is the guard: the
//!   addresses it hands to the connector are the ones it just checked, so a name cannot
//!   resolve to a public address for the check and to a private one for the connection (DNS
//!   rebinding). A host that is an IP literal never reaches a resolver, so [`check_literal`]
//!   must be called before each request (it is cheap). The client follows no redirects (a
//!   public URL answering `302 Location: http://127.0.0.1/` would otherwise be followed past
//!   the guard) and ignores proxy environment variables (a proxy would connect on our behalf,
//!   unchecked).
//!
//! - [`check_media_url`] is for URLs tidepost hands to a provider to download (TikTok's
//!   `PULL_FROM_URL`, Instagram's `image_url` / `video_url` / `cover_url`): tidepost does not
//!   fetch them itself, but a URL aimed at a loopback, private or metadata address asks the
//!   provider to fetch from *its* internal network, and where the provider is the in-process
//!   emulator (sandbox mode), from ours. In sandbox mode private targets are allowed on purpose,
//!   so that the emulator can download media served on this machine.
//!
//! `localhost` and every name under `.localhost` stand for loopback (RFC 6761): they are judged
//! as 127.0.0.1 and ::1 without asking DNS, since some resolvers do not know them and others
//! (a provider's, a browser's) answer loopback.
//!
//! When a request is refused, the [`GuardError`] is in the reqwest error's source chain:
//! [`refusal`] finds it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Whether private and local targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetPolicy {
    pub allow_private: bool,
}

/// Why a URL is refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("only http:// and https:// URLs are allowed, not {0}:")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("URLs with a user name or password are not accepted")]
    Credentials,
    #[error("{host} does not resolve: {reason}")]
    Resolve { host: String, reason: String },
    #[error(
        "{}: private and local addresses are refused \
         (an operator can allow them with TIDEPOST_WEBHOOKS_ALLOW_PRIVATE)",
        what_it_is(host, addr, why)
    )]
    Refused {
        host: String,
        addr: IpAddr,
        why: &'static str,
    },
}

/// "localhost is 127.0.0.1, a loopback address", or "127.0.0.1 is a loopback address" when the
/// host is the address itself (in whatever form it was written: `2130706433` is 127.0.0.1).
fn what_it_is(host: &str, addr: &IpAddr, why: &str) -> String {
    if host.parse::<IpAddr>().ok() == Some(*addr) {
        format!("{host} is {why}")
    } else {
        format!("{host} is {addr}, {why}")
    }
}

/// Why `ip` is not a public internet address, or `None` when it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified (\"this network\") address",
        (127, _, _) => "a loopback address",
        (10, _, _) | (192, 168, _) => "a private address",
        (172, 16..=31, _) => "a private address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a carrier-grade NAT (shared) address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => {
            "an address reserved for special use"
        }
        (198, 18..=19, _) => "an address reserved for benchmarking",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4 inside IPv6: judged by the IPv4 address it carries.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0..6] == [0, 0, 0, 0, 0, 0xffff] {
        // ::ffff:a.b.c.d
        return non_public_v4(embedded(s[6], s[7])).map(mapped);
    }
    if s[0..6] == [0, 0, 0, 0, 0, 0] {
        return Some("an IPv4-compatible address (deprecated)");
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return non_public_v4(embedded(s[6], s[7])).map(mapped);
    }
    if s[0] == 0x2002 {
        return non_public_v4(embedded(s[1], s[2])).map(mapped);
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a unique-local address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        0x2001 if s[1] == 0 => "a Teredo tunnel address",
        0x0100 if s[1..4] == [0, 0, 0] => "a discard-only address",
        _ => return None,
    })
}

/// The reason for an IPv4 address, said of the IPv6 address that carries it.
fn mapped(why: &'static str) -> &'static str {
    match why {
        "a loopback address" => "an IPv6 form of a loopback address",
        "a private address" => "an IPv6 form of a private address",
        "a link-local address" => "an IPv6 form of a link-local address",
        "a carrier-grade NAT (shared) address" => "an IPv6 form of a carrier-grade NAT address",
        "a multicast address" => "an IPv6 form of a multicast address",
        _ => "an IPv6 form of a non-public IPv4 address",
    }
}

/// Parses a URL a person gave: absolute http(s), a host, no credentials.
pub fn parse_url(text: &str) -> Result<Url, GuardError> {
    let url = Url::parse(text.trim()).map_err(|e| GuardError::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(GuardError::Scheme(other.to_string())),
    }
    if url.host().is_none() {
        return Err(GuardError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Credentials);
    }
    Ok(url)
}

/// The host as written (without IPv6 brackets).
fn host_text(url: &Url) -> String {
    match url.host() {
        Some(Host::Ipv6(v6)) => v6.to_string(),
        Some(host) => host.to_string(),
        None => String::new(),
    }
}

/// Refuses a URL whose host is a non-public IP literal (unless allowed). Names pass: the
/// resolver of [`client`] checks them when it connects.
pub fn check_literal(url: &Url, policy: NetPolicy) -> Result<(), GuardError> {
    let ip = match url.host() {
        None => return Err(GuardError::NoHost),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
    };
    check_ip(&host_text(url), ip, policy)
}

fn check_ip(host: &str, ip: IpAddr, policy: NetPolicy) -> Result<(), GuardError> {
    match non_public(ip) {
        Some(why) if !policy.allow_private => Err(GuardError::Refused {
            host: host.to_string(),
            addr: ip,
            why,
        }),
        _ => Ok(()),
    }
}

/// Resolves `host` (system resolver).
pub async fn lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    let addrs = tokio::net::lookup_host((host, 0)).await?;
    Ok(addrs.map(|a| a.ip()).collect())
}

/// Parses, resolves and checks a URL now: for saving a URL with a clear error. Returns the
/// addresses it resolved to.
pub async fn check_url(text: &str, policy: NetPolicy) -> Result<(Url, Vec<IpAddr>), GuardError> {
    check_url_with(text, policy, &SystemLookup).await
}

/// [`check_url`] with its own name resolver.
pub async fn check_url_with(
    text: &str,
    policy: NetPolicy,
    lookup: &dyn Lookup,
) -> Result<(Url, Vec<IpAddr>), GuardError> {
    let url = parse_url(text)?;
    let ips = match url.host() {
        Some(Host::Domain(name)) => resolve_checked(name, policy, lookup).await?,
        _ => {
            check_literal(&url, policy)?;
            vec![match url.host() {
                Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
                Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
                _ => return Err(GuardError::NoHost),
            }]
        }
    };
    Ok((url, ips))
}

/// How long [`check_media_url`] waits for a name to resolve.
const MEDIA_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks a URL a provider will download on tidepost's behalf: an absolute http(s) URL with a
/// host and no credentials, whose host is not a non-public IP literal and whose name does not
/// resolve to a non-public address (unless the policy allows private targets, as sandbox mode
/// does for its emulator).
///
/// A name that does not resolve from here (or not within 3 s) passes: the provider resolves it
/// with its own DNS, and tidepost never connects to it. The provider then reports what it found.
pub async fn check_media_url(text: &str, policy: NetPolicy) -> Result<Url, GuardError> {
    check_media_url_with(text, policy, &SystemLookup).await
}

/// [`check_media_url`] with its own name resolver.
pub async fn check_media_url_with(
    text: &str,
    policy: NetPolicy,
    lookup: &dyn Lookup,
) -> Result<Url, GuardError> {
    let url = parse_url(text)?;
    if policy.allow_private {
        return Ok(url);
    }
    check_literal(&url, policy)?;
    if let Some(Host::Domain(name)) = url.host() {
        let ips = match loopback_name(name) {
            Some(ips) => ips,
            None => match tokio::time::timeout(MEDIA_LOOKUP_TIMEOUT, lookup.lookup(name)).await {
                Ok(Ok(ips)) => ips,
                Ok(Err(_)) | Err(_) => Vec::new(),
            },
        };
        for ip in ips {
            check_ip(name, ip, policy)?;
        }
    }
    Ok(url)
}

/// `localhost` and names under `.localhost` (RFC 6761): loopback, whatever DNS says.
fn loopback_name(host: &str) -> Option<Vec<IpAddr>> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then(|| {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    })
}

/// A name resolver (the system's, or a test's).
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_string();
        Box::pin(async move { lookup(&host).await })
    }
}

async fn resolve_checked(
    host: &str,
    policy: NetPolicy,
    lookup: &dyn Lookup,
) -> Result<Vec<IpAddr>, GuardError> {
    let ips = match loopback_name(host) {
        Some(ips) => ips,
        None => lookup.lookup(host).await.map_err(|e| GuardError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?,
    };
    if ips.is_empty() {
        return Err(GuardError::Resolve {
            host: host.to_string(),
            reason: "no addresses".into(),
        });
    }
    // Every address must pass: a name with one public and one private address could
    // otherwise be connected to the private one.
    for ip in &ips {
        check_ip(host, *ip, policy)?;
    }
    Ok(ips)
}

/// reqwest's resolver hook: resolve, check, and hand over exactly what was checked.
struct GuardedResolver {
    policy: NetPolicy,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let lookup = self.lookup.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = resolve_checked(&host, policy, &*lookup).await?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A client whose connections go only where the guard allows (see the module docs), with a
/// connect timeout of 10 s; set the whole request's timeout per request.
pub fn client(policy: NetPolicy) -> reqwest::Client {
    static CLIENTS: OnceLock<Mutex<Vec<(NetPolicy, reqwest::Client)>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(|| Mutex::new(Vec::new()));
    let mut clients = clients.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, client)) = clients.iter().find(|(p, _)| *p == policy) {
        return client.clone();
    }
    let client = client_with(policy, Arc::new(SystemLookup));
    clients.push((policy, client.clone()));
    client
}

/// [`client`] with its own name resolver (tests use it to make a name resolve anywhere).
pub fn client_with(policy: NetPolicy, lookup: Arc<dyn Lookup>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy, lookup }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!(
            "tidepost/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .build()
        .expect("an HTTP client with default TLS settings")
}

/// The guard's refusal inside a request error, if that is why it failed.
pub fn refusal<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a GuardError> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(guard) = e.downcast_ref::<GuardError>() {
            return Some(guard);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(non_public(ip(private)).is_some(), "{private} is not public");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public} is public");
        }
        assert_eq!(
            non_public(ip("::ffff:127.0.0.1")),
            Some("an IPv6 form of a loopback address")
        );
    }

    #[test]
    fn parses_only_plain_http_urls() {
        assert!(parse_url("https://example.com/hook").is_ok());
        assert_eq!(
            parse_url("ftp://example.com/"),
            Err(GuardError::Scheme("ftp".into()))
        );
        assert_eq!(
            parse_url("file:///etc/passwd"),
            Err(GuardError::Scheme("file".into()))
        );
        assert_eq!(
            parse_url("https://user:pw@example.com/"),
            Err(GuardError::Credentials)
        );
        assert!(matches!(
            parse_url("not a url"),
            Err(GuardError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn refuses_local_targets_unless_allowed() {
        let strict = NetPolicy::default();
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.0.0.7/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            let err = check_url(url, strict).await.unwrap_err();
            assert!(matches!(err, GuardError::Refused { .. }), "{url}: {err}");
            assert!(err.to_string().contains("refused"), "{err}");
        }
        let allowed = NetPolicy {
            allow_private: true,
        };
        assert!(check_url("http://127.0.0.1:9/x", allowed).await.is_ok());
        assert!(check_url("http://localhost:9/x", allowed).await.is_ok());
        assert!(matches!(
            check_url("http://no-such-host.invalid/", strict).await,
            Err(GuardError::Resolve { .. })
        ));
    }

    #[tokio::test]
    async fn media_urls_for_providers() {
        let strict = NetPolicy::default();
        let public = Rebinding(ip("93.184.216.34"));
        for url in [
            "http://127.0.0.1/v.mp4",
            "http://127.0.0.1./v.mp4",
            "http://2130706433/v.mp4",
            "http://0x7f000001/v.mp4",
            "http://0177.0.0.1/v.mp4",
            "http://127.1/v.mp4",
            "http://[::1]/v.mp4",
            "http://[::ffff:127.0.0.1]/v.mp4",
            "http://[::ffff:7f00:1]/v.mp4",
            "http://10.0.0.7/v.mp4",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/v.mp4",
            "http://localhost/v.mp4",
            "http://LOCALHOST./v.mp4",
            "http://media.localhost/v.mp4",
        ] {
            // Refused whatever DNS says (the resolver here answers a public address).
            let err = check_media_url_with(url, strict, &public)
                .await
                .unwrap_err();
            assert!(matches!(err, GuardError::Refused { .. }), "{url}: {err}");
        }
        // A name that resolves to a private address is refused; a public one passes.
        let err = check_media_url_with(
            "https://cdn.rebound.example/v.mp4",
            strict,
            &Rebinding(ip("10.1.2.3")),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("a private address"), "{err}");
        assert!(
            check_media_url_with("https://cdn.example/v.mp4", strict, &public)
                .await
                .is_ok()
        );
        // A name this machine cannot resolve is the provider's to resolve.
        assert!(
            check_media_url("https://no-such-host.invalid/v.mp4", strict)
                .await
                .is_ok()
        );
        // Not http(s), or with credentials: refused whatever the policy.
        let open = NetPolicy {
            allow_private: true,
        };
        assert!(matches!(
            check_media_url("file:///etc/passwd", open).await,
            Err(GuardError::Scheme(_))
        ));
        assert!(matches!(
            check_media_url("https://u:p@cdn.example/v.mp4", open).await,
            Err(GuardError::Credentials)
        ));
        // Sandbox mode: the emulator downloads media served on this machine.
        assert!(
            check_media_url("http://127.0.0.1:8080/v.mp4", open)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn localhost_names_are_loopback_without_dns() {
        let strict = NetPolicy::default();
        // The resolver would say public: the name alone decides.
        let public = Rebinding(ip("93.184.216.34"));
        for name in ["localhost", "app.localhost", "A.B.LocalHost."] {
            let err = check_url_with(&format!("http://{name}:8080/hook"), strict, &public)
                .await
                .unwrap_err();
            assert!(
                matches!(err, GuardError::Refused { addr, .. } if addr.is_loopback()),
                "{name}: {err}"
            );
        }
        assert!(
            check_url_with("http://localhost.example/hook", strict, &public)
                .await
                .is_ok()
        );
    }

    /// A resolver that answers one address for every name: a name that looked public when it
    /// was saved and resolves to loopback when the request is made.
    struct Rebinding(IpAddr);

    impl Lookup for Rebinding {
        fn lookup(
            &self,
            _host: &str,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
            let ip = self.0;
            Box::pin(async move { Ok(vec![ip]) })
        }
    }

    #[tokio::test]
    async fn the_client_connects_only_to_checked_addresses() {
        // A real server on loopback that would answer if the guard let the request through.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        let url = format!("http://rebound.example:{port}/hook");
        let strict = client_with(NetPolicy::default(), Arc::new(Rebinding(ip("127.0.0.1"))));
        let err = strict.post(&url).send().await.unwrap_err();
        let refusal = refusal(&err).expect("refused by the guard");
        assert!(
            matches!(refusal, GuardError::Refused { addr, .. } if *addr == ip("127.0.0.1")),
            "{refusal}"
        );
        // Allowed: it connects, and the redirect is not followed.
        let open = client_with(
            NetPolicy {
                allow_private: true,
            },
            Arc::new(Rebinding(ip("127.0.0.1"))),
        );
        let answer = open.post(&url).send().await.unwrap();
        assert_eq!(answer.status(), 302);
    }
}
