//! Concurrent in-memory pulls of the same image through one client share one download.
//!
//! A control plane asks one client for the same plugin from many threads at once; without
//! this each of them downloads, decompresses and verifies the same layer. The first caller
//! (the leader) extracts; callers arriving while it runs wait and receive its result: the
//! module `Bytes` are shared, not copied, and a caller that brought its own memory gets a
//! copy in it. Nothing is kept once the extraction ends: this joins calls in flight, it is
//! not a cache (sequential pulls download again; the module cache is `cache/`).
//!
//! Callers join as soon as they know the manifest, before reading the config, so that a
//! waiter never asks for the module layer (a pull otherwise requests it beside the
//! config). Each still reads the config and checks signatures itself; only the leader's
//! extraction is shared. Content is addressed by digest: one manifest digest means one
//! config, one plan and one module.
//!
//! A failure of the content (a digest mismatch, a registry error) reaches every waiter. A
//! failure that belongs to the leader alone (it was cancelled, its deadline dropped it,
//! its own config or signature check failed before extracting) does not: a waiter then
//! extracts itself, becoming the next leader. Each waiter still honours its own
//! cancellation and deadline while it waits, since waiting is just a future its call can
//! drop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::cache::again;
use crate::digest::Digest;
use crate::embed::runtime::run_blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::{Destination, Extracted};
use crate::formats::Plan;
use crate::limits::Limits;
use crate::progress::{Progress, ProgressEvent};

/// The extractions of one client now running, by what they extract.
#[derive(Default)]
pub(crate) struct SharedExtractions {
    running: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One running extraction; waiters watch for its end.
struct Flight {
    ended: watch::Sender<Option<Arc<Ended>>>,
}

enum Ended {
    Extracted(Extracted),
    Failed(Error),
    /// The leader went away (cancelled, or dropped by its deadline) before finishing.
    Abandoned,
}

/// A caller's part in the extraction of one image.
pub(crate) enum Turn<'a> {
    /// First: this caller extracts, and must say how that ended.
    Lead(Leading<'a>),
    /// Another caller is extracting: this one waits for its result.
    Wait(Waiting),
}

/// What makes two extractions the same: the store they read from, the image (its manifest
/// digest fixes the config, hence the plan and the layers), and the limits that bound it.
pub(crate) fn key(store: &str, manifest: &Digest, limits: &Limits) -> String {
    format!("{store}\n{manifest}\n{limits:?}")
}

impl SharedExtractions {
    /// Leads the extraction `key` names, or waits for the one already running.
    pub(crate) fn join(&self, key: &str) -> Turn<'_> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = running.get(key) {
            return Turn::Wait(Waiting {
                ended: flight.ended.subscribe(),
            });
        }
        let flight = Arc::new(Flight {
            ended: watch::channel(None).0,
        });
        running.insert(key.to_string(), flight.clone());
        Turn::Lead(Leading {
            running: self,
            key: key.to_string(),
            flight,
            finished: false,
        })
    }

    /// Takes `turn` for `key`: as the leader, runs `extract` into `destination`; as a
    /// waiter, takes the leader's result, or, if the leader went away, joins again (and
    /// perhaps runs `extract` as the next leader).
    pub(crate) async fn extract<F, Fut>(
        &self,
        key: &str,
        mut turn: Turn<'_>,
        plan: &Plan,
        destination: &Destination,
        progress: Option<&Progress>,
        extract: F,
    ) -> Result<Extracted>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Extracted>>,
    {
        loop {
            match turn {
                Turn::Lead(leading) => {
                    let result = extract().await;
                    leading.finish(&result);
                    return result;
                }
                Turn::Wait(waiting) => {
                    if let Some(result) = waiting.result(plan, destination, progress).await {
                        return result;
                    }
                    turn = self.join(key);
                }
            }
        }
    }

    fn end(&self, key: &str, flight: &Arc<Flight>, ended: Ended) {
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            // Gone first: a caller arriving from now on starts afresh, so nothing outlives
            // the flight.
            if running.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                running.remove(key);
            }
        }
        flight.ended.send_replace(Some(Arc::new(ended)));
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.running.lock().unwrap().len()
    }
}

