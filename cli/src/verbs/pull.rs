//! `wasm-image pull LOCATION [-o FILE]`: fetch, verify and write the module.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use crate::failure::{Failure, Outcome};
use crate::session::Session;
use crate::signing::{self, VerifyOptions};
use crate::summary;

#[derive(Args, Debug)]
pub struct PullArgs {
    #[arg(value_name = "LOCATION")]
    pub location: String,
    #[arg(
        short,
        long,
        value_name = "FILE",
        help = "write the module here (- for stdout)"
    )]
    pub output: Option<String>,
    #[command(flatten)]
    pub verify: VerifyOptions,
}

pub(crate) fn run(args: &PullArgs, session: &mut Session<'_>) -> Outcome {
    let client = session.client(None)?;
    let location = args.location.as_str();
    let verify = args.verify.requirement()?;
    let target = match args.output.as_deref() {
        None | Some("-") => return to_stdout(args, session, &client, verify),
        Some(path) => path,
    };
    let path = PathBuf::from(target);
    let into = path.as_path();
    let info = session.call(&client, |c, call| async move {
        c.pull_to_file(location, into, &signing::with(call, verify, None))
            .await
    })?;
    let output = std::path::absolute(&path).unwrap_or(path);
    let data = summary::image(
        vec![
            ("location", json!(location)),
            ("output", json!(output.to_string_lossy())),
        ],
        &info,
    );
    session.out.result(
        &Value::Object(data),
        &[format!(
            "wrote {target} ({} bytes, {})",
            info.module_size, info.module_digest
        )],
    )?;
    Ok(())
}

/// The module itself on stdout: for a pipe or a file, never for a terminal unless `-o -`.
fn to_stdout(
    args: &PullArgs,
    session: &mut Session<'_>,
    client: &wasm_image::Client,
    verify: Option<wasm_image::Requirement>,
) -> Outcome {
    if session.out.as_json {
        return Err(Failure::Usage(
            "--json prints a summary on stdout: give the module a file with -o FILE".into(),
        ));
    }
    if args.output.is_none() && io::stdout().is_terminal() {
        return Err(Failure::Usage(
            "refusing to write a binary module to a terminal: give -o FILE (or -o - to force)"
                .into(),
        ));
    }
    let location = args.location.as_str();
    let image = session.call(client, |c, call| async move {
        c.pull(location, &signing::with(call, verify, None)).await
    })?;
    let mut stdout = io::stdout().lock();
    stdout.write_all(image.module())?;
    stdout.flush()?;
    Ok(())
}
