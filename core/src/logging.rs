//! Forwards the library's log events to one sink that a binding installs (Python's
//! `logging`, a C callback), so no binding deals with `tracing` itself.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl LogLevel {
    fn from_tracing(level: &Level) -> LogLevel {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            Level::TRACE => LogLevel::Trace,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogRecord {
    pub level: LogLevel,
    /// The module that logged, e.g. `wasm_image::client`.
    pub target: String,
    /// The message followed by its fields as `key=value`.
    pub message: String,
}

pub type LogSink = Arc<dyn Fn(&LogRecord) + Send + Sync>;

struct Installed {
    sink: LogSink,
    max_level: LogLevel,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Sends events at `max_level` and above to `sink`, replacing any earlier sink. Returns
/// false when the process already had another global `tracing` subscriber (then the
/// host application's subscriber receives our events instead).
pub fn set_sink(sink: LogSink, max_level: LogLevel) -> bool {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(Installed { sink, max_level });
    *INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Forward);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    })
}

pub fn clear_sink() {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = None;
}

struct Forward;

#[derive(Default)]
struct Collect {
    message: String,
    fields: String,
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = LogLevel::from_tracing(event.metadata().level());
        let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(installed) = guard.as_ref() else {
            return;
        };
        if level > installed.max_level {
            return;
        }
        let mut collect = Collect::default();
        event.record(&mut collect);
        let record = LogRecord {
            level,
            target: event.metadata().target().to_string(),
            message: format!("{}{}", collect.message, collect.fields),
        };
        let sink = installed.sink.clone();
        drop(guard);
        sink(&record);
    }
}
