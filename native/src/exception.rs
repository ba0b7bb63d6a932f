//! Python exceptions as Erlang terms:
//! `{python, Type, Message, Traceback}` with `Type` an atom (the class name,
//! module-qualified outside builtins), `Message` a binary and `Traceback` a
//! list of binaries, outermost frame first.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};
use rustler::{Atom, Encoder, Env, Term};

use crate::atoms;
use crate::to_erlang::{make_binary, qualified_type_name};

/// Longest atom text Erlang accepts (in characters).
const MAX_ATOM_CHARS: usize = 255;

pub fn exception_term<'a>(py: Python<'_>, env: Env<'a>, err: &PyErr) -> Term<'a> {
    let ty = err.get_type(py);
    let type_name = qualified_type_name(&ty);
    let type_atom = type_term(env, &ty, &type_name);
    let value = err.value(py);
    let message = value
        .str()
        .map(|s| s.to_string())
        .or_else(|_| value.repr().map(|r| r.to_string()))
        .unwrap_or_else(|_| "<unprintable exception>".to_string());
    let traceback = traceback_lines(py, err);
    let lines: Vec<Term<'a>> = traceback
        .iter()
        .map(|l| make_binary(env, l.as_bytes()))
        .collect();
    (
        atoms::python(),
        type_atom,
        make_binary(env, message.as_bytes()),
        lines,
    )
        .encode(env)
}

/// The exception's type as an atom when the atom exists or the class can
/// be imported by its name (so the atoms made are bounded by the classes
/// of imported modules); otherwise, for a class made at run time
/// (`type('E1', (Exception,), {})`, a class local to a function), its
/// name as a binary: Python data never grows the atom table.
fn type_term<'a>(env: Env<'a>, ty: &Bound<'_, PyType>, name: &str) -> Term<'a> {
    if name.chars().count() <= MAX_ATOM_CHARS {
        if let Ok(atom) = Atom::existing_from_utf8_bytes(env, name.as_bytes()) {
            return atom.encode(env);
        }
        if importable(ty) {
            if let Ok(atom) = Atom::from_utf8_bytes(env, name.as_bytes()) {
                return atom.encode(env);
            }
        }
    }
    make_binary(env, name.as_bytes())
}

/// True when `ty` is what its module (already imported: nothing is
/// imported here) and qualified name designate.
fn importable(ty: &Bound<'_, PyType>) -> bool {
    let py = ty.py();
    let found = (|| -> PyResult<bool> {
        let module: String = ty.getattr("__module__")?.extract()?;
        let qualname: String = ty.getattr("__qualname__")?.extract()?;
        let modules = py.import("sys")?.getattr("modules")?;
        let Some(mut obj) = modules.cast_into::<PyDict>()?.get_item(&module)? else {
            return Ok(false);
        };
        for part in qualname.split('.') {
            if part == "<locals>" {
                return Ok(false);
            }
            // A module's own attributes only (no __getattr__ hooks run).
            let dict = obj.getattr("__dict__")?;
            match dict.get_item(part) {
                Ok(next) => obj = next,
                Err(_) => return Ok(false),
            }
        }
        Ok(obj.is(ty))
    })();
    found.unwrap_or(false)
}

/// The formatted stack entries of the exception's traceback (empty when it
/// has none, e.g. an error raised by the call machinery itself).
pub fn traceback_lines(py: Python<'_>, err: &PyErr) -> Vec<String> {
    let Some(tb) = err.traceback(py) else {
        return Vec::new();
    };
    let formatted = py
        .import("traceback")
        .and_then(|m| m.call_method1("format_tb", (tb,)))
        .and_then(|l| l.cast_into::<PyList>().map_err(PyErr::from));
    match formatted {
        Ok(list) => list
            .iter()
            .filter_map(|item| item.extract::<String>().ok())
            .map(|s| s.trim_end().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceback_lines_name_the_code() {
        Python::initialize();
        Python::attach(|py| {
            let err = py
                .run(c"def f():\n    raise ValueError('boom')\nf()\n", None, None)
                .unwrap_err();
            let lines = traceback_lines(py, &err);
            assert!(!lines.is_empty());
            assert!(lines.iter().any(|l| l.contains("in f")), "{lines:?}");
            assert_eq!(qualified_type_name(&err.get_type(py)), "ValueError");
            let err = py
                .import("json")
                .unwrap()
                .call_method1("loads", ("{",))
                .unwrap_err();
            assert_eq!(
                qualified_type_name(&err.get_type(py)),
                "json.decoder.JSONDecodeError"
            );
        });
    }
}
