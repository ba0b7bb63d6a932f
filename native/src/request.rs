//! Requests from Erlang and their execution on a worker thread.
//!
//! A request is a tuple built by the Erlang side (its wire format):
//!
//! | request | meaning |
//! | --- | --- |
//! | `{call, Flags, Target, Args, Kwargs}` | call `Target(*Args, **Kwargs)` |
//! | `{getattr, Flags, Target, Name}` | `getattr(Target, Name)`; `Name` may be dotted |
//! | `{resolve, Flags, Path}` | the object a dotted path names |
//! | `{value, Flags, Term}` | `Term` converted to Python and back (a handle's value) |
//! | `{eval, Flags, Code, Vars}` | evaluate an expression in the worker namespace |
//! | `{exec, Flags, Code, Vars}` | run statements in the worker namespace |
//!
//! `Target` is `{Module, Name}` (atoms, binaries or charlists), a dotted name,
//! an object handle, `{'$py_value', Term}` (the term itself as the object),
//! or `{Object, Name}` with `Object` one of the last two (a method).
//! `Flags` is an integer: bit 0 returns strings as charlists, bit 1 keeps
//! the result in Python as a handle, bit 2 keeps an awaitable result as a
//! handle (otherwise the awaitable result of a `call` or an `eval` is
//! awaited on the event loop, see `event_loop`).
//!
//! The request is decoded here only, into `Request`, on the worker: the
//! submitting NIF copies it without looking inside. Any other shape is
//! `{py_badarg, bad_request, Request}`. The reply is `{ok, Value}`,
//! `{py_maps, Nodes}` (see `map_build`) or `{error, Reason}`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};
use rustler::{Atom, Binary, Encoder, Env, Term, TermType};
use smallvec::SmallVec;

use crate::atoms;
use crate::context::ContextInner;
use crate::event_loop;
use crate::exception::exception_term;
use crate::map_build::LargeMaps;
use crate::resolve::{describe, get_attrs, resolve_path, split_dotted};
use crate::runtime::{self, BeamTypes};
use crate::to_erlang::{EncodeError, Encoder2, Options};
use crate::to_python::{decode_kwargs, kwarg_name, Badarg, DecodeError, Decoder};
use crate::tuple::Tuple;
use crate::worker::WorkerState;

