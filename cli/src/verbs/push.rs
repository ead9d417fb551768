//! `wasm-image push SOURCE DESTINATION [--sign KEY]`: an image from any location (an
//! `oci:` layout `build` made, say) to its destination, signed there when asked.

use clap::Args;
use serde_json::json;

use crate::failure::Outcome;
use crate::session::Session;
use crate::signing::{self, SignOptions};

#[derive(Args, Debug)]
pub struct PushArgs {
    #[arg(value_name = "SOURCE")]
    pub source: String,
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
    #[command(flatten)]
    pub sign: SignOptions,
}

pub(crate) fn run(args: &PushArgs, session: &mut Session<'_>) -> Outcome {
    let sign_with = args.sign.key()?;
    let signed = sign_with.is_some();
    let client = session.client(None)?;
    let (source, destination) = (args.source.as_str(), args.destination.as_str());
    let digest = session.call(&client, |c, call| async move {
        c.copy(source, destination, &signing::with(call, None, sign_with))
            .await
    })?;
    let mut lines = vec![format!("pushed {source} to {destination} ({digest})")];
    if signed {
        lines.push(format!("signed {digest} at {destination}"));
    }
    session.out.result(
        &json!({
            "source": source,
            "destination": destination,
            "digest": digest.to_string(),
            "signed": signed,
        }),
        &lines,
    )?;
    Ok(())
}
