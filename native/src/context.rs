//! Contexts: Python state owned by Erlang.
//!
//! A context is a namespace of its own (what `exec` defines, `eval` and
//! `__main__` calls see) pinned to one worker thread, so that every call
//! through it runs on the same OS thread (for libraries with thread-local
//! state, such as sqlite3 connections). An anonymous context dies with the
//! process that made it (the resource monitors it); a named one when it is
//! dropped. Closing clears and releases the namespace, so the objects it
//! held are freed at once, cycles through functions' globals included.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rustler::{Env, LocalPid, Resource};

use crate::housekeeper;
use crate::sync;
use crate::worker::WorkerShared;

pub struct ContextInner {
    /// The worker every call of this context runs on.
    pub worker: Arc<WorkerShared>,
    namespace: Mutex<Option<Py<PyDict>>>,
    closed: AtomicBool,
}

pub struct ContextRes {
    pub inner: Arc<ContextInner>,
}

#[rustler::resource_impl]
impl Resource for ContextRes {
    /// The owner of an anonymous context exited.
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.inner.close();
    }
}

impl Drop for ContextRes {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl ContextInner {
    pub fn new(worker: Arc<WorkerShared>) -> Arc<ContextInner> {
        Arc::new(ContextInner {
            worker,
            namespace: Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Py<PyDict>>> {
        sync::lock(&self.namespace)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The namespace, made on first use; `None` once closed. Called on the
    /// context's worker with the GIL held.
    pub fn namespace<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut slot = self.lock();
        if self.is_closed() {
            return Ok(None);
        }
        if let Some(ns) = slot.as_ref() {
            return Ok(Some(ns.bind(py).clone()));
        }
        let ns = PyDict::new(py);
        ns.set_item("__builtins__", py.import("builtins")?)?;
        ns.set_item("__name__", "__main__")?;
        *slot = Some(ns.clone().unbind());
        Ok(Some(ns))
    }

    /// Closes the context (idempotent): the namespace is cleared and
    /// released by the housekeeper, which holds the GIL.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(ns) = self.lock().take() {
            housekeeper::clear_and_release(ns);
        }
    }
}
