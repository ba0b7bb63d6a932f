//! Python exceptions as Erlang terms:
//! `{python, Type, Message, Traceback}` with `Type` an atom (the class name,
//! module-qualified outside builtins), `Message` a binary and `Traceback` a
//! list of binaries, outermost frame first.

use pyo3::prelude::*;
use pyo3::types::PyList;
use rustler::{Atom, Encoder, Env, Term};

use crate::atoms;
use crate::to_erlang::{make_binary, qualified_type_name};

/// Longest atom text Erlang accepts (in characters).
const MAX_ATOM_CHARS: usize = 255;

pub fn exception_term<'a>(py: Python<'_>, env: Env<'a>, err: &PyErr) -> Term<'a> {
    let type_name = qualified_type_name(&err.get_type(py));
    let type_name: String = type_name.chars().take(MAX_ATOM_CHARS).collect();
    let type_atom = Atom::from_str(env, &type_name)
        .map(|a| a.encode(env))
        .unwrap_or_else(|_| make_binary(env, type_name.as_bytes()));
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