/// A caller waiting for another caller's extraction.
pub(crate) struct Waiting {
    ended: watch::Receiver<Option<Arc<Ended>>>,
}

impl Waiting {
    /// The leader's result, in this caller's own memory if it brought some; `None` when
    /// the leader went away without a result that concerns this caller.
    async fn result(
        mut self,
        plan: &Plan,
        destination: &Destination,
        progress: Option<&Progress>,
    ) -> Option<Result<Extracted>> {
        tracing::debug!("waiting for the same image, already being pulled by another call");
        report(progress, plan, false);
        let ended = match self.ended.wait_for(Option::is_some).await {
            Ok(ended) => ended.clone(),
            // The leader's guard always says how it ended before going; a closed channel
            // without a word counts as abandoned all the same.
            Err(_) => None,
        };
        match ended.as_deref() {
            Some(Ended::Extracted(extracted)) => {
                let own = received(extracted, destination).await;
                if own.is_ok() {
                    report(progress, plan, true);
                }
                Some(own)
            }
            Some(Ended::Failed(e)) if e.kind() != ErrorKind::Cancelled => Some(Err(again(e))),
            // The leader's own cancellation: try again, perhaps as the leader.
            Some(Ended::Failed(_)) | Some(Ended::Abandoned) | None => None,
        }
    }
}

/// The leader's duty to say how its extraction ended, even when its call is dropped.
pub(crate) struct Leading<'a> {
    running: &'a SharedExtractions,
    key: String,
    flight: Arc<Flight>,
    finished: bool,
}

impl Leading<'_> {
    /// Ends the extraction before it started, with a failure of the content that every
    /// waiter shares (the module layer's request failed while the config downloaded).
    pub(crate) fn fail(mut self, e: &Error) {
        self.finished = true;
        self.running
            .end(&self.key, &self.flight, Ended::Failed(again(e)));
    }

    fn finish(mut self, result: &Result<Extracted>) {
        let ended = match result {
            Ok(extracted) => Ended::Extracted(extracted.clone()),
            Err(e) => Ended::Failed(again(e)),
        };
        self.finished = true;
        self.running.end(&self.key, &self.flight, ended);
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.running.end(&self.key, &self.flight, Ended::Abandoned);
        }
    }
}

/// A waiter's own result: the shared bytes, or a copy in the memory it brought (a Python
/// `bytes` of its own, say).
async fn received(extracted: &Extracted, destination: &Destination) -> Result<Extracted> {
    let mut own = extracted.clone();
    if let (Destination::Buffer(allocate), Some(module)) = (destination, &extracted.module) {
        let allocate = allocate.clone();
        let module = module.clone();
        // The allocator may block (a Python allocator waits for the interpreter): off the
        // async threads, as extraction calls it.
        own.module = Some(
            run_blocking(move |_| {
                let mut buffer = allocate(module.len())?;
                buffer.fill(0, &module);
                Ok(buffer.freeze())
            })
            .await?,
        );
    }
    Ok(own)
}

