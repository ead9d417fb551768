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
    /// Set while this thread may block: inside [`block_on`] (the caller's own thread,
    /// blocked anyway) or running [`run_blocking`] work on the blocking pool. Brief work
    /// runs right there, without a hand-off (see [`run_brief`]).
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one that may block until dropped (then as it was before:
/// a blocking call can be made from blocking work).
struct MayBlock {
    before: bool,
}

impl MayBlock {
    fn enter() -> MayBlock {
        MayBlock {
            before: MAY_BLOCK.with(|m| m.replace(true)),
        }
    }
}

impl Drop for MayBlock {
    fn drop(&mut self) {
        MAY_BLOCK.with(|m| m.set(self.before));
    }
}

/// How much brief or bounded work async callers may have on the blocking pool at once.
/// A burst of concurrent calls then queues here for microseconds instead of growing the
/// pool by a thread per call, each with its stack and its own malloc arena (about
/// 150 KiB of memory a call for 100 small pulls at once).
const BOUNDED_AT_ONCE: usize = 4;

/// A number of permits shared by the whole process, made again in a forked child
/// (permits held by the parent's threads would never come back there).
pub struct ProcessSlots {
    at_once: usize,
    current: Mutex<Option<(u32, Arc<tokio::sync::Semaphore>)>>,
}

impl ProcessSlots {
    pub const fn new(at_once: usize) -> ProcessSlots {
        ProcessSlots {
            at_once,
            current: Mutex::new(None),
        }
    }

    /// Waits for a permit of this process.
    pub async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let pid = std::process::id();
        let semaphore = {
            let mut slot = self.current.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some((owner, semaphore)) if *owner == pid => semaphore.clone(),
                _ => {
                    let semaphore = Arc::new(tokio::sync::Semaphore::new(self.at_once));
                    *slot = Some((pid, semaphore.clone()));
                    semaphore
                }
            }
        };
        semaphore
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("a queue for bounded work was closed"))
    }
}

static BOUNDED_SLOTS: ProcessSlots = ProcessSlots::new(BOUNDED_AT_ONCE);

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
    let _may_block = MayBlock::enter();
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
    let job = move || {
        let _may_block = MayBlock::enter();
        span.in_scope(|| work(token))
    };
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
/// such as a layout's `index.json` or a manifest): on a thread that may block anyway (a
/// blocking call's own thread, or blocking work's) it runs right there, saving the two
/// thread hand-offs that otherwise cost more than the work itself; from async callers
/// (the runtime's threads) it goes to the blocking pool, a few at a time. Such work must
/// not wait on locks or other processes, or on anything unbounded: while it runs, the
/// call does not see cancellation.
pub async fn run_brief<T: Send + 'static>(
    work: impl FnOnce(CancellationToken) -> Result<T> + Send + 'static,
) -> Result<T> {
    if !MAY_BLOCK.with(Cell::get) {
        return run_bounded(work).await;
    }
    let token = CALL
        .try_with(|s| s.cancel.child_token())
        .unwrap_or_else(|_| CancellationToken::new());
    std::panic::catch_unwind(AssertUnwindSafe(|| work(token)))
        .unwrap_or_else(|_| Err(Error::internal("wasm-image panicked during a brief read")))
}

/// [`run_blocking`] for work whose length is bounded by what it reads from local files
/// (a small module out of an OCI layout, say), a few at a time across the process (see
/// [`BOUNDED_AT_ONCE`]). It must not wait on the network, locks or other processes: it
/// holds a permit others queue for. Brief work inside it runs inline, so it never
/// needs a second permit.
pub async fn run_bounded<T: Send + 'static>(
    work: impl FnOnce(CancellationToken) -> Result<T> + Send + 'static,
) -> Result<T> {
    let _permit = BOUNDED_SLOTS.acquire().await?;
    run_blocking(work).await
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
        assert!(!MAY_BLOCK.with(Cell::get));
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

    /// Blocking work may block: brief work inside it runs on its thread, needing no
    /// second thread (nor, inside bounded work, a second permit).
    #[test]
    fn brief_work_inside_blocking_work_runs_on_its_thread() {
        let runtime = runtime().unwrap();
        let (outer, inner) = runtime
            .block_on(async {
                tokio::spawn(async {
                    run_bounded(|_| {
                        let outer = std::thread::current().id();
                        let handle = tokio::runtime::Handle::current();
                        let inner = handle.block_on(run_brief(|_| Ok(std::thread::current().id())));
                        Ok((outer, inner?))
                    })
                    .await
                })
                .await
                .unwrap()
            })
            .unwrap();
        assert_eq!(outer, inner);
    }

    /// However many async callers send bounded work at once, only a few run at a time.
    #[test]
    fn bounded_work_runs_a_few_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let runtime = runtime().unwrap();
        runtime.block_on(async {
            let all: Vec<_> = (0..32)
                .map(|_| {
                    tokio::spawn(run_bounded(|_| {
                        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                        MOST.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        RUNNING.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }))
                })
                .collect();
            for task in all {
                task.await.unwrap().unwrap();
            }
        });
        let most = MOST.load(Ordering::SeqCst);
        assert!(most <= BOUNDED_AT_ONCE, "{most} ran at once");
    }

    #[test]
    fn a_panic_in_brief_work_is_an_internal_error() {
        let error = block_on(Blocking::default(), |_| async {
            run_brief::<()>(|_| panic!("a bug")).await
        })
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert!(!MAY_BLOCK.with(Cell::get));
    }
}
