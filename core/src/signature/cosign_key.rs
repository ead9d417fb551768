//! Opening the private key files `cosign generate-key-pair` writes.
//!
//! The PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2; `ENCRYPTED COSIGN PRIVATE
//! KEY` before) holds go-securesystemslib's `encrypted` JSON:
//!
//! ```text
//! {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": base64},
//!  "cipher": {"name": "nacl/secretbox", "nonce": base64 (24 bytes)},
//!  "ciphertext": base64 (Poly1305 tag, then the encrypted PKCS#8 DER)}
//! ```
//!
//! The password goes through scrypt (32-byte key) and opens the NaCl secretbox
//! (XSalsa20-Poly1305). The file's own scrypt parameters are bounded before use: a key
//! file must not make a call take minutes or gigabytes.

use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{quoted, Error, Result, QUOTED_CHARS};
use crate::signature::pem;

const PEM_LABELS: [&str; 2] = [
    "ENCRYPTED SIGSTORE PRIVATE KEY",
    "ENCRYPTED COSIGN PRIVATE KEY",
];
/// Largest key file read: cosign's are about 650 bytes.
const MAX_PEM_BYTES: usize = 64 * 1024;
/// Most memory scrypt may need (128·N·r bytes): cosign 2's own parameters need 64 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
/// Most work scrypt may do, in the same units times p: 16 times cosign 2's own.
const MAX_SCRYPT_WORK: u64 = 1024 * 1024 * 1024;
const SCRYPT_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

#[derive(Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The PKCS#8 DER private key inside a cosign encrypted key file, given its password.
///
/// A wrong password is `INVALID_ARGUMENT` ("wrong password or corrupted key": the two
/// cannot be told apart); so is a file that is not a cosign key. Scrypt parameters beyond
/// what any cosign writes (and far beyond) are `LIMIT_EXCEEDED`.
pub fn decrypt_cosign_private_key(pem: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(Error::limit_exceeded(format!(
            "the cosign key file is {} bytes, more than the {MAX_PEM_BYTES} a key file can be",
            pem.len()
        )));
    }
    let blocks = pem::parse_all(pem)
        .map_err(|e| malformed(&format!("the cosign key file is not valid PEM: {e}")))?;
    let [block] = blocks.as_slice() else {
        return Err(malformed(&format!(
            "the cosign key file holds {} PEM blocks, not one",
            blocks.len()
        )));
    };
    if !PEM_LABELS.contains(&block.label.as_str()) {
        return Err(malformed(&format!(
            "the PEM block is {}, not ENCRYPTED SIGSTORE PRIVATE KEY (or ENCRYPTED COSIGN PRIVATE KEY)",
            quoted(&block.label, QUOTED_CHARS)
        )));
    }
    let encrypted: EncryptedKey = serde_json::from_slice(&block.der)
        .map_err(|e| malformed(&format!("its JSON is not an encrypted key: {e}")))?;
    if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
        return Err(malformed(&format!(
            "it is encrypted with {} and {}; scrypt and nacl/secretbox are supported",
            quoted(&encrypted.kdf.name, QUOTED_CHARS),
            quoted(&encrypted.cipher.name, QUOTED_CHARS)
        )));
    }
    let salt = base64_field(&encrypted.kdf.salt, "salt")?;
    let nonce = base64_field(&encrypted.cipher.nonce, "nonce")?;
    let ciphertext = base64_field(&encrypted.ciphertext, "ciphertext")?;
    if nonce.len() != NONCE_LEN {
        return Err(malformed(&format!(
            "its nonce is {} bytes, not {NONCE_LEN}",
            nonce.len()
        )));
    }

    let params = scrypt_params(&encrypted.kdf.params)?;
    let mut key = Zeroizing::new([0u8; SCRYPT_KEY_LEN]);
    scrypt::scrypt(password, &salt, &params, key.as_mut())
        .map_err(|_| Error::internal("scrypt refused a 32-byte output"))?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| {
            Error::invalid_argument("cosign private key: wrong password or corrupted key")
        })?;
    if p256::pkcs8::PrivateKeyInfo::try_from(plaintext.as_slice()).is_err() {
        return Err(malformed(
            "it decrypts to something that is not a PKCS#8 private key",
        ));
    }
    Ok(plaintext)
}

fn malformed(what: &str) -> Error {
    Error::invalid_argument(format!("not a cosign encrypted private key: {what}"))
}

fn base64_field(value: &str, name: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| malformed(&format!("its {name} is not base64")))
}

/// The file's scrypt parameters, once they are within reach.
fn scrypt_params(params: &ScryptParams) -> Result<scrypt::Params> {
    let ScryptParams { n, r, p } = *params;
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
        return Err(malformed(&format!(
            "its scrypt parameters N={n} r={r} p={p} are invalid (N a power of two above 1, r and p at least 1)"
        )));
    }
    let memory = 128u64.saturating_mul(n).saturating_mul(u64::from(r));
    let work = memory.saturating_mul(u64::from(p));
    if memory > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
        return Err(Error::limit_exceeded(format!(
            "the cosign key's scrypt parameters N={n} r={r} p={p} need more than the \
             {} MiB of memory or {} MiB of work allowed",
            MAX_SCRYPT_MEMORY >> 20,
            MAX_SCRYPT_WORK >> 20
        )));
    }
    scrypt::Params::new(n.trailing_zeros() as u8, r, p, SCRYPT_KEY_LEN).map_err(|_| {
        malformed(&format!(
            "its scrypt parameters N={n} r={r} p={p} are invalid"
        ))
    })
}
