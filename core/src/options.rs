//! Client-wide options and the per-call options every operation takes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::digest::Platform;
use crate::limits::Limits;
use crate::progress::Progress;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// A registry bearer token used as is (no token exchange).
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

#[derive(Clone)]
pub struct ClientOptions {
    /// Explicit credentials by registry host (`HOST[:PORT]`, Docker Hub as `docker.io`);
    /// they win over every other source.
    pub credentials: BTreeMap<String, Credentials>,
    /// A docker config JSON given as bytes, e.g. a Kubernetes `.dockerconfigjson` secret.
    pub docker_config_json: Option<Vec<u8>>,
    /// Read `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`, `$REGISTRY_AUTH_FILE`
    /// and podman's `auth.json` (with credential helpers) when nothing explicit matches.
    pub use_config_files: bool,
    /// Registries (`HOST[:PORT]`) reached over plain HTTP. Nothing is ever downgraded
    /// automatically.
    pub insecure_registries: Vec<String>,
    /// Extra trusted CA certificates, PEM.
    pub ca_certificates_pem: Vec<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response; a slow but moving download is fine.
    pub read_timeout: Duration,
    /// Retries after the first try, on 429, 5xx and broken connections.
    pub max_retries: u32,
    pub retry_base_delay: Duration,
    /// Cap for one backoff wait, and for a `Retry-After` the server asks for.
    pub retry_max_delay: Duration,
    /// Longest one call (pull, push, copy, resolve) may take in all, retries included; it
    /// then fails with `TIMEOUT`. `read_timeout` bounds each wait for bytes, which a
    /// server trickling a byte at a time never exceeds: this bounds the whole. `None`:
    /// no bound (a large module on a slow link may rightly take long).
    pub call_timeout: Option<Duration>,
    pub limits: Limits,
    /// Mirrors tried in order before each registry (`registries.conf` style).
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// The platform to prefer when an index offers several non-Wasm manifests.
    pub platform: Option<Platform>,
    pub user_agent: String,
    /// The module cache `fetch` uses; `None`: the default directory
    /// (`$XDG_CACHE_HOME/wasm-image`).
    pub cache: Option<crate::cache::handle::Cache>,
    /// Which locations need a valid cosign signature before a module is returned or
    /// cached, and whose. Default: empty (nothing is verified).
    pub verification: crate::signature::VerificationPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: BTreeMap::new(),
            docker_config_json: None,
            use_config_files: true,
            insecure_registries: Vec::new(),
            ca_certificates_pem: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(30),
            call_timeout: None,
            limits: Limits::default(),
            mirrors: BTreeMap::new(),
            platform: None,
            user_agent: concat!("wasm-image/", env!("CARGO_PKG_VERSION")).to_string(),
            cache: None,
            verification: Default::default(),
        }
    }
}

/// Everything but secrets: credentials show their user name only, and the docker config
/// bytes (a pull secret) only their length. Every field is named here, so a new field
/// cannot be added without deciding how it prints.
impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ClientOptions {
            credentials,
            docker_config_json,
            use_config_files,
            insecure_registries,
            ca_certificates_pem,
            connect_timeout,
            read_timeout,
            max_retries,
            retry_base_delay,
            retry_max_delay,
            call_timeout,
            limits,
            mirrors,
            platform,
            user_agent,
            cache,
            verification,
        } = self;
        f.debug_struct("ClientOptions")
            .field("credentials", credentials)
            .field(
                "docker_config_json",
                &docker_config_json
                    .as_ref()
                    .map(|bytes| Redacted(bytes.len())),
            )
            .field("use_config_files", use_config_files)
            .field("insecure_registries", insecure_registries)
            .field(
                "ca_certificates_pem",
                &format_args!("<{} certificates>", ca_certificates_pem.len()),
            )
            .field("connect_timeout", connect_timeout)
            .field("read_timeout", read_timeout)
            .field("max_retries", max_retries)
            .field("retry_base_delay", retry_base_delay)
            .field("retry_max_delay", retry_max_delay)
            .field("call_timeout", call_timeout)
            .field("limits", limits)
            .field("mirrors", mirrors)
            .field("platform", platform)
            .field("user_agent", user_agent)
            .field("cache", cache)
            .field("verification", verification)
            .finish()
    }
}

/// Stands for secret bytes in `Debug` output.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// Options of a single call.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Overrides the client's platform preference for this call.
    pub platform: Option<Platform>,
    pub progress: Option<Progress>,
    /// Where `pull` puts the module: memory the binding owns, instead of a fresh `Vec`.
    pub module_allocator: Option<crate::embed::buffer::ModuleAllocator>,
    /// Overrides the client's verification policy for this call (pull, fetch):
    /// `Requirement::None` checks nothing, `Signed` requires that trust.
    pub verify: Option<crate::signature::Requirement>,
    /// `push` and `copy` sign the stored manifest with this key and stores the signature as
    /// cosign does (tag `sha256-<hex>.sig` beside the image).
    pub sign_with: Option<std::sync::Arc<crate::signature::SigningKey>>,
}
