//! Credential helpers (`docker-credential-NAME get`): run with a time bound, their
//! answers parsed, their failures named.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{json_error_without_values, ConfigEnv, Secret};
use crate::error::{Error, ErrorKind, Result};

pub(super) const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
pub(super) struct HelperAnswer {
    #[serde(rename = "Username", default)]
    pub(super) username: String,
    #[serde(rename = "Secret", default)]
    pub(super) secret: String,
}

/// Runs `docker-credential-<helper> get` with the server URL on stdin. `Ok(None)` when the
/// helper has no credential for that server.
pub fn run_helper(helper: &str, server: &str, env: &ConfigEnv) -> Result<Option<Secret>> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::invalid_argument(format!(
            "credential helper name {helper:?} is not valid"
        )));
    }
    let program = format!("docker-credential-{helper}");
    let mut command = Command::new(&program);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = &env.path {
        command.env("PATH", path);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!("credential helper {program} is configured for {server} but was not found on PATH; install it or remove it from the docker config"),
            ))
        }
        Err(e) => return Err(Error::io(format!("starting credential helper {program}"), e)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is not an error of ours.
        let _ = stdin.write_all(server.as_bytes());
    }
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.by_ref().take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.by_ref().take(1 << 16).read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "credential helper {program} did not answer within {} s",
                        HELPER_TIMEOUT.as_secs()
                    ),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(Error::io(
                    format!("waiting for credential helper {program}"),
                    e,
                ))
            }
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let said = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout })
            .trim()
            .to_string();
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "credential helper {program} failed for {server} ({status}): {}",
                truncate(&said, 200)
            ),
        ));
    }
    let answer: HelperAnswer = serde_json::from_slice(&stdout).map_err(|e| {
        Error::new(
            ErrorKind::Unauthorized,
            format!("credential helper {program} answered for {server} with something other than {{\"Username\",\"Secret\"}} JSON: {}", json_error_without_values(&e)),
        )
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Secret::IdentityToken {
            username: None,
            token: answer.secret,
        }
    } else {
        Secret::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

pub(super) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
