//! Erlang term -> Python object, following the conversion table of the
//! README ("Types"): integers to `int`, floats to `float`, UTF-8 binaries
//! to `str` and other binaries to `bytes`, lists to `list`, tuples to
//! `tuple`, maps to `dict`, `true`/`false` to `bool`, `undefined` (and
//! the `none` setting's atom) to `None`, other atoms to `beam.Atom`, pids and references to `beam.Pid` and
//! `beam.Ref`, an object handle to its object; funs, ports and bitstrings
//! that are not binaries have no counterpart (`{py_badarg, Why, Term}`).
//!
//! Runs on a worker thread with the GIL held. Recursive, with an explicit
//! depth limit so that a hostile term cannot overflow the stack.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyString, PyTuple};
use pyo3::{ffi, IntoPyObjectExt};
use rustler::{Atom, Binary, ResourceArc, Term, TermType};

use crate::atoms;
use crate::bigint;
use crate::conversions;
use crate::handle::PyHandle;
use crate::none_atom;
use crate::runtime::BeamTypes;

/// Deepest nesting of lists, tuples and maps accepted in either direction.
pub const MAX_DEPTH: usize = 10_000;

/// Stack left below which recursion continues on a new segment.
pub const STACK_RED_ZONE: usize = 64 * 1024;
/// Size of each new stack segment.
pub const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// A term that has no Python counterpart: becomes `{py_badarg, Why, Term}`.
pub struct Badarg<'a> {
    pub why: Atom,
    pub term: Term<'a>,
}

pub enum DecodeError<'a> {
    Badarg(Badarg<'a>),
    Python(PyErr),
}

impl From<PyErr> for DecodeError<'_> {
    fn from(e: PyErr) -> Self {
        DecodeError::Python(e)
    }
}

fn badarg<'a, T>(why: Atom, term: Term<'a>) -> Result<T, DecodeError<'a>> {
    Err(DecodeError::Badarg(Badarg { why, term }))
}

pub struct Decoder<'py, 't> {
    pub py: Python<'py>,
    pub types: &'t BeamTypes,
}

