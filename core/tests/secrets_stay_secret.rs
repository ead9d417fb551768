//! No secret ever shows in what the library prints: `Debug` of options, credentials and
//! lookups, the message, `Display` and `Debug` of every error, and every log record.
//! A secret is looked for as itself, in base64 (as docker configs hold it), as the
//! decimal byte list `Debug` prints for bytes, and in hex.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use wasm_image::auth::{lookup_with_env, ConfigEnv};
use wasm_image::logging::{self, LogLevel, LogRecord};
use wasm_image::{CallOptions, Client, ClientOptions, Credentials};

const PASSWORD: &str = "pw-Zq81-never-printed";
const TOKEN: &str = "tok-Hx42-never-printed";
const CONFIG_PASSWORD: &str = "cfg-Jm07-never-printed";
const IDENTITY_TOKEN: &str = "idt-Pw55-never-printed";

fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = secret.as_bytes();
    let decimal: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
    vec![
        secret.to_string(),
        b64.encode(bytes),
        b64.encode(format!("user:{secret}")),
        decimal.join(", "),
        hex::encode(bytes),
    ]
}

/// Panics when `text` holds any form of any of `secrets`.
fn assert_no_secret(text: &str, secrets: &[&str], what: &str) {
    for secret in secrets {
        for form in forms(secret) {
            // The base64 of "user:SECRET" shares no long run with the text otherwise.
            assert!(
                !text.contains(&form),
                "{what} shows a secret ({form:?}):\n{text}"
            );
        }
    }
}

fn docker_config(auths: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "auths": auths })).unwrap()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn options_with_every_secret() -> ClientOptions {
    let mut options = ClientOptions {
        use_config_files: false,
        docker_config_json: Some(docker_config(json!({
            "reg.example": {"auth": b64(&format!("user:{CONFIG_PASSWORD}"))},
            "other.example": {"identitytoken": IDENTITY_TOKEN},
        }))),
        ..ClientOptions::default()
    };
    options.credentials.insert(
        "basic.example".into(),
        Credentials::Basic {
            username: "user".into(),
            password: PASSWORD.into(),
        },
    );
    options
        .credentials
        .insert("bearer.example".into(), Credentials::Bearer(TOKEN.into()));
    options
}

const ALL: &[&str] = &[PASSWORD, TOKEN, CONFIG_PASSWORD, IDENTITY_TOKEN];

#[test]
fn debug_of_options_credentials_and_lookups_shows_no_secret() {
    let options = options_with_every_secret();
    assert_no_secret(&format!("{options:?}"), ALL, "Debug of ClientOptions");
    assert_no_secret(
        &format!("{options:#?}"),
        ALL,
        "pretty Debug of ClientOptions",
    );
    let shown = format!("{options:?}");
    assert!(
        shown.contains("basic.example") && shown.contains("<redacted"),
        "{shown}"
    );
    for host in [
        "basic.example",
        "bearer.example",
        "reg.example",
        "other.example",
    ] {
        let found = lookup_with_env(&options, host, &ConfigEnv::default()).unwrap();
        assert!(found.found.is_some(), "{host}");
        assert_no_secret(&format!("{found:?}"), ALL, "Debug of a lookup");
        assert_no_secret(&format!("{found:#?}"), ALL, "pretty Debug of a lookup");
    }
}

