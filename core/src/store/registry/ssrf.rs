//! The internal-address guard: a registry must not send our credentials to a token
//! server on a loopback, private, link-local, shared or metadata address, nor make us
//! fetch a "token" from one and hand it to the registry.
//!
//! Unless the registry itself is on such an address, a token request is judged three
//! times: the realm before anything is sent (its host as written and as resolved now),
//! every redirect hop (an address or name in the URL), and the address each connection
//! is actually made to (a resolver that drops internal answers, so a name that resolves
//! to a public address when checked and to 169.254.169.254 when connecting is caught).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use crate::embed::runtime::run_blocking;
use crate::error::{Error, ErrorKind, Result};

use super::endpoint::show_url;
use super::endpoint::Endpoint;

/// Whether an address is one a token server must not be on.
pub(super) type IsInternal = fn(IpAddr) -> bool;

/// How a name's addresses decide whether it is internal.
#[derive(Clone, Copy)]
enum Resolved {
    /// Any internal address makes it internal (a token server: refuse on doubt).
    AnyInternal,
    /// Only all addresses internal make it internal (a registry: guard on doubt).
    AllInternal,
}

/// Looks a name up (the system's resolver; tests give their own).
pub(super) type Lookup = Arc<dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;

fn system_lookup() -> Lookup {
    Arc::new(|name: &str| {
        Ok((name, 0)
            .to_socket_addrs()?
            .map(|a| a.ip())
            .collect::<Vec<_>>())
    })
}

/// The judge and resolver one client's token requests use.
#[derive(Clone)]
pub(super) struct InternalAddressGuard {
    is_internal: IsInternal,
    lookup: Lookup,
}

impl Default for InternalAddressGuard {
    fn default() -> Self {
        InternalAddressGuard {
            is_internal: is_internal_ip,
            lookup: system_lookup(),
        }
    }
}

impl InternalAddressGuard {
    #[cfg(test)]
    pub(super) fn with(is_internal: IsInternal, lookup: Lookup) -> Self {
        InternalAddressGuard {
            is_internal,
            lookup,
        }
    }

    /// Decides whether a token request to `realm` may be made, and whether it must go
    /// through the guarded client (`true`): it must unless the registry itself is on an
    /// internal address, where a token server next to it is normal.
    pub(super) async fn check_realm(&self, ep: &Endpoint, realm: &Url) -> Result<bool> {
        let Some(realm_host) = realm.host_str().map(str::to_string) else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("{}: the token server address has no host", ep.describe()),
            ));
        };
        if !self
            .is_internal_host(&realm_host, Resolved::AnyInternal)
            .await
        {
            return Ok(true);
        }
        // The registry counts as internal only if every address of it is: a name that
        // also resolves to a public address must not switch the guard off.
        let registry_host = ep.base.host_str().unwrap_or_default().to_string();
        if self
            .is_internal_host(&registry_host, Resolved::AllInternal)
            .await
        {
            return Ok(false);
        }
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{}: refusing the token server {}: it is on a loopback, private, link-local, shared or cloud metadata address while the registry is not (a registry must not send our credentials there)",
                ep.describe(),
                show_url(realm)
            ),
        ))
    }

    /// Whether a host, as written or as it resolves now, is internal. Resolved afresh on
    /// every call: a cached answer is what DNS rebinding exploits.
    async fn is_internal_host(&self, host: &str, rule: Resolved) -> bool {
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return (self.is_internal)(ip);
        }
        if is_internal_name(&bare) {
            return true;
        }
        let (lookup, is_internal) = (self.lookup.clone(), self.is_internal);
        run_blocking(move |_| {
            Ok(lookup(&bare)
                .map(|ips| match rule {
                    Resolved::AnyInternal => ips.into_iter().any(is_internal),
                    Resolved::AllInternal => !ips.is_empty() && ips.into_iter().all(is_internal),
                })
                .unwrap_or(false))
        })
        .await
        .unwrap_or(false)
    }

    /// Whether a redirect hop of a guarded request may be followed: its host as written
    /// (a name is judged again by the resolver when connecting).
    pub(super) fn allows_hop(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => !(self.is_internal)(ip),
            Err(_) => !is_internal_name(host),
        }
    }

    /// The resolver of the guarded client: it answers only with addresses that are not
    /// internal, so no connection of a token request reaches one. Proxy hosts are exempt
    /// (a proxy is the user's choice and commonly on a private address; through a proxy,
    /// the realm's own address is judged by `check_realm` before the request).
    pub(super) fn resolver(&self, proxy_hosts: HashSet<String>) -> GuardedResolver {
        GuardedResolver {
            guard: self.clone(),
            proxy_hosts: Arc::new(proxy_hosts),
        }
    }
}

