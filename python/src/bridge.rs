//! Running core operations from Python: blocking calls (GIL released, Ctrl-C checked,
//! progress on the calling thread) and asyncio awaitables, both on core's one fork-aware
//! runtime.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3_async_runtimes::generic::{self, ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;
use wasm_image::panics::{catch_panic, catch_panic_async};
use wasm_image::runtime::{block_on, Blocking, CancellationToken, ProcessSlots};
use wasm_image::{Progress, ProgressEvent};

use crate::errors::{to_py, IntoPyResult};
use crate::image;

type ErrorSlot = Arc<Mutex<Option<PyErr>>>;

fn take(slot: &ErrorSlot) -> Option<PyErr> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Calls a Python progress callback on the calling thread. An exception it raises is
/// kept, stops the operation, and is raised from the call.
fn blocking_progress(callback: Py<PyAny>, failed: ErrorSlot) -> Progress {
    Arc::new(move |event: &ProgressEvent| {
        Python::attach(|py| {
            let mut slot = failed.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                return;
            }
            if let Err(err) = callback.call1(py, (image::ProgressEvent::from(event),)) {
                *slot = Some(err);
            }
        })
    })
}

/// Runs a core operation to completion with the GIL released. Ctrl-C (or any exception a
/// signal handler raises) and an exception from the progress callback stop it within
/// about 100 ms; that exception is raised, not a CancelledError.
pub fn run<T, F, Fut>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    cancel: Option<&CancelToken>,
    make: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce(Option<Progress>) -> Fut + Send,
    Fut: Future<Output = wasm_image::Result<T>>,
{
    let failed: ErrorSlot = Arc::default();
    let progress = progress.map(|cb| blocking_progress(cb, failed.clone()));
    let interrupt: ErrorSlot = Arc::default();
    let result = py.detach(|| {
        let mut interrupted = || {
            if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                return true;
            }
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(err) => {
                    *interrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                    true
                }
            })
        };
        catch_panic(|| {
            block_on(
                Blocking {
                    cancel: cancel.map(|c| &c.inner),
                    interrupted: Some(&mut interrupted),
                    progress,
                },
                |p| catch_panic_async(make(p)),
            )
        })
    });
    if let Some(err) = take(&interrupt).or_else(|| take(&failed)) {
        return Err(err);
    }
    result.py_err(py)
}

/// Runs CPU-bound core work (build, module facts) with the GIL released.
pub fn compute<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> wasm_image::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| catch_panic(work)).py_err(py)
}

/// Lets another thread stop a blocking call: the call raises CancelledError promptly.
#[pyclass(module = "wasm_image", frozen)]
pub struct CancelToken {
    inner: CancellationToken,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> CancelToken {
        CancelToken {
            inner: CancellationToken::new(),
        }
    }
    /// Cancels every call given this token, now and later. Safe from any thread.
    fn cancel(&self) {
        self.inner.cancel();
    }
    /// True once :meth:`cancel` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
    fn __repr__(&self) -> String {
        format!(
            "<CancelToken cancelled={}>",
            if self.inner.is_cancelled() {
                "True"
            } else {
                "False"
            }
        )
    }
}

// ---- asyncio ------------------------------------------------------------------------

/// pyo3-async-runtimes driven by core's runtime rather than one of its own, so async
/// calls share connections with blocking ones and work in a forked child (core builds a
/// fresh runtime there; a runtime held in a `OnceLock` would be dead after `fork()`).
pub struct CoreRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

fn core_runtime() -> Arc<tokio::runtime::Runtime> {
    // `spawn` has no way to report an error; `async_call` checks the runtime first.
    wasm_image::runtime::runtime().expect("the wasm-image runtime could not start")
}

impl Runtime for CoreRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = TaskInFlight::start();
        core_runtime().spawn(async move {
            let _task = task;
            fut.await
        })
    }

    /// The bridge's blocking work is handing results and progress to asyncio, each
    /// waiting for the GIL: a few threads at a time, since more only queue for the GIL,
    /// each holding a thread and a Python thread state (a burst of 100 `pull_async`
    /// results grew the pool by about as many threads).
    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let task = TaskInFlight::start();
        core_runtime().spawn(async move {
            let _task = task;
            let _permit = GIL_HANDOFFS.acquire().await;
            let _ = core_runtime().spawn_blocking(f).await;
        })
    }
}

