//! The NIF entry points (`py_nif` in Erlang). Everything that may take
//! longer than a millisecond runs on a dirty scheduler; `submit` on a normal
//! scheduler only copies terms proven small by `term_budget`.

use std::sync::atomic::Ordering;

use rustler::{Encoder, Env, Term};

use rustler::{NifResult, ResourceArc};

use crate::atoms;
use crate::beam_native::CallbackRes;
use crate::context::{ContextInner, ContextRes};
use crate::housekeeper;
use crate::job::{Job, JobRes};
use crate::queue;
use crate::request;
use crate::runtime;
use crate::term_budget::{within_budget, CELL_BUDGET};
use crate::worker::{self, WorkerRes, STATE_BUSY, STATE_IDLE};

pub fn load(_env: Env, _info: Term) -> bool {
    true
}

/// Starts the interpreter (once per OS process) with `python_path` in front
/// of `sys.path`. `{ok, started}` the first time, `{ok, already_started}`
/// after.
#[rustler::nif(schedule = "DirtyCpu")]
fn init<'a>(env: Env<'a>, python_path: Vec<String>) -> Term<'a> {
    if let Err(e) = housekeeper::start() {
        return (atoms::error(), e.to_string()).encode(env);
    }
    match runtime::start(&python_path) {
        Ok(true) => (atoms::ok(), rustler::Atom::from_str(env, "started").ok()).encode(env),
        Ok(false) => (atoms::ok(), atoms::already_started()).encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    }
}

#[rustler::nif(schedule = "DirtyCpu")]
fn start_worker(env: Env<'_>) -> Term<'_> {
    if !runtime::is_started() {
        return (atoms::error(), "the Python runtime is not started").encode(env);
    }
    match worker::start(env, env.pid()) {
        Ok(res) => (atoms::ok(), res).encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    }
}

/// Where a job goes: a given worker, or the shared queue (`any`).
fn enqueue<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    request: Term<'a>,
    cancellable: bool,
    predecoded: Option<request::Predecoded>,
) -> NifResult<Term<'a>> {
    // A worker, a context (runs on its worker, in its namespace), or `any`.
    let (worker, context) = if let Ok(w) = target.decode::<ResourceArc<WorkerRes>>() {
        (Some(w.shared.clone()), None)
    } else if let Ok(c) = target.decode::<ResourceArc<ContextRes>>() {
        if c.inner.is_closed() {
            return Ok(atoms::closed().encode(env));
        }
        (Some(c.inner.worker.clone()), Some(c.inner.clone()))
    } else if target == atoms::any().to_term(env) {
        (None, None)
    } else {
        return Err(rustler::Error::BadArg);
    };
    let mut job = Job::new(env.pid(), reference, request, cancellable);
    job.predecoded = predecoded;
    job.context = context;
    let cell = job.cell.clone();
    let pushed = match &worker {
        Some(w) => w.push(job),
        None => queue::get().push(job),
    };
    Ok(match (pushed, cell) {
        (Err(_), _) => atoms::stopped().encode(env),
        (Ok(()), Some(cell)) => ResourceArc::new(JobRes { cell }).encode(env),
        (Ok(()), None) => atoms::ok().encode(env),
    })
}

/// Queues `Request` on `Target` (a worker, or `any` for the shared queue);
/// the reply comes as `{Ref, Result}`. Returns `ok`, or a job handle for
/// `cancel/1` when `Cancellable`, `stopped` when no worker can take it, or
/// `big` when the request is too large to copy on this scheduler (then
/// use `submit_dirty/4`).
#[rustler::nif]
fn submit<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    request: Term<'a>,
    cancellable: bool,
) -> NifResult<Term<'a>> {
    if !within_budget(request, CELL_BUDGET) {
        return Ok(atoms::big().encode(env));
    }
    enqueue(env, target, reference, request, cancellable, None)
}

/// As `submit/4`, for large requests, on a dirty scheduler. The arguments
/// of a call are converted to Python here rather than copied first; a term
/// with no Python counterpart gives `{error, Reason}` at once.
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_dirty<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    request: Term<'a>,
    cancellable: bool,
) -> NifResult<Term<'a>> {
    match request::predecode(env, request) {
        None => enqueue(env, target, reference, request, cancellable, None),
        Some(Ok((small, pre))) => enqueue(env, target, reference, small, cancellable, Some(pre)),
        Some(Err(reason)) => Ok((atoms::error(), reason).encode(env)),
    }
}

