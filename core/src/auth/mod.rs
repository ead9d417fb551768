//! Where credentials for a registry come from, in the documented order:
//!
//! 1. explicit credentials in [`ClientOptions::credentials`];
//! 2. a docker config JSON given as bytes (a Kubernetes `.dockerconfigjson` pull secret);
//! 3. when [`ClientOptions::use_config_files`]: `$DOCKER_CONFIG/config.json` (else
//!    `~/.docker/config.json`) with `auths`, `credHelpers` and `credsStore`, then
//!    `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` and
//!    `~/.config/containers/auth.json` (podman's files, same `auths` format);
//! 4. else anonymous.
//!
//! Lookups are synchronous (files, credential helper processes): call them from a blocking
//! thread. Helpers run through `std::process` (tokio's `process` feature would install a
//! SIGCHLD handler, and the library installs no signal handlers).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::location::DOCKER_HUB;
use crate::options::{ClientOptions, Credentials};

/// The key Docker Hub's credentials are stored under by `docker login`.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// A credential as the sources hold it. Richer than [`Credentials`]: docker configs may
/// hold an identity token (an OAuth2 refresh token exchanged at the token server).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Basic {
        username: String,
        password: String,
    },
    /// A registry token sent as is.
    Bearer(String),
    /// Docker's `identitytoken`: a refresh token for the token server's OAuth2 endpoint.
    IdentityToken {
        username: Option<String>,
        token: String,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Secret::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Secret::IdentityToken { .. } => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl From<&Credentials> for Secret {
    fn from(c: &Credentials) -> Secret {
        match c {
            Credentials::Basic { username, password } => Secret::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            Credentials::Bearer(token) => Secret::Bearer(token.clone()),
        }
    }
}

/// A credential and where it was found (for messages; never the secret itself).
#[derive(Debug, Clone)]
pub struct Found {
    pub secret: Secret,
    pub source: String,
}

/// The outcome of a lookup: maybe a credential, and every place that was searched.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub found: Option<Found>,
    pub searched: Vec<String>,
}

impl Lookup {
    /// `explicit credentials, docker config bytes, /root/.docker/config.json, …`
    pub fn searched_list(&self) -> String {
        if self.searched.is_empty() {
            "nowhere".to_string()
        } else {
            self.searched.join(", ")
        }
    }
}

/// The parts of the process environment the lookup reads; tests build their own.
#[derive(Debug, Clone, Default)]
pub struct ConfigEnv {
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `PATH` for finding `docker-credential-*` helpers; `None` inherits the process's.
    pub path: Option<OsString>,
}

impl ConfigEnv {
    pub fn from_process() -> ConfigEnv {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        ConfigEnv {
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            path: None,
        }
    }
}

/// Finds credentials for a registry host (`HOST[:PORT]`, Docker Hub as `docker.io`) using
/// the process environment.
pub fn lookup(options: &ClientOptions, host: &str) -> Result<Lookup> {
    lookup_with_env(options, host, &ConfigEnv::from_process())
}

pub fn lookup_with_env(options: &ClientOptions, host: &str, env: &ConfigEnv) -> Result<Lookup> {
    let mut out = Lookup::default();
    out.searched.push("explicit credentials".to_string());
    if let Some(c) = explicit(options, host) {
        out.found = Some(Found {
            secret: Secret::from(c),
            source: "explicit credentials".to_string(),
        });
        return Ok(out);
    }
    if let Some(bytes) = &options.docker_config_json {
        let source = "the docker config JSON given to the client";
        out.searched.push(source.to_string());
        let config = DockerConfig::parse(bytes).map_err(|e| {
            Error::invalid_argument(format!("{source} is not a valid docker config: {e}"))
        })?;
        // Helpers named in pull-secret bytes are not run: the bytes carry their secrets inline.
        if let Some(secret) = config.inline(host).map_err(|e| e.context(source))? {
            out.found = Some(Found {
                secret,
                source: source.to_string(),
            });
            return Ok(out);
        }
    }
    if !options.use_config_files {
        return Ok(out);
    }
    for (path, with_helpers) in config_files(env) {
        out.searched.push(path.display().to_string());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("reading credentials from {}", path.display()),
                    e,
                ))
            }
        };
        let config = DockerConfig::parse(&bytes).map_err(|e| {
            Error::invalid_argument(format!(
                "{} is not a valid docker/podman auth file: {e}",
                path.display()
            ))
        })?;
        let source = path.display().to_string();
        if with_helpers {
            if let Some(found) = config.via_helper(host, env, &source)? {
                out.found = Some(found);
                return Ok(out);
            }
        }
        if let Some(secret) = config.inline(host).map_err(|e| e.context(&source))? {
            out.found = Some(Found { secret, source });
            return Ok(out);
        }
    }
    Ok(out)
}