#[test]
fn a_malformed_pull_secret_is_reported_without_its_contents() {
    // Each puts a secret where the parser wants something else; parsers like to quote
    // the offending value in their messages.
    let secret = CONFIG_PASSWORD;
    let configs: Vec<Vec<u8>> = vec![
        // A string where an entry object belongs.
        docker_config(json!({ "reg.example": b64(&format!("user:{secret}")) })),
        docker_config(json!({ "reg.example": secret })),
        // A string where a string map belongs.
        serde_json::to_vec(&json!({ "auths": secret })).unwrap(),
        serde_json::to_vec(&json!({ "credHelpers": secret })).unwrap(),
        // Not base64, and base64 of something without a colon.
        docker_config(json!({ "reg.example": {"auth": format!("{secret}!")} })),
        docker_config(json!({ "reg.example": {"auth": b64(secret)} })),
        // Wrong types next to a secret.
        docker_config(json!({ "reg.example": {"auth": 5, "password": secret} })),
        docker_config(json!({ "reg.example": {"username": secret, "password": 7} })),
        // Not JSON at all, cut short in the middle of the secret.
        format!("{{\"auths\": {{\"reg.example\": {{\"auth\": \"{secret}").into_bytes(),
        format!("{{\"auths\": {secret}}}").into_bytes(),
        // The legacy shape with a string value.
        serde_json::to_vec(
            &json!({ "reg.example": {"auth": b64(&format!("u:{secret}"))}, "x": secret }),
        )
        .unwrap(),
    ];
    for bytes in configs {
        let options = ClientOptions {
            use_config_files: false,
            docker_config_json: Some(bytes.clone()),
            ..ClientOptions::default()
        };
        let what = String::from_utf8_lossy(&bytes).into_owned();
        match lookup_with_env(&options, "reg.example", &ConfigEnv::default()) {
            Err(err) => {
                assert_no_secret(err.message(), &[secret], &format!("message for {what}"));
                assert_no_secret(&err.to_string(), &[secret], &format!("Display for {what}"));
                assert_no_secret(&format!("{err:?}"), &[secret], &format!("Debug for {what}"));
            }
            Ok(found) => assert_no_secret(&format!("{found:?}"), &[secret], &what),
        }
    }
}

/// Records every log event of the library at the finest level while `body` runs.
async fn logged<F: std::future::Future<Output = ()>>(body: F) -> Vec<LogRecord> {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    logging::set_sink(
        Arc::new(move |r: &LogRecord| sink.lock().unwrap().push(r.clone())),
        LogLevel::Trace,
    );
    body.await;
    logging::clear_sink();
    let out = records.lock().unwrap().clone();
    out
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn registry_errors_and_logs_show_no_secret() {
    let bed = common::testbed();
    let mut secrets: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    let layout = common::Layout::new();
    let location = layout.image(
        "v1",
        (
            "application/vnd.module.wasm.config.v1+json",
            br#"{"type":"envoy_proxy"}"#,
        ),
        &[(
            "application/vnd.module.wasm.content.layer.v1+wasm",
            common::MODULE,
        )],
        json!({}),
    );
    let records = logged(async {
        let quiet = Client::new(ClientOptions {
            use_config_files: false,
            ..Default::default()
        })
        .unwrap();
        let image = quiet
            .pull(&location, &CallOptions::default())
            .await
            .unwrap();
        for server in ["basic", "token"] {
            let host = common::bed_str(&bed, &[server, "host"]);
            let user = common::bed_str(&bed, &[server, "username"]);
            let password = common::bed_str(&bed, &[server, "password"]);
            secrets.push(password.clone());
            let target = format!("{host}/secrets/{}:v1", common::unique(server));
            let client = |password: &str, in_config: bool| {
                let mut options = ClientOptions {
                    use_config_files: false,
                    insecure_registries: vec![host.clone()],
                    max_retries: 0,
                    read_timeout: Duration::from_secs(60),
                    ..ClientOptions::default()
                };
                if in_config {
                    options.docker_config_json = Some(docker_config(json!({
                        host.clone(): {"auth": b64(&format!("{user}:{password}"))}
                    })));
                } else {
                    options.credentials.insert(
                        host.clone(),
                        Credentials::Basic {
                            username: user.clone(),
                            password: password.into(),
                        },
                    );
                }
                Client::new(options).unwrap()
            };
            // The right password, from each source: pushes and pulls log a lot.
            for in_config in [false, true] {
                let ok = client(&password, in_config);
                ok.push(&image, &target, &CallOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("{server}: {e}"));
                ok.pull(&target, &CallOptions::default()).await.unwrap();
                assert_no_secret(
                    &format!("{:?}", ok.options()),
                    &[&password],
                    "Debug of a client's options",
                );
            }
            // A wrong password, from each source: the errors.
            for in_config in [false, true] {
                let err = client(PASSWORD, in_config)
                    .pull(&target, &CallOptions::default())
                    .await
                    .expect_err("a wrong password");
                for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
                    assert_no_secret(&text, &[PASSWORD, &password], "a registry error");
                }
            }
        }
    })
    .await;
    assert!(!records.is_empty(), "the library logged nothing at all");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for record in &records {
        let line = format!("{} {} {:?}", record.target, record.message, record);
        assert_no_secret(&line, &secrets, "a log record");
    }
}
