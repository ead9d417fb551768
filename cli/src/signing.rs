//! The signing options: `--verify-key` and keyless trust on the verbs that read a module,
//! `--sign` on the verbs that store one. Only translation into core's `Requirement` and
//! `SigningKey`: core decides what a key or a password source means.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use wasm_image::signature::keyless::{CertificateIdentity, IdentityMatch, KeylessTrust};
use wasm_image::{CallOptions, PublicKey, Requirement, SigningKey, Trust};

use crate::failure::Failure;

/// Whose signature a read requires: none of these given keeps the client's (empty)
/// policy.
#[derive(Args, Debug, Default)]
pub struct VerifyOptions {
    #[arg(
        long = "verify-key",
        value_name = "FILE",
        help = "require a cosign signature by this public key (PEM, e.g. cosign.pub); repeatable: any one of them will do"
    )]
    pub keys: Vec<PathBuf>,
    #[arg(
        long = "verify-repository",
        value_name = "HOST/NAME",
        help = "with --verify-key or keyless trust: the signed payload must name this repository"
    )]
    pub repository: Option<String>,
    #[arg(
        long = "certificate-identity",
        value_name = "ID",
        help = "keyless: the signing certificate's subject (an email or URI), exactly"
    )]
    pub identity: Option<String>,
    #[arg(
        long = "certificate-identity-regexp",
        value_name = "RE",
        help = "keyless: a pattern the whole certificate subject must match"
    )]
    pub identity_regexp: Option<String>,
    #[arg(
        long = "certificate-oidc-issuer",
        value_name = "URL",
        help = "keyless: the OIDC issuer that vouched for the signer, exactly"
    )]
    pub issuer: Option<String>,
    #[arg(
        long = "certificate-oidc-issuer-regexp",
        value_name = "RE",
        help = "keyless: a pattern the whole OIDC issuer must match"
    )]
    pub issuer_regexp: Option<String>,
    #[arg(
        long = "fulcio-root",
        value_name = "FILE",
        help = "keyless: the Fulcio root (and intermediate) certificates to trust (PEM)"
    )]
    pub fulcio_root: Option<PathBuf>,
    #[arg(
        long = "rekor-key",
        value_name = "FILE",
        help = "keyless: the Rekor transparency log's public key(s) (PEM), checked offline"
    )]
    pub rekor_key: Option<PathBuf>,
}

impl VerifyOptions {
    fn keyless_given(&self) -> bool {
        self.identity.is_some()
            || self.identity_regexp.is_some()
            || self.issuer.is_some()
            || self.issuer_regexp.is_some()
            || self.fulcio_root.is_some()
            || self.rekor_key.is_some()
    }

    /// The call's requirement, or `None` to keep the client's policy.
    pub(crate) fn requirement(&self) -> Result<Option<Requirement>, Failure> {
        if self.keys.is_empty() && !self.keyless_given() {
            if self.repository.is_some() {
                return Err(Failure::Usage(
                    "--verify-repository needs --verify-key or keyless trust (--fulcio-root, --rekor-key)"
                        .into(),
                ));
            }
            return Ok(None);
        }
        let keys = self
            .keys
            .iter()
            .map(|path| {
                let pem = wasm_image::files::read_input(path, "public key")?;
                PublicKey::from_pem(&pem)
            })
            .collect::<wasm_image::Result<Vec<_>>>()?;
        let keyless = if self.keyless_given() {
            vec![self.keyless()?]
        } else {
            Vec::new()
        };
        let trust = Trust::new(keys, keyless)?;
        let trust = match &self.repository {
            Some(repository) => trust.with_repository(repository.clone()),
            None => trust,
        };
        Ok(Some(Requirement::signed(trust)))
    }

