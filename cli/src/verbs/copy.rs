//! `wasm-image copy SRC DST`: an image or index between any two locations, digests kept.

use clap::Args;
use serde_json::json;

use crate::failure::Outcome;
use crate::session::Session;

#[derive(Args, Debug)]
pub struct CopyArgs {
    #[arg(value_name = "SRC")]
    pub source: String,
    #[arg(value_name = "DST")]
    pub destination: String,
}

pub(crate) fn run(args: &CopyArgs, session: &mut Session<'_>) -> Outcome {
    let client = session.client(None)?;
    let (source, destination) = (args.source.as_str(), args.destination.as_str());
    let digest = session.call(&client, |c, call| async move {
        c.copy(source, destination, &call).await
    })?;
    session.out.result(
        &json!({"source": source, "destination": destination, "digest": digest.to_string()}),
        &[format!("copied {source} to {destination} ({digest})")],
    )?;
    Ok(())
}
