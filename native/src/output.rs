//! Python's output and log records on their way to Erlang (the native half
//! of `beam._output`).
//!
//! During a call, what the call writes to `sys.stdout`/`sys.stderr` is
//! line-buffered on its worker thread and sent to the caller as
//! `{Ref, {py_output, {Stream, Binary}}}` (see `call_scope`); what is left
//! is sent when the call ends, before the reply. Log records and warnings
//! of the call go the same way as `{Ref, {py_output, {log, ...}}}`.
//!
//! On py's event loop, the task running (its context holds the job of the
//! call that made it: `event_loop::current_task`) takes the place of the
//! call: its output is held back in its job, a line at a time, and sent
//! by the loop's thread, the rest when the job is answered, before the
//! reply.
//!
//! Outside a call (threads Python started itself), when the caller is gone,
//! or under the `logger` setting, output and records go to the registered
//! `py_output` process as `{py_output, Event, {ThreadIdent, ThreadName,
//! Caller | undefined}}`, which hands them to Erlang's `logger`.
//!
//! Messages are sent with the GIL held: `enif_send` only appends to a
//! mailbox, while giving the GIL up for each line would let another Python
//! thread take it for a whole switch interval.

use std::cell::RefCell;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rustler::types::binary::NewBinary;
use rustler::{Atom, Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::beam_native;
use crate::call_scope::{self, Delivery};
use crate::event_loop::{self, AsyncJob};
use crate::send::send_from_thread;

/// Output of a call held back without a newline is sent anyway past this
/// size.
const LINE_LIMIT: usize = 64 * 1024;

thread_local! {
    /// Output of the running call not sent yet, per stream. At most one of
    /// the two is non-empty: writing to one stream first sends what the
    /// other holds, so that the caller sees them in the order written.
    static PENDING: RefCell<[Vec<u8>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

fn stream_atom(stream: usize) -> Atom {
    if stream == 0 {
        atoms::stdout()
    } else {
        atoms::stderr()
    }
}

fn check_stream(stream: usize) -> PyResult<usize> {
    if stream < 2 {
        Ok(stream)
    } else {
        Err(PyValueError::new_err("stream: 0 (stdout) or 1 (stderr)"))
    }
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut bin = NewBinary::new(env, bytes.len());
    bin.as_mut_slice().copy_from_slice(bytes);
    bin.into()
}

/// The thread that writes: its Python ident and a name (py's own threads
/// by their Rust name, e.g. `py-worker-3`; others by Python's).
fn origin(py: Option<Python<'_>>) -> (u64, String) {
    // SAFETY: PyThread_get_thread_ident only reads the calling thread's id.
    let ident = unsafe { pyo3::ffi::PyThread_get_thread_ident() } as u64;
    if let Some(name) = worker_name() {
        return (ident, name);
    }
    let name = py
        .and_then(|py| {
            py.import("threading")
                .and_then(|t| t.call_method0("current_thread"))
                .and_then(|t| t.getattr("name"))
                .and_then(|n| n.extract::<String>())
                .ok()
        })
        .unwrap_or_else(|| format!("thread-{ident}"));
    (ident, name)
}

/// Sends `{py_output, Event, {Ident, Name, Caller}}` to the `py_output`
/// process; false when it is not running (py is not started).
fn to_service<F>(origin: (u64, String), caller: Option<LocalPid>, event: F) -> bool
where
    F: for<'b> FnOnce(Env<'b>) -> Term<'b>,
{
    let env = OwnedEnv::new();
    let service = env.run(|e| {
        let mut pid = std::mem::MaybeUninit::uninit();
        // SAFETY: called on threads ERTS did not make (workers, Python's
        // threads), which pass a NULL environment; `pid` is written on
        // success only.
        let found = unsafe {
            rustler::sys::enif_whereis_pid(
                std::ptr::null_mut(),
                atoms::py_output().to_term(e).as_c_arg(),
                pid.as_mut_ptr(),
            )
        };
        // SAFETY: initialised by the successful call above.
        (found != 0).then(|| LocalPid::from_c_arg(unsafe { pid.assume_init() }))
    });
    let Some(service) = service else {
        return false;
    };
    let message = env.run(|e| {
        let who = match caller {
            Some(pid) => pid.encode(e),
            None => atoms::undefined().encode(e),
        };
        let info = (origin.0, origin.1.as_str(), who).encode(e);
        env.save((atoms::py_output(), event(e), info))
    });
    send_from_thread(&env, &service, message)
}

/// Output for the logger (or, when py is not running, for the file
/// descriptor Python would have written to).
fn output_to_service(
    py: Option<Python<'_>>,
    stream: usize,
    bytes: &[u8],
    caller: Option<LocalPid>,
) {
    let sent = to_service(origin(py), caller, |e| {
        (stream_atom(stream), binary(e, bytes)).encode(e)
    });
    if !sent {
        write_fd(stream, bytes);
    }
}

fn write_fd(stream: usize, bytes: &[u8]) {
    use std::io::Write;
    let _ = if stream == 0 {
        std::io::stdout().write_all(bytes)
    } else {
        std::io::stderr().write_all(bytes)
    };
}

/// Sends output of the running call to its caller, or to the logger when
/// the caller is gone.
fn send_output(stream: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let sent = call_scope::send_event(|e| (stream_atom(stream), binary(e, bytes)).encode(e));
    match sent {
        Delivery::Delivered => {}
        Delivery::NoCall => output_to_service(None, stream, bytes, None),
        Delivery::Gone => output_to_service(None, stream, bytes, call_scope::caller()),
    }
}

/// Sends everything the running call holds back (both streams).
fn flush_pending() {
    let taken = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        [std::mem::take(&mut p[0]), std::mem::take(&mut p[1])]
    });
    for (stream, bytes) in taken.iter().enumerate() {
        send_output(stream, bytes);
    }
    // Keep the allocations for the next call.
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        for (slot, mut buf) in p.iter_mut().zip(taken) {
            if slot.is_empty() && buf.capacity() <= LINE_LIMIT {
                buf.clear();
                *slot = buf;
            }
        }
    });
}