/// Results and progress handed to asyncio at once (see `spawn_blocking` above).
static GIL_HANDOFFS: ProcessSlots = ProcessSlots::new(2);

/// The asyncio bridge's tasks not yet finished in this process (the pid tells a forked
/// child, which has none of its parent's tasks, from the parent).
static TASKS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static TASKS_PID: AtomicU32 = AtomicU32::new(0);

/// Longest wait at exit for tasks still handing a result to asyncio: they need
/// microseconds; a task that outlives this is left alone.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// Counts one bridge task from its spawn to the end of its last step.
struct TaskInFlight {
    pid: u32,
}

impl TaskInFlight {
    fn start() -> TaskInFlight {
        let pid = std::process::id();
        if TASKS_PID.swap(pid, Ordering::SeqCst) != pid {
            // First task of this process (or of a forked child): the count starts over.
            TASKS_IN_FLIGHT.store(0, Ordering::SeqCst);
        }
        TASKS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        TaskInFlight { pid }
    }
}

impl Drop for TaskInFlight {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            TASKS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Registered with `atexit`: waits, with the GIL released, for bridge tasks to finish
/// before the interpreter finalizes. `asyncio.run` can return as soon as the last result
/// is delivered, while the worker thread that delivered it is still leaving the
/// interpreter; if finalization starts meanwhile, that thread's release of its thread
/// state aborts the process ("PyGILState_Release: thread state … must be current").
#[pyfunction]
pub fn wait_for_async_tasks(py: Python<'_>) {
    if TASKS_PID.load(Ordering::SeqCst) != std::process::id() {
        return;
    }
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while TASKS_IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

impl ContextExt for CoreRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// A core result carried to the asyncio side, turned into a value or an exception there
/// (building our exceptions needs the GIL, which the worker thread does not hold).
pub struct Outcome<T>(pub wasm_image::Result<T>);

/// Converts a successful core value to Python once the GIL is held.
pub trait ToPython: Send + 'static {
    fn to_python(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

impl<'py, T: ToPython> IntoPyObject<'py> for Outcome<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Ok(value) => Ok(value.to_python(py)?.into_bound(py)),
            Err(err) => Err(to_py(py, err)),
        }
    }
}

impl ToPython for String {
    fn to_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.into_py_any(py)
    }
}

/// Progress for async calls: events are handed to the event loop with
/// `call_soon_threadsafe`, so the callback runs on the loop's thread, in order.
fn async_progress(callback: Py<PyAny>, event_loop: Py<PyAny>) -> Progress {
    Arc::new(move |event: &ProgressEvent| {
        let _ = Python::try_attach(|py| {
            let event = image::ProgressEvent::from(event);
            // Fails only when the loop is closed; then nobody is listening.
            let _ = event_loop.call_method1(
                py,
                "call_soon_threadsafe",
                (callback.clone_ref(py), event),
            );
        });
    })
}

/// Starts `make(progress)` on core's runtime and returns an asyncio future for its
/// result on the running loop. Cancelling the asyncio future drops the Rust future.
pub fn async_call<'py, T, F, Fut>(
    py: Python<'py>,
    progress: Option<Py<PyAny>>,
    make: F,
) -> PyResult<Bound<'py, PyAny>>
where
    T: ToPython,
    F: FnOnce(Option<Progress>) -> Fut,
    Fut: Future<Output = wasm_image::Result<T>> + Send + 'static,
{
    wasm_image::runtime::runtime().py_err(py)?;
    let locals = generic::get_current_locals::<CoreRuntime>(py)?;
    let progress = progress.map(|cb| async_progress(cb, locals.event_loop(py).unbind()));
    // Boxed once here: the asyncio bridge moves the future it is given through two
    // tasks, and unboxed each would hold its full size (about 30 KB), twice the memory of
    // every call in flight.
    let future = Box::pin(catch_panic_async(make(progress)));
    generic::future_into_py_with_locals::<CoreRuntime, _, _>(py, locals, async move {
        Ok(Outcome(future.await))
    })
}
