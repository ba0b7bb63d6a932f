//! `_beam_native`: the built-in Python module behind the `beam` package's
//! messages and calls into Erlang.
//!
//! * `send(pid, term)`: an `enif_send` from the calling thread (a worker, or
//!   any thread Python code started), made after the term was converted and
//!   the GIL released.
//! * `call(module, function, args, timeout)`: asks the `py_callback` process
//!   to run `apply(Module, Function, Args)` in a new Erlang process, then
//!   waits for the reply with the GIL released.
//! * `async_call(module, function, args)` (see `event_loop`): the same
//!   request, answered through the event loop's inbox.
//! * `self_pid()`: the Erlang process whose call the current worker runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rustler::env::SavedTerm;
use rustler::{Atom, Encoder, LocalPid, OwnedEnv, Resource, ResourceArc, Term};

use crate::atoms;
use crate::conversions;
use crate::event_loop::LoopReply;
use crate::runtime;
use crate::send::{is_erts_thread, send_from_thread};
use crate::sync;
use crate::to_erlang::{Encoder2, Options, TypeNames};
use crate::to_python::{DecodeError, Decoder};

/// Where the answer of a call into Erlang goes: the Python thread blocked
/// in `beam.call`, or the event loop (`beam.async_call`).
enum ReplyTo {
    Thread(Sender<(OwnedEnv, SavedTerm)>),
    Loop(LoopReply),
}

/// The reply slot of one `beam.call` or `beam.async_call`, held by the
/// Erlang process that runs the function, which it monitors: if that
/// process dies without answering, the waiting side gets an error at once.
pub struct CallbackRes {
    reply: Mutex<Option<ReplyTo>>,
    /// The process running the function, once it watches the slot; and
    /// whether the waiting side gave up (`beam.async_call` cancelled).
    runner: Arc<Runner>,
}

/// Who runs the function of a call into Erlang, for the waiting side to
/// stop it when it gives up (see [`Runner::cancel`]).
#[derive(Default)]
pub struct Runner {
    state: Mutex<RunnerState>,
}

#[derive(Default)]
struct RunnerState {
    pid: Option<LocalPid>,
    cancelled: bool,
}

impl Runner {
    /// The waiting side gives up: the process running the function is
    /// stopped (`py_callback` exits it, reason `kill`); one that has not
    /// started the function yet will not start it (see
    /// [`CallbackRes::watch`]). Any thread; no GIL needed.
    pub fn cancel(&self) {
        let pid = {
            let mut state = sync::lock(&self.state);
            if state.cancelled {
                return;
            }
            state.cancelled = true;
            state.pid
        };
        if let Some(pid) = pid {
            let env = OwnedEnv::new();
            if let Some(server) = whereis(&env, atoms::py_callback()) {
                let msg = env.run(|e| env.save((atoms::py_cancel_call(), pid).encode(e)));
                send_from_thread(&env, &server, msg);
            }
        }
    }
}

/// The pid registered as `name`, looked up from a thread ERTS did not
/// make (or any thread: a NULL environment).
fn whereis(env: &OwnedEnv, name: Atom) -> Option<LocalPid> {
    env.run(|_| {
        let mut pid = std::mem::MaybeUninit::uninit();
        // SAFETY: a NULL env is what non-ERTS threads pass; `pid` is
        // written on success only.
        let found = unsafe {
            rustler::sys::enif_whereis_pid(std::ptr::null_mut(), name.as_c_arg(), pid.as_mut_ptr())
        };
        // SAFETY: initialised by the successful call above.
        (found != 0).then(|| LocalPid::from_c_arg(unsafe { pid.assume_init() }))
    })
}

#[rustler::resource_impl]
impl Resource for CallbackRes {
    /// The process running the function died: if it had not answered, the
    /// waiting side learns it now.
    fn down<'a>(&'a self, _env: rustler::Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.give_up();
    }
}

impl Drop for CallbackRes {
    /// Never answered (the request was lost): the waiting side is told.
    fn drop(&mut self) {
        self.give_up();
    }
}

impl CallbackRes {
    /// A slot answered through the event loop.
    pub fn to_loop(reply: LoopReply) -> CallbackRes {
        CallbackRes {
            reply: Mutex::new(Some(ReplyTo::Loop(reply))),
            runner: Arc::default(),
        }
    }

    /// Who runs the function: the waiting side's handle to stop it.
    pub fn runner(&self) -> Arc<Runner> {
        self.runner.clone()
    }

    /// `pid` is about to run the function: false when the waiting side
    /// gave up already (then it must not run it). Otherwise a later
    /// [`Runner::cancel`] stops `pid`.
    pub fn watch(&self, pid: LocalPid) -> bool {
        let mut state = sync::lock(&self.runner.state);
        if state.cancelled {
            return false;
        }
        state.pid = Some(pid);
        true
    }

