//! Forwards the library's log events to one sink that a binding installs (Python's
//! `logging`, a C callback), so no binding deals with `tracing` itself.
//!
//! Events of a blocking call can be delivered on the thread that made the call (the C
//! contract): [`deliver_on_caller`] runs the call's future inside a `wasm_image_call`
//! span, events anywhere under that span (also on worker threads that entered it) are
//! queued for that call instead of going to the sink directly, and the future drains the
//! queue on the thread that polls it. Events outside any call go to the sink at once, on
//! whatever thread emitted them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Instrument, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
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

/// The name of the span that marks one blocking call, and of its id field.
const CALL_SPAN: &str = "wasm_image_call";
const CALL_FIELD: &str = "wasm_image_call";

/// Queues of the calls running now, by call id.
static ROUTES: OnceLock<Mutex<HashMap<u64, UnboundedSender<LogRecord>>>> = OnceLock::new();
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

fn routes() -> &'static Mutex<HashMap<u64, UnboundedSender<LogRecord>>> {
    ROUTES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Removes a call's queue when the call ends, however it ends (a cancelled call's future
/// is dropped).
struct Route(u64);

impl Drop for Route {
    fn drop(&mut self) {
        routes()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

fn deliver(record: &LogRecord) {
    let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
    let Some(installed) = guard.as_ref() else {
        return;
    };
    let sink = installed.sink.clone();
    drop(guard);
    sink(record);
}

/// Runs `future` as one call whose log events reach the sink on the thread polling the
/// returned future (for a blocking call, the thread that made it). Work the call hands
/// to other threads keeps the routing when it runs inside the current span (as
/// `runtime::run_blocking` does). Costs nothing measurable without a sink.
pub async fn deliver_on_caller<F: Future>(future: F) -> F::Output {
    let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
    let (sender, mut receiver): (_, UnboundedReceiver<LogRecord>) = unbounded_channel();
    routes()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, sender);
    let _route = Route(id);
    let span = tracing::trace_span!(CALL_SPAN, wasm_image_call = id);
    let future = future.instrument(span);
    tokio::pin!(future);
    let output = loop {
        tokio::select! {
            biased;
            Some(record) = receiver.recv() => deliver(&record),
            output = &mut future => break output,
        }
    };
    while let Ok(record) = receiver.try_recv() {
        deliver(&record);
    }
    output
}

/// The call id a `wasm_image_call` span carries, kept in the span's extensions.
struct CallId(u64);

struct FindCallId(Option<u64>);

impl Visit for FindCallId {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == CALL_FIELD {
            self.0 = Some(value);
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
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

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Forward {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != CALL_SPAN {
            return;
        }
        let mut find = FindCallId(None);
        attrs.record(&mut find);
        if let (Some(call), Some(span)) = (find.0, ctx.span(id)) {
            span.extensions_mut().insert(CallId(call));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
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
        let call = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<CallId>().map(|c| c.0))
        });
        if let Some(call) = call {
            let route = routes()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&call)
                .cloned();
            if let Some(route) = route {
                if let Err(unsent) = route.send(record) {
                    sink(&unsent.0);
                }
                return;
            }
        }
        sink(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_a_call_reach_the_sink_on_the_thread_polling_it() {
        let seen: Arc<Mutex<Vec<(String, std::thread::ThreadId)>>> = Arc::default();
        let record_to = seen.clone();
        set_sink(
            Arc::new(move |r: &LogRecord| {
                if r.message.starts_with("routing-test") {
                    record_to
                        .lock()
                        .unwrap()
                        .push((r.message.clone(), std::thread::current().id()));
                }
            }),
            LogLevel::Debug,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let caller = std::thread::current().id();
        runtime.block_on(deliver_on_caller(async {
            tracing::info!("routing-test on the caller");
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                span.in_scope(|| tracing::debug!("routing-test from a worker"))
            })
            .await
            .unwrap();
            tokio::spawn(async { tracing::warn!("routing-test from a task") }.in_current_span())
                .await
                .unwrap();
        }));
        // Outside any call: delivered at once, where it happens.
        std::thread::spawn(|| tracing::info!("routing-test outside"))
            .join()
            .unwrap();
        clear_sink();
        let seen = seen.lock().unwrap();
        let messages: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "routing-test on the caller",
                "routing-test from a worker",
                "routing-test from a task",
                "routing-test outside"
            ]
        );
        assert!(
            seen[..3].iter().all(|(_, thread)| *thread == caller),
            "{seen:?}"
        );
        assert_ne!(seen[3].1, caller);
    }
}
