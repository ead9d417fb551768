//! Docker and podman config files: the `auths` shapes they hold, and which key matches
//! which registry (Docker Hub's spellings, URL forms).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::helpers::run_helper;
use super::{json_error_without_values, ConfigEnv, Found, Secret, DOCKER_HUB_SERVER};
use crate::error::{Error, Result};
use crate::location::DOCKER_HUB;

/// The files to read, in order, and whether their credential helpers may run.
pub(super) fn config_files(env: &ConfigEnv) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    match (&env.docker_config, &env.home) {
        (Some(dir), _) => files.push((dir.join("config.json"), true)),
        (None, Some(home)) => files.push((home.join(".docker").join("config.json"), true)),
        (None, None) => {}
    }
    if let Some(f) = &env.registry_auth_file {
        files.push((f.clone(), false));
    }
    if let Some(dir) = &env.xdg_runtime_dir {
        files.push((dir.join("containers").join("auth.json"), false));
    }
    if let Some(home) = &env.home {
        files.push((
            home.join(".config").join("containers").join("auth.json"),
            false,
        ));
    }
    files
}

/// Whether a config key (`host`, `https://host`, `host/path`, Docker Hub's spellings)
/// names the registry host.
pub fn key_matches(key: &str, host: &str) -> bool {
    let normalized = normalize_key(key);
    if host == DOCKER_HUB || host == "index.docker.io" || host == "registry-1.docker.io" {
        return matches!(
            normalized,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        );
    }
    normalized == host
}

pub(super) fn normalize_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// How well a key matches: the exact spelling first, then `scheme://host[/v1/]`, then
/// `host/path` prefixes.
pub(super) fn key_rank(key: &str, host: &str) -> Option<u8> {
    if !key_matches(key, host) {
        return None;
    }
    if key == host {
        return Some(0);
    }
    let bare = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let path = bare.split_once('/').map_or("", |(_, p)| p);
    Some(if matches!(path.trim_end_matches('/'), "" | "v1" | "v2") {
        1
    } else {
        2
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DockerConfig {
    #[serde(default)]
    pub(super) auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    pub(super) cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthEntry {
    #[serde(default)]
    pub(super) auth: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password: Option<String>,
    #[serde(default)]
    pub(super) identitytoken: Option<String>,
    #[serde(default)]
    pub(super) registrytoken: Option<String>,
}

impl DockerConfig {
    /// Parses `{"auths": …}` files, and the legacy `.dockercfg` shape (entries at the top).
    pub(super) fn parse(bytes: &[u8]) -> std::result::Result<DockerConfig, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| json_error_without_values(&e))?;
        let obj = value.as_object().ok_or("expected a JSON object")?;
        let modern = ["auths", "credHelpers", "credsStore"]
            .iter()
            .any(|k| obj.contains_key(*k));
        if modern || obj.is_empty() || obj.values().any(|v| !v.is_object()) {
            return serde_json::from_value(value).map_err(|e| json_error_without_values(&e));
        }
        let auths: BTreeMap<String, AuthEntry> =
            serde_json::from_value(value).map_err(|e| json_error_without_values(&e))?;
        Ok(DockerConfig {
            auths,
            ..DockerConfig::default()
        })
    }

    pub(super) fn best_key<'a, V>(
        map: &'a BTreeMap<String, V>,
        host: &str,
    ) -> Option<(&'a String, &'a V)> {
        map.iter()
            .filter_map(|(k, v)| key_rank(k, host).map(|r| (r, k, v)))
            .min_by_key(|(r, _, _)| *r)
            .map(|(_, k, v)| (k, v))
    }

    /// The credential held in `auths` itself.
    pub(super) fn inline(&self, host: &str) -> Result<Option<Secret>> {
        let Some((key, entry)) = Self::best_key(&self.auths, host) else {
            return Ok(None);
        };
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            let username = entry.username.clone().filter(|u| !u.is_empty());
            return Ok(Some(Secret::IdentityToken {
                username,
                token: token.to_string(),
            }));
        }
        if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Secret::Bearer(token.to_string())));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "the \"auth\" of {key:?} is not base64 of \"user:password\""
                    ))
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                Error::invalid_argument(format!(
                    "the \"auth\" of {key:?} does not decode to \"user:password\""
                ))
            })?;
            return Ok(Some(Secret::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Secret::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }

    /// The credential from `credHelpers[host]`, else from `credsStore`.
    pub(super) fn via_helper(
        &self,
        host: &str,
        env: &ConfigEnv,
        file: &str,
    ) -> Result<Option<Found>> {
        let helper = match Self::best_key(&self.cred_helpers, host) {
            Some((_, helper)) => helper.as_str(),
            None => match self.creds_store.as_deref().filter(|s| !s.is_empty()) {
                Some(store) => store,
                None => return Ok(None),
            },
        };
        // What `docker login` stores: Docker Hub under its v1 URL, others by host.
        let server = if key_matches(DOCKER_HUB, host) {
            DOCKER_HUB_SERVER
        } else {
            host
        };
        let secret = run_helper(helper, server, env)?;
        Ok(secret.map(|secret| Found {
            secret,
            source: format!("credential helper docker-credential-{helper} (configured in {file})"),
        }))
    }
}
