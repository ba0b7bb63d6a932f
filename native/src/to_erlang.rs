//! Python object -> Erlang term, following the conversion table of the
//! README ("Types"): `int` to an integer, `float` to a float (NaN and the
//! infinities to `nan`, `inf`, `'-inf'`), `str` to a UTF-8 binary (or a
//! charlist), `bytes` and `bytearray` to binaries, `list` to a list,
//! `tuple` to a tuple, `dict` to a map, `bool` to `true`/`false`, `None` to
//! `undefined` (or the `none` setting's atom), `beam.Atom`, `beam.Pid` and `beam.Ref` to what they stand
//! for. Exact types map to values; everything else (subclasses included, so that
//! an `OrderedDict` or a named tuple keeps its type) becomes an object
//! handle `{'$py', TypeName, Resource}`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple, PyType};
use rustler::types::binary::NewBinary;
use rustler::{Atom, Encoder, Env, Term};

use crate::atoms;
use crate::bigint;
use crate::buffer;
use crate::conversions;
use crate::handle::PyHandle;
use crate::map_build::{LargeMaps, KIND_LIST, KIND_MAP, KIND_TUPLE};
use crate::none_atom;
use crate::numpy;
use crate::runtime::BeamTypes;
use crate::to_python::{MAX_DEPTH, STACK_RED_ZONE, STACK_SEGMENT};

/// Erlang-visible type names of handles, per type object (the type is
/// kept alive so that its address cannot be reused by another).
pub type TypeNames = crate::word_hash::WordMap<usize, (Py<PyType>, String)>;

/// Maps up to this size are flat maps (MAP_SMALL_MAP_LIMIT in ERTS).
const SMALL_MAP: usize = 32;

/// Per-call conversion options (bits of the request's flags).
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// `str` comes back as a charlist instead of a UTF-8 binary.
    pub charlists: bool,
    /// The result stays in Python: always a handle.
    pub handle: bool,
}

impl Options {
    pub fn from_flags(flags: u64) -> Self {
        Options {
            charlists: flags & 1 != 0,
            handle: flags & 2 != 0,
        }
    }
}

/// A Python value that cannot become a term: `{py_badresult, Why, Handle}`.
pub enum EncodeError {
    Result { why: Atom, obj: Py<PyAny> },
    Python(PyErr),
}

impl From<PyErr> for EncodeError {
    fn from(e: PyErr) -> Self {
        EncodeError::Python(e)
    }
}

pub struct Encoder2<'a, 'py, 's> {
    pub env: Env<'a>,
    pub py: Python<'py>,
    pub types: &'s BeamTypes,
    pub type_names: &'s mut TypeNames,
    pub opts: Options,
    /// How maps of more than 32 keys are made (see `map_build`).
    pub large_maps: LargeMaps,
}