    fn take(&self) -> Option<ReplyTo> {
        sync::lock(&self.reply).take()
    }

    /// No answer will come: a waiting thread sees its channel close, the
    /// loop gets an empty reply.
    fn give_up(&self) {
        if let Some(ReplyTo::Loop(reply)) = self.take() {
            reply.send(None);
        }
    }

    /// Hands the result (copied into its own environment) to the waiting
    /// side; false when it was answered before.
    pub fn answer(&self, result: Term<'_>) -> bool {
        let Some(to) = self.take() else {
            return false;
        };
        let env = OwnedEnv::new();
        let saved = env.save(result);
        match to {
            ReplyTo::Thread(tx) => tx.send((env, saved)).is_ok(),
            ReplyTo::Loop(reply) => {
                reply.send(Some((env, saved)));
                true
            }
        }
    }
}

fn no_erts_thread(what: &str) -> PyResult<()> {
    if is_erts_thread() {
        return Err(PyRuntimeError::new_err(format!(
            "{what} cannot run on an Erlang scheduler thread"
        )));
    }
    Ok(())
}

/// Converts `obj` into a term of `env` (a fresh type-name cache: these
/// calls come from any thread).
pub(crate) fn encode<'a>(
    py: Python<'_>,
    env: rustler::Env<'a>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Term<'a>> {
    let types = runtime::beam_types().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let mut names = TypeNames::default();
    let mut enc = Encoder2 {
        env,
        py,
        types,
        type_names: &mut names,
        opts: Options::default(),
        large_maps: crate::map_build::LargeMaps::InPlace,
    };
    enc.encode(obj).map_err(|e| match e {
        crate::to_erlang::EncodeError::Python(e) => e,
        crate::to_erlang::EncodeError::Result { why, .. } => {
            PyTypeError::new_err(format!("cannot convert to an Erlang term: {why:?}"))
        }
    })
}

fn local_pid(py: Python<'_>, env: rustler::Env<'_>, pid: &Bound<'_, PyAny>) -> PyResult<LocalPid> {
    let types = runtime::beam_types().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    if !pid.get_type().is(types.pid.bind(py)) {
        return Err(PyTypeError::new_err("expected a beam.Pid"));
    }
    let etf = pid.getattr("etf")?;
    let etf = etf.cast::<PyBytes>().map_err(PyErr::from)?;
    env.binary_to_term(etf.as_bytes())
        .and_then(|(t, _)| t.decode::<LocalPid>().ok())
        .ok_or_else(|| PyTypeError::new_err("beam.Pid of a process on another node"))
}

/// `beam.send(pid, term)`: true when the process was alive.
#[pyfunction]
fn send(py: Python<'_>, pid: &Bound<'_, PyAny>, message: &Bound<'_, PyAny>) -> PyResult<bool> {
    no_erts_thread("beam.send")?;
    let env = OwnedEnv::new();
    let (to, msg) = env.run(|e| -> PyResult<_> {
        Ok((local_pid(py, e, pid)?, env.save(encode(py, e, message)?)))
    })?;
    Ok(py.detach(move || send_from_thread(&env, &to, msg)))
}

/// `beam.call(module, function, args, timeout)`: the result of
/// `apply(Module, Function, Args)` in Erlang.
#[pyfunction]
#[pyo3(signature = (module, function, args, timeout=None))]
fn call(
    py: Python<'_>,
    module: &str,
    function: &str,
    args: &Bound<'_, PyList>,
    timeout: Option<f64>,
) -> PyResult<Py<PyAny>> {
    no_erts_thread("beam.call")?;
    let types = runtime::beam_types().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let (tx, rx) = bounded(1);
    let slot = ResourceArc::new(CallbackRes {
        reply: Mutex::new(Some(ReplyTo::Thread(tx))),
        runner: Arc::default(),
    });
    send_call(
        py,
        &slot,
        module,
        function,
        args,
        crate::call_scope::caller(),
    )?;
    drop(slot);
    let wait = timeout.map(Duration::from_secs_f64);
    let reply = py.detach(move || match wait {
        Some(d) => rx.recv_timeout(d),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    });
    let (reply_env, saved) = match reply {
        Ok(r) => r,
        Err(RecvTimeoutError::Timeout) => {
            return Err(PyTimeoutError::new_err(format!(
                "beam.call({module}, {function}): no reply within {} s",
                timeout.unwrap_or_default()
            )))
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(PyRuntimeError::new_err(format!(
                "beam.call({module}, {function}): the Erlang process died without replying"
            )))
        }
    };
    reply_env.run(|e| {
        let term = saved.load(e);
        let dec = Decoder { py, types };
        let decoded = dec.decode(term).map_err(|err| match err {
            DecodeError::Python(p) => p,
            DecodeError::Badarg(b) => PyTypeError::new_err(format!(
                "beam.call({module}, {function}): the result has no Python counterpart ({:?})",
                b.why
            )),
        })?;
        // `{ok, Value}` or `{error, {Class, Reason}}`.
        let (tag, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = decoded.extract()?;
        if tag.eq("ok")? {
            Ok(value.unbind())
        } else {
            let (class, reason): (Bound<'_, PyAny>, Bound<'_, PyAny>) = value.extract()?;
            Err(PyErr::from_value(
                types.erlang_error.bind(py).call1((class, reason))?,
            ))
        }
    })
}

/// A `beam.call` name: its atom when one exists, else a binary (Python
/// data never grows the atom table).
fn callback_name<'a>(env: rustler::Env<'a>, name: &str) -> Term<'a> {
    match Atom::existing_from_utf8_bytes(env, name.as_bytes()) {
        Ok(atom) => atom.encode(env),
        Err(_) => crate::to_erlang::make_binary(env, name.as_bytes()),
    }
}