impl<'py> Decoder<'py, '_> {
    pub fn decode<'a>(&self, term: Term<'a>) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        self.decode_at(term, 0)
    }

    fn decode_at<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        // Deep terms recurse deeply, and this may run on a dirty scheduler
        // thread with a small stack: grow the stack on demand.
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.decode_term(term, depth)
        })
    }

    fn decode_term<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        let py = self.py;
        match term.get_type() {
            TermType::Integer => match term.decode::<i64>() {
                Ok(i) => Ok(i.into_bound_py_any(py)?),
                Err(_) => match bigint::from_term(term) {
                    Some(big) => Ok(big.into_bound_py_any(py)?),
                    None => badarg(atoms::unsupported_term(), term),
                },
            },
            TermType::Float => match term.decode::<f64>() {
                Ok(f) => Ok(PyFloat::new(py, f).into_any()),
                Err(_) => badarg(atoms::unsupported_term(), term),
            },
            TermType::Atom => self.decode_atom(term),
            TermType::Binary => match Binary::from_term(term) {
                Ok(bin) => Ok(binary_to_py(py, bin.as_slice())?),
                Err(_) => badarg(atoms::unsupported_bitstring(), term),
            },
            TermType::List => self.decode_list(term, depth),
            TermType::Tuple => self.decode_tuple(term, depth),
            TermType::Map => self.decode_map(term, depth),
            TermType::Pid => self.opaque(&self.types.pid, term),
            TermType::Ref => match term.decode::<ResourceArc<PyHandle>>() {
                // A bare handle resource (outside its '$py' tuple) is
                // accepted as the object too.
                Ok(handle) => self.unwrap_handle(&handle, term),
                Err(_) => self.opaque(&self.types.reference, term),
            },
            TermType::Fun => badarg(atoms::unsupported_fun(), term),
            TermType::Port => badarg(atoms::unsupported_port(), term),
            TermType::Unknown => badarg(atoms::unsupported_term(), term),
        }
    }

    fn decode_atom<'a>(&self, term: Term<'a>) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        let py = self.py;
        if atoms::undefined() == term || none_atom::get() == term {
            return Ok(py.None().into_bound(py));
        }
        match term.decode::<bool>() {
            Ok(b) => Ok(b.into_bound_py_any(py)?),
            Err(_) => {
                let name = term
                    .atom_to_string()
                    .or_else(|_| badarg(atoms::unsupported_term(), term))?;
                Ok(self.types.atom.bind(py).call1((name,))?)
            }
        }
    }

    fn decode_list<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        if depth >= MAX_DEPTH {
            return badarg(atoms::too_deep(), term);
        }
        // The length first (a proper list, or refused), then the items go
        // straight into their slots: no intermediate vector to grow and
        // copy (measured: faster than one pass for large lists).
        let mut len: std::os::raw::c_uint = 0;
        // SAFETY: `term` is a live term of its env; `len` is written only
        // on success.
        if unsafe {
            rustler::sys::enif_get_list_length(term.get_env().as_c_arg(), term.as_c_arg(), &mut len)
        } == 0
        {
            return badarg(atoms::improper_list(), term);
        }
        // SAFETY: PyList_New returns a new reference to a list of `len`
        // NULL slots (or NULL with an exception set); a list dropped with
        // some still NULL (an error half-way) is freed correctly.
        let list = unsafe {
            Bound::from_owned_ptr_or_err(self.py, ffi::PyList_New(len as ffi::Py_ssize_t))?
        };
        let mut cell = term;
        let mut i: ffi::Py_ssize_t = 0;
        while let Ok((head, tail)) = cell.list_get_cell() {
            if i >= len as ffi::Py_ssize_t {
                break;
            }
            let item = self.decode_item(head, depth + 1)?;
            // SAFETY: `i` is in range and the slot empty; SET_ITEM steals
            // the reference handed over by into_ptr.
            unsafe { ffi::PyList_SET_ITEM(list.as_ptr(), i, item.into_ptr()) };
            i += 1;
            cell = tail;
        }
        Ok(list)
    }

    /// A list element: small integers (the common bulk case) without the
    /// general type dispatch.
    #[inline]
    fn decode_item<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        let mut i: i64 = 0;
        // SAFETY: `term` belongs to a live environment; `i` is written only
        // on success.
        if unsafe {
            rustler::sys::enif_get_int64(term.get_env().as_c_arg(), term.as_c_arg(), &mut i)
        } != 0
        {
            // SAFETY: returns a new reference, or NULL with an exception set.
            return Ok(unsafe {
                Bound::from_owned_ptr_or_err(self.py, ffi::PyLong_FromLongLong(i))?
            });
        }
        self.decode_at(term, depth)
    }

    fn decode_tuple<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        if depth >= MAX_DEPTH {
            return badarg(atoms::too_deep(), term);
        }
        let items = rustler::types::tuple::get_tuple(term)
            .or_else(|_| badarg(atoms::unsupported_term(), term))?;
        if items.len() == 2 && items[0] == atoms::py_bytes().to_term(term.get_env()) {
            // `{'$py_bytes', Binary}`: bytes even when the binary is UTF-8.
            return match Binary::from_term(items[1]) {
                Ok(bin) => Ok(PyBytes::new(self.py, bin.as_slice()).into_any()),
                Err(_) => badarg(atoms::unsupported_bitstring(), items[1]),
            };
        }
        if items.len() == 2 && items[0] == atoms::py_buffer().to_term(term.get_env()) {
            // `{'$py_buffer', Binary}`: a read-only memoryview over the
            // binary's memory, no copy.
            return match crate::buffer::decode_buffer(self.py, items[1]) {
                Some(view) => Ok(view?),
                None => badarg(atoms::unsupported_bitstring(), items[1]),
            };
        }
        if items.len() == 3 && items[0] == atoms::py_handle().to_term(term.get_env()) {
            // A handle; one of another node, or a forged one, is refused
            // rather than passed on as a plain tuple.
            return match items[2].decode::<ResourceArc<PyHandle>>() {
                Ok(handle) => self.unwrap_handle(&handle, term),
                Err(_) => badarg(atoms::bad_handle(), term),
            };
        }
        if conversions::has_decoders() {
            if let Some(decoder) = conversions::decoder_for(self.py, self.types, items[0])? {
                let mut args = Vec::with_capacity(items.len() - 1);
                for item in &items[1..] {
                    args.push(self.decode_at(*item, depth + 1)?);
                }
                return Ok(decoder.call1(PyTuple::new(self.py, args)?)?);
            }
        }
        let mut objs = Vec::with_capacity(items.len());
        for item in items {
            objs.push(self.decode_at(item, depth + 1)?);
        }
        Ok(PyTuple::new(self.py, objs)?.into_any())
    }

    fn decode_map<'a>(
        &self,
        term: Term<'a>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        if depth >= MAX_DEPTH {
            return badarg(atoms::too_deep(), term);
        }
        let size = term.map_size().unwrap_or(0);
        // Sized at once: growing a large dict step by step rehashes it
        // each time.
        // SAFETY: returns a new reference to an empty dict, or NULL with an
        // exception set.
        let dict = unsafe {
            Bound::from_owned_ptr_or_err(self.py, _PyDict_NewPresized(size as ffi::Py_ssize_t))?
                .cast_into_unchecked::<PyDict>()
        };
        let Some(iter) = rustler::types::map::MapIterator::new(term) else {
            return badarg(atoms::unsupported_term(), term);
        };
        let mut count = 0;
        for (k, v) in iter {
            let key = self.decode_at(k, depth + 1)?;
            let value = self.decode_at(v, depth + 1)?;
            if let Err(e) = dict.set_item(key, value) {
                if e.is_instance_of::<pyo3::exceptions::PyTypeError>(self.py) {
                    return badarg(atoms::unhashable_key(), k);
                }
                return Err(e.into());
            }
            // Keys distinct as terms can be equal in Python (`1` and `1.0`,
            // `a` and `<<"a">>`, `1` and `true`): refuse rather than drop one.
            count += 1;
            if dict.len() != count {
                return badarg(atoms::duplicate_key(), term);
            }
        }
        Ok(dict.into_any())
    }

    fn unwrap_handle<'a>(
        &self,
        handle: &PyHandle,
        term: Term<'a>,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        match handle.bind(self.py) {
            Some(obj) => Ok(obj),
            None => badarg(atoms::unsupported_term(), term),
        }
    }

    /// Pids and references travel as their external term format inside an
    /// opaque, hashable `beam.Pid` / `beam.Ref`.
    fn opaque<'a>(
        &self,
        class: &Py<pyo3::types::PyType>,
        term: Term<'a>,
    ) -> Result<Bound<'py, PyAny>, DecodeError<'a>> {
        let etf = term.to_binary();
        let bytes = PyBytes::new(self.py, etf.as_slice());
        Ok(class.bind(self.py).call1((bytes,))?)
    }
}

