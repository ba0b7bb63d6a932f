//! The NIF entry points (`py_nif` in Erlang). None runs Python or waits
//! for the GIL. Everything that may take longer than a millisecond runs on
//! a dirty scheduler; `submit` and `callback_reply` on a normal scheduler
//! only copy terms that `term_budget` proved small, else answer `big`.

use rustler::{Encoder, Env, NifMap, NifResult, ResourceArc, Term};

use crate::atoms;
use crate::beam_native::CallbackRes;
use crate::context::{ContextInner, ContextRes};
use crate::event_loop::{self, LoopRes};
use crate::handoff::Waited;
use crate::housekeeper;
use crate::job::{Job, JobRes};
use crate::queue;
use crate::runtime;
use crate::term_budget::{copy_cost, within_budget, Cost, CELL_BUDGET, IDENTIFIER_COST};
use crate::worker::{self, WorkerInfo, WorkerRes};

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
        Ok(true) => (atoms::ok(), atoms::started()).encode(env),
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
) -> NifResult<Term<'a>> {
    // A worker, a context (runs on its worker, in its namespace), or `any`.
    let (worker, context) = if target == atoms::any().to_term(env) {
        (None, None)
    } else if let Ok(w) = target.decode::<ResourceArc<WorkerRes>>() {
        (Some(w.shared.clone()), None)
    } else if let Ok(c) = target.decode::<ResourceArc<ContextRes>>() {
        if c.inner.is_closed() {
            return Ok(atoms::closed().encode(env));
        }
        (Some(c.inner.worker.clone()), Some(c.inner.clone()))
    } else {
        return Err(rustler::Error::BadArg);
    };
    let mut job = Job::new(env.pid(), reference, request, cancellable);
    job.context = context;
    let handle = job.handle();
    let pushed = match &worker {
        Some(w) => w.push(job),
        None => queue::shared().push(job),
    };
    Ok(match (pushed, handle) {
        (Err(job), _) => {
            job.recycle();
            atoms::stopped().encode(env)
        }
        (Ok(()), Some(handle)) => ResourceArc::new(handle).encode(env),
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
    if !within_budget(&[reference, request], CELL_BUDGET) {
        return Ok(atoms::big().encode(env));
    }
    enqueue(env, target, reference, request, cancellable)
}

/// As `submit(any, Ref, Request, false)`, for the common call (the shared
/// queue, no timeout), but the caller may wait here for a moment: when a
/// worker was spinning on the queue (on another core) and no other such
/// call was in flight, a small reply that comes within a few microseconds
/// is returned (`{Ref, Result}`, the message it would else have received;
/// see `handoff`). Else `ok` (the reply comes as a message), `stopped` or
/// `big`, as from `submit/4`.
#[rustler::nif]
fn submit_wait<'a>(env: Env<'a>, reference: Term<'a>, request: Term<'a>) -> NifResult<Term<'a>> {
    // The caller's own make_ref: a plain reference keeps nothing alive,
    // so only the request is looked at for what it holds.
    if !reference.is_ref() {
        return Err(rustler::Error::BadArg);
    }
    let Some(cost) = copy_cost(&[request], CELL_BUDGET - IDENTIFIER_COST) else {
        return Ok(atoms::big().encode(env));
    };
    let cost = Cost {
        units: cost.units + IDENTIFIER_COST,
        ..cost
    };
    let (job, alone) = Job::new(env.pid(), reference, request, false)
        .with_request_cost(cost)
        .counted();
    // With other calls in flight, no handoff: the reply comes as a message.
    let (pushed, handoff) = if alone {
        let (job, handoff) = job.with_handoff();
        (queue::shared().push_seeing_spinner(job), Some(handoff))
    } else {
        (queue::shared().push(job).map(|()| None), None)
    };
    Ok(match (pushed, handoff) {
        (Err(job), _) => {
            job.recycle();
            atoms::stopped().encode(env)
        }
        (Ok(spinner), Some(handoff)) => match handoff.wait(env, spinner) {
            Waited::Reply(message) => message,
            Waited::Message => atoms::ok().encode(env),
        },
        (Ok(_), None) => atoms::ok().encode(env),
    })
}

