//! Byte data shared between Erlang and Python without a copy.
//!
//! - Out: a `bytes` result of `SHARE_MIN` bytes or more becomes a resource
//!   binary over the bytes object's own memory (immutable, and never moved
//!   while the object lives); the resource keeps the object alive and hands
//!   it to the housekeeper when the Erlang GC frees it. A `bytearray` is
//!   copied (it can change after the call). A memoryview of an Erlang
//!   binary is that binary again; `beam.share` marks other buffers (numpy
//!   arrays) whose memory was made immutable. Other memoryviews stay
//!   objects (handles).
//! - In: `{'$py_buffer', Binary}` arrives as a read-only `memoryview` over
//!   the binary's own memory; the `beam.Binary` object under it holds a
//!   reference to the binary (in an environment of its own) until Python
//!   drops the last view. A memoryview of one coming back is the binary
//!   again (a sub-binary for a slice).

use std::os::raw::c_int;

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use rustler::sys::{ErlNifBinary, ErlNifEnv, ErlNifTerm};
use rustler::{Env, Resource, ResourceArc, Term};

use crate::housekeeper;

/// Results of at least this many bytes share Python's memory.
pub const SHARE_MIN: usize = 64 * 1024;

/// Python memory an Erlang binary points into, kept alive by the binary.
pub struct PyMemory {
    obj: Option<Py<PyAny>>,
    data: usize,
    len: usize,
}

#[rustler::resource_impl]
impl Resource for PyMemory {}

impl Drop for PyMemory {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            housekeeper::release(obj);
        }
    }
}

/// A binary over `len` bytes at `data`, which stay valid and unchanged
/// for as long as `owner` lives.
///
/// # Safety
/// `data..data+len` must be memory owned by `owner` that is neither freed
/// nor written while `owner` is alive.
unsafe fn shared_binary<'a>(
    env: Env<'a>,
    owner: Py<PyAny>,
    data: *const u8,
    len: usize,
) -> Term<'a> {
    let res = ResourceArc::new(PyMemory {
        obj: Some(owner),
        data: data as usize,
        len,
    });
    // SAFETY: the slice lives in `owner`, which the resource holds for as
    // long as the binary (and so the resource) is referenced.
    let bin = unsafe {
        res.make_binary_unsafe(env, |m| {
            std::slice::from_raw_parts(m.data as *const u8, m.len)
        })
    };
    bin.to_term(env)
}

/// A `bytes` object's data as a binary without a copy.
pub fn share_bytes<'a>(env: Env<'a>, bytes: &Bound<'_, pyo3::types::PyBytes>) -> Term<'a> {
    // SAFETY: an exact `bytes` is immutable and its data lives inside the
    // object, which is kept alive by the binary.
    unsafe {
        let data = ffi::PyBytes_AsString(bytes.as_ptr()) as *const u8;
        let len = ffi::PyBytes_Size(bytes.as_ptr()) as usize;
        shared_binary(env, bytes.clone().into_any().unbind(), data, len)
    }
}

/// A memoryview result: the Erlang binary it views (a view of a
/// `beam.Binary`); for one that `beam.share` marked (`frozen`: the memory
/// was made read-only for good), a binary over its memory (a copy when
/// small). `None` for other views and views that are not contiguous (they
/// stay objects).
pub fn encode_memoryview<'a>(
    env: Env<'a>,
    mv: &Bound<'_, PyAny>,
    frozen: bool,
) -> PyResult<Option<Term<'a>>> {
    let exporter = mv.getattr("obj")?;
    let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::zeroed();
    // SAFETY: `mv` is a live memoryview; on success the view is filled
    // and released below.
    if unsafe { ffi::PyObject_GetBuffer(mv.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_ND) } != 0 {
        // Not C-contiguous.
        let _ = PyErr::take(mv.py());
        return Ok(None);
    }
    // SAFETY: filled by PyObject_GetBuffer.
    let mut view = unsafe { view.assume_init() };
    let len = view.len as usize;
    let data = view.buf as *const u8;
    let readonly = view.readonly != 0;
    let term = if let Ok(binary) = exporter.cast::<BeamBinary>() {
        binary.get().term_for(env, data, len)
    } else if !frozen {
        // Other memoryviews are objects (handles), as before.
        // SAFETY: releases the view filled above.
        unsafe { ffi::PyBuffer_Release(&mut view) };
        return Ok(None);
    } else if readonly && len >= SHARE_MIN {
        // SAFETY: the memory belongs to an immutable exporter (or one
        // `beam.share` made read-only for good), exported to `mv`, which
        // the binary keeps alive.
        unsafe { shared_binary(env, mv.clone().unbind(), data, len) }
    } else {
        // SAFETY: `len` readable bytes at `data` while the view is held.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        crate::to_erlang::make_binary(env, bytes)
    };
    // SAFETY: releases the view filled above (the memoryview keeps its own).
    unsafe { ffi::PyBuffer_Release(&mut view) };
    Ok(Some(term))
}

