//! The Python thread state of one of py's long-lived threads (a worker, the
//! housekeeper), as one RAII guard: made when the thread starts, deleted
//! when it ends, detached in between. `Python::attach` on that thread then
//! re-attaches it (cheap) instead of making a new one per GIL hold.

use pyo3::ffi;

pub struct PyThread {
    gstate: ffi::PyGILState_STATE,
    saved: *mut ffi::PyThreadState,
}

impl PyThread {
    /// Makes the calling thread's Python thread state and detaches it.
    /// The interpreter must be initialised.
    pub fn new() -> PyThread {
        // SAFETY: the interpreter is initialised (callers start threads
        // only after `runtime::start`). PyGILState_Ensure makes this
        // thread's state and takes the GIL; PyEval_SaveThread releases it,
        // keeping the state for later re-attachment.
        unsafe {
            let gstate = ffi::PyGILState_Ensure();
            let saved = ffi::PyEval_SaveThread();
            PyThread { gstate, saved }
        }
    }
}

impl Drop for PyThread {
    fn drop(&mut self) {
        // SAFETY: the state saved in `new` is re-attached on the thread that
        // made it (the guard is not Send: it holds a raw pointer), then the
        // matching PyGILState_Release deletes it.
        unsafe {
            ffi::PyEval_RestoreThread(self.saved);
            ffi::PyGILState_Release(self.gstate);
        }
    }
}