/// The call on this thread ends: its output is sent before its reply.
pub fn end_of_call() {
    let any = PENDING.with(|p| p.borrow().iter().any(|b| !b.is_empty()));
    if any {
        flush_pending();
    }
}

/// Adds `bytes` (written to `stream`) to the held-back output `held`:
/// returns what the other stream held (to send first) and the complete
/// lines now ready (or a long unfinished one), the rest held back.
fn hold(held: &mut [Vec<u8>; 2], stream: usize, bytes: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let other = 1 - stream;
    let earlier = std::mem::take(&mut held[other]);
    let buf = &mut held[stream];
    buf.extend_from_slice(bytes);
    let ready = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => {
            let end = buf.len() - bytes.len() + i + 1;
            let rest = buf.split_off(end);
            Some(std::mem::replace(buf, rest))
        }
        None if buf.len() >= LINE_LIMIT => Some(std::mem::take(buf)),
        None => None,
    };
    (earlier, ready)
}

/// Sends output of a task on py's event loop to the caller of its job, or
/// to the logger when that caller is gone or answered.
fn send_task_output(job: &AsyncJob, stream: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let sent = job.send_event(|e| (stream_atom(stream), binary(e, bytes)).encode(e));
    if sent != Delivery::Delivered {
        output_to_service(None, stream, bytes, Some(job.caller_pid()));
    }
}

