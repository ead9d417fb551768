//! Network paths a plain registry test does not take, against the real test bed: an
//! `identitytoken` from a docker config exchanged at the token server, and requests
//! through a real forward proxy named by `HTTP_PROXY` / `HTTPS_PROXY` and bypassed by
//! `NO_PROXY`.
//!
//! Proxy variables are read when a client is made, and changing a process's environment
//! while other test threads run is not safe: each proxy case runs this test binary again
//! as a child process with its own environment, running one ignored test (`child_pull`)
//! that pulls the location it is given.

mod common;

use std::process::Command;

use serde_json::{json, Value};
use wasm_image::options::{CallOptions, ClientOptions};
use wasm_image::{Client, ErrorKind};

use common::{bed_str, testbed};

fn get_json(url: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sf", "--noproxy", "*", url])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "GET {url} failed");
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

fn identity_client(host: &str, identity_token: &str) -> Client {
    let config = json!({"auths": {host: {"identitytoken": identity_token}}});
    Client::new(ClientOptions {
        use_config_files: false,
        insecure_registries: vec![host.to_string()],
        docker_config_json: Some(config.to_string().into_bytes()),
        max_retries: 0,
        ..ClientOptions::default()
    })
    .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
async fn an_identity_token_from_a_docker_config_is_exchanged_for_a_registry_token() {
    let bed = testbed();
    let host = bed_str(&bed, &["token", "host"]);
    let log = format!("{}/__log__", bed_str(&bed, &["token", "token_server"]));
    let location = bed_str(&bed, &["fixtures", "token-private"]);
    let module = std::fs::read(bed_str(&bed, &["fixtures", "module"])).unwrap();

    let before = get_json(&log).as_array().unwrap().len();
    let good = identity_client(&host, &bed_str(&bed, &["token", "identity_token"]));
    let image = good
        .pull(&location, &CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{location}: {e}"));
    assert_eq!(image.module().as_ref(), module.as_slice());
    let entries = get_json(&log);
    let refreshes: Vec<&Value> = entries.as_array().unwrap()[before..]
        .iter()
        .filter(|e| e["grant"] == "refresh_token")
        .collect();
    assert!(
        refreshes
            .iter()
            .any(|e| e["status"] == 200 && e["method"] == "POST"),
        "no refresh_token exchange: {entries}"
    );

    let wrong = identity_client(&host, "not-the-identity-token");
    let err = wrong
        .pull(&location, &CallOptions::default())
        .await
        .map(drop)
        .expect_err("a wrong identity token is refused");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains("rejected"), "{err}");
}

/// Runs `child_pull` in a child process with `env`, pulling `location`; returns whether
/// it succeeded, and its output.
fn pull_in_child(location: &str, ca_cert: Option<&str>, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "child_pull",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WASM_IMAGE_CHILD_PULL", location)
        .env("WASM_IMAGE_CHILD_CA", ca_cert.unwrap_or_default());
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("the test binary runs again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("1 passed"), text)
}

/// Not a test of its own: the child process of the proxy test.
#[tokio::test]
#[ignore = "run by proxies_from_the_environment_are_used_and_bypassed in a child process"]
async fn child_pull() {
    let location = std::env::var("WASM_IMAGE_CHILD_PULL").expect("run by the proxy test");
    let ca = std::env::var("WASM_IMAGE_CHILD_CA").unwrap_or_default();
    let host = location.split('/').next().unwrap().to_string();
    let mut options = ClientOptions {
        use_config_files: false,
        max_retries: 0,
        ..ClientOptions::default()
    };
    if ca.is_empty() {
        options.insecure_registries = vec![host];
    } else {
        options.ca_certificates_pem = vec![std::fs::read(ca).unwrap()];
    }
    Client::new(options)
        .unwrap()
        .pull(&location, &CallOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{location}: {e}"));
}

fn proxied_targets(log: &str) -> Vec<(String, String)> {
    get_json(log)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(testbed),
    ignore = "needs the test bed: WASM_IMAGE_TESTBED (tests/support/testbed.py)"
)]
fn proxies_from_the_environment_are_used_and_bypassed() {
    let bed = testbed();
    let proxy = bed_str(&bed, &["proxy", "url"]);
    let log = bed_str(&bed, &["proxy", "log"]);
    let plain_host = bed_str(&bed, &["plain", "host"]);
    let plain = bed_str(&bed, &["fixtures", "buildah-oci"]);
    let tls_host = bed_str(&bed, &["tls", "host"]);
    let tls = bed_str(&bed, &["fixtures", "tls"]);
    let ca = bed_str(&bed, &["tls", "ca_cert"]);
    // Other tests may use the proxy at the same time: look only for our targets, and
    // count what reached them before and after.
    let count = |method: &str, target: &str| {
        proxied_targets(&log)
            .iter()
            .filter(|(m, t)| m == method && t == target)
            .count()
    };

    // HTTPS_PROXY: https requests go through a CONNECT tunnel.
    let before = count("CONNECT", &tls_host);
    let (ok, out) = pull_in_child(&tls, Some(&ca), &[("HTTPS_PROXY", &proxy)]);
    assert!(ok, "pull through HTTPS_PROXY failed:\n{out}");
    assert!(
        count("CONNECT", &tls_host) > before,
        "no tunnel to {tls_host}"
    );

    // HTTP_PROXY (lower case, as commonly set): plain http requests are forwarded.
    let before = count("GET", &plain_host);
    let (ok, out) = pull_in_child(&plain, None, &[("http_proxy", &proxy)]);
    assert!(ok, "pull through http_proxy failed:\n{out}");
    assert!(
        count("GET", &plain_host) > before,
        "nothing forwarded to {plain_host}"
    );

    // NO_PROXY naming the registry: straight there, the proxy sees nothing of it.
    let before = (count("GET", &plain_host), count("CONNECT", &tls_host));
    for (location, ca) in [(&plain, None), (&tls, Some(ca.as_str()))] {
        let (ok, out) = pull_in_child(
            location,
            ca,
            &[
                ("HTTP_PROXY", &proxy),
                ("HTTPS_PROXY", &proxy),
                ("NO_PROXY", "127.0.0.1"),
            ],
        );
        assert!(ok, "pull of {location} with NO_PROXY failed:\n{out}");
    }
    assert_eq!(
        (count("GET", &plain_host), count("CONNECT", &tls_host)),
        before,
        "NO_PROXY was not honoured"
    );

    // A proxy that is down fails the call as a network error, not silently direct.
    let (ok, out) = pull_in_child(&plain, None, &[("HTTP_PROXY", "http://127.0.0.1:9")]);
    assert!(
        !ok && out.contains("NETWORK"),
        "expected a network failure:\n{out}"
    );
}
