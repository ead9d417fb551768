//! cosign's encrypted private keys: a pair made by the real `cosign generate-key-pair`
//! (committed as test material, and made afresh when cosign is installed) decrypts to the
//! key whose public half cosign wrote; wrong passwords, malformed files and absurd scrypt
//! parameters are refused with their own error kinds.

use std::path::Path;

use base64::Engine as _;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use wasm_image::signature::cosign_key::decrypt_cosign_private_key;
use wasm_image::signature::keyless_testkit::cosign_offline;
use wasm_image::store::conformance;
use wasm_image::ErrorKind;

const FIXTURE_KEY: &str = include_str!("fixtures/cosign/test-only.key");
const FIXTURE_PUB: &str = include_str!("fixtures/cosign/test-only.pub");
const FIXTURE_PASSWORD: &[u8] = b"test-fixture-password";
const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

/// The DER inside a one-block PEM text.
fn pem_body(text: &str) -> Vec<u8> {
    let base64_text: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .unwrap()
}

fn pem(label: &str, body: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        base64::engine::general_purpose::STANDARD.encode(body)
    )
}

/// Checks that the decrypted key is the private half of the public key PEM `public`.
#[track_caller]
fn assert_pair(private_pem: &str, password: &[u8], public: &str) {
    let pkcs8 = decrypt_cosign_private_key(private_pem.as_bytes(), password).unwrap();
    let secret = p256::SecretKey::from_pkcs8_der(&pkcs8).unwrap();
    let derived = secret.public_key().to_public_key_der().unwrap();
    assert_eq!(derived.as_bytes(), pem_body(public).as_slice());
}

/// The fixture with its JSON edited by `edit`.
fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut json: serde_json::Value = serde_json::from_slice(&pem_body(FIXTURE_KEY)).unwrap();
    edit(&mut json);
    pem(LABEL, json.to_string().as_bytes())
}

#[track_caller]
fn assert_refused(pem: &str, kind: ErrorKind, expected: &str) {
    let err = decrypt_cosign_private_key(pem.as_bytes(), FIXTURE_PASSWORD)
        .expect_err("the key must be refused");
    assert_eq!(err.kind(), kind, "{err}");
    assert!(
        err.message().contains(expected),
        "expected {expected:?} in: {err}"
    );
}

#[test]
fn a_key_cosign_wrote_decrypts_to_the_pair_of_its_public_key() {
    assert_pair(FIXTURE_KEY, FIXTURE_PASSWORD, FIXTURE_PUB);
    // cosign 1 labelled the same JSON "ENCRYPTED COSIGN PRIVATE KEY".
    let old_label = FIXTURE_KEY.replace(LABEL, "ENCRYPTED COSIGN PRIVATE KEY");
    assert_pair(&old_label, FIXTURE_PASSWORD, FIXTURE_PUB);
}

#[test]
fn a_wrong_password_or_a_corrupted_key_is_invalid_argument() {
    let err = decrypt_cosign_private_key(FIXTURE_KEY.as_bytes(), b"not the password").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message().contains("wrong password or corrupted key"),
        "{err}"
    );

    let corrupted = edited(|json| {
        let ciphertext = json["ciphertext"].as_str().unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(ciphertext)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        json["ciphertext"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
    });
    assert_refused(
        &corrupted,
        ErrorKind::InvalidArgument,
        "wrong password or corrupted key",
    );
}

#[test]
fn malformed_key_files_are_invalid_argument() {
    let public_key = FIXTURE_PUB.to_string();
    let two_blocks = format!("{FIXTURE_KEY}{FIXTURE_KEY}");
    let not_json = pem(LABEL, b"not json");
    let other_kdf = edited(|json| json["kdf"]["name"] = "pbkdf2".into());
    let other_cipher = edited(|json| json["cipher"]["name"] = "aes-gcm".into());
    let short_nonce = edited(|json| json["cipher"]["nonce"] = "AAAA".into());
    let bad_salt = edited(|json| json["kdf"]["salt"] = "!!".into());
    let missing_ciphertext = edited(|json| {
        json.as_object_mut().unwrap().remove("ciphertext");
    });
    let n_not_power_of_two = edited(|json| json["kdf"]["params"]["N"] = 65535.into());
    let r_zero = edited(|json| json["kdf"]["params"]["r"] = 0.into());
    let negative_n = edited(|json| json["kdf"]["params"]["N"] = (-1).into());
    let cases = [
        ("", "holds 0 PEM blocks"),
        ("garbage", "holds 0 PEM blocks"),
        (public_key.as_str(), "not ENCRYPTED SIGSTORE PRIVATE KEY"),
        (two_blocks.as_str(), "holds 2 PEM blocks"),
        (not_json.as_str(), "JSON"),
        (
            other_kdf.as_str(),
            "scrypt and nacl/secretbox are supported",
        ),
        (
            other_cipher.as_str(),
            "scrypt and nacl/secretbox are supported",
        ),
        (short_nonce.as_str(), "nonce"),
        (bad_salt.as_str(), "salt is not base64"),
        (missing_ciphertext.as_str(), "ciphertext"),
        (n_not_power_of_two.as_str(), "scrypt parameters"),
        (r_zero.as_str(), "scrypt parameters"),
        (negative_n.as_str(), "JSON"),
    ];
    for (pem, expected) in cases {
        assert_refused(pem, ErrorKind::InvalidArgument, expected);
    }
}

#[test]
fn absurd_scrypt_parameters_are_refused_before_any_work() {
    let huge_n = edited(|json| json["kdf"]["params"]["N"] = (1u64 << 40).into());
    let huge_p = edited(|json| json["kdf"]["params"]["p"] = 1_000_000.into());
    let huge_r = edited(|json| json["kdf"]["params"]["r"] = 4096.into());
    for pem in [huge_n, huge_p, huge_r] {
        assert_refused(&pem, ErrorKind::LimitExceeded, "scrypt parameters");
    }
    let huge_file = "A".repeat(1 << 20);
    assert_refused(&huge_file, ErrorKind::LimitExceeded, "bytes");
}

#[test]
fn a_pair_cosign_generates_now_decrypts_to_its_public_key() {
    let Some(cosign) = conformance::tool("cosign") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let password = "fresh pair: ünïcode and spaces";
    generate_key_pair(&cosign, dir.path(), password);
    let private = std::fs::read_to_string(dir.path().join("cosign.key")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("cosign.pub")).unwrap();
    assert_pair(&private, password.as_bytes(), &public);
    let err = decrypt_cosign_private_key(private.as_bytes(), b"").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// `cosign generate-key-pair` in `dir`, kept offline.
fn generate_key_pair(cosign: &Path, dir: &Path, password: &str) {
    let out = cosign_offline(cosign, &dir.join("home"))
        .arg("generate-key-pair")
        .current_dir(dir)
        .env("COSIGN_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cosign generate-key-pair failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