/// The job of a task on py's loop is answered: what its task holds back
/// is sent first. (Tasks of one call share its job; each line goes as it
/// is complete.)
pub fn end_of_task(job: &AsyncJob) {
    let taken = {
        let mut held = job.output_buffers();
        if held.iter().all(|b| b.is_empty()) {
            return;
        }
        [std::mem::take(&mut held[0]), std::mem::take(&mut held[1])]
    };
    for (stream, bytes) in taken.iter().enumerate() {
        send_task_output(job, stream, bytes);
    }
}

/// `output_write(stream, text)`: writes to the running call's caller (0:
/// stdout, 1: stderr), or, on py's event loop, to the caller of the
/// running task's job; False when neither (then it is for the logger).
#[pyfunction]
fn output_write(py: Python<'_>, stream: usize, text: &Bound<'_, PyString>) -> PyResult<bool> {
    let stream = check_stream(stream)?;
    let other = 1 - stream;
    if call_scope::in_call() {
        let text = text.to_string_lossy();
        let ready = PENDING.with(|p| hold(&mut p.borrow_mut(), stream, text.as_bytes()));
        send_output(other, &ready.0);
        if let Some(line) = ready.1 {
            send_output(stream, &line);
        }
        return Ok(true);
    }
    let Some(job) = event_loop::current_task(py) else {
        return Ok(false);
    };
    let job = job.get();
    let text = text.to_string_lossy();
    let ready = hold(&mut job.output_buffers(), stream, text.as_bytes());
    send_task_output(job, other, &ready.0);
    if let Some(line) = ready.1 {
        send_task_output(job, stream, &line);
    }
    Ok(true)
}

/// `output_flush()`: sends what the running call (or task) holds back.
#[pyfunction]
fn output_flush(py: Python<'_>) {
    if call_scope::in_call() {
        flush_pending();
    } else if let Some(job) = event_loop::current_task(py) {
        end_of_task(job.get());
    }
}

/// The caller of the running call, or of the running task's job.
fn any_caller(py: Python<'_>) -> Option<LocalPid> {
    call_scope::caller().or_else(|| event_loop::current_task(py).map(|j| j.get().caller_pid()))
}

/// `output_log(stream, text)`: output for Erlang's logger (a thread outside
/// any call, or the `logger` setting).
#[pyfunction]
fn output_log(py: Python<'_>, stream: usize, text: &Bound<'_, PyString>) -> PyResult<()> {
    let stream = check_stream(stream)?;
    let text = text.to_string_lossy();
    output_to_service(Some(py), stream, text.as_bytes(), any_caller(py));
    Ok(())
}

/// `notify(event)`: an event (a log record, a warning) for the running
/// call's caller, else for the `py_output` process. False when neither can
/// take it (py is not running).
#[pyfunction]
fn notify(py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<bool> {
    let env = OwnedEnv::new();
    env.run(|src| -> PyResult<bool> {
        let term = beam_native::encode(py, src, event)?;
        if call_scope::in_call() {
            // What the call printed before comes first.
            end_of_call();
            if call_scope::send_event(|e| term.in_env(e)) == Delivery::Delivered {
                return Ok(true);
            }
        } else if let Some(job) = event_loop::current_task(py) {
            let job = job.get();
            end_of_task(job);
            if job.send_event(|e| term.in_env(e)) == Delivery::Delivered {
                return Ok(true);
            }
        }
        Ok(to_service(origin(Some(py)), any_caller(py), |e| {
            term.in_env(e)
        }))
    })
}

/// `worker_name()`: the name of py's own thread running this code (e.g.
/// `py-worker-3`), None on other threads.
#[pyfunction]
fn worker_name() -> Option<String> {
    std::thread::current()
        .name()
        .filter(|n| n.starts_with("py-"))
        .map(str::to_string)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(output_write, m)?)?;
    m.add_function(wrap_pyfunction!(output_flush, m)?)?;
    m.add_function(wrap_pyfunction!(output_log, m)?)?;
    m.add_function(wrap_pyfunction!(notify, m)?)?;
    m.add_function(wrap_pyfunction!(worker_name, m)?)?;
    Ok(())
}
