//! Limits set from the application's configuration: the stack size of
//! new worker threads (`worker_stack`), and what tells Erlang whether a
//! worker thread has left (for the stuck-thread bound and graceful stops).

use std::sync::atomic::{AtomicUsize, Ordering};

use rustler::ResourceArc;

use crate::atoms;
use crate::worker::WorkerRes;

/// Default stack of a worker thread: twice a main thread's 8 MB, so that
/// recursion a standalone `python3` survives survives in a worker too.
pub const DEFAULT_WORKER_STACK: usize = 16 * 1024 * 1024;
/// The smallest stack accepted: a main thread's.
pub const MIN_WORKER_STACK: usize = 8 * 1024 * 1024;

static WORKER_STACK: AtomicUsize = AtomicUsize::new(DEFAULT_WORKER_STACK);

/// The stack size of worker threads started from now on.
pub fn worker_stack() -> usize {
    WORKER_STACK.load(Ordering::Relaxed)
}

/// `py_nif:set_worker_stack(Bytes)`: the stack of the next worker threads
/// (at least a main thread's 8 MB).
#[rustler::nif]
fn set_worker_stack(bytes: usize) -> rustler::Atom {
    WORKER_STACK.store(bytes.max(MIN_WORKER_STACK), Ordering::Relaxed);
    atoms::ok()
}

/// `py_nif:worker_exited(Worker)`: true once the worker's OS thread has
/// left (it answered or refused everything it accepted).
#[rustler::nif]
fn worker_exited(worker: ResourceArc<WorkerRes>) -> bool {
    worker.shared.exited()
}