/// A request, as decoded from its tuple (the tag atom is the variant's
/// name). The parts that are converted later, and in several ways, stay
/// terms.
enum Request<'a> {
    /// `{call, Flags, Target, Args, Kwargs}`
    Call(u64, Term<'a>, Term<'a>, Term<'a>),
    /// `{getattr, Flags, Target, Name}`
    Getattr(u64, Term<'a>, Term<'a>),
    /// `{resolve, Flags, Path}`
    Resolve(u64, Term<'a>),
    /// `{value, Flags, Term}`
    Value(u64, Term<'a>),
    /// `{eval, Flags, Code, Vars}`
    Eval(u64, Term<'a>, Term<'a>),
    /// `{exec, Flags, Code, Vars}`
    Exec(u64, Term<'a>, Term<'a>),
}

impl<'a> Request<'a> {
    /// Read in place (a derived decoder copies the tuple into a `Vec` and
    /// tries each variant in turn; this runs on every call).
    fn decode(term: Term<'a>) -> Option<Request<'a>> {
        let t = Tuple::new(term)?;
        let tag = Atom::from_term(t.get(0)?).ok()?;
        let flags: u64 = t.get(1)?.decode().ok()?;
        let part = |i| t.get(i);
        Some(match t.len() {
            5 if tag == atoms::call() => Request::Call(flags, part(2)?, part(3)?, part(4)?),
            4 if tag == atoms::getattr() => Request::Getattr(flags, part(2)?, part(3)?),
            4 if tag == atoms::eval() => Request::Eval(flags, part(2)?, part(3)?),
            4 if tag == atoms::exec() => Request::Exec(flags, part(2)?, part(3)?),
            3 if tag == atoms::resolve() => Request::Resolve(flags, part(2)?),
            3 if tag == atoms::value() => Request::Value(flags, part(2)?),
            _ => return None,
        })
    }

    fn flags(&self) -> u64 {
        match *self {
            Request::Call(flags, ..)
            | Request::Getattr(flags, ..)
            | Request::Resolve(flags, ..)
            | Request::Value(flags, ..)
            | Request::Eval(flags, ..)
            | Request::Exec(flags, ..) => flags,
        }
    }
}

/// Why a request failed, before it becomes an `{error, _}` term.
enum Failure<'a> {
    Badarg(Badarg<'a>),
    Python(PyErr),
    Result(EncodeError),
}

impl<'a> From<DecodeError<'a>> for Failure<'a> {
    fn from(e: DecodeError<'a>) -> Self {
        match e {
            DecodeError::Badarg(b) => Failure::Badarg(b),
            DecodeError::Python(p) => Failure::Python(p),
        }
    }
}

impl From<PyErr> for Failure<'_> {
    fn from(e: PyErr) -> Self {
        Failure::Python(e)
    }
}

fn bad_request(term: Term<'_>) -> Failure<'_> {
    Failure::Badarg(Badarg {
        why: atoms::bad_request(),
        term,
    })
}

/// Flag bit 2: keep an awaitable result as a handle (`{await, false}`).
const NO_AWAIT: u64 = 4;

/// What a request gave.
pub enum Executed<'a> {
    /// The reply: `{ok, Value}`, or `{py_maps, Nodes}` when the value has
    /// maps for the receiving process to build (see `map_build`).
    Value(Term<'a>),
    /// A call's or an eval's result is awaitable: it is awaited on the event
    /// loop, and the reply made from what it gives (converted with `flags`).
    Await { awaitable: Py<PyAny>, flags: u64 },
}

/// Runs `request`: `Ok(Reply)` (or the awaitable to await) or
/// `Err(Reason)`, the reply being `Reply` or `{error, Reason}`.
pub fn execute<'a>(
    py: Python<'_>,
    env: Env<'a>,
    state: &mut WorkerState,
    request: Term<'a>,
    context: Option<&ContextInner>,
) -> Result<Executed<'a>, Term<'a>> {
    let types = runtime::beam_types().map_err(|e| e.to_string().encode(env))?;
    let globals = match context {
        None => state.globals.clone_ref(py).into_bound(py),
        Some(ctx) => match ctx.namespace(py) {
            Ok(Some(ns)) => ns,
            Ok(None) => return Err(atoms::py_context_closed().encode(env)),
            Err(e) => return Err(exception_term(py, env, &e)),
        },
    };
    run(py, env, state, types, &globals, request)
        .map_err(|failure| failure_term(py, env, state, types, failure))
}

fn failure_term<'a>(
    py: Python<'_>,
    env: Env<'a>,
    state: &mut WorkerState,
    types: &BeamTypes,
    failure: Failure<'a>,
) -> Term<'a> {
    match failure {
        Failure::Badarg(b) => (atoms::py_badarg(), b.why, b.term).encode(env),
        Failure::Python(e) => exception_term(py, env, &e),
        Failure::Result(EncodeError::Python(e)) => exception_term(py, env, &e),
        Failure::Result(EncodeError::Result { why, obj }) => {
            let mut enc = Encoder2 {
                env,
                py,
                types,
                type_names: &mut state.type_names,
                opts: Options::default(),
                large_maps: LargeMaps::InPlace,
            };
            let handle = enc.handle(obj.bind(py));
            (atoms::py_badresult(), why, handle).encode(env)
        }
    }
}

