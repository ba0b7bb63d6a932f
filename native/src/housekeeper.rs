//! Background OS threads that do the work that needs the GIL but is
//! requested from scheduler threads, where taking the GIL could block the
//! scheduler: dropping Python objects released by the Erlang GC, and
//! raising the interrupt exception in a worker whose caller gave up.
//!
//! The two never share a thread. A release runs Python code (`__del__`),
//! which may block for ever (waiting on an Event): interrupts go on
//! regardless, on a thread of their own that never runs Python code. A
//! releaser busy with one object for longer than `RELEASE_STUCK` is given
//! up (it ends whenever that `__del__` returns), reported to Erlang (an
//! error in the logger) and replaced by a fresh one, up to
//! `MAX_ABANDONED` abandoned threads at a time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::py_thread::PyThread;
use crate::watch;
use crate::worker::WorkerShared;

enum Release {
    Object(Py<PyAny>),
    ClearAndDrop(Py<PyDict>),
}

struct Interrupt(Arc<WorkerShared>, u64);

struct Channels {
    releases: Sender<Release>,
    releases_rx: Receiver<Release>,
    interrupts: Sender<Interrupt>,
}

static CHANNELS: OnceLock<Channels> = OnceLock::new();

/// A release taking longer than this is stuck.
const RELEASE_STUCK: Duration = Duration::from_secs(2);
/// Releasers given up and still blocked, at most (then releases wait).
const MAX_ABANDONED: usize = 16;

/// The releaser now in charge (its generation), when its current chore
/// started (ms since `EPOCH`, 0 when idle), and the releasers given up
/// that have not ended yet.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static BUSY_SINCE: AtomicU64 = AtomicU64::new(0);
static ABANDONED: AtomicUsize = AtomicUsize::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    // At least 1: 0 means idle.
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Starts the housekeeper's threads (once; later calls are no-ops).
pub fn start() -> Result<(), std::io::Error> {
    if CHANNELS.get().is_some() {
        return Ok(());
    }
    let (releases, releases_rx) = unbounded();
    let (interrupts, interrupts_rx) = unbounded();
    let channels = Channels {
        releases,
        releases_rx: releases_rx.clone(),
        interrupts,
    };
    if CHANNELS.set(channels).is_ok() {
        spawn_releaser(releases_rx, 0)?;
        std::thread::Builder::new()
            .name("py-interrupter".into())
            .spawn(move || interrupter(interrupts_rx))?;
        watch::start()?;
    }
    Ok(())
}

fn spawn_releaser(rx: Receiver<Release>, generation: u64) -> Result<(), std::io::Error> {
    std::thread::Builder::new()
        .name(format!("py-releaser-{generation}"))
        .spawn(move || releaser(rx, generation))
        .map(|_| ())
}

/// Drops `obj` later, on a thread that holds the GIL.
pub fn release(obj: Py<PyAny>) {
    hand_over_release(Release::Object(obj));
}

/// Empties `dict` (breaking cycles through it) and drops it, later, on a
/// thread that holds the GIL.
pub fn clear_and_release(dict: Py<PyDict>) {
    hand_over_release(Release::ClearAndDrop(dict));
}

/// Asks for the job `seq` running on `worker` to be interrupted.
pub fn interrupt(worker: Arc<WorkerShared>, seq: u64) {
    if let Some(channels) = CHANNELS.get() {
        let _ = channels.interrupts.send(Interrupt(worker, seq));
    }
}

/// Queues a release. Without a housekeeper (the VM is going down) a
/// Python object cannot be dropped safely without the GIL: it is leaked.
fn hand_over_release(release: Release) {
    let undelivered = match CHANNELS.get() {
        Some(channels) => channels
            .releases
            .send(release)
            .err()
            .map(|e| e.into_inner()),
        None => Some(release),
    };
    if let Some(release) = undelivered {
        std::mem::forget(release);
    }
}

fn interrupter(rx: Receiver<Interrupt>) {
    // Made at the first chore: the housekeeper starts before the
    // interpreter, and chores come only once it runs.
    let mut py_thread: Option<PyThread> = None;
    while let Ok(first) = rx.recv() {
        py_thread.get_or_insert_with(PyThread::new);
        Python::attach(|py| {
            first.0.interrupt(py, first.1);
            while let Ok(Interrupt(worker, seq)) = rx.try_recv() {
                worker.interrupt(py, seq);
            }
        });
    }
}

fn releaser(rx: Receiver<Release>, generation: u64) {
    let mut py_thread: Option<PyThread> = None;
    // Ends when given up (after the chore it was stuck in) or when the
    // channel closes.
    while GENERATION.load(Ordering::Acquire) == generation {
        let first = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        py_thread.get_or_insert_with(PyThread::new);
        Python::attach(|py| {
            do_release(py, first, generation);
            // Drain what queued up meanwhile under the same GIL hold.
            for _ in 0..4096 {
                if GENERATION.load(Ordering::Acquire) != generation {
                    break;
                }
                match rx.try_recv() {
                    Ok(release) => do_release(py, release, generation),
                    Err(_) => break,
                }
            }
        });
    }
    // Given up: it was counted as abandoned when replaced.
    ABANDONED.fetch_sub(1, Ordering::AcqRel);
}

fn do_release(py: Python<'_>, release: Release, generation: u64) {
    // Only the releaser in charge is timed (a given-up one may finish its
    // chore at any time).
    let current = || GENERATION.load(Ordering::Acquire) == generation;
    if current() {
        BUSY_SINCE.store(now_ms(), Ordering::Release);
    }
    match release {
        Release::Object(obj) => drop(obj),
        Release::ClearAndDrop(dict) => {
            dict.bind(py).clear();
            drop(dict);
        }
    }
    if current() {
        BUSY_SINCE.store(0, Ordering::Release);
    }
}

/// Called by the watch thread now and then: a releaser stuck in one
/// release is given up and replaced. Returns how long it was stuck (ms)
/// when it was replaced, for the log.
pub fn check_releaser() -> Option<(u64, usize)> {
    let since = BUSY_SINCE.load(Ordering::Acquire);
    if since == 0 || now_ms() - since < RELEASE_STUCK.as_millis() as u64 {
        return None;
    }
    let channels = CHANNELS.get()?;
    if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
        return None;
    }
    ABANDONED.fetch_add(1, Ordering::AcqRel);
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    BUSY_SINCE.store(0, Ordering::Release);
    if spawn_releaser(channels.releases_rx.clone(), generation).is_err() {
        return None;
    }
    Some((now_ms() - since, ABANDONED.load(Ordering::Acquire)))
}