extern "C" {
    /// CPython's own (3.11 exports it): a dict with room for `minused`
    /// items.
    fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
}

/// A binary: `str` when it is UTF-8, `bytes` otherwise. ASCII (the common
/// case) is copied straight into a new compact string, without the UTF-8
/// decoder.
fn binary_to_py<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if bytes.is_ascii() {
        // SAFETY: PyUnicode_New(n, 127) makes an ASCII string of n
        // characters, whose data (n bytes and a NUL) we fill before anyone
        // sees it.
        unsafe {
            let s = Bound::from_owned_ptr_or_err(
                py,
                ffi::PyUnicode_New(bytes.len() as ffi::Py_ssize_t, 127),
            )?;
            let data = ffi::PyUnicode_DATA(s.as_ptr()) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            return Ok(s);
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(_) => Ok(PyBytes::new(py, bytes).into_any()),
    }
}

/// Keyword arguments: `[]`, a proplist of `{Key, Value}` or a map, keys
/// being atoms, binaries or charlists.
pub fn decode_kwargs<'py, 'a>(
    dec: &Decoder<'py, '_>,
    term: Term<'a>,
) -> Result<Option<Bound<'py, PyDict>>, DecodeError<'a>> {
    if term.is_empty_list() {
        return Ok(None);
    }
    let dict = PyDict::new(dec.py);
    let put = |k: Term<'a>, v: Term<'a>| -> Result<(), DecodeError<'a>> {
        let key = kwarg_name(k).ok_or(DecodeError::Badarg(Badarg {
            why: atoms::bad_kwargs(),
            term: k,
        }))?;
        dict.set_item(key, dec.decode(v)?)?;
        Ok(())
    };
    match term.get_type() {
        TermType::Map => {
            let Some(iter) = rustler::types::map::MapIterator::new(term) else {
                return badarg(atoms::bad_kwargs(), term);
            };
            for (n, (k, v)) in iter.enumerate() {
                put(k, v)?;
                // `#{a => 1, <<"a">> => 2}`: one name twice.
                if dict.len() != n + 1 {
                    return badarg(atoms::duplicate_key(), term);
                }
            }
        }
        TermType::List => {
            // rustler's list iterator panics on an improper tail: check first.
            if term.list_length().is_err() {
                return badarg(atoms::improper_list(), term);
            }
            let Ok(iter) = term.into_list_iterator() else {
                return badarg(atoms::bad_kwargs(), term);
            };
            for item in iter {
                match rustler::types::tuple::get_tuple(item) {
                    Ok(pair) if pair.len() == 2 => put(pair[0], pair[1])?,
                    _ => return badarg(atoms::bad_kwargs(), item),
                }
            }
        }
        _ => return badarg(atoms::bad_kwargs(), term),
    }
    Ok(Some(dict))
}

/// A name given as an atom, a binary or a charlist.
pub fn kwarg_name(term: Term<'_>) -> Option<String> {
    match term.get_type() {
        TermType::Atom => term.atom_to_string().ok(),
        TermType::Binary => Binary::from_term(term)
            .ok()
            .and_then(|b| std::str::from_utf8(b.as_slice()).ok().map(str::to_owned)),
        TermType::List => {
            // A proper list of printable characters (never a panic on an
            // improper one, never control characters in a name).
            term.list_length().ok()?;
            let chars: Option<String> = term
                .into_list_iterator()
                .ok()?
                .map(|c| {
                    c.decode::<u32>()
                        .ok()
                        .and_then(char::from_u32)
                        .filter(|ch| !ch.is_control())
                })
                .collect();
            chars.filter(|s| !s.is_empty())
        }
        _ => None,
    }
}
