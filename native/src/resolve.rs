//! Resolving names such as `os.path`, `datetime.datetime.now` or
//! `__main__.f` to Python objects: the longest importable module prefix,
//! then attributes.

use pyo3::exceptions::{PyAttributeError, PyModuleNotFoundError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

/// The parts of a dotted name; empty parts (`a..b`, `.a`) are an error.
pub fn split_dotted(name: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        None
    } else {
        Some(parts)
    }
}

/// Resolves a full dotted path. `globals` stands for `__main__`: the
/// worker's (or context's) own namespace.
pub fn resolve_path<'py>(
    py: Python<'py>,
    globals: &Bound<'py, PyDict>,
    path: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let parts = split_dotted(path).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!("invalid dotted name '{path}'"))
    })?;
    if parts[0] == "__main__" {
        return resolve_in_namespace(py, globals, &parts, path);
    }
    let (obj, used) = import_longest_prefix(py, &parts)?;
    get_attrs(obj, &parts, used, &parts[..used].join("."), path)
}

fn resolve_in_namespace<'py>(
    py: Python<'py>,
    globals: &Bound<'py, PyDict>,
    parts: &[&str],
    path: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if parts.len() == 1 {
        return Ok(globals.clone().into_any());
    }
    let first = match globals.get_item(parts[1])? {
        Some(obj) => obj,
        None => {
            // Fall back to builtins, as Python's own name lookup does.
            match py.import("builtins")?.getattr(parts[1]) {
                Ok(obj) => obj,
                Err(_) => {
                    return Err(PyAttributeError::new_err(format!(
                        "name '{}' is not defined in __main__ (resolving '{path}')",
                        parts[1]
                    )))
                }
            }
        }
    };
    get_attrs(first, parts, 2, &parts[..2].join("."), path)
}

/// The longest prefix of `parts` that is (or can be imported as) a module,
/// and how many parts it took.
fn import_longest_prefix<'py>(
    py: Python<'py>,
    parts: &[&str],
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let modules = py.import("sys")?.getattr("modules")?;
    let modules = modules.cast_into::<PyDict>()?;
    for n in (1..=parts.len()).rev() {
        let prefix = parts[..n].join(".");
        if let Some(m) = modules.get_item(&prefix)? {
            // A module that another thread is still importing is in
            // sys.modules, half made: `import` (below) waits for it.
            if m.is_instance_of::<PyModule>() && !is_initializing(&m) {
                return Ok((m, n));
            }
        }
    }
    for n in (1..=parts.len()).rev() {
        let prefix = parts[..n].join(".");
        match py.import(prefix.as_str()) {
            Ok(m) => return Ok((m.into_any(), n)),
            Err(e) if is_missing_module(py, &e, &prefix) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PyModuleNotFoundError::new_err(format!(
        "No module named '{}'",
        parts[0]
    )))
}

/// True while `module`'s import runs (`__spec__._initializing`, as
/// CPython's own import checks).
fn is_initializing(module: &Bound<'_, PyAny>) -> bool {
    module
        .getattr("__spec__")
        .and_then(|spec| spec.getattr("_initializing"))
        .and_then(|flag| flag.is_truthy())
        .unwrap_or(false)
}

/// True when `e` says that `prefix` itself (or one of its parents) does not
/// exist, as opposed to an import error raised inside an existing module.
fn is_missing_module(py: Python<'_>, e: &PyErr, prefix: &str) -> bool {
    if !e.is_instance_of::<PyModuleNotFoundError>(py) {
        return false;
    }
    let missing: Option<String> = e
        .value(py)
        .getattr("name")
        .ok()
        .and_then(|n| n.extract().ok());
    match missing {
        Some(name) => prefix == name || prefix.starts_with(&format!("{name}.")),
        None => true,
    }
}

/// Follows attributes `parts[from..]` from `obj` (which `base` names, for
/// messages), naming the part that failed.
pub fn get_attrs<'py>(
    mut obj: Bound<'py, PyAny>,
    parts: &[&str],
    from: usize,
    base: &str,
    path: &str,
) -> PyResult<Bound<'py, PyAny>> {
    for i in from..parts.len() {
        obj = obj.getattr(parts[i]).map_err(|e| {
            // On an object without a dotted name, Python's own message
            // ("'range' object has no attribute 'x'") says it best.
            let unnamed = i == from && base.starts_with('<');
            if e.is_instance_of::<PyAttributeError>(obj.py()) && !unnamed {
                let owner = if i == from {
                    base.to_string()
                } else {
                    format!("{base}.{}", parts[from..i].join("."))
                };
                PyAttributeError::new_err(format!(
                    "'{owner}' has no attribute '{}' (resolving '{path}')",
                    parts[i]
                ))
            } else {
                e
            }
        })?;
    }
    Ok(obj)
}

/// How messages name an object that has no dotted name: `<range object>`.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| format!("<{n} object>"))
        .unwrap_or_else(|_| "<object>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_dotted_names() {
        assert_eq!(split_dotted("os.path"), Some(vec!["os", "path"]));
        assert_eq!(split_dotted("math"), Some(vec!["math"]));
        assert_eq!(split_dotted("a..b"), None);
        assert_eq!(split_dotted(".a"), None);
        assert_eq!(split_dotted(""), None);
    }

    fn with_py<R>(f: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyDict>) -> R) -> R {
        Python::initialize();
        Python::attach(|py| {
            let globals = PyDict::new(py);
            f(py, &globals)
        })
    }

    #[test]
    fn resolves_module_attributes_and_classes() {
        with_py(|py, g| {
            let pi: f64 = resolve_path(py, g, "math.pi").unwrap().extract().unwrap();
            assert_eq!(pi, std::f64::consts::PI);
            let now = resolve_path(py, g, "datetime.datetime.now").unwrap();
            assert!(now.is_callable());
            let join = resolve_path(py, g, "os.path.join").unwrap();
            assert!(join.is_callable());
        });
    }

    #[test]
    fn names_the_failing_part() {
        with_py(|py, g| {
            let err = resolve_path(py, g, "math.nosuch").unwrap_err();
            assert!(
                err.to_string().contains("'math' has no attribute 'nosuch'"),
                "{err}"
            );
            let err = resolve_path(py, g, "nosuchmodule.f").unwrap_err();
            assert!(err.is_instance_of::<PyModuleNotFoundError>(py));
            assert!(err.to_string().contains("nosuchmodule"), "{err}");
        });
    }

    #[test]
    fn main_is_the_given_namespace() {
        with_py(|py, g| {
            g.set_item("answer", 42).unwrap();
            let v: i64 = resolve_path(py, g, "__main__.answer")
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(v, 42);
            let len = resolve_path(py, g, "__main__.len").unwrap();
            assert!(len.is_callable());
            assert!(resolve_path(py, g, "__main__.missing").is_err());
        });
    }
}