/// An Erlang binary seen from Python (`beam.Binary`): exports its memory
/// read-only. Made for `{'$py_buffer', Binary}`.
#[pyclass(frozen, weakref, name = "Binary", module = "beam")]
pub struct BeamBinary {
    env: *mut ErlNifEnv,
    term: ErlNifTerm,
    data: usize,
    len: usize,
}

// SAFETY: the environment is private to this object, written only when
// made and freed once in Drop; terms of an owned environment may be read
// from any thread.
unsafe impl Send for BeamBinary {}
// SAFETY: as above; shared use only reads.
unsafe impl Sync for BeamBinary {}

impl Drop for BeamBinary {
    fn drop(&mut self) {
        // SAFETY: allocated by enif_alloc_env in `new`, freed only here.
        unsafe { rustler::sys::enif_free_env(self.env) };
    }
}

impl BeamBinary {
    /// Holds `bin` (a binary term) in an environment of its own: a refc
    /// binary is referenced, not copied.
    fn new(bin: Term<'_>) -> Option<BeamBinary> {
        // SAFETY: a fresh environment; `bin` is a live term; the binary is
        // inspected in the environment that holds it.
        unsafe {
            let env = rustler::sys::enif_alloc_env();
            let term = rustler::sys::enif_make_copy(env, bin.as_c_arg());
            let mut info = std::mem::MaybeUninit::<ErlNifBinary>::zeroed();
            if rustler::sys::enif_inspect_binary(env, term, info.as_mut_ptr()) == 0 {
                rustler::sys::enif_free_env(env);
                return None;
            }
            let info = info.assume_init();
            Some(BeamBinary {
                env,
                term,
                data: info.data as usize,
                len: info.size,
            })
        }
    }

    /// The binary (or the part of it at `data`, `len` bytes) in `env`.
    fn term_for<'a>(&self, env: Env<'a>, data: *const u8, len: usize) -> Term<'a> {
        let offset = (data as usize).saturating_sub(self.data);
        // SAFETY: our term is alive in our environment; copying a refc
        // binary references it; the part is within the binary (a view of
        // this object's buffer).
        unsafe {
            let whole = rustler::sys::enif_make_copy(env.as_c_arg(), self.term);
            if offset == 0 && len == self.len {
                return Term::new(env, whole);
            }
            let len = len.min(self.len.saturating_sub(offset));
            Term::new(
                env,
                rustler::sys::enif_make_sub_binary(env.as_c_arg(), whole, offset, len),
            )
        }
    }
}

#[pymethods]
impl BeamBinary {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no view to fill"));
        }
        if flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("an Erlang binary is read-only"));
        }
        let (data, len) = {
            let b = slf.get();
            (b.data, b.len)
        };
        // SAFETY: `view` is a buffer struct to fill; the memory is the
        // binary's, alive while this object (which the view references)
        // lives; read-only.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data as *mut std::os::raw::c_void,
                len as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!("<beam.Binary of {} bytes>", self.len)
    }
}

/// `{'$py_buffer', Binary}`: a read-only memoryview over the binary.
pub fn decode_buffer<'py>(py: Python<'py>, bin: Term<'_>) -> Option<PyResult<Bound<'py, PyAny>>> {
    if !bin.is_binary() {
        return None;
    }
    let holder = BeamBinary::new(bin)?;
    Some((|| {
        let obj = Bound::new(py, holder)?;
        // SAFETY: `obj` exports a buffer; returns a new reference or NULL
        // with an exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(obj.as_ptr())) }
    })())
}

/// `beam.share` marks a memoryview over memory it made immutable.
#[pyclass(frozen, name = "Shared", module = "beam")]
pub struct Shared {
    pub view: Py<PyAny>,
}

/// `_beam_native.shared(view)`: used by `beam.share` only, after it made
/// the memory read-only for good.
#[pyfunction]
fn shared(py: Python<'_>, view: Bound<'_, PyAny>) -> PyResult<Shared> {
    // SAFETY: type check of a live object.
    if unsafe { ffi::PyMemoryView_Check(view.as_ptr()) } == 0 {
        return Err(PyTypeError::new_err("beam.share works on a memoryview"));
    }
    let _ = py;
    Ok(Shared {
        view: view.unbind(),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BeamBinary>()?;
    m.add_class::<Shared>()?;
    m.add_function(pyo3::wrap_pyfunction!(shared, m)?)?;
    Ok(())
}
