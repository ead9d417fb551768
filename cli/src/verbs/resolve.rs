//! `wasm-image resolve LOCATION`: the manifest digest, without fetching the module.

use clap::Args;
use serde_json::json;

use crate::failure::Outcome;
use crate::session::Session;

#[derive(Args, Debug)]
pub struct ResolveArgs {
    #[arg(value_name = "LOCATION")]
    pub location: String,
}

pub(crate) fn run(args: &ResolveArgs, session: &mut Session<'_>) -> Outcome {
    let client = session.client(None)?;
    let location = args.location.as_str();
    let resolved = session.call(&client, |c, call| async move {
        c.resolve(location, &call).await
    })?;
    let digest = resolved.digest.to_string();
    session.out.result(
        &json!({"location": location, "digest": digest}),
        std::slice::from_ref(&digest),
    )?;
    Ok(())
}