fn run<'a, 'py>(
    py: Python<'py>,
    env: Env<'a>,
    state: &mut WorkerState,
    types: &BeamTypes,
    globals: &Bound<'py, PyDict>,
    term: Term<'a>,
) -> Result<Executed<'a>, Failure<'a>> {
    let request = Request::decode(term).ok_or_else(|| bad_request(term))?;
    let flags = request.flags();
    let opts = Options::from_flags(flags);
    // Calls and evals give awaitables to await; other requests never do.
    let awaits = flags & NO_AWAIT == 0 && matches!(request, Request::Call(..) | Request::Eval(..));
    let dec = Decoder { py, types };
    let result = match request {
        Request::Call(_, target, args, kwargs) => {
            let target = target_object(py, state, globals, &dec, target)?;
            let args = decode_args(&dec, args)?;
            let kwargs = decode_kwargs(&dec, kwargs)?;
            // Large arguments are freed after the reply is sent.
            state.after_reply.push(args.clone().into_any().unbind());
            target.call(args, kwargs.as_ref())?
        }
        Request::Getattr(_, target_term, name_term) => {
            let target = target_object(py, state, globals, &dec, target_term)?;
            let name = kwarg_name(name_term).ok_or_else(|| name_error(name_term))?;
            let names = split_dotted(&name).ok_or_else(|| name_error(name_term))?;
            let base = match target_term.get_type() {
                TermType::Atom | TermType::Binary => {
                    kwarg_name(target_term).unwrap_or_else(|| describe(&target))
                }
                _ => describe(&target),
            };
            let path = format!("{base}.{name}");
            get_attrs(target, &names, 0, &base, &path)?
        }
        Request::Resolve(_, path_term) => {
            let path = kwarg_name(path_term).ok_or_else(|| name_error(path_term))?;
            resolve_path(py, globals, &path)?
        }
        Request::Value(_, value) => dec.decode(value)?,
        Request::Eval(_, code, vars) => run_code(py, state, &dec, globals, code, vars, "eval")?,
        Request::Exec(_, code, vars) => run_code(py, state, &dec, globals, code, vars, "exec")?,
    };
    if awaits && event_loop::is_awaitable(&result) {
        return Ok(Executed::Await {
            awaitable: result.unbind(),
            flags,
        });
    }
    let mut enc = Encoder2 {
        env,
        py,
        types,
        type_names: &mut state.type_names,
        opts,
        large_maps: LargeMaps::deferred(),
    };
    let term = enc.encode(&result).map_err(Failure::Result)?;
    // A result Python made (a large list...) is freed after the reply is
    // sent, not while the caller waits.
    state.after_reply.push(result.unbind());
    // `{ok, Term}`, or `{py_maps, Nodes}` for the caller to finish.
    Ok(Executed::Value(enc.large_maps.reply(env, term)))
}

/// `eval` or `exec` of `code` in `globals`, with `vars` bound.
fn run_code<'py, 'a>(
    py: Python<'py>,
    state: &mut WorkerState,
    dec: &Decoder<'py, '_>,
    globals: &Bound<'py, PyDict>,
    code: Term<'a>,
    vars: Term<'a>,
    mode: &'static str,
) -> Result<Bound<'py, PyAny>, Failure<'a>> {
    let code = code_text(code)?;
    let compiled = compiled_code(py, state, code, mode)?;
    let builtins = py.import("builtins")?;
    let vars = decode_vars(dec, vars)?;
    if vars.is_empty() {
        return Ok(builtins.call_method1(mode, (compiled, globals))?);
    }
    // Vars live in a copy of the namespace, seen by the whole code (lambdas
    // and comprehensions too) but never by another call: the namespace is
    // shared, and concurrent calls must not see each other's Vars, nor keep
    // them alive. What `exec` defines is copied back.
    let scope = globals.copy()?;
    for (name, value) in &vars {
        scope.set_item(name, value)?;
    }
    let result = builtins.call_method1(mode, (compiled, &scope))?;
    if mode == "exec" {
        for (name, value) in scope.iter() {
            let is_var = name
                .extract::<String>()
                .is_ok_and(|n| vars.iter().any(|(v, _)| *v == n));
            let unchanged = globals.get_item(&name)?.is_some_and(|old| old.is(&value));
            if !is_var && !unchanged {
                globals.set_item(name, value)?;
            }
        }
    }
    Ok(result)
}

