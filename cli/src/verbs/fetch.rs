//! `wasm-image fetch LOCATION`: a module into the shared cache; prints its path.

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use wasm_image::{Cache, CacheOptions, FetchOptions, Policy};

use crate::client::seconds;
use crate::failure::{Failure, Outcome};
use crate::session::Session;
use crate::signing::{self, VerifyOptions};
use crate::summary;

/// The option every cache verb takes.
#[derive(Args, Debug)]
pub struct CacheDir {
    #[arg(
        long,
        value_name = "DIR",
        help = "the cache directory (default: $XDG_CACHE_HOME/wasm-image)"
    )]
    pub cache_dir: Option<PathBuf>,
}

/// How long a tag's resolution is trusted when `--tag-ttl` is not given.
const DEFAULT_TAG_TTL: f64 = 60.0;

impl CacheDir {
    /// Opens (creating) the cache the options name.
    pub(crate) fn open(
        &self,
        tag_ttl: Option<f64>,
        stale_on_error: bool,
    ) -> Result<Cache, Failure> {
        let tag_ttl = seconds("tag_ttl", tag_ttl.unwrap_or(DEFAULT_TAG_TTL))?;
        Ok(Cache::open(CacheOptions {
            dir: self.cache_dir.clone(),
            tag_ttl,
            stale_on_error,
            ..CacheOptions::default()
        })?)
    }
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    #[arg(value_name = "LOCATION")]
    pub location: String,
    #[arg(long, default_value = "if-not-present", value_parser = ["if-not-present", "always", "never"],
          help = "pull policy (default: if-not-present)", hide_default_value = true)]
    pub policy: String,
    #[arg(
        long,
        value_name = "DIGEST",
        help = "expected module or manifest digest, with or without the sha256: prefix"
    )]
    pub sha256: Option<String>,
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help = "how long a tag's resolution is trusted (default: 60)"
    )]
    pub tag_ttl: Option<f64>,
    #[arg(
        long,
        help = "serve the last cached module when the registry cannot be reached"
    )]
    pub stale_on_error: bool,
    #[command(flatten)]
    pub cache: CacheDir,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

pub(crate) fn run(args: &FetchArgs, session: &mut Session<'_>) -> Outcome {
    let cache = args.cache.open(args.tag_ttl, args.stale_on_error)?;
    let client = session.client(Some(cache))?;
    let options = FetchOptions {
        policy: args.policy.parse::<Policy>()?,
        expected_digest: args
            .sha256
            .as_deref()
            .map(wasm_image::cache::parse_expected_digest)
            .transpose()?,
        stale_on_error: None,
    };
    let verify = args.verify.requirement()?;
    let location = args.location.as_str();
    let options = &options;
    // The entry holds a lease on the module file until it is dropped, after printing.
    let entry = session.call(&client, |c, call| async move {
        c.fetch(location, options, &signing::with(call, verify, None))
            .await
    })?;
    let path = entry.path().to_string_lossy().into_owned();
    let data = json!({
        "location": location,
        "path": path,
        "module_digest": entry.module_digest().to_string(),
        "size": entry.size(),
        "manifest_digest": entry.manifest_digest().map(ToString::to_string),
        "index_digest": entry.index_digest().map(ToString::to_string),
        "variant": entry.variant(),
        "runtime_config": summary::runtime_config(entry.runtime_config()),
        "stale": entry.stale(),
    });
    if entry.stale() && !session.out.as_json {
        session.out.stderr_line(&format!(
            "warning: {location} could not be re-resolved; served the cached module (stale)"
        ));
    }
    session.out.result(&data, &[path])?;
    Ok(())
}