impl<'a, 'py> Encoder2<'a, 'py, '_> {
    pub fn encode(&mut self, obj: &Bound<'py, PyAny>) -> Result<Term<'a>, EncodeError> {
        if self.opts.handle {
            return Ok(self.handle(obj));
        }
        self.encode_at(obj, 0)
    }

    fn encode_at(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<Term<'a>, EncodeError> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            self.encode_obj(obj, depth)
        })
    }

    fn encode_obj(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<Term<'a>, EncodeError> {
        let env = self.env;
        let tp = obj.get_type_ptr();
        // SAFETY (all `&raw mut ffi::Py*_Type` below): taking the address of
        // CPython's static type objects, only compared, never written.
        unsafe {
            if tp == &raw mut ffi::PyLong_Type {
                return self.encode_int(obj);
            }
            if tp == &raw mut ffi::PyFloat_Type {
                let f = ffi::PyFloat_AS_DOUBLE(obj.as_ptr());
                return Ok(encode_float(env, f));
            }
            if tp == &raw mut ffi::PyUnicode_Type {
                return self.encode_str(obj);
            }
            if tp == &raw mut ffi::PyBool_Type {
                return Ok((obj.as_ptr() == ffi::Py_True()).encode(env));
            }
            if obj.is_none() {
                return Ok(none_atom::get().encode(env));
            }
            if tp == &raw mut ffi::PyList_Type {
                return self.encode_list(obj, depth);
            }
            if tp == &raw mut ffi::PyTuple_Type {
                return self.encode_tuple(obj, depth);
            }
            if tp == &raw mut ffi::PyDict_Type {
                return self.encode_dict(obj, depth);
            }
            if tp == &raw mut ffi::PyBytes_Type {
                let bytes = obj.cast::<PyBytes>().map_err(PyErr::from)?;
                if bytes.as_bytes().len() >= buffer::SHARE_MIN {
                    return Ok(buffer::share_bytes(env, bytes));
                }
                return Ok(make_binary(env, bytes.as_bytes()));
            }
            if tp == &raw mut ffi::PyMemoryView_Type {
                if let Some(term) = buffer::encode_memoryview(env, obj, false)? {
                    return Ok(term);
                }
            }
            if tp == &raw mut ffi::PyByteArray_Type {
                let array = obj.cast::<PyByteArray>().map_err(PyErr::from)?;
                // SAFETY: no Python code runs while we copy the contents.
                return Ok(make_binary(env, array.as_bytes()));
            }
        }
        let ty = obj.get_type();
        if ty.is(self.types.atom.bind(self.py)) {
            let text = obj.cast::<PyString>().map_err(PyErr::from)?.to_str()?;
            return match Atom::from_str(env, text) {
                Ok(atom) => Ok(atom.encode(env)),
                Err(_) => Err(EncodeError::Python(
                    pyo3::exceptions::PyValueError::new_err(format!(
                        "beam.Atom too long for an Erlang atom ({} characters)",
                        text.chars().count()
                    )),
                )),
            };
        }
        if ty.is(self.types.pid.bind(self.py)) || ty.is(self.types.reference.bind(self.py)) {
            let etf = obj.getattr("etf")?;
            let etf = etf.cast::<PyBytes>().map_err(PyErr::from)?;
            if let Some((term, _)) = env.binary_to_term(etf.as_bytes()) {
                return Ok(term);
            }
        }
        if let Ok(shared) = obj.cast::<buffer::Shared>() {
            if let Some(term) =
                buffer::encode_memoryview(env, shared.get().view.bind(self.py), true)?
            {
                return Ok(term);
            }
        }
        if conversions::has_encoders() {
            if let Some(encoder) = conversions::encoder_for(self.py, self.types, &ty)? {
                // What an encoder returns is one level deeper: an encoder
                // that returns its own type again (`d.replace(...)`) ends
                // at the depth limit, not in unbounded recursion.
                self.too_deep(obj, depth)?;
                let value = encoder.call1((obj,))?;
                return self.encode_at(&value, depth + 1);
            }
        }
        if let Some(number) = numpy::scalar(obj)? {
            return self.encode_at(&number, depth + 1);
        }
        Ok(self.handle(obj))
    }

    fn encode_int(&mut self, obj: &Bound<'py, PyAny>) -> Result<Term<'a>, EncodeError> {
        let mut overflow: std::os::raw::c_int = 0;
        // SAFETY: `obj` is an exact int; the call cannot fail for one.
        let v = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
        if overflow == 0 {
            return Ok((v as i64).encode(self.env));
        }
        // Beyond 64 bits; beyond Erlang's integer limit, no term.
        let big: num_bigint::BigInt = obj.extract()?;
        bigint::to_term(self.env, &big).ok_or_else(|| EncodeError::Result {
            why: atoms::int_too_big(),
            obj: obj.clone().unbind(),
        })
    }

    fn encode_str(&mut self, obj: &Bound<'py, PyAny>) -> Result<Term<'a>, EncodeError> {
        let s = obj.cast::<PyString>().map_err(PyErr::from)?;
        let text = s.to_str()?;
        if self.opts.charlists {
            let chars: Vec<Term<'a>> = text.chars().map(|c| (c as u32).encode(self.env)).collect();
            return Ok(chars.encode(self.env));
        }
        Ok(make_binary(self.env, text.as_bytes()))
    }

    fn too_deep(&self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), EncodeError> {
        if depth >= MAX_DEPTH {
            return Err(EncodeError::Result {
                why: atoms::too_deep(),
                obj: obj.clone().unbind(),
            });
        }
        Ok(())
    }

    fn encode_list(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<Term<'a>, EncodeError> {
        self.too_deep(obj, depth)?;
        let list = obj.cast::<PyList>().map_err(PyErr::from)?;
        let mut terms: Vec<rustler::sys::ErlNifTerm> = Vec::with_capacity(list.len());
        let mut links = Vec::new();
        for item in list.iter() {
            // Small integers, the common bulk case, without the general
            // dispatch (and its stack check).
            // SAFETY: type check, then the conversion of an exact int;
            // make_int64 in our env.
            unsafe {
                if ffi::Py_TYPE(item.as_ptr()) == &raw mut ffi::PyLong_Type {
                    let mut overflow: std::os::raw::c_int = 0;
                    let v = ffi::PyLong_AsLongLongAndOverflow(item.as_ptr(), &mut overflow);
                    if overflow == 0 {
                        terms.push(rustler::sys::enif_make_int64(self.env.as_c_arg(), v as i64));
                        continue;
                    }
                }
            }
            let before = self.large_maps.count();
            terms.push(self.encode_at(&item, depth + 1)?.as_c_arg());
            if self.large_maps.count() != before {
                links.push((terms.len() - 1, self.large_maps.count() - 1));
            }
        }
        if !links.is_empty() {
            return Ok(self
                .large_maps
                .push(self.env, KIND_LIST, terms, links, None));
        }
        // SAFETY: every term was made in `self.env`; the array outlives the
        // call, which copies it into a new list.
        Ok(unsafe {
            Term::new(
                self.env,
                rustler::sys::enif_make_list_from_array(
                    self.env.as_c_arg(),
                    terms.as_ptr(),
                    terms.len() as _,
                ),
            )
        })
    }

    fn encode_tuple(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<Term<'a>, EncodeError> {
        self.too_deep(obj, depth)?;
        let tuple = obj.cast::<PyTuple>().map_err(PyErr::from)?;
        let mut terms = Vec::with_capacity(tuple.len());
        let mut links = Vec::new();
        for item in tuple.iter() {
            let before = self.large_maps.count();
            terms.push(self.encode_at(&item, depth + 1)?);
            if self.large_maps.count() != before {
                links.push((terms.len() - 1, self.large_maps.count() - 1));
            }
        }
        if !links.is_empty() {
            let raw = terms.iter().map(|t| t.as_c_arg()).collect();
            return Ok(self.large_maps.push(self.env, KIND_TUPLE, raw, links, None));
        }
        Ok(rustler::types::tuple::make_tuple(self.env, &terms))
    }

    fn encode_dict(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<Term<'a>, EncodeError> {
        self.too_deep(obj, depth)?;
        let dict = obj.cast::<PyDict>().map_err(PyErr::from)?;
        let n = dict.len();
        // Keys then values, as `enif_make_map_from_arrays` takes them.
        let mut items: Vec<rustler::sys::ErlNifTerm> = vec![Default::default(); 2 * n];
        let mut links = Vec::new();
        let mut i = 0;
        // An encoder may change the dict being encoded, and iterating a
        // dict that changed size panics (pyo3): with encoders registered,
        // iterate a snapshot, then check the size.
        let mut snapshot;
        let mut live;
        let pairs: &mut dyn Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)> =
            if conversions::has_encoders() {
                snapshot = dict.iter().collect::<Vec<_>>().into_iter();
                &mut snapshot
            } else {
                live = dict.iter();
                &mut live
            };
        for (k, v) in pairs {
            if i == n {
                // The dict grew under us (an encoder mutating it).
                return Err(EncodeError::Python(
                    pyo3::exceptions::PyRuntimeError::new_err(
                        "dict changed size during conversion",
                    ),
                ));
            }
            for (slot, item) in [(i, &k), (n + i, &v)] {
                let before = self.large_maps.count();
                items[slot] = self.encode_at(item, depth + 1)?.as_c_arg();
                if self.large_maps.count() != before {
                    links.push((slot, self.large_maps.count() - 1));
                }
            }
            i += 1;
        }
        if i != n || dict.len() != n {
            return Err(EncodeError::Python(
                pyo3::exceptions::PyRuntimeError::new_err("dict changed size during conversion"),
            ));
        }
        if !links.is_empty() || (n > SMALL_MAP && self.large_maps.is_deferred()) {
            // Built by the receiving process (see `map_build`).
            let handle = self.handle(obj);
            return Ok(self
                .large_maps
                .push(self.env, KIND_MAP, items, links, Some(handle)));
        }
        // Distinct Python keys can meet as one term ('a' and b'a' are both
        // <<"a">>): refuse rather than silently drop one.
        let duplicate = || EncodeError::Result {
            why: atoms::duplicate_key(),
            obj: obj.clone().unbind(),
        };
        let env = self.env.as_c_arg();
        if n <= SMALL_MAP {
            let mut map = rustler::sys::ErlNifTerm::default();
            // SAFETY: the items are terms of `self.env`; flat maps are made
            // without scheduler memory, on any thread.
            let ok = unsafe {
                rustler::sys::enif_make_map_from_arrays(
                    env,
                    items.as_ptr(),
                    items[n..].as_ptr(),
                    n as _,
                    &mut map,
                )
            };
            if ok == 0 {
                return Err(duplicate());
            }
            // SAFETY: made in `self.env` just above.
            return Ok(unsafe { Term::new(self.env, map) });
        }
        // Larger maps are hash tries, which enif_make_map_from_arrays builds
        // with scheduler-local temporary memory: off a scheduler thread (the
        // worker) that crashes the VM on OTP 25. Insert one by one instead
        // (messages Python sends itself; replies defer them).
        let mut map = rustler::types::map::map_new(self.env);
        for j in 0..n {
            // SAFETY: terms of `self.env`.
            let (k, v) = unsafe {
                (
                    Term::new(self.env, items[j]),
                    Term::new(self.env, items[n + j]),
                )
            };
            if map.map_get(k).is_ok() {
                return Err(duplicate());
            }
            map = map.map_put(k, v).map_err(|_| duplicate())?;
        }
        Ok(map)
    }

    /// `{'$py', TypeName, Resource}` holding `obj`.
    pub fn handle(&mut self, obj: &Bound<'py, PyAny>) -> Term<'a> {
        let name = self.type_name(&obj.get_type());
        let resource = PyHandle::new(obj.clone().unbind());
        (
            atoms::py_handle(),
            make_binary(self.env, name.as_bytes()),
            resource,
        )
            .encode(self.env)
    }

    fn type_name(&mut self, ty: &Bound<'py, PyType>) -> String {
        let key = ty.as_ptr() as usize;
        if let Some((_, name)) = self.type_names.get(&key) {
            return name.clone();
        }
        let name = qualified_type_name(ty);
        self.type_names
            .insert(key, (ty.clone().unbind(), name.clone()));
        name
    }
}

/// `module.QualName`, or the bare name for builtins (`dict`, `range`).
pub fn qualified_type_name(ty: &Bound<'_, PyType>) -> String {
    let qualname = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "object".to_string());
    match ty.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{qualname}"),
        _ => qualname,
    }
}