fn name_error(term: Term<'_>) -> Failure<'_> {
    Failure::Badarg(Badarg {
        why: atoms::bad_name(),
        term,
    })
}

/// Positional arguments: each one may nest up to the depth limit itself.
fn decode_args<'py, 'a>(
    dec: &Decoder<'py, '_>,
    term: Term<'a>,
) -> Result<Bound<'py, PyTuple>, Failure<'a>> {
    // rustler's list iterator panics on an improper tail: check first.
    if term.is_list() && term.list_length().is_err() {
        return Err(Failure::Badarg(Badarg {
            why: atoms::improper_list(),
            term,
        }));
    }
    let Ok(iter) = term.into_list_iterator() else {
        return Err(bad_request(term));
    };
    // On the stack for the usual few arguments.
    let mut args: SmallVec<[Bound<'py, PyAny>; 8]> = SmallVec::new();
    for item in iter {
        args.push(dec.decode(item)?);
    }
    Ok(PyTuple::new(dec.py, args)?)
}

/// The object a request targets: a handle, `{Module, Name}` or a dotted
/// name.
fn target_object<'py, 'a>(
    py: Python<'py>,
    state: &mut WorkerState,
    globals: &Bound<'py, PyDict>,
    dec: &Decoder<'py, '_>,
    term: Term<'a>,
) -> Result<Bound<'py, PyAny>, Failure<'a>> {
    match term.get_type() {
        TermType::Tuple => {
            let items = Tuple::new(term).ok_or_else(|| name_error(term))?;
            if let (2, Some(first), Some(second)) = (items.len(), items.get(0), items.get(1)) {
                if first == atoms::py_value().to_term(term.get_env()) {
                    // `{'$py_value', Term}`: the term itself is the object.
                    return Ok(dec.decode(second)?);
                }
                // `{Module, Name}`, or `{Object, MethodName}` for methods.
                let base = if first.is_tuple() {
                    target_object(py, state, globals, dec, first)?
                } else {
                    module_object(py, state, globals, first)?
                };
                return attribute(py, state, base, first, second);
            }
            // An object handle (or anything else, which then is called).
            Ok(dec.decode(term)?)
        }
        TermType::Atom | TermType::Binary | TermType::List => {
            let path = kwarg_name(term).ok_or_else(|| name_error(term))?;
            Ok(resolve_path(py, globals, &path)?)
        }
        _ => Ok(dec.decode(term)?),
    }
}

/// The module (or object) named by `term`, cached per atom when it is a
/// module: modules are not replaced once imported (`importlib.reload`
/// re-executes into the same module object).
fn module_object<'py, 'a>(
    py: Python<'py>,
    state: &mut WorkerState,
    globals: &Bound<'py, PyDict>,
    term: Term<'a>,
) -> Result<Bound<'py, PyAny>, Failure<'a>> {
    // Atoms are keyed by their term word (an atom's own Hash goes through
    // enif_hash: hundreds of instructions on every call).
    let key = rustler::Atom::from_term(term).ok().map(|a| a.as_c_arg());
    if let Some(key) = key {
        if let Some(m) = state.modules.get(&key) {
            return Ok(m.bind(py).clone());
        }
    }
    let path = kwarg_name(term).ok_or_else(|| name_error(term))?;
    let obj = resolve_path(py, globals, &path)?;
    if let (Some(key), true) = (key, obj.is_instance_of::<PyModule>() && path != "__main__") {
        state.modules.insert(key, obj.clone().unbind());
    }
    Ok(obj)
}

fn attribute<'py, 'a>(
    py: Python<'py>,
    state: &mut WorkerState,
    obj: Bound<'py, PyAny>,
    module_term: Term<'a>,
    name_term: Term<'a>,
) -> Result<Bound<'py, PyAny>, Failure<'a>> {
    // Only for messages and `__main__`: not computed on the fast path.
    let owner_name =
        |obj: &Bound<'py, PyAny>| kwarg_name(module_term).unwrap_or_else(|| describe(obj));
    if is_main(module_term) {
        // The namespace is a dict: look names up as items.
        let name = kwarg_name(name_term).ok_or_else(|| name_error(name_term))?;
        let path = format!("__main__.{name}");
        let globals = obj.cast_into::<PyDict>().map_err(PyErr::from)?;
        return Ok(resolve_path(py, &globals, &path)?);
    }
    if let Ok(atom) = rustler::Atom::from_term(name_term) {
        let key = atom.as_c_arg();
        let name = match state.names.get(&key) {
            Some(n) => n.bind(py).clone(),
            None => {
                let text = name_term
                    .atom_to_string()
                    .map_err(|_| name_error(name_term))?;
                if text.contains('.') {
                    let parts = split_dotted(&text).ok_or_else(|| name_error(name_term))?;
                    let owner = owner_name(&obj);
                    let path = format!("{owner}.{text}");
                    return Ok(get_attrs(obj, &parts, 0, &owner, &path)?);
                }
                let n = PyString::intern(py, &text);
                state.names.insert(key, n.clone().unbind());
                n
            }
        };
        return obj.getattr(&name).map_err(|e| {
            let text = name_term.atom_to_string().unwrap_or_default();
            let owner = owner_name(&obj);
            Failure::Python(
                // Objects without a dotted name keep Python's own message.
                if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py)
                    && !owner.starts_with('<')
                {
                    pyo3::exceptions::PyAttributeError::new_err(format!(
                        "'{owner}' has no attribute '{text}' (resolving '{owner}.{text}')"
                    ))
                } else {
                    e
                },
            )
        });
    }
    let text = kwarg_name(name_term).ok_or_else(|| name_error(name_term))?;
    let parts = split_dotted(&text).ok_or_else(|| name_error(name_term))?;
    let owner = owner_name(&obj);
    let path = format!("{owner}.{text}");
    Ok(get_attrs(obj, &parts, 0, &owner, &path)?)
}

/// `__main__` as an atom, a binary or a charlist: a name means the same
/// whichever way it is given.
fn is_main(term: Term<'_>) -> bool {
    if term.is_atom() {
        return term == atoms::main_module().to_term(term.get_env());
    }
    kwarg_name(term).is_some_and(|name| name == "__main__")
}

/// Source code: a binary or an iolist of UTF-8 text, not empty.
fn code_text(term: Term<'_>) -> Result<String, Failure<'_>> {
    let bin = if term.is_binary() {
        Binary::from_term(term).ok()
    } else {
        Binary::from_iolist(term).ok()
    };
    let bad = || {
        Failure::Badarg(Badarg {
            why: atoms::bad_code(),
            term,
        })
    };
    let bin = bin.ok_or_else(bad)?;
    let text = std::str::from_utf8(bin.as_slice()).map_err(|_| bad())?;
    if text.trim().is_empty() {
        return Err(bad());
    }
    Ok(text.to_owned())
}

/// The code object of `code`, compiled once per worker: compiling costs
/// more than running a small expression.
fn compiled_code<'py>(
    py: Python<'py>,
    state: &mut WorkerState,
    code: String,
    mode: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let key = (code, mode);
    if let Some(c) = state.code.get(&key) {
        return Ok(c.bind(py).clone());
    }
    let compiled = py
        .import("builtins")?
        .call_method1("compile", (key.0.as_str(), "<py>", mode))?;
    if state.code.len() >= CODE_CACHE_LIMIT {
        state.code.clear();
    }
    state.code.insert(key, compiled.clone().unbind());
    Ok(compiled)
}

/// Distinct pieces of code kept compiled per worker.
const CODE_CACHE_LIMIT: usize = 256;

/// `Vars`: a map of atom or binary names to terms (`[]` for none).
fn decode_vars<'py, 'a>(
    dec: &Decoder<'py, '_>,
    vars: Term<'a>,
) -> Result<Vec<(String, Bound<'py, PyAny>)>, Failure<'a>> {
    if vars.is_empty_list() {
        return Ok(Vec::new());
    }
    let iter = rustler::types::map::MapIterator::new(vars).ok_or(Failure::Badarg(Badarg {
        why: atoms::bad_kwargs(),
        term: vars,
    }))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in iter {
        let name = kwarg_name(k).ok_or_else(|| name_error(k))?;
        // `#{x => 1, <<"x">> => 2}`: one name twice.
        if !seen.insert(name.clone()) {
            return Err(Failure::Badarg(Badarg {
                why: atoms::duplicate_key(),
                term: vars,
            }));
        }
        out.push((name, dec.decode(v)?));
    }
    Ok(out)
}
