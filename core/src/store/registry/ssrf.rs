//! The internal-address guard: a registry must not send our credentials to a token
//! server on a loopback, private, link-local or metadata address.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Mutex;

use reqwest::Url;

use crate::embed::runtime::run_blocking;
use crate::error::{Error, ErrorKind, Result};

use super::endpoint::show_url;
use super::endpoint::Endpoint;

/// Remembers, per host, whether it is on an internal address.
#[derive(Default)]
pub(super) struct InternalAddressGuard {
    internal_hosts: Mutex<HashMap<String, bool>>,
}

impl InternalAddressGuard {
    /// Refuses token servers on loopback, link-local, private or metadata addresses unless
    /// the registry itself is on such an address.
    pub(super) async fn check_realm(&self, ep: &Endpoint, realm: &Url) -> Result<()> {
        let Some(realm_host) = realm.host_str().map(str::to_string) else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("{}: the token server address has no host", ep.describe()),
            ));
        };
        if !self
            .is_internal(&realm_host, realm.port_or_known_default().unwrap_or(443))
            .await
        {
            return Ok(());
        }
        let registry_host = ep.base.host_str().unwrap_or_default().to_string();
        if self
            .is_internal(
                &registry_host,
                ep.base.port_or_known_default().unwrap_or(443),
            )
            .await
        {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{}: refusing the token server {}: it is on a loopback, private, link-local or cloud metadata address while the registry is not (a registry must not send our credentials there)",
                ep.describe(),
                show_url(realm)
            ),
        ))
    }

    pub(super) async fn is_internal(&self, host: &str, port: u16) -> bool {
        if let Some(v) = self
            .internal_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
        {
            return *v;
        }
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let internal = if let Ok(ip) = bare.parse::<IpAddr>() {
            is_internal_ip(ip)
        } else if is_internal_name(&bare) {
            true
        } else {
            let name = bare.clone();
            run_blocking(move |_| {
                Ok((name.as_str(), port)
                    .to_socket_addrs()
                    .map(|addrs| addrs.into_iter().any(|a| is_internal_ip(a.ip())))
                    .unwrap_or(false))
            })
            .await
            .unwrap_or(false)
        };
        self.internal_hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), internal);
        internal
    }
}

pub(super) fn is_internal_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "metadata.google.internal"
        || h == "metadata"
}

/// Loopback, link-local (incl. 169.254.169.254), private and unspecified addresses.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_private() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xffc0) == 0xfe80
                || (first & 0xfe00) == 0xfc00
        }
    }
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
            "https://[fd00::1]/t",
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
        client
            .check_realm(&public, &Url::parse("https://8.8.4.4/token").unwrap())
            .await
            .unwrap();
        // A registry on loopback may use a token server on loopback.
        let local =
            Endpoint::new("127.0.0.1:5000", "127.0.0.1:5000", "a".into(), None, &o).unwrap();
        client
            .check_realm(&local, &Url::parse("http://127.0.0.1:9999/token").unwrap())
            .await
            .unwrap();
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
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "140.82.112.3"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        assert!(is_internal_name("metadata.google.internal"));
        assert!(is_internal_name("LOCALHOST"));
    }
}
