//! One background OS thread that does the work that needs the GIL but is
//! requested from scheduler threads, where taking the GIL could block the
//! scheduler: dropping Python objects released by the Erlang GC, and
//! raising the interrupt exception in a worker whose caller timed out.

use std::sync::{Arc, OnceLock};

use crossbeam_channel::{unbounded, Receiver, Sender};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::py_thread::PyThread;
use crate::worker::WorkerShared;

enum Chore {
    Release(Py<PyAny>),
    ClearAndRelease(Py<PyDict>),
    Interrupt(Arc<WorkerShared>, u64),
}

static CHORES: OnceLock<Sender<Chore>> = OnceLock::new();

/// Starts the housekeeper (once; later calls are no-ops).
pub fn start() -> Result<(), std::io::Error> {
    if CHORES.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = unbounded();
    if CHORES.set(tx).is_ok() {
        std::thread::Builder::new()
            .name("py-housekeeper".into())
            .spawn(move || run(rx))?;
    }
    Ok(())
}

/// Drops `obj` later, on a thread that holds the GIL.
pub fn release(obj: Py<PyAny>) {
    hand_over(Chore::Release(obj));
}

/// Empties `dict` (breaking cycles through it) and drops it, later, on a
/// thread that holds the GIL.
pub fn clear_and_release(dict: Py<PyDict>) {
    hand_over(Chore::ClearAndRelease(dict));
}

/// Asks for the job `seq` running on `worker` to be interrupted.
pub fn interrupt(worker: Arc<WorkerShared>, seq: u64) {
    hand_over(Chore::Interrupt(worker, seq));
}

/// Queues a chore for the housekeeper. Without one (the VM is going down)
/// a Python object cannot be dropped safely without the GIL: it is leaked.
fn hand_over(chore: Chore) {
    let undelivered = match CHORES.get() {
        Some(tx) => tx.send(chore).err().map(|e| e.into_inner()),
        None => Some(chore),
    };
    match undelivered {
        Some(chore @ (Chore::Release(_) | Chore::ClearAndRelease(_))) => std::mem::forget(chore),
        Some(Chore::Interrupt(..)) | None => {}
    }
}

fn run(rx: Receiver<Chore>) {
    // Made at the first chore: the housekeeper starts before the
    // interpreter, and chores come only once it runs.
    let mut py_thread: Option<PyThread> = None;
    while let Ok(first) = rx.recv() {
        py_thread.get_or_insert_with(PyThread::new);
        Python::attach(|py| {
            do_chore(py, first);
            // Drain what queued up meanwhile under the same GIL hold.
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(chore) => do_chore(py, chore),
                    Err(_) => break,
                }
            }
        });
    }
}

fn do_chore(py: Python<'_>, chore: Chore) {
    match chore {
        Chore::Release(obj) => drop(obj),
        Chore::ClearAndRelease(dict) => {
            dict.bind(py).clear();
            drop(dict);
        }
        Chore::Interrupt(worker, seq) => worker.interrupt(py, seq),
    }
}
