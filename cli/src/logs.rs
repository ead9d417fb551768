//! The library's warnings and errors on stderr, as `wasm_image: LEVEL: message`, or
//! nowhere with `--quiet` / `--json` (a sink is installed either way, so the library's
//! events never reach a handler the host process set up for something else).

use std::io::Write;
use std::sync::Arc;

use wasm_image::logging::{set_sink, LogLevel, LogRecord};

pub(crate) fn install(shown: bool) {
    set_sink(
        Arc::new(move |record: &LogRecord| {
            if !shown {
                return;
            }
            let level = match record.level {
                LogLevel::Error => "ERROR",
                LogLevel::Warn => "WARNING",
                LogLevel::Info => "INFO",
                LogLevel::Debug => "DEBUG",
                LogLevel::Trace => "TRACE",
            };
            let _ = writeln!(
                std::io::stderr().lock(),
                "wasm_image: {level}: {}",
                record.message
            );
        }),
        LogLevel::Warn,
    );
}