/// Binaries up to this size are made on the heap (ERL_ONHEAP_BIN_LIMIT).
const HEAP_BINARY: usize = 64;

pub fn make_binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    if bytes.len() <= HEAP_BINARY {
        // A heap binary is allocated with HAlloc, which in an env without
        // a process takes a fragment of exactly its size when the current
        // one is full: one malloc per string, and a message of as many
        // fragments (measured: 3x the cost of the string). A 1-tuple
        // (two words) goes through the env's own allocator, which leaves
        // room for the next few hundred words.
        let one = [atoms::ok().to_term(env).as_c_arg()];
        // SAFETY: an array of one term of `env`; the tuple is dropped.
        unsafe {
            rustler::sys::enif_make_tuple_from_array(env.as_c_arg(), one.as_ptr(), 1);
        }
    }
    let mut bin = NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    let bin: rustler::Binary = bin.into();
    bin.to_term(env)
}

/// Floats; NaN and the infinities, which Erlang floats cannot hold, become
/// the atoms `nan`, `inf` and `'-inf'`.
pub fn encode_float(env: Env<'_>, f: f64) -> Term<'_> {
    if f.is_nan() {
        atoms::nan().encode(env)
    } else if f == f64::INFINITY {
        atoms::inf().encode(env)
    } else if f == f64::NEG_INFINITY {
        atoms::neg_inf().encode(env)
    } else {
        f.encode(env)
    }
}
