//! The one tokio runtime behind the blocking API. It is rebuilt in a child after `fork()`
//! (a runtime's threads do not survive a fork), and every blocking call can be cancelled
//! from another thread or by an interrupt check (Python's Ctrl-C).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;
pub use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressEvent};

struct Owned {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Owned>> = Mutex::new(None);

/// The shared runtime, built on first use and again in a forked child.
pub fn runtime() -> Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(owned) = slot.as_ref() {
        if owned.pid == pid {
            return Ok(owned.runtime.clone());
        }
    }
    if let Some(stale) = slot.take() {
        // Its worker threads exist only in the parent; shutting it down here would wait
        // for them forever. Leak it instead.
        std::mem::forget(stale);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)))
        .thread_name("wasm-image")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the I/O runtime: {e}")))?;
    let runtime = Arc::new(runtime);
    *slot = Some(Owned {
        pid,
        runtime: runtime.clone(),
    });
    Ok(runtime)
}

/// How often a blocking call wakes to run the interrupt check.
const INTERRUPT_POLL: Duration = Duration::from_millis(100);
/// How long a cancelled call waits for its blocking work to stop and remove what it
/// started writing, so nothing is left behind even if the process exits right after.
const CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// What blocking work started within one blocking call shares with that call.
#[derive(Clone)]
struct CallScope {
    /// Cancelled when the call gives up; the work watches it at every read.
    cancel: CancellationToken,
    /// The work still running, which a cancelled call waits for (and only for that).
    work: TaskTracker,
}

tokio::task_local! {
    static CALL: CallScope;
}

/// What a blocking call watches besides its own work.
#[derive(Default)]
pub struct Blocking<'a> {
    pub cancel: Option<&'a CancellationToken>,
    /// Called every 100 ms on the calling thread; `true` cancels the call.
    pub interrupted: Option<&'a mut (dyn FnMut() -> bool + 'a)>,
    /// Progress callback, always invoked on the calling thread.
    pub progress: Option<Progress>,
}

/// Runs `make(progress)` to completion on the shared runtime, delivering progress events
/// on the calling thread and stopping promptly on cancellation or interrupt.
pub fn block_on<T, F, Fut>(mut blocking: Blocking<'_>, make: F) -> Result<T>
where
    F: FnOnce(Option<Progress>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::invalid_argument(
            "a blocking wasm-image call was made from inside an async runtime (for example from a callback); use the async API there",
        ));
    }
    let runtime = runtime()?;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<ProgressEvent>();
    let forward: Option<Progress> = blocking.progress.as_ref().map(|_| {
        Arc::new(move |event: &ProgressEvent| {
            let _ = sender.send(event.clone());
        }) as Progress
    });
    let user_progress = blocking.progress.take();
    let never = CancellationToken::new();
    let cancel = blocking.cancel.unwrap_or(&never).clone();
    let call = CallScope {
        cancel: CancellationToken::new(),
        work: TaskTracker::new(),
    };
    let future = CALL.scope(call.clone(), make(forward));
    runtime.block_on(async move {
        tokio::pin!(future);
        let mut tick = tokio::time::interval(INTERRUPT_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deliver = |event: &ProgressEvent| {
            if let Some(p) = &user_progress {
                p(event)
            }
        };
        let outcome = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break None,
                result = &mut future => break Some(result),
                Some(event) = receiver.recv() => deliver(&event),
                _ = tick.tick() => {
                    if let Some(check) = blocking.interrupted.as_mut() {
                        if check() {
                            break None;
                        }
                    }
                }
            }
        };
        let outcome = match outcome {
            Some(result) => result,
            None => {
                call.cancel.cancel();
                call.work.close();
                let _ = tokio::time::timeout(CLEANUP_GRACE, call.work.wait()).await;
                Err(Error::cancelled())
            }
        };
        while let Ok(event) = receiver.try_recv() {
            deliver(&event);
        }
        outcome
    })
}

/// Runs blocking work (files, tar, decompression, credential helpers, DNS) off the async
/// threads: the one way core does, so the work keeps the call's span (its log events
/// reach the caller) and its cancel scope (a cancelled call waits for it, and only for
/// it). If the awaiting future is dropped, `cancel` is triggered so the work stops at its
/// next read.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce(CancellationToken) -> Result<T> + Send + 'static,
) -> Result<T> {
    let scope = CALL.try_with(CallScope::clone).ok();
    let token = scope
        .as_ref()
        .map_or_else(CancellationToken::new, |s| s.cancel.child_token());
    let guard = token.clone().drop_guard();
    // The work stays inside the caller's span, so its log events keep their call
    // (`logging::deliver_on_caller` delivers them on the calling thread).
    let span = tracing::Span::current();
    let job = move || span.in_scope(|| work(token));
    let result = match &scope {
        Some(s) => s.work.spawn_blocking(job).await,
        None => tokio::task::spawn_blocking(job).await,
    };
    drop(guard);
    match result {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(Error::internal("a worker thread of wasm-image panicked")),
        Err(_) => Err(Error::cancelled()),
    }
}