    fn keyless(&self) -> Result<KeylessTrust, Failure> {
        let (Some(roots), Some(rekor)) = (&self.fulcio_root, &self.rekor_key) else {
            return Err(Failure::Usage(
                "keyless verification needs both --fulcio-root and --rekor-key".into(),
            ));
        };
        let identity = CertificateIdentity {
            issuer: IdentityMatch::one_of(
                "OIDC issuer (--certificate-oidc-issuer[-regexp])",
                self.issuer.as_deref(),
                self.issuer_regexp.as_deref(),
            )?,
            subject: IdentityMatch::one_of(
                "identity (--certificate-identity[-regexp])",
                self.identity.as_deref(),
                self.identity_regexp.as_deref(),
            )?,
        };
        let roots = wasm_image::files::read_input(roots, "Fulcio roots")?;
        let rekor = wasm_image::files::read_input(rekor, "Rekor keys")?;
        Ok(KeylessTrust::from_pem(&roots, &rekor, identity)?)
    }
}

/// The key a storing verb signs with.
#[derive(Args, Debug, Default)]
pub struct SignOptions {
    #[arg(
        long = "sign",
        value_name = "KEY",
        help = "sign the stored image the way `cosign sign` does, with this private key (PKCS#8 PEM, or cosign's encrypted cosign.key)"
    )]
    pub key: Option<PathBuf>,
    #[arg(
        long = "sign-password-env",
        value_name = "VAR",
        help = "environment variable holding an encrypted key's password (default: COSIGN_PASSWORD when the key is encrypted)"
    )]
    pub password_env: Option<String>,
}

impl SignOptions {
    pub(crate) fn key(&self) -> Result<Option<Arc<SigningKey>>, Failure> {
        let Some(path) = &self.key else {
            if self.password_env.is_some() {
                return Err(Failure::Usage("--sign-password-env needs --sign".into()));
            }
            return Ok(None);
        };
        let pem = wasm_image::files::read_input(path, "private key")?;
        let key = SigningKey::open(&pem, None, self.password_env.as_deref())?;
        Ok(Some(Arc::new(key)))
    }
}

/// A call's options with the verb's signing choices set.
pub(crate) fn with(
    mut call: CallOptions,
    verify: Option<Requirement>,
    sign_with: Option<Arc<SigningKey>>,
) -> CallOptions {
    if verify.is_some() {
        call.verify = verify;
    }
    if sign_with.is_some() {
        call.sign_with = sign_with;
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn usage_message<T: std::fmt::Debug>(result: Result<T, Failure>) -> String {
        match result {
            Err(Failure::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn no_verify_option_keeps_the_clients_policy() {
        assert!(VerifyOptions::default().requirement().unwrap().is_none());
    }

    #[test]
    fn a_repository_alone_or_half_a_keyless_trust_is_a_usage_error() {
        let repository_only = VerifyOptions {
            repository: Some("example.com/acme/filter".into()),
            ..VerifyOptions::default()
        };
        assert!(usage_message(repository_only.requirement()).contains("--verify-repository"));
        let roots_only = VerifyOptions {
            fulcio_root: Some("roots.pem".into()),
            identity: Some("dev@example.com".into()),
            ..VerifyOptions::default()
        };
        assert!(usage_message(roots_only.requirement()).contains("--rekor-key"));
    }

    #[test]
    fn a_password_variable_without_a_key_is_a_usage_error() {
        let options = SignOptions {
            key: None,
            password_env: Some("COSIGN_PASSWORD".into()),
        };
        assert!(usage_message(options.key()).contains("--sign"));
        assert!(SignOptions::default().key().unwrap().is_none());
    }

    #[test]
    fn an_unreadable_key_file_is_the_librarys_error() {
        let options = VerifyOptions {
            keys: vec!["/nonexistent/cosign.pub".into()],
            ..VerifyOptions::default()
        };
        match options.requirement() {
            Err(Failure::Library(err)) => assert!(err.to_string().contains("public key"), "{err}"),
            other => panic!("expected the library's error, got {other:?}"),
        }
    }
}
