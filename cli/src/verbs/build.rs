//! `wasm-image build MODULE.wasm -t LOCATION`: build an image and store it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use wasm_image::{BuildOptions, ManifestFormat, Variant};

use crate::failure::{Failure, Outcome};
use crate::session::Session;
use crate::signing::{self, SignOptions};
use crate::summary;

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[arg(value_name = "MODULE.wasm", help = "the Wasm module file")]
    pub module: PathBuf,
    #[arg(
        short = 't',
        long,
        value_name = "LOCATION",
        help = "where to store the image"
    )]
    pub tag: String,
    #[arg(long, default_value = "oci", value_parser = ["oci", "compat"],
          help = "Wasm Image spec variant (default: oci)", hide_default_value = true)]
    pub variant: String,
    #[arg(long, default_value = "oci", value_parser = ["oci", "docker"],
          help = "manifest format; docker needs --variant compat (default: oci)",
          hide_default_value = true)]
    pub format: String,
    #[arg(
        long = "type",
        value_name = "T",
        help = "runtime type (default: envoy_proxy)"
    )]
    pub runtime_type: Option<String>,
    #[arg(
        long,
        value_name = "V",
        help = "ABI version; repeatable (default: the module's proxy_abi_version_* exports)"
    )]
    pub abi: Vec<String>,
    #[arg(long, value_name = "R", help = "root id; repeatable")]
    pub root_id: Vec<String>,
    #[arg(long, value_name = "K=V", help = "manifest annotation; repeatable")]
    pub annotation: Vec<String>,
    #[command(flatten)]
    pub sign: SignOptions,
}

fn annotations(items: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut annotations = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                annotations.insert(key.to_string(), value.to_string());
            }
            _ => {
                return Err(Failure::Usage(format!(
                    "--annotation {item:?} must be KEY=VALUE"
                )))
            }
        }
    }
    Ok(annotations)
}

pub(crate) fn run(args: &BuildArgs, session: &mut Session<'_>) -> Outcome {
    let client = session.client(None)?;
    let options = BuildOptions {
        variant: Some(args.variant.parse::<Variant>()?),
        runtime_type: args.runtime_type.clone(),
        abi_versions: args.abi.clone(),
        root_ids: args.root_id.clone(),
        annotations: annotations(&args.annotation)?,
        manifest_format: args.format.parse::<ManifestFormat>()?,
        source_date_epoch: None,
    };
    let sign_with = args.sign.key()?;
    let module = wasm_image::files::read_input(&args.module, "module")?;
    let image = wasm_image::build(module, &options)?;
    let built = &image;
    let digest = session.call(&client, |c, call| async move {
        c.push(built, &args.tag, &signing::with(call, None, sign_with))
            .await
    })?;
    let mut data = summary::image(vec![("location", json!(args.tag))], image.info());
    data.insert("manifest_digest".into(), json!(digest.to_string()));
    session.out.result(
        &Value::Object(data),
        &[
            format!("built {} image {digest}", image.variant().name()),
            format!("stored at {}", args.tag),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_need_a_key_and_an_equals_sign() {
        let parsed = annotations(&["a=1".into(), "b=".into(), "c=x=y".into()]).unwrap();
        assert_eq!(parsed["a"], "1");
        assert_eq!(parsed["b"], "");
        assert_eq!(parsed["c"], "x=y");
        for bad in ["novalue", "=v"] {
            match annotations(&[bad.into()]) {
                Err(Failure::Usage(m)) => assert!(m.contains("KEY=VALUE"), "{m}"),
                _ => panic!("{bad} accepted"),
            }
        }
    }
}
