//! The options every verb takes, before or after the verb (read in `client.rs`).

use std::path::PathBuf;

use clap::Args;

/// Options every verb takes, before or after the verb.
#[derive(Args, Debug, Default)]
pub struct GlobalOptions {
    #[arg(
        long,
        global = true,
        help = "print results (and errors) as JSON on stdout"
    )]
    pub json: bool,
    #[arg(
        short,
        long,
        global = true,
        help = "print nothing on success, and no progress"
    )]
    pub quiet: bool,
    #[arg(
        long,
        global = true,
        value_name = "REGISTRY",
        help = "reach this registry (HOST[:PORT]) over plain HTTP; repeatable"
    )]
    pub insecure: Vec<String>,
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help = "also trust this PEM CA certificate; repeatable"
    )]
    pub ca_cert: Vec<PathBuf>,
    #[arg(
        long,
        global = true,
        value_name = "OS/ARCH[/VARIANT]",
        help = "platform to choose when an index offers several"
    )]
    pub platform: Option<String>,
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help = "docker config JSON with credentials (tried before the usual files)"
    )]
    pub authfile: Option<PathBuf>,
    #[arg(
        long,
        global = true,
        help = "do not read ~/.docker/config.json, $REGISTRY_AUTH_FILE or podman's auth.json"
    )]
    pub no_config_files: bool,
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help = "longest wait for a connection to a registry"
    )]
    pub connect_timeout: Option<f64>,
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help = "longest wait for the next bytes of a response"
    )]
    pub read_timeout: Option<f64>,
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help = "longest one command may take in all (no bound unless given)"
    )]
    pub call_timeout: Option<f64>,
    #[arg(
        long,
        global = true,
        value_name = "N",
        allow_negative_numbers = true,
        help = "retries after a failed request (429, 5xx, broken connections)"
    )]
    pub retries: Option<u32>,
}
