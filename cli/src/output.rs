//! Where results, messages and progress go, per `--json` / `--quiet`.

use std::io::{self, IsTerminal, Write};

use serde_json::{json, Value};
use wasm_image::Progress;

use crate::json;
use crate::progress::Bars;

pub(crate) struct Output {
    pub as_json: bool,
    pub quiet: bool,
}

impl Output {
    pub fn new(as_json: bool, quiet: bool) -> Output {
        Output { as_json, quiet }
    }

    /// The verb's result: `data` as indented JSON with `--json`, else the `human` lines
    /// (nothing with `--quiet`).
    pub fn result(&self, data: &Value, human: &[String]) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        if self.as_json {
            stdout.write_all(json::indented(data).as_bytes())?;
            stdout.write_all(b"\n")?;
        } else if !self.quiet {
            for line in human {
                stdout.write_all(line.as_bytes())?;
                stdout.write_all(b"\n")?;
            }
        }
        stdout.flush()
    }

    /// A library failure: one line on stderr, and an `{"error": …}` object on stdout with
    /// `--json`.
    pub fn error(&self, err: &wasm_image::Error) {
        if self.as_json {
            let (status, code) = match err.registry() {
                Some(detail) => (json!(detail.status), json!(detail.code)),
                None => (Value::Null, Value::Null),
            };
            let object = json!({"error": {
                "kind": err.kind().name(),
                "message": err.message(),
                "status": status,
                "code": code,
            }});
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{}", json::compact(&object));
            let _ = stdout.flush();
        }
        self.stderr_line(&format!("error: {}: {}", err.kind().name(), err.message()));
    }

    /// A line for people on stderr (warnings, usage errors).
    pub fn stderr_line(&self, line: &str) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }

    /// Progress bars on stderr when it is a terminal and output is for people.
    pub fn progress(&self) -> Option<Progress> {
        if self.quiet || self.as_json || !io::stderr().is_terminal() {
            return None;
        }
        Some(Bars::new().into_progress())
    }
}
