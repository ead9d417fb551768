//! The TLS set-up of the HTTP clients: the platform's certificate verifier plus the CA
//! certificates the caller gives, with the system's CA store read only at the first TLS
//! handshake of the process. Reading and parsing it (a few hundred PEM files on a typical
//! Linux) is the largest start-up cost of a short command, and one that only talks plain
//! HTTP to a registry, or reads an OCI layout, never needs it.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};
use rustls_platform_verifier::Verifier as PlatformVerifier;

/// The platform verifier with extra roots, built the first time a certificate is checked
/// and then shared by every HTTP client of the process (a token client, a client rebuilt
/// after fork).
#[derive(Debug)]
pub(super) struct LazyVerifier {
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    built: OnceLock<Result<PlatformVerifier, TlsError>>,
}

impl LazyVerifier {
    /// Fails when an extra root is not a usable CA certificate, now rather than at the
    /// first handshake, so a bad CA option is reported where it is given.
    pub(super) fn new(extra_roots: Vec<CertificateDer<'static>>) -> Result<Self, TlsError> {
        let mut check = rustls::RootCertStore::empty();
        for root in &extra_roots {
            check.add(root.clone())?;
        }
        Ok(LazyVerifier {
            extra_roots,
            provider: crypto_provider(),
            built: OnceLock::new(),
        })
    }

    fn platform(&self) -> Result<&PlatformVerifier, TlsError> {
        self.built
            .get_or_init(|| {
                let extra = self.extra_roots.iter().cloned();
                PlatformVerifier::new_with_extra_roots(extra, self.provider.clone())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The TLS configuration of one HTTP client: TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1 by
    /// ALPN, certificates checked by this verifier.
    pub(super) fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, TlsError> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The process's installed default provider if it has one (as reqwest does), else
/// aws-lc-rs, the provider reqwest itself would pick.
fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.platform()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Checking a handshake signature needs the provider's algorithms, not the roots.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
