//! The one embedded interpreter of this VM: start-up and the Python objects
//! every worker needs (the `beam` package's types).
//!
//! Python cannot be re-initialised, so start-up happens once per OS process;
//! a NIF reload or a restart of the `py` application finds it running.

use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::beam_native::_beam_native;

use crate::error::PyNifError;

/// libpython as found at build time (see build.rs).
pub const LIBPYTHON: &str = env!("PY_NIF_LIBPYTHON");
/// The Python executable the crate was built for.
pub const PYTHON_EXE: &str = env!("PY_NIF_PYTHON");

/// The `beam` package's types, looked up once after start-up.
pub struct BeamTypes {
    pub atom: Py<PyType>,
    pub pid: Py<PyType>,
    pub reference: Py<PyType>,
    pub interrupted: Py<PyType>,
    pub erlang_error: Py<PyType>,
    /// `beam._encoders`: type -> function (user conversions to Erlang).
    pub encoders: Py<PyDict>,
    /// `beam._decoders`: tag name -> function (user conversions to Python).
    pub decoders: Py<PyDict>,
}

static STARTED: OnceLock<Result<BeamTypes, String>> = OnceLock::new();

/// The beam types, once the runtime is started.
pub fn beam_types() -> Result<&'static BeamTypes, PyNifError> {
    match STARTED.get() {
        Some(Ok(types)) => Ok(types),
        Some(Err(e)) => Err(PyNifError::Init(e.clone())),
        None => Err(PyNifError::NotStarted),
    }
}

pub fn is_started() -> bool {
    matches!(STARTED.get(), Some(Ok(_)))
}

/// Starts the interpreter (once). `python_path` entries are put in front of
/// `sys.path`; they must include the directory holding the `beam` package.
/// Returns `Ok(true)` when this call started it, `Ok(false)` when it was
/// already running.
pub fn start(python_path: &[String]) -> Result<bool, PyNifError> {
    let mut first = false;
    let result = STARTED.get_or_init(|| {
        first = true;
        start_once(python_path).map_err(|e| e.to_string())
    });
    match result {
        Ok(_) if first => Ok(true),
        Ok(_) => {
            // Later starts (application restarts) may still add paths.
            Python::attach(|py| add_paths(py, python_path))
                .map_err(|e| PyNifError::Init(e.to_string()))?;
            Ok(false)
        }
        Err(e) => Err(PyNifError::Init(e.clone())),
    }
}

fn start_once(python_path: &[String]) -> Result<BeamTypes, PyNifError> {
    reopen_libpython_global()?;
    // The native half of the `beam` package, built into this library.
    pyo3::append_to_inittab!(_beam_native);
    // Initialises without Python's signal handlers (the BEAM owns signals)
    // and releases the GIL afterwards.
    Python::initialize();
    Python::attach(|py| -> Result<BeamTypes, PyNifError> {
        add_paths(py, python_path).map_err(|e| PyNifError::Init(e.to_string()))?;
        let beam = py
            .import("beam")
            .map_err(|e| PyNifError::Init(format!("cannot import the beam package: {e}")))?;
        let get = |name: &str| -> Result<Py<PyType>, PyNifError> {
            beam.getattr(name)
                .and_then(|t| t.cast_into::<PyType>().map_err(PyErr::from))
                .map(Bound::unbind)
                .map_err(|e| PyNifError::Init(format!("beam.{name}: {e}")))
        };
        let dict = |name: &str| -> Result<Py<PyDict>, PyNifError> {
            beam.getattr(name)
                .and_then(|d| d.cast_into::<PyDict>().map_err(PyErr::from))
                .map(Bound::unbind)
                .map_err(|e| PyNifError::Init(format!("beam.{name}: {e}")))
        };
        Ok(BeamTypes {
            atom: get("Atom")?,
            pid: get("Pid")?,
            reference: get("Ref")?,
            interrupted: get("Interrupted")?,
            erlang_error: get("ErlangError")?,
            encoders: dict("_encoders")?,
            decoders: dict("_decoders")?,
        })
    })
}

fn add_paths(py: Python<'_>, python_path: &[String]) -> PyResult<()> {
    let sys = py.import("sys")?;
    let path = sys.getattr("path")?.cast_into::<PyList>()?;
    for (i, entry) in python_path.iter().enumerate() {
        if !path.contains(entry)? {
            path.insert(i, entry)?;
        }
    }
    Ok(())
}

/// The BEAM loads NIF libraries with local symbol binding, so libpython's
/// symbols are invisible to the C extension modules Python later loads
/// (`_json`, `_ssl`, `_decimal`...), which then fail with "undefined
/// symbol". Re-opening libpython with RTLD_GLOBAL makes them visible.
fn reopen_libpython_global() -> Result<(), PyNifError> {
    let path = CString::new(LIBPYTHON).map_err(|e| PyNifError::LibPython {
        path: LIBPYTHON.to_string(),
        reason: e.to_string(),
    })?;
    // SAFETY: `path` is a valid NUL-terminated string; dlopen of an already
    // loaded library only bumps its reference count and widens visibility.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local message or NULL.
        let reason = unsafe {
            let msg = libc::dlerror();
            if msg.is_null() {
                "unknown dlopen error".to_string()
            } else {
                std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
            }
        };
        return Err(PyNifError::LibPython {
            path: LIBPYTHON.to_string(),
            reason,
        });
    }
    // The handle is deliberately kept open for the life of the process.
    Ok(())
}
