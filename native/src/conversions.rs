//! User-registered conversions (`beam.register_encoder`,
//! `beam.register_decoder`): looked up only when some are registered, so
//! the built-in conversions stay as fast as without them.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use rustler::{Term, TermType};

use crate::runtime::BeamTypes;

static HAS_ENCODERS: AtomicBool = AtomicBool::new(false);
static HAS_DECODERS: AtomicBool = AtomicBool::new(false);

pub fn has_encoders() -> bool {
    HAS_ENCODERS.load(Ordering::Relaxed)
}

pub fn has_decoders() -> bool {
    HAS_DECODERS.load(Ordering::Relaxed)
}

/// Called by the `beam` package whenever its registries change.
pub fn set_present(encoders: bool, decoders: bool) {
    HAS_ENCODERS.store(encoders, Ordering::Relaxed);
    HAS_DECODERS.store(decoders, Ordering::Relaxed);
}

/// The encoder registered for `ty` or its nearest base class.
pub fn encoder_for<'py>(
    py: Python<'py>,
    types: &BeamTypes,
    ty: &Bound<'py, PyType>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let encoders = types.encoders.bind(py);
    if let Some(f) = encoders.get_item(ty)? {
        return Ok(Some(f));
    }
    let mro = ty.getattr("__mro__")?;
    for base in mro.cast::<PyTuple>().map_err(PyErr::from)?.iter() {
        if let Some(f) = encoders.get_item(&base)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

/// The decoder registered for the tag (first element) of a tuple.
pub fn decoder_for<'py>(
    py: Python<'py>,
    types: &BeamTypes,
    tag: Term<'_>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if tag.get_type() != TermType::Atom {
        return Ok(None);
    }
    let Ok(name) = tag.atom_to_string() else {
        return Ok(None);
    };
    let decoders: &Bound<'py, PyDict> = types.decoders.bind(py);
    decoders.get_item(name)
}