/// Sends `{py_call, Slot, Module, Function, Args, Caller}` to
/// `py_callback`, which runs the function in a process of its own and
/// answers `Slot`. `caller` is the Erlang caller of the running call, if
/// any: the function runs with its group leader (what it prints, and the
/// output of Python calls it makes, shows where that caller is).
pub fn send_call(
    py: Python<'_>,
    slot: &ResourceArc<CallbackRes>,
    module: &str,
    function: &str,
    args: &Bound<'_, PyList>,
    caller: Option<LocalPid>,
) -> PyResult<()> {
    no_erts_thread("beam.call")?;
    let env = OwnedEnv::new();
    let (server, msg) = env.run(|e| -> PyResult<_> {
        let name = atoms::py_callback();
        let mut server = std::mem::MaybeUninit::uninit();
        // SAFETY: a non-ERTS thread passes a NULL env; `server` is written
        // on success only.
        let found = unsafe {
            rustler::sys::enif_whereis_pid(std::ptr::null_mut(), name.as_c_arg(), server.as_mut_ptr())
        };
        if found == 0 {
            return Err(PyRuntimeError::new_err(
                "beam.call: the py_callback process is not running (is the py application started?)",
            ));
        }
        // SAFETY: initialised by the successful call above.
        let server = LocalPid::from_c_arg(unsafe { server.assume_init() });
        // No atom is made here: an existing atom, or the name as a binary
        // (py_callback checks the `callbacks` setting, then makes atoms
        // only for modules that can be loaded).
        let m = callback_name(e, module);
        let f = callback_name(e, function);
        let a = encode(py, e, args.as_any())?;
        let caller = match caller {
            Some(pid) => pid.encode(e),
            None => atoms::undefined().encode(e),
        };
        Ok((server, env.save((atoms::py_call(), slot.clone(), m, f, a, caller))))
    })?;
    if !py.detach(move || send_from_thread(&env, &server, msg)) {
        return Err(PyRuntimeError::new_err(format!(
            "beam.call({module}, {function}): the Erlang process died without replying"
        )));
    }
    Ok(())
}

/// `pid` as a `beam.Pid`.
pub fn pid_object(py: Python<'_>, pid: LocalPid) -> PyResult<Py<PyAny>> {
    let types = runtime::beam_types().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let env = OwnedEnv::new();
    let etf = env.run(|e| pid.encode(e).to_binary());
    let bytes = PyBytes::new(py, etf.as_slice());
    Ok(types.pid.bind(py).call1((bytes,))?.unbind())
}

/// `beam.self()`: the Erlang process whose call this worker runs, or None.
#[pyfunction]
fn self_pid(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    let Some(pid) = crate::call_scope::caller() else {
        return Ok(None);
    };
    Ok(Some(pid_object(py, pid)?))
}

/// The `beam` package tells whether user conversions are registered.
#[pyfunction]
fn conversions_changed(encoders: bool, decoders: bool) {
    conversions::set_present(encoders, decoders);
}

#[pymodule]
pub fn _beam_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(send, m)?)?;
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(self_pid, m)?)?;
    m.add_function(wrap_pyfunction!(conversions_changed, m)?)?;
    crate::buffer::register(m)?;
    crate::output::register(m)?;
    m.add_function(wrap_pyfunction!(crate::event_loop::async_call, m)?)?;
    Ok(())
}
