//! numpy scalars as numbers. numpy is never imported by py: its types are
//! looked up once numpy is in `sys.modules` (an object of a numpy type can
//! only exist then).

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyType;

struct ScalarTypes {
    bool_: Py<PyType>,
    integer: Py<PyType>,
    floating: Py<PyType>,
}

static TYPES: OnceLock<ScalarTypes> = OnceLock::new();

fn types(py: Python<'_>) -> PyResult<Option<&'static ScalarTypes>> {
    if let Some(t) = TYPES.get() {
        return Ok(Some(t));
    }
    let modules = py.import("sys")?.getattr("modules")?;
    let Ok(np) = modules.get_item("numpy") else {
        return Ok(None);
    };
    let get = |name: &str| -> PyResult<Py<PyType>> {
        Ok(np
            .getattr(name)?
            .cast_into::<PyType>()
            .map_err(PyErr::from)?
            .unbind())
    };
    let t = ScalarTypes {
        bool_: get("bool_")?,
        integer: get("integer")?,
        floating: get("floating")?,
    };
    let _ = TYPES.set(t);
    Ok(TYPES.get())
}

/// The Python number for a numpy scalar (`np.integer` as `int`,
/// `np.floating` as `float`, `np.bool_` as `bool`); `None` for anything
/// else.
pub fn scalar<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    // Only objects of a C type named by numpy are worth a look (numpy's
    // scalar types are `numpy.int64`...; subclasses defined in Python code
    // are not numbers we know).
    // SAFETY: a live type object's tp_name is a NUL-terminated C string.
    let name = unsafe { std::ffi::CStr::from_ptr((*obj.get_type_ptr()).tp_name) };
    if !name.to_bytes().starts_with(b"numpy.") {
        return Ok(None);
    }
    let Some(t) = types(py)? else {
        return Ok(None);
    };
    if obj.is_instance(t.bool_.bind(py))? {
        return Ok(Some(
            obj.is_truthy()?.into_pyobject(py)?.to_owned().into_any(),
        ));
    }
    if obj.is_instance(t.integer.bind(py))? {
        // SAFETY: returns a new reference or NULL with an exception set.
        let int =
            unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyNumber_Index(obj.as_ptr()))? };
        return Ok(Some(int));
    }
    if obj.is_instance(t.floating.bind(py))? {
        // SAFETY: as above.
        let f =
            unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyNumber_Float(obj.as_ptr()))? };
        return Ok(Some(f));
    }
    Ok(None)
}
