//! `wasm-image inspect LOCATION`: variant, digests, runtime config and module facts.

use clap::Args;
use serde_json::{json, Value};

use crate::failure::Outcome;
use crate::session::Session;
use crate::signing::{self, VerifyOptions};
use crate::summary;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(value_name = "LOCATION")]
    pub location: String,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

/// `a, b` or `-` for none.
fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

pub(crate) fn run(args: &InspectArgs, session: &mut Session<'_>) -> Outcome {
    let client = session.client(None)?;
    let location = args.location.as_str();
    let verify = args.verify.requirement()?;
    let image = session.call(&client, |c, call| async move {
        c.pull(location, &signing::with(call, verify, None)).await
    })?;
    let facts = wasm_image::module_facts::inspect(image.module())?;
    let info = image.info();
    let mut data = summary::image(vec![("location", json!(location))], info);
    data.insert(
        "module".into(),
        json!({
            "kind": facts.kind.name(),
            "size": facts.size,
            "imports": facts.imports,
            "exports": facts.exports,
            "proxy_abi_versions": facts.proxy_abi_versions,
        }),
    );
    let mut lines = vec![
        format!("location:         {location}"),
        format!("variant:          {}", info.variant.name()),
        format!(
            "manifest:         {} ({})",
            info.manifest_digest, info.manifest_media_type
        ),
    ];
    if let Some(index) = &info.index_digest {
        lines.push(format!("index:            {index}"));
    }
    lines.push(format!(
        "module:           {} ({} bytes, {})",
        info.module_digest,
        info.module_size,
        facts.kind.name()
    ));
    match &info.runtime_config {
        Some(rc) => {
            let runtime_type = rc.runtime_type.as_deref().filter(|t| !t.is_empty());
            lines.push(format!("runtime type:     {}", runtime_type.unwrap_or("-")));
            lines.push(format!("abi versions:     {}", listed(&rc.abi_versions)));
            lines.push(format!("root ids:         {}", listed(&rc.root_ids)));
        }
        None => lines.push("runtime config:   none".into()),
    }
    lines.push(format!(
        "proxy-wasm abi:   {}",
        listed(&facts.proxy_abi_versions)
    ));
    lines.push(format!(
        "imports/exports:  {} / {}",
        facts.imports.len(),
        facts.exports.len()
    ));
    for (key, value) in &info.annotations {
        lines.push(format!("annotation:       {key}={value}"));
    }
    session.out.result(&Value::Object(data), &lines)?;
    Ok(())
}
