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

mod config_files;
mod helpers;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::options::{ClientOptions, Credentials};

use self::config_files::{config_files, key_matches, DockerConfig};

/// The key Docker Hub's credentials are stored under by `docker login`.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

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

/// Describes a JSON error without the text it quotes. serde_json puts an offending value
/// in its message (`invalid type: string "dXNlcjpw…", expected …`), and in a docker config
/// or a credential helper's answer that value is usually a credential.
fn json_error_without_values(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not valid JSON",
        Category::Eof => "JSON cut short",
        Category::Data => "JSON of the wrong shape (a value of the wrong type or a missing field)",
    };
    if e.line() == 0 {
        what.to_string()
    } else {
        format!("{what} at line {}, column {}", e.line(), e.column())
    }
}

#[cfg(test)]
mod tests {
    use super::helpers::run_helper;
    use super::*;
    use crate::error::ErrorKind;
    use base64::Engine as _;
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
