//! The one tokio runtime behind the blocking API. It is rebuilt in a child after `fork()`
//! (a runtime's threads do not survive a fork), and every blocking call can be cancelled
//! from another thread or by an interrupt check (Python's Ctrl-C).

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
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

thread_local! {
    /// Set while this thread is inside [`block_on`]: the caller's own thread, which is
    /// blocked anyway, so brief work can run on it without a hand-off (see [`run_brief`]).
    static DRIVING_A_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as driving a blocking call until dropped.
struct Driving;

impl Driving {
    fn enter() -> Driving {
        DRIVING_A_CALL.with(|d| d.set(true));
        Driving
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING_A_CALL.with(|d| d.set(false));
    }
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
    let _driving = Driving::enter();
    runtime.block_on(async move {
        tokio::pin!(future);
        // Only a call with an interrupt check needs the timer: a timer costs a trip through
        // the runtime's time driver on every call.
        let mut tick = blocking.interrupted.is_some().then(|| {
            let mut tick = tokio::time::interval(INTERRUPT_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        });
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
                _ = next_tick(&mut tick) => {
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

/// The next interrupt check, or never when the call has none.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(tick) => {
            tick.tick().await;
        }
        None => std::future::pending().await,
    }
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

/// Like [`run_blocking`], for work that is brief and bounded (a few small file reads,
/// such as a layout's `index.json` or a manifest): on the thread of a blocking call it
/// runs right there, saving the two thread hand-offs that otherwise cost more than the
/// work itself; anywhere else (async callers, runtime threads) it goes to the blocking
/// pool. Such work must not wait on locks or other processes, or on anything unbounded:
/// while it runs, the call does not see cancellation.
pub async fn run_brief<T: Send + 'static>(
    work: impl FnOnce(CancellationToken) -> Result<T> + Send + 'static,
) -> Result<T> {
    if !DRIVING_A_CALL.with(Cell::get) {
        return run_blocking(work).await;
    }
    let token = CALL
        .try_with(|s| s.cancel.child_token())
        .unwrap_or_else(|_| CancellationToken::new());
    std::panic::catch_unwind(AssertUnwindSafe(|| work(token)))
        .unwrap_or_else(|_| Err(Error::internal("wasm-image panicked during a brief read")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Brief work of a blocking call runs on the caller's thread: no hand-off.
    #[test]
    fn brief_work_of_a_blocking_call_runs_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let ran_on = block_on(Blocking::default(), |_| async {
            run_brief(|_| Ok(std::thread::current().id())).await
        })
        .unwrap();
        assert_eq!(ran_on, caller);
        // Ordinary blocking work still goes to the pool.
        let pooled = block_on(Blocking::default(), |_| async {
            run_blocking(|_| Ok(std::thread::current().id())).await
        })
        .unwrap();
        assert_ne!(pooled, caller);
        // And the mark does not outlive the call.
        assert!(!DRIVING_A_CALL.with(Cell::get));
    }

    /// Async callers' threads are the runtime's own, which must not block: brief work
    /// goes to the pool there.
    #[test]
    fn brief_work_of_an_async_caller_goes_to_the_pool() {
        let runtime = runtime().unwrap();
        let (worker, ran_on) = runtime.block_on(async {
            tokio::spawn(async {
                let worker = std::thread::current().id();
                (
                    worker,
                    run_brief(|_| Ok(std::thread::current().id()))
                        .await
                        .unwrap(),
                )
            })
            .await
            .unwrap()
        });
        assert_ne!(worker, ran_on);
    }

    #[test]
    fn a_panic_in_brief_work_is_an_internal_error() {
        let error = block_on(Blocking::default(), |_| async {
            run_brief::<()>(|_| panic!("a bug")).await
        })
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert!(!DRIVING_A_CALL.with(Cell::get));
    }
}