pub(super) struct GuardedResolver {
    guard: InternalAddressGuard,
    proxy_hosts: Arc<HashSet<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_string();
        let guard = self.guard.clone();
        let proxy = self.proxy_hosts.contains(&name.to_ascii_lowercase());
        Box::pin(async move {
            if !proxy && is_internal_name(&name) {
                return Err(refused(&name).into());
            }
            let lookup = guard.lookup.clone();
            let looked_up = name.clone();
            let ips = tokio::task::spawn_blocking(move || lookup(&looked_up)).await??;
            let allowed: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| proxy || !(guard.is_internal)(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(refused(&name).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

fn refused(name: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "refusing to connect to {}: it resolves only to loopback, private, link-local, shared or cloud metadata addresses",
            crate::error::quoted(name, crate::error::QUOTED_CHARS)
        ),
    )
}

/// The hosts of the proxies reqwest takes from the environment (which the resolver then
/// connects to for the requests they carry).
pub(super) fn proxy_hosts() -> HashSet<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|var| std::env::var(var).ok())
    .filter_map(|value| {
        let value = value.trim();
        let with_scheme = if value.contains("://") {
            value.to_string()
        } else {
            format!("http://{value}")
        };
        Url::parse(&with_scheme).ok()?.host_str().map(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        })
    })
    .collect()
}

pub(super) fn is_internal_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h == "metadata"
}

/// Addresses a token server must not be on: loopback, private, link-local (incl.
/// 169.254.169.254), shared address space (100.64.0.0/10, incl. 100.100.100.200),
/// IETF protocol assignments, benchmarking, multicast, reserved and unspecified ones, and
/// any of these embedded in IPv6 (mapped, compatible, NAT64, 6to4, Teredo).
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_link_local()
        || v4.is_private()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // 100.64.0.0/10, shared (carrier-grade NAT, cloud metadata)
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // 192.0.0.0/24, IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || a >= 240 // 240.0.0.0/4, reserved
}

fn is_internal_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if v6.is_loopback() || v6.is_unspecified() {
        return true;
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated but still routed by some stacks).
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return is_internal_v4(embedded_v4(s[6], s[7]));
    }
    // 64:ff9b::/96, NAT64 well-known prefix: the IPv4 address it reaches.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(embedded_v4(s[6], s[7]));
    }
    // 64:ff9b:1::/48, NAT64 local-use prefix: translated inside the local network.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return true;
    }
    // 2002::/16, 6to4: the IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return is_internal_v4(embedded_v4(s[1], s[2]));
    }
    // 2001:0::/32, Teredo: the client's IPv4 address, inverted, in the last 32 bits.
    if s[0] == 0x2001 && s[1] == 0 {
        return is_internal_v4(embedded_v4(!s[6], !s[7]));
    }
    (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xff00) == 0xff00 // multicast
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ClientOptions;

    #[tokio::test]
    async fn token_realms_are_guarded() {
        let o = ClientOptions::default();
        let client = InternalAddressGuard::default();
        let public = Endpoint::new("8.8.8.8:5000", "8.8.8.8:5000", "a".into(), None, &o).unwrap();
        for realm in [
            "https://127.0.0.1:1/token",
            "https://169.254.169.254/latest",
            "https://100.100.100.200/latest/meta-data",
            "https://[fd00::1]/t",
            "https://[64:ff9b::a9fe:a9fe]/t",
            "https://[2002:a9fe:a9fe::1]/t",
            "https://[::127.0.0.1]/t",
            "https://10.0.0.1/t",
            "https://metadata.google.internal/computeMetadata",
            "https://localhost/t",
        ] {
            let err = client
                .check_realm(&public, &Url::parse(realm).unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthorized, "{realm}");
            assert!(err.message().contains("refusing the token server"), "{err}");
        }
        assert!(client
            .check_realm(&public, &Url::parse("https://8.8.4.4/token").unwrap())
            .await
            .unwrap());
        // A registry on loopback may use a token server on loopback, unguarded.
        let local =
            Endpoint::new("127.0.0.1:5000", "127.0.0.1:5000", "a".into(), None, &o).unwrap();
        assert!(!client
            .check_realm(&local, &Url::parse("http://127.0.0.1:9999/token").unwrap())
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_registry_counts_as_internal_only_if_all_its_addresses_are() {
        let lookup: Lookup = Arc::new(|name: &str| {
            Ok(match name {
                "mixed.test" => vec!["10.0.0.5".parse().unwrap(), "8.8.8.8".parse().unwrap()],
                "inside.test" => vec!["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()],
                _ => vec![],
            })
        });
        let guard = InternalAddressGuard::with(is_internal_ip, lookup);
        let o = ClientOptions::default();
        let realm = Url::parse("https://10.0.0.7/token").unwrap();
        let mixed = Endpoint::new("mixed.test", "mixed.test", "a".into(), None, &o).unwrap();
        let err = guard.check_realm(&mixed, &realm).await.unwrap_err();
        assert!(err.message().contains("refusing the token server"), "{err}");
        let inside = Endpoint::new("inside.test", "inside.test", "a".into(), None, &o).unwrap();
        assert!(!guard.check_realm(&inside, &realm).await.unwrap());
        // A realm name with any internal address is refused.
        let realm = Url::parse("https://mixed.test/token").unwrap();
        let public = Endpoint::new("8.8.8.8", "8.8.8.8", "a".into(), None, &o).unwrap();
        assert!(guard.check_realm(&public, &realm).await.is_err());
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "100.127.255.255",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.255",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "2002:a9fe:a9fe::",
            "2002:0a00:0001::1",
            // Teredo with client 10.0.0.1 (inverted: f5ff:fffe).
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "0.0.0.0",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "100.63.255.255",
            "192.0.2.1",
            "198.20.0.1",
            "2001:db8::1",
            "140.82.112.3",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2606:4700::1111",
        ] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_internal_name("metadata.google.internal"));
        assert!(is_internal_name("LOCALHOST"));
    }
}
