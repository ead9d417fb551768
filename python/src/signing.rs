//! Signing and verification arguments: `Trust`, `SigningKey`, the client's `verify`
//! policy and the per-call `verify=` / `sign_with=` → core's types.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::prelude::*;
use wasm_image::signature::keyless::{CertificateIdentity, IdentityMatch, KeylessTrust};
use wasm_image::{PublicKey, Requirement, VerificationPolicy};

use crate::bridge;
use crate::convert::BytesOrPath;
use crate::errors::{invalid_argument, IntoPyResult};

/// Whose signatures to accept: public keys (PEM bytes or paths: ECDSA P-256 as
/// ``cosign generate-key-pair`` writes ``cosign.pub``, or Ed25519), and/or keyless
/// signatures checked offline against Fulcio roots and Rekor keys (PEM) for a certificate
/// identity (issuer and subject, exact or a regular expression); optionally the
/// repository (``HOST/NAME``) the signed payload must name.
#[pyclass(module = "wasm_image", frozen)]
pub struct Trust {
    pub(crate) inner: Arc<wasm_image::Trust>,
}

#[pymethods]
impl Trust {
    #[new]
    #[pyo3(signature = (keys=Vec::new(), *, repository=None, fulcio_roots=None, rekor_keys=None,
                        issuer=None, subject=None, issuer_regex=None, subject_regex=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        keys: Vec<BytesOrPath>,
        repository: Option<String>,
        fulcio_roots: Option<BytesOrPath>,
        rekor_keys: Option<BytesOrPath>,
        issuer: Option<String>,
        subject: Option<String>,
        issuer_regex: Option<String>,
        subject_regex: Option<String>,
    ) -> PyResult<Trust> {
        let trust = bridge::compute(py, || {
            let keys = keys
                .into_iter()
                .map(|k| PublicKey::from_pem(&k.load("public key")?))
                .collect::<wasm_image::Result<Vec<_>>>()?;
            let fulcio_roots = fulcio_roots.map(|r| r.load("Fulcio roots")).transpose()?;
            let rekor_keys = rekor_keys.map(|r| r.load("Rekor keys")).transpose()?;
            let keyless = KeylessTrust::from_optional_pem(
                fulcio_roots.as_deref(),
                rekor_keys.as_deref(),
                || {
                    Ok(CertificateIdentity {
                        issuer: IdentityMatch::one_of(
                            "issuer",
                            issuer.as_deref(),
                            issuer_regex.as_deref(),
                        )?,
                        subject: IdentityMatch::one_of(
                            "subject",
                            subject.as_deref(),
                            subject_regex.as_deref(),
                        )?,
                    })
                },
            )?;
            let trust = wasm_image::Trust::new(keys, keyless.into_iter().collect())?;
            Ok(match repository {
                Some(r) => trust.with_repository(r),
                None => trust,
            })
        })?;
        Ok(Trust {
            inner: Arc::new(trust),
        })
    }

    /// The keys' fingerprints (the first 16 hex digits of each SPKI's SHA-256).
    #[getter]
    fn fingerprints(&self) -> Vec<String> {
        self.inner
            .public_keys()
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect()
    }

    /// The repository (``HOST/NAME``) the signed payload must name, or None for any.
    #[getter]
    fn repository(&self) -> Option<String> {
        self.inner.repository().map(str::to_string)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Trust keys={:?} repository={:?}>",
            self.fingerprints(),
            self.inner.repository()
        )
    }
}

/// A private key to sign pushed images with: PEM given as bytes or a path, unencrypted
/// PKCS#8 or cosign's encrypted ``cosign.key`` (opened with ``password``, else the
/// environment variable ``password_env`` names, else ``COSIGN_PASSWORD``). Never printed.
#[pyclass(module = "wasm_image", frozen)]
pub struct SigningKey {
    pub(crate) inner: Arc<wasm_image::SigningKey>,
}

#[pymethods]
impl SigningKey {
    #[new]
    #[pyo3(signature = (key, *, password=None, password_env=None))]
    fn new(
        py: Python<'_>,
        key: BytesOrPath,
        password: Option<Vec<u8>>,
        password_env: Option<String>,
    ) -> PyResult<SigningKey> {
        let key = bridge::compute(py, || {
            let pem = key.load("private key")?;
            wasm_image::SigningKey::open(&pem, password, password_env.as_deref())
        })?;
        Ok(SigningKey {
            inner: Arc::new(key),
        })
    }

    /// The matching public key's fingerprint.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.public_key().fingerprint().to_string()
    }

    fn __repr__(&self) -> String {
        format!("<SigningKey public={}>", self.fingerprint())
    }
}

/// `verify=` of one call: a `Trust` requires it; `False` turns the client's policy off
/// for the call; `None` keeps the policy.
#[derive(FromPyObject)]
pub enum VerifyArg<'py> {
    Trust(PyRef<'py, Trust>),
    Flag(bool),
}

pub fn requirement(py: Python<'_>, verify: Option<VerifyArg<'_>>) -> PyResult<Option<Requirement>> {
    match verify {
        None => Ok(None),
        Some(VerifyArg::Trust(t)) => Ok(Some(Requirement::Signed(t.inner.clone()))),
        Some(VerifyArg::Flag(false)) => Ok(Some(Requirement::None)),
        Some(VerifyArg::Flag(true)) => Err(invalid_argument(
            py,
            "verify=True does not say whose signature to accept: pass a wasm_image.Trust",
        )),
    }
}

/// The client's `verify=`: location patterns (``"ghcr.io/acme/*"``, ``"oci:*"``) to a
/// `Trust`, or to `None` to exempt them.
pub fn policy(
    py: Python<'_>,
    rules: BTreeMap<String, Option<PyRef<'_, Trust>>>,
) -> PyResult<VerificationPolicy> {
    let mut policy = VerificationPolicy::new();
    for (pattern, trust) in rules {
        let requirement = match trust {
            Some(t) => Requirement::Signed(t.inner.clone()),
            None => Requirement::None,
        };
        policy.add(&pattern, requirement).py_err(py)?;
    }
    Ok(policy)
}
