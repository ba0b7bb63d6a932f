//! Object handles: a NIF resource that keeps one Python object alive for as
//! long as Erlang holds a reference to it.
//!
//! Erlang sees `{'$py', TypeName, Resource}`. The resource's destructor runs
//! wherever the Erlang GC frees it, usually on a scheduler thread, where we
//! must not take the GIL: the object is handed to the housekeeper thread,
//! which drops it with the GIL held.

use pyo3::prelude::*;
use rustler::{Resource, ResourceArc};

use crate::housekeeper;

pub struct PyHandle {
    obj: Option<Py<PyAny>>,
}

#[rustler::resource_impl]
impl Resource for PyHandle {}

impl PyHandle {
    pub fn new(obj: Py<PyAny>) -> ResourceArc<PyHandle> {
        ResourceArc::new(PyHandle { obj: Some(obj) })
    }

    /// The held object, bound to the current GIL scope.
    pub fn bind<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.obj.as_ref().map(|o| o.bind(py).clone())
    }
}

impl Drop for PyHandle {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            housekeeper::release(obj);
        }
    }
}
