//! `SigningKey::open`, the one place every face opens a signing key: an encrypted
//! cosign key's password comes from the caller, else the variable the caller names, else
//! `COSIGN_PASSWORD` as cosign does; an unencrypted key never asks for one. One test
//! function, because it sets this process's environment.

use base64::Engine as _;
use wasm_image::signature::cosign_key::decrypt_cosign_private_key;
use wasm_image::signature::keys::DEFAULT_PASSWORD_ENV;
use wasm_image::{ErrorKind, PublicKey, SigningKey};

const FIXTURE_KEY: &[u8] = include_bytes!("fixtures/cosign/test-only.key");
const FIXTURE_PUB: &[u8] = include_bytes!("fixtures/cosign/test-only.pub");
const FIXTURE_PASSWORD: &str = "test-fixture-password";
const NAMED_VARIABLE: &str = "WASM_IMAGE_TEST_SIGNING_KEY_OPEN_PASSWORD";

#[track_caller]
fn assert_fixture(key: wasm_image::Result<SigningKey>) {
    let expected = PublicKey::from_pem(FIXTURE_PUB).unwrap();
    assert_eq!(
        key.unwrap().public_key().fingerprint(),
        expected.fingerprint()
    );
}

#[track_caller]
fn assert_refused(key: wasm_image::Result<SigningKey>, needle: &str) {
    let err = key.expect_err("the key should not open");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn encrypted_keys_fall_back_to_cosign_password_and_plain_keys_need_none() {
    assert_eq!(DEFAULT_PASSWORD_ENV, "COSIGN_PASSWORD");
    std::env::remove_var(DEFAULT_PASSWORD_ENV);
    std::env::remove_var(NAMED_VARIABLE);

    // Nothing given and COSIGN_PASSWORD unset: the error names the variable looked at.
    assert_refused(
        SigningKey::open(FIXTURE_KEY, None, None),
        DEFAULT_PASSWORD_ENV,
    );
    // A named variable that is unset is an error, never an empty password.
    assert_refused(
        SigningKey::open(FIXTURE_KEY, None, Some(NAMED_VARIABLE)),
        NAMED_VARIABLE,
    );

    std::env::set_var(DEFAULT_PASSWORD_ENV, FIXTURE_PASSWORD);
    assert_fixture(SigningKey::open(FIXTURE_KEY, None, None));

    // The named variable wins over COSIGN_PASSWORD, and a given password over both.
    std::env::set_var(DEFAULT_PASSWORD_ENV, "not the password");
    std::env::set_var(NAMED_VARIABLE, FIXTURE_PASSWORD);
    assert_fixture(SigningKey::open(FIXTURE_KEY, None, Some(NAMED_VARIABLE)));
    assert_fixture(SigningKey::open(
        FIXTURE_KEY,
        Some(FIXTURE_PASSWORD.as_bytes().to_vec()),
        None,
    ));
    let wrong =
        SigningKey::open(FIXTURE_KEY, None, None).expect_err("a wrong password opens nothing");
    assert_ne!(wrong.kind(), ErrorKind::Internal, "{wrong}");

    // The same key unencrypted (PKCS#8) opens with no password, whatever COSIGN_PASSWORD holds.
    let der = decrypt_cosign_private_key(FIXTURE_KEY, FIXTURE_PASSWORD.as_bytes()).unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(&*der);
    // PEM lines are at most 64 characters, as the parser insists.
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let plain = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    assert_fixture(SigningKey::open(plain.as_bytes(), None, None));

    std::env::remove_var(DEFAULT_PASSWORD_ENV);
    std::env::remove_var(NAMED_VARIABLE);
}
