//! `wasm-image cache list|gc|verify`: the module cache's contents and upkeep.

use std::time::UNIX_EPOCH;

use clap::{Args, ValueEnum};
use serde_json::json;
use wasm_image::Cache;

use crate::client::seconds;
use crate::failure::Outcome;
use crate::local_time;
use crate::session::Session;
use crate::verbs::fetch::CacheDir;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Action {
    List,
    Gc,
    Verify,
}

#[derive(Args, Debug)]
pub struct CacheArgs {
    pub action: Action,
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        help = "gc: evict least recently used modules down to N bytes"
    )]
    pub max_bytes: Option<u64>,
    #[arg(
        long,
        value_name = "SECONDS",
        allow_negative_numbers = true,
        help = "gc: evict modules unused for longer"
    )]
    pub max_age: Option<f64>,
    #[command(flatten)]
    pub cache: CacheDir,
}

pub(crate) fn run(args: &CacheArgs, session: &mut Session<'_>) -> Outcome {
    let cache = args.cache.open(None, false)?;
    // The client checks the global options, as for every verb, though these need no
    // registry.
    session.client(Some(cache.clone()))?;
    match args.action {
        Action::List => list(&cache, session),
        Action::Gc => gc(args, &cache, session),
        Action::Verify => verify(&cache, session),
    }
}

fn list(cache: &Cache, session: &Session<'_>) -> Outcome {
    let entries = cache.entries()?;
    let dir = cache.dir().to_string_lossy().into_owned();
    let mut lines = Vec::new();
    let mut listed = Vec::new();
    for e in &entries {
        let lease = if e.leased { "  (in use)" } else { "" };
        lines.push(format!(
            "{}  {:>12}  {}{lease}",
            e.module_digest,
            e.size,
            local_time::format(e.last_used)
        ));
        let last_used = e
            .last_used
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        listed.push(json!({
            "module_digest": e.module_digest.to_string(),
            "size": e.size,
            "path": e.path.to_string_lossy(),
            "last_used": last_used,
            "manifest_digests": e.manifest_digests.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "leased": e.leased,
        }));
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    lines.push(format!("{} modules, {total} bytes in {dir}", entries.len()));
    session
        .out
        .result(&json!({"dir": dir, "entries": listed}), &lines)?;
    Ok(())
}

fn gc(args: &CacheArgs, cache: &Cache, session: &Session<'_>) -> Outcome {
    let max_age = args.max_age.map(|s| seconds("max_age", s)).transpose()?;
    let report = cache.gc_with(args.max_bytes, max_age)?;
    let removed: Vec<String> = report
        .removed
        .iter()
        .map(|r| r.module_digest.to_string())
        .collect();
    let mut lines: Vec<String> = removed.iter().map(|d| format!("removed {d}")).collect();
    lines.push(format!(
        "removed {} modules ({} bytes), kept {} in use, cleaned {} leftovers",
        removed.len(),
        report.freed_bytes,
        report.kept_leased,
        report.leftovers_removed
    ));
    session.out.result(
        &json!({
            "removed": removed,
            "freed_bytes": report.freed_bytes,
            "kept_leased": report.kept_leased,
            "leftovers_removed": report.leftovers_removed,
        }),
        &lines,
    )?;
    Ok(())
}

fn verify(cache: &Cache, session: &Session<'_>) -> Outcome {
    let report = cache.verify()?;
    let dropped: Vec<String> = report.dropped.iter().map(ToString::to_string).collect();
    let mut lines: Vec<String> = dropped
        .iter()
        .map(|d| format!("dropped damaged {d}"))
        .collect();
    lines.push(format!(
        "checked {} modules, dropped {}",
        report.checked,
        dropped.len()
    ));
    session.out.result(
        &json!({"checked": report.checked, "dropped": dropped}),
        &lines,
    )?;
    Ok(())
}