/// A new context on `Worker`. With `Owned`, it closes when the calling
/// process exits; otherwise when `context_close/1` is called (or the last
/// reference to it is gone).
#[rustler::nif]
fn context_new(env: Env<'_>, worker: ResourceArc<WorkerRes>, owned: bool) -> NifResult<Term<'_>> {
    let ctx = ResourceArc::new(ContextRes {
        inner: ContextInner::new(worker.shared.clone()),
    });
    if owned && env.monitor(&ctx, &env.pid()).is_none() {
        ctx.inner.close();
    }
    Ok(ctx.encode(env))
}

/// Closes a context: its namespace is cleared and released.
#[rustler::nif]
fn context_close(ctx: ResourceArc<ContextRes>) -> rustler::Atom {
    ctx.inner.close();
    atoms::ok()
}

/// Where a cancellable job is: `{running, WorkerThreadId, JobId}` (the
/// ids `worker_info/1` reports), or `not_running` (queued, or finished).
/// Asked just before cancelling, to watch for a job that cannot be
/// interrupted.
#[rustler::nif]
fn job_where(env: Env<'_>, job: ResourceArc<JobRes>) -> Term<'_> {
    match job.cell.running_on() {
        Some((worker, id)) => (atoms::running(), worker, id).encode(env),
        None => atoms::not_running().encode(env),
    }
}

/// Called by a caller that stopped waiting: `replied` (the reply is in its
/// mailbox) or `cancelled` (no reply will come; a running job is
/// interrupted).
#[rustler::nif]
fn cancel(job: ResourceArc<JobRes>) -> rustler::Atom {
    job.cell.cancel()
}

/// The Erlang side of a `beam.call` answers: `Result` is `{ok, Value}` or
/// `{error, {Class, Reason}}`. Returns `big` when the result is too large
/// to copy here (then use `callback_reply_dirty/2`).
#[rustler::nif]
fn callback_reply<'a>(env: Env<'a>, slot: ResourceArc<CallbackRes>, result: Term<'a>) -> Term<'a> {
    if !within_budget(result, CELL_BUDGET) {
        return atoms::big().encode(env);
    }
    slot.answer(result).encode(env)
}

/// The calling process will answer `Slot`: if it dies first, the Python
/// side is told.
#[rustler::nif]
fn callback_watch(env: Env<'_>, slot: ResourceArc<CallbackRes>) -> rustler::Atom {
    if env.monitor(&slot, &env.pid()).is_none() {
        slot.answer(atoms::error().encode(env));
    }
    atoms::ok()
}

#[rustler::nif(schedule = "DirtyCpu")]
fn callback_reply_dirty(slot: ResourceArc<CallbackRes>, result: Term<'_>) -> bool {
    slot.answer(result)
}

/// Length of the shared queue.
#[rustler::nif]
fn shared_queue_len() -> usize {
    queue::get().len()
}

/// Stops the worker thread once the jobs queued before are answered.
#[rustler::nif]
fn stop_worker(worker: rustler::ResourceArc<WorkerRes>) -> rustler::Atom {
    worker.shared.stop();
    atoms::ok()
}

#[rustler::nif]
fn worker_info(env: Env<'_>, worker: rustler::ResourceArc<WorkerRes>) -> Term<'_> {
    let s = &worker.shared;
    let state = match s.state.load(Ordering::Acquire) {
        STATE_IDLE => atoms::idle(),
        STATE_BUSY => atoms::busy(),
        _ => atoms::stopped(),
    };
    rustler::term_map!(env, {
        rustler::Atom::from_str(env, "id").unwrap_or(atoms::undefined()) => s.id,
        rustler::Atom::from_str(env, "queue").unwrap_or(atoms::undefined()) => s.queue_len(),
        rustler::Atom::from_str(env, "state").unwrap_or(atoms::undefined()) => state,
        rustler::Atom::from_str(env, "calls").unwrap_or(atoms::undefined()) => s.calls.load(Ordering::Relaxed),
        rustler::Atom::from_str(env, "errors").unwrap_or(atoms::undefined()) => s.errors.load(Ordering::Relaxed),
        rustler::Atom::from_str(env, "running").unwrap_or(atoms::undefined()) => s.running.load(Ordering::Relaxed),
    })
}

/// Cheap: the queue length alone, for the least-loaded scheduler.
#[rustler::nif]
fn queue_len(worker: rustler::ResourceArc<WorkerRes>) -> usize {
    worker.shared.queue_len()
}

#[rustler::nif]
fn build_info(env: Env<'_>) -> Term<'_> {
    rustler::term_map!(env, {
        rustler::Atom::from_str(env, "libpython").unwrap_or(atoms::undefined()) => runtime::LIBPYTHON,
        rustler::Atom::from_str(env, "python").unwrap_or(atoms::undefined()) => runtime::PYTHON_EXE,
        rustler::Atom::from_str(env, "started").unwrap_or(atoms::undefined()) => runtime::is_started(),
    })
}