/// As `submit/4`, for large requests, on a dirty scheduler: the request is
/// copied as it is (converting it is the worker's job, never a
/// scheduler's, since conversion may run Python: `__hash__` of a handle
/// used as a map key, user decoders).
#[rustler::nif(schedule = "DirtyCpu")]
fn submit_dirty<'a>(
    env: Env<'a>,
    target: Term<'a>,
    reference: Term<'a>,
    request: Term<'a>,
    cancellable: bool,
) -> NifResult<Term<'a>> {
    enqueue(env, target, reference, request, cancellable)
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
    if !within_budget(&[result], CELL_BUDGET) {
        return atoms::big().encode(env);
    }
    slot.answer(result).encode(env)
}

/// The calling process will answer `Slot`: if it dies first, the Python
/// side is told. `cancelled` when the Python side gave up already (a
/// cancelled `beam.async_call`): then the function must not run.
#[rustler::nif]
fn callback_watch(env: Env<'_>, slot: ResourceArc<CallbackRes>) -> rustler::Atom {
    if !slot.watch(env.pid()) {
        return atoms::cancelled();
    }
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
    queue::shared().len()
}

/// Stops the worker thread once the jobs queued before are answered.
#[rustler::nif]
fn stop_worker(worker: ResourceArc<WorkerRes>) -> rustler::Atom {
    worker.shared.stop();
    atoms::ok()
}

/// `#{id, queue, state, calls, errors, running}` of a worker.
#[rustler::nif]
fn worker_info(worker: ResourceArc<WorkerRes>) -> WorkerInfo {
    worker.shared.info()
}

/// Cheap: the queue length alone, for the least-loaded scheduler.
#[rustler::nif]
fn queue_len(worker: ResourceArc<WorkerRes>) -> usize {
    worker.shared.queue_len()
}

/// What the library was built with.
#[derive(NifMap)]
#[rustler(encode)]
struct BuildInfo {
    libpython: &'static str,
    python: &'static str,
    started: bool,
}

#[rustler::nif]
fn build_info() -> BuildInfo {
    BuildInfo {
        libpython: runtime::LIBPYTHON,
        python: runtime::PYTHON_EXE,
        started: runtime::is_started(),
    }
}

/// The `none` setting: the atom Python's `None` is (see `none_atom`).
#[rustler::nif]
fn set_none(none: rustler::Atom) -> rustler::Atom {
    crate::none_atom::set(none);
    atoms::ok()
}

/// Starts py's event loop thread, owned by the calling process, and makes
/// it the loop that awaitable results go to.
#[rustler::nif(schedule = "DirtyCpu")]
fn loop_start(env: Env<'_>) -> Term<'_> {
    if !runtime::is_started() {
        return (atoms::error(), "the Python runtime is not started").encode(env);
    }
    match event_loop::start(env, env.pid()) {
        Ok(res) => (atoms::ok(), res).encode(env),
        Err(e) => (atoms::error(), e.to_string()).encode(env),
    }
}

/// Stops the loop: its tasks are cancelled, given `GraceMs` to finish, and
/// their callers answered. The owner gets `{py_loop_stopped, Id}` when the
/// thread has finished.
#[rustler::nif]
fn loop_stop(lp: ResourceArc<LoopRes>, grace_ms: u64) -> rustler::Atom {
    event_loop::stop(&lp, grace_ms);
    atoms::ok()
}

/// Answers `{error, py_loop_stopped}` to the callers still waiting on a
/// stopped loop that did not end in time (blocked in C code); returns how
/// many.
#[rustler::nif(schedule = "DirtyCpu")]
fn loop_abandon(env: Env<'_>, lp: ResourceArc<LoopRes>) -> usize {
    event_loop::abandon(env, &lp)
}

/// `{Id, PendingTasks}` of a loop.
#[rustler::nif]
fn loop_info(lp: ResourceArc<LoopRes>) -> (u64, usize) {
    (lp.shared.id, lp.shared.pending())
}