fn explicit<'a>(options: &'a ClientOptions, host: &str) -> Option<&'a Credentials> {
    if let Some(c) = options.credentials.get(host) {
        return Some(c);
    }
    options
        .credentials
        .iter()
        .find(|(key, _)| key_matches(key, host))
        .map(|(_, c)| c)
}

/// The files to read, in order, and whether their credential helpers may run.
fn config_files(env: &ConfigEnv) -> Vec<(PathBuf, bool)> {
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

fn normalize_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// How well a key matches: the exact spelling first, then `scheme://host[/v1/]`, then
/// `host/path` prefixes.
fn key_rank(key: &str, host: &str) -> Option<u8> {
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
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl DockerConfig {
    /// Parses `{"auths": …}` files, and the legacy `.dockercfg` shape (entries at the top).
    fn parse(bytes: &[u8]) -> std::result::Result<DockerConfig, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let obj = value.as_object().ok_or("expected a JSON object")?;
        let modern = ["auths", "credHelpers", "credsStore"]
            .iter()
            .any(|k| obj.contains_key(*k));
        if modern || obj.is_empty() || obj.values().any(|v| !v.is_object()) {
            return serde_json::from_value(value).map_err(|e| e.to_string());
        }
        let auths: BTreeMap<String, AuthEntry> =
            serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(DockerConfig {
            auths,
            ..DockerConfig::default()
        })
    }

    fn best_key<'a, V>(map: &'a BTreeMap<String, V>, host: &str) -> Option<(&'a String, &'a V)> {
        map.iter()
            .filter_map(|(k, v)| key_rank(k, host).map(|r| (r, k, v)))
            .min_by_key(|(r, _, _)| *r)
            .map(|(_, k, v)| (k, v))
    }

    /// The credential held in `auths` itself.
    fn inline(&self, host: &str) -> Result<Option<Secret>> {
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
    fn via_helper(&self, host: &str, env: &ConfigEnv, file: &str) -> Result<Option<Found>> {
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

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
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
            format!("credential helper {program} answered for {server} with something other than {{\"Username\",\"Secret\"}} JSON: {e}"),
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

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn opts() -> ClientOptions {
        ClientOptions::default()
    }

    fn env_with(dir: &Path) -> ConfigEnv {
        ConfigEnv {
            docker_config: Some(dir.join("docker")),
            home: Some(dir.join("home")),
            registry_auth_file: None,
            xdg_runtime_dir: None,
            path: Some(OsString::from(dir.join("bin"))),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn basic(u: &str, p: &str) -> Secret {
        Secret::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    fn found(options: &ClientOptions, host: &str, env: &ConfigEnv) -> Option<Secret> {
        lookup_with_env(options, host, env)
            .unwrap()
            .found
            .map(|f| f.secret)
    }

    #[test]
    fn auth_field_username_password_and_identity_token() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        write(
            &dir.path().join("docker/config.json"),
            &format!(
                r#"{{"auths": {{
                    "a.example": {{"auth": "{}"}},
                    "https://b.example": {{"username": "bob", "password": "pw"}},
                    "c.example:5000": {{"auth": "", "identitytoken": "refresh-me"}},
                    "d.example/some/path": {{"auth": "{}"}}
                }}}}"#,
                b64("alice:pa:ss"),
                b64("dora:x")
            ),
        );
        assert_eq!(
            found(&opts(), "a.example", &env),
            Some(basic("alice", "pa:ss"))
        );
        assert_eq!(found(&opts(), "b.example", &env), Some(basic("bob", "pw")));
        assert_eq!(
            found(&opts(), "c.example:5000", &env),
            Some(Secret::IdentityToken {
                username: None,
                token: "refresh-me".into()
            })
        );
        assert_eq!(found(&opts(), "d.example", &env), Some(basic("dora", "x")));
        assert_eq!(
            found(&opts(), "c.example", &env),
            None,
            "the port is part of the host"
        );
        let miss = lookup_with_env(&opts(), "nothing.example", &env).unwrap();
        assert!(miss.found.is_none());
        assert!(
            miss.searched_list().contains("docker/config.json"),
            "{}",
            miss.searched_list()
        );
    }

    #[test]
    fn docker_hub_spellings() {
        for key in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let env = env_with(dir.path());
            write(
                &dir.path().join("docker/config.json"),
                &format!(
                    r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
                    b64("hub:pw")
                ),
            );
            assert_eq!(
                found(&opts(), "docker.io", &env),
                Some(basic("hub", "pw")),
                "{key}"
            );
            assert_eq!(found(&opts(), "ghcr.io", &env), None, "{key}");
        }
        assert!(!key_matches("docker.io.evil.example", "docker.io"));
        assert!(!key_matches(
            "https://docker.io.evil.example/v1/",
            "docker.io"
        ));
    }

    #[test]
    fn precedence_explicit_then_bytes_then_files() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        let host = "reg.example:5000";
        write(
            &dir.path().join("docker/config.json"),
            &format!(
                r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
                b64("file:1")
            ),
        );
        let mut options = opts();
        assert_eq!(found(&options, host, &env), Some(basic("file", "1")));
        options.docker_config_json = Some(
            format!(
                r#"{{"auths": {{"http://{host}": {{"auth": "{}"}}}}}}"#,
                b64("bytes:2")
            )
            .into_bytes(),
        );
        let l = lookup_with_env(&options, host, &env).unwrap();
        assert_eq!(l.found.as_ref().unwrap().secret, basic("bytes", "2"));
        assert!(l.found.unwrap().source.contains("given to the client"));
        options.credentials.insert(
            host.into(),
            Credentials::Basic {
                username: "explicit".into(),
                password: "3".into(),
            },
        );
        let l = lookup_with_env(&options, host, &env).unwrap();
        assert_eq!(l.found.as_ref().unwrap().secret, basic("explicit", "3"));
        assert_eq!(l.found.unwrap().source, "explicit credentials");

        // Without config files only the explicit sources count.
        let mut no_files = opts();
        no_files.use_config_files = false;
        assert_eq!(found(&no_files, host, &env), None);
    }

    #[test]
    fn podman_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = env_with(dir.path());
        let host = "quay.example";
        let home_auth = dir.path().join("home/.config/containers/auth.json");
        write(
            &home_auth,
            &format!(
                r#"{{"auths": {{"{host}/org/repo": {{"auth": "{}"}}}}}}"#,
                b64("home:1")
            ),
        );
        assert_eq!(found(&opts(), host, &env), Some(basic("home", "1")));
        let xdg = dir.path().join("run");
        write(
            &xdg.join("containers/auth.json"),
            &format!(
                r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
                b64("xdg:2")
            ),
        );
        env.xdg_runtime_dir = Some(xdg);
        assert_eq!(found(&opts(), host, &env), Some(basic("xdg", "2")));
        let raf = dir.path().join("raf.json");
        write(
            &raf,
            &format!(
                r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
                b64("raf:3")
            ),
        );
        env.registry_auth_file = Some(raf);
        assert_eq!(found(&opts(), host, &env), Some(basic("raf", "3")));
        // docker's config wins over podman's files.
        write(
            &dir.path().join("docker/config.json"),
            &format!(
                r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
                b64("docker:4")
            ),
        );
        assert_eq!(found(&opts(), host, &env), Some(basic("docker", "4")));
        // ~/.docker is used when DOCKER_CONFIG is unset.
        env.docker_config = None;
        write(
            &dir.path().join("home/.docker/config.json"),
            &format!(
                r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
                b64("homedocker:5")
            ),
        );
        assert_eq!(found(&opts(), host, &env), Some(basic("homedocker", "5")));
    }

    #[test]
    fn kubernetes_secret_bytes_both_shapes() {
        let env = ConfigEnv::default();
        let mut options = opts();
        options.use_config_files = false;
        options.docker_config_json = Some(
            format!(
                r#"{{"auths":{{"ghcr.io":{{"username":"u","password":"p","auth":"{}"}}}}}}"#,
                b64("u:p")
            )
            .into_bytes(),
        );
        assert_eq!(found(&options, "ghcr.io", &env), Some(basic("u", "p")));
        // Legacy .dockercfg: entries at the top level.
        options.docker_config_json = Some(
            format!(
                r#"{{"https://ghcr.io":{{"auth":"{}","email":"x@y"}}}}"#,
                b64("old:q")
            )
            .into_bytes(),
        );
        assert_eq!(found(&options, "ghcr.io", &env), Some(basic("old", "q")));
        options.docker_config_json = Some(b"not json".to_vec());
        let err = lookup_with_env(&options, "ghcr.io", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        options.docker_config_json = Some(br#"{"auths":{"ghcr.io":{"auth":"!!!"}}}"#.to_vec());
        let err = lookup_with_env(&options, "ghcr.io", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(!err.message().contains("!!!") || err.message().contains("base64"));
    }

    fn install_helper(dir: &Path, name: &str, script: &str) {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    const HELPER: &str = r#"#!/bin/sh
[ "$1" = get ] || exit 2
read server
case "$server" in
  helped.example) echo '{"ServerURL":"helped.example","Username":"helper-user","Secret":"helper-secret"}' ;;
  https://index.docker.io/v1/) echo '{"Username":"<token>","Secret":"identity"}' ;;
  store.example) echo '{"Username":"store-user","Secret":"store-secret"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

    #[test]
    fn credential_helpers_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        install_helper(dir.path(), "test", HELPER);
        write(
            &dir.path().join("docker/config.json"),
            &format!(
                r#"{{"auths": {{"helped.example": {{"auth": "{}"}}, "fallback.example": {{"auth": "{}"}}}},
                    "credHelpers": {{"helped.example": "test", "docker.io": "test"}},
                    "credsStore": "test"}}"#,
                b64("inline:ignored"),
                b64("inline:fb")
            ),
        );
        let l = lookup_with_env(&opts(), "helped.example", &env).unwrap();
        let f = l.found.unwrap();
        assert_eq!(f.secret, basic("helper-user", "helper-secret"));
        assert!(f.source.contains("docker-credential-test"), "{}", f.source);
        assert_eq!(
            found(&opts(), "docker.io", &env),
            Some(Secret::IdentityToken {
                username: None,
                token: "identity".into()
            })
        );
        // credsStore covers hosts without a credHelpers entry.
        assert_eq!(
            found(&opts(), "store.example", &env),
            Some(basic("store-user", "store-secret"))
        );
        // The store has nothing: fall back to the inline entry, then to nothing.
        assert_eq!(
            found(&opts(), "fallback.example", &env),
            Some(basic("inline", "fb"))
        );
        assert_eq!(found(&opts(), "unknown.example", &env), None);
    }

    #[test]
    fn missing_or_broken_helper_is_unauthorized_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        write(
            &dir.path().join("docker/config.json"),
            r#"{"credHelpers": {"h.example": "absent"}}"#,
        );
        let err = lookup_with_env(&opts(), "h.example", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(
            err.message().contains("docker-credential-absent"),
            "{}",
            err.message()
        );

        install_helper(dir.path(), "broken", "#!/bin/sh\necho 'not json'\n");
        write(
            &dir.path().join("docker/config.json"),
            r#"{"credHelpers": {"h.example": "broken"}}"#,
        );
        let err = lookup_with_env(&opts(), "h.example", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(
            err.message().contains("docker-credential-broken"),
            "{}",
            err.message()
        );

        let err = run_helper("../evil", "x", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn malformed_config_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        write(&dir.path().join("docker/config.json"), "{broken");
        let err = lookup_with_env(&opts(), "x.example", &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("config.json"), "{}", err.message());
    }

    #[test]
    fn explicit_keys_accept_url_spellings() {
        let mut options = opts();
        options.credentials.insert(
            "https://index.docker.io/v1/".into(),
            Credentials::Bearer("t".into()),
        );
        assert_eq!(
            found(&options, "docker.io", &ConfigEnv::default()),
            Some(Secret::Bearer("t".into()))
        );
        let dbg = format!("{:?}", Secret::Bearer("t0ps3cret".into()));
        assert!(!dbg.contains("t0ps3cret"));
    }
}