/// Tells a waiter's progress callback that the module's layers started, or finished, so
/// its progress bar moves as the leader's does.
fn report(progress: Option<&Progress>, plan: &Plan, done: bool) {
    let Some(progress) = progress else {
        return;
    };
    for layer in plan.source.layers() {
        progress(&ProgressEvent {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            done: if done { layer.size } else { 0 },
            total: layer.size,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::buffer::ModuleBuffer;
    use crate::digest::{Descriptor, Digest};
    use crate::formats::ModuleSource;
    use crate::image::Variant;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0shared";

    fn plan() -> Plan {
        let layer = Descriptor::new(
            crate::media_types::WASM_LAYER,
            Digest::sha256_of(MODULE),
            MODULE.len() as u64,
        );
        Plan {
            variant: Variant::Oci,
            source: ModuleSource::Raw(layer),
            runtime_config: None,
        }
    }

    fn extracted() -> Extracted {
        Extracted {
            module: Some(Bytes::from_static(MODULE)),
            digest: Digest::sha256_of(MODULE),
            size: MODULE.len() as u64,
            runtime_config: None,
        }
    }

    /// An extraction that counts its runs and finishes only when the test opens the gate,
    /// so the test decides who arrives while it runs.
    struct Gated {
        shared: SharedExtractions,
        runs: AtomicUsize,
        gate: Semaphore,
    }

    impl Gated {
        fn new() -> Arc<Gated> {
            Arc::new(Gated {
                shared: SharedExtractions::default(),
                runs: AtomicUsize::new(0),
                gate: Semaphore::new(0),
            })
        }

        async fn pull(
            self: Arc<Self>,
            key: &str,
            destination: Destination,
            progress: Option<Progress>,
            outcome: fn() -> Result<Extracted>,
        ) -> Result<Extracted> {
            let plan = plan();
            let turn = self.shared.join(key);
            self.shared
                .extract(
                    key,
                    turn,
                    &plan,
                    &destination,
                    progress.as_ref(),
                    || async {
                        self.runs.fetch_add(1, Ordering::SeqCst);
                        self.gate.acquire().await.expect("gate open").forget();
                        outcome()
                    },
                )
                .await
        }

        /// Waits until `n` callers wait for the extraction of `key`.
        async fn waiters(&self, key: &str, n: usize) {
            loop {
                let seen = {
                    let running = self.shared.running.lock().unwrap();
                    running.get(key).map_or(0, |f| f.ended.receiver_count())
                };
                if seen == n {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }

        async fn runs_started(&self, n: usize) {
            while self.runs.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        }
    }

    fn spawn(
        gated: &Arc<Gated>,
        key: &'static str,
        outcome: fn() -> Result<Extracted>,
    ) -> tokio::task::JoinHandle<Result<Extracted>> {
        tokio::spawn(gated.clone().pull(key, Destination::Memory, None, outcome))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_arriving_during_an_extraction_share_its_bytes() {
        let gated = Gated::new();
        let leader = spawn(&gated, "a", || Ok(extracted()));
        gated.runs_started(1).await;
        let waiters: Vec<_> = (0..7)
            .map(|_| spawn(&gated, "a", || Ok(extracted())))
            .collect();
        gated.waiters("a", 7).await;
        gated.gate.add_permits(1);
        let first = leader.await.unwrap().unwrap();
        let first = first.module.unwrap();
        for waiter in waiters {
            let got = waiter.await.unwrap().unwrap();
            let module = got.module.unwrap();
            assert_eq!(module, MODULE);
            // The very same memory: shared, not copied.
            assert_eq!(module.as_ptr(), first.as_ptr());
            assert_eq!(got.digest, Digest::sha256_of(MODULE));
        }
        assert_eq!(gated.runs.load(Ordering::SeqCst), 1);
        assert_eq!(gated.shared.running(), 0, "nothing kept after the flight");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sequential_and_different_extractions_are_not_merged() {
        let gated = Gated::new();
        gated.gate.add_permits(2);
        for _ in 0..2 {
            spawn(&gated, "a", || Ok(extracted()))
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(gated.runs.load(Ordering::SeqCst), 2);

        let a = spawn(&gated, "a", || Ok(extracted()));
        let b = spawn(&gated, "b", || Ok(extracted()));
        gated.runs_started(4).await;
        gated.gate.add_permits(2);
        a.await.unwrap().unwrap();
        b.await.unwrap().unwrap();
        assert_eq!(gated.runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_gets_the_leaders_failure() {
        let gated = Gated::new();
        let failing = || {
            Err(
                Error::new(ErrorKind::DigestMismatch, "layer sha256:00 does not match")
                    .with_registry(200, None),
            )
        };
        let leader = spawn(&gated, "a", failing);
        gated.runs_started(1).await;
        let waiters: Vec<_> = (0..3).map(|_| spawn(&gated, "a", failing)).collect();
        gated.waiters("a", 3).await;
        gated.gate.add_permits(1);
        for call in std::iter::once(leader).chain(waiters) {
            let err = call.await.unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DigestMismatch);
            assert_eq!(err.message(), "layer sha256:00 does not match");
            assert_eq!(err.registry().map(|r| r.status), Some(200));
        }
        assert_eq!(gated.runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_leader_hands_the_extraction_to_a_waiter() {
        let gated = Gated::new();
        let leader = spawn(&gated, "a", || Err(Error::cancelled()));
        gated.runs_started(1).await;
        let waiters: Vec<_> = (0..3)
            .map(|_| spawn(&gated, "a", || Ok(extracted())))
            .collect();
        gated.waiters("a", 3).await;
        // The leader's own cancellation ends it; one waiter extracts again, the others
        // wait for that one.
        gated.gate.add_permits(1);
        let err = leader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        gated.runs_started(2).await;
        gated.waiters("a", 2).await;
        gated.gate.add_permits(1);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap().unwrap().module.unwrap(), MODULE);
        }
        assert_eq!(gated.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_leader_or_waiter_leaves_the_others_unaffected() {
        let gated = Gated::new();
        let leader = spawn(&gated, "a", || Ok(extracted()));
        gated.runs_started(1).await;
        let quitter = spawn(&gated, "a", || Ok(extracted()));
        let waiters: Vec<_> = (0..3)
            .map(|_| spawn(&gated, "a", || Ok(extracted())))
            .collect();
        gated.waiters("a", 4).await;
        // A waiter that gives up stops waiting at once.
        quitter.abort();
        assert!(quitter.await.unwrap_err().is_cancelled());
        gated.waiters("a", 3).await;
        // The leader dropped mid-extraction (a deadline, an async caller going away).
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        gated.runs_started(2).await;
        gated.gate.add_permits(1);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap().unwrap().module.unwrap(), MODULE);
        }
        assert_eq!(gated.runs.load(Ordering::SeqCst), 2);
        assert_eq!(gated.shared.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_with_its_own_memory_gets_a_copy_there_and_its_progress_completes() {
        let gated = Gated::new();
        let leader = spawn(&gated, "a", || Ok(extracted()));
        gated.runs_started(1).await;
        let allocations = Arc::new(AtomicUsize::new(0));
        let allocate: crate::buffer::ModuleAllocator = {
            let allocations = allocations.clone();
            Arc::new(move |len| {
                allocations.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(crate::extract::OwnedBuffer(vec![0; len])) as Box<dyn ModuleBuffer>)
            })
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let progress: Progress = {
            let events = events.clone();
            Arc::new(move |e: &ProgressEvent| events.lock().unwrap().push((e.done, e.total)))
        };
        let waiter = tokio::spawn(gated.clone().pull(
            "a",
            Destination::Buffer(allocate),
            Some(progress),
            || Ok(extracted()),
        ));
        gated.waiters("a", 1).await;
        gated.gate.add_permits(1);
        let shared = leader.await.unwrap().unwrap().module.unwrap();
        let own = waiter.await.unwrap().unwrap().module.unwrap();
        assert_eq!(own, MODULE);
        assert_ne!(
            own.as_ptr(),
            shared.as_ptr(),
            "a copy in the caller's memory"
        );
        assert_eq!(allocations.load(Ordering::SeqCst), 1);
        let size = MODULE.len() as u64;
        assert_eq!(*events.lock().unwrap(), vec![(0, size), (size, size)]);
    }

    #[test]
    fn keys_tell_stores_images_and_limits_apart() {
        let limits = Limits::default();
        let image = Digest::sha256_of(b"manifest");
        let a = key("127.0.0.1:5000/a", &image, &limits);
        assert_eq!(a, key("127.0.0.1:5000/a", &image, &limits));
        assert_ne!(a, key("127.0.0.1:5000/b", &image, &limits));
        assert_ne!(
            a,
            key("127.0.0.1:5000/a", &Digest::sha256_of(b"other"), &limits)
        );
        let smaller = Limits {
            max_module_bytes: 1,
            ..limits
        };
        assert_ne!(a, key("127.0.0.1:5000/a", &image, &smaller));
    }
}
