//! Worker threads: the life of one OS thread that runs Python for Erlang
//! callers, and how it runs a job.
//!
//! A worker has a long-lived Python thread state (`PyThread`) and caches
//! (`WorkerState`). It takes jobs from its own queue, then from the shared
//! one (`queue` holds the idle/spin/park protocol), runs them in batches
//! under one GIL hold, and answers each caller with `{Ref, Result}` sent
//! from this thread. Python never runs on a BEAM scheduler thread.
//!
//! Life: `start` spawns the thread and waits until its Python state is
//! ready; the worker lives until its resource is dropped, `stop_worker` is
//! called, or the owning Erlang process dies. When it leaves it answers
//! what is still queued for it (`{py_worker_stopped, Id}`, or
//! `{py_worker_down, Id}` when the owner died); the last worker told to
//! stop also answers the shared queue (see `queue`).

use std::collections::HashMap;

use crate::word_hash::WordMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use rustler::{Atom, Encoder, Env, LocalPid, NifMap, OwnedEnv, Resource, ResourceArc, Term};

use crate::atoms;
use crate::call_scope;
use crate::error::PyNifError;
use crate::event_loop;
use crate::housekeeper;
use crate::job::{Job, JobCell};
use crate::py_thread::PyThread;
use crate::queue::{self, Msg, WorkerQueue};
use crate::request::{self, Executed};
use crate::runtime;
use crate::send::send_from_thread;
use crate::sync;
use crate::to_erlang::TypeNames;
use crate::watch;

/// Jobs run back to back under one GIL hold before letting other threads in.
const BATCH: usize = 64;

const STATE_IDLE: u8 = 0;
const STATE_BUSY: u8 = 1;
const STATE_STOPPED: u8 = 2;

/// What the worker thread and Erlang callers share.
pub struct WorkerShared {
    /// The worker's id (the `id` of `worker_info/1`, and of
    /// `{py_worker_down, Id}`).
    pub id: u64,
    queue: WorkerQueue,
    /// Id of the job now running (0: none): the target of interrupts.
    running: AtomicU64,
    /// Python thread ident of the worker, target of interrupts.
    py_ident: AtomicU64,
    /// An interrupt exception may be pending in the worker thread.
    interrupt_pending: AtomicBool,
    state: AtomicU8,
    /// The owning Erlang process is gone: answer everything with an error.
    owner_gone: AtomicBool,
    /// The thread has left: it answered everything it had to (the shared
    /// queue's rest too, when it was the last worker).
    left: AtomicBool,
    calls: AtomicU64,
    errors: AtomicU64,
    /// The owning Erlang process (the `py_worker`).
    pub owner: LocalPid,
    /// Who waits for the running job: for answering them when the owner
    /// dies (`{py_worker_down, Id}` at once, even when the job is blocked
    /// in C), and for interrupting the job when they die.
    current: Mutex<Current>,
}

/// The running job's caller, as the watch thread needs it.
#[derive(Default)]
struct Current {
    /// Where the watch builds its answer (the job's own environment is
    /// the worker's while the job runs).
    env: OwnedEnv,
    /// The running job's reference, a term of the job's environment: its
    /// words stay as they are until the job is recycled, after `end`
    /// (the worker only adds terms to that environment meanwhile), so the
    /// watch may copy it under this lock. Not copied for every job.
    reference: Option<rustler::sys::ErlNifTerm>,
    caller: Option<LocalPid>,
    job_id: u64,
    cell: Option<Arc<JobCell>>,
    /// The caller was answered (by the watch: the worker's own reply is
    /// then dropped).
    answered: bool,
    /// The caller died and the job was interrupted.
    orphaned: bool,
}

/// `py_nif:worker_info/1`.
#[derive(NifMap)]
#[rustler(encode)]
pub struct WorkerInfo {
    id: u64,
    queue: usize,
    state: Atom,
    calls: u64,
    errors: u64,
    running: u64,
}

/// The Erlang-visible worker resource. Dropping the last reference stops
/// the thread after it has answered the jobs already queued for it.
pub struct WorkerRes {
    pub shared: Arc<WorkerShared>,
}

#[rustler::resource_impl]
impl Resource for WorkerRes {
    /// The owning Erlang process (the `py_worker` that started the thread)
    /// died, even by `kill`: the worker stops taking jobs, answers the ones
    /// queued for it with `{py_worker_down, Id}` and interrupts the running
    /// one, whose caller gets the same error.
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: rustler::Monitor) {
        self.shared.owner_gone.store(true, Ordering::Release);
        self.shared.stop();
        let running = self.shared.running.load(Ordering::Acquire);
        if running != 0 {
            housekeeper::interrupt(self.shared.clone(), running);
            // Its caller is answered now, not when (if ever) the job ends.
            watch::worker_down(self.shared.clone());
        }
    }
}

impl Drop for WorkerRes {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Per-thread Python state of a worker: the namespace it runs code in, and
/// caches.
pub struct WorkerState {
    pub globals: Py<PyDict>,
    /// Modules resolved from an atom, by the atom's term word (atoms are
    /// never freed: stable keys).
    pub modules: WordMap<rustler::sys::ErlNifTerm, Py<PyAny>>,
    /// Attribute names made from atoms, by the atom's term word.
    pub names: WordMap<rustler::sys::ErlNifTerm, Py<PyString>>,
    /// Erlang-visible type names of handles, per type object.
    pub type_names: TypeNames,
    /// Compiled `eval`/`exec` code, by source and mode.
    pub code: HashMap<(String, &'static str), Py<PyAny>>,
    /// Objects of the running job (its arguments, its result) to drop once
    /// the reply is sent: freeing a large one takes milliseconds.
    pub after_reply: Vec<Py<PyAny>>,
}

const CACHE_LIMIT: usize = 4096;

impl WorkerState {
    fn new(py: Python<'_>) -> PyResult<Self> {
        // The interpreter's `__main__`, shared by all workers: what one call
        // defines, the next finds, whichever worker runs it. Private
        // namespaces are what contexts are for.
        let globals = py.import("__main__")?.dict();
        Ok(WorkerState {
            globals: globals.unbind(),
            modules: WordMap::default(),
            names: WordMap::default(),
            type_names: TypeNames::default(),
            code: HashMap::new(),
            after_reply: Vec::new(),
        })
    }

    /// Keeps the caches bounded (a program that makes atoms in a loop must
    /// not grow them without end).
    fn trim_caches(&mut self) {
        if self.modules.len() > CACHE_LIMIT {
            self.modules.clear();
        }
        if self.names.len() > CACHE_LIMIT {
            self.names.clear();
        }
        if self.type_names.len() > CACHE_LIMIT {
            self.type_names.clear();
        }
    }
}

static NEXT_WORKER_ID: AtomicU64 = AtomicU64::new(1);

/// Starts a worker thread and returns its resource, monitoring `owner`:
/// the worker lives as long as that process.
pub fn start(env: Env<'_>, owner: LocalPid) -> Result<ResourceArc<WorkerRes>, PyNifError> {
    let shared = Arc::new(WorkerShared {
        id: NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed),
        queue: WorkerQueue::default(),
        running: AtomicU64::new(0),
        py_ident: AtomicU64::new(0),
        interrupt_pending: AtomicBool::new(false),
        state: AtomicU8::new(STATE_IDLE),
        owner_gone: AtomicBool::new(false),
        left: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        owner,
        current: Mutex::new(Current::default()),
    });
    let thread_shared = shared.clone();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    std::thread::Builder::new()
        .name(format!("py-worker-{}", shared.id))
        .stack_size(crate::limits::worker_stack())
        .spawn(move || thread_main(thread_shared, ready_tx))
        .map_err(|e| PyNifError::Spawn(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {
            watch::register(&shared);
            let res = ResourceArc::new(WorkerRes { shared });
            if env.monitor(&res, &owner).is_none() {
                res.shared.stop();
                return Err(PyNifError::Spawn("the owning process is not alive".into()));
            }
            Ok(res)
        }
        Ok(Err(e)) => Err(PyNifError::Spawn(e)),
        Err(_) => Err(PyNifError::Spawn("worker thread died at start".into())),
    }
}

impl WorkerShared {
    /// Queues a job for this worker; gives it back when the worker stopped.
    pub fn push(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        self.queue.push(job)
    }

    /// True once the thread has left (a thread blocked in C has not).
    pub fn exited(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }

    /// The jobs queued for this worker, plus one while it is stopped but
    /// has not left: a stopping owner waits for 0 before it exits, since
    /// an owner gone fails the jobs still to run (see `run_job`). `stop`
    /// sets the state before it returns, so the owner that called it never
    /// sees 0 before the thread has left.
    pub fn queue_len(&self) -> usize {
        let stopped = self.state.load(Ordering::Acquire) == STATE_STOPPED;
        let leaving = stopped && !self.left.load(Ordering::Acquire);
        self.queue.len() + usize::from(leaving)
    }

    /// Stops the worker once the jobs queued before are answered.
    pub fn stop(&self) {
        if self.queue.stop(queue::shared()) {
            self.state.store(STATE_STOPPED, Ordering::Release);
        }
    }

    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.id,
            queue: self.queue_len(),
            state: match self.state.load(Ordering::Acquire) {
                STATE_IDLE => atoms::idle(),
                STATE_BUSY => atoms::busy(),
                _ => atoms::stopped(),
            },
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    /// Raises `beam.Interrupted` in the worker thread if job `job_id` is
    /// still running there. Called by the housekeeper with the GIL held, so
    /// the job cannot finish meanwhile: the worker clears `running` and any
    /// pending interrupt with the GIL held.
    pub fn interrupt(&self, _py: Python<'_>, job_id: u64) {
        if self.running.load(Ordering::Acquire) != job_id {
            return;
        }
        let Ok(types) = runtime::beam_types() else {
            return;
        };
        let ident = self.py_ident.load(Ordering::Acquire);
        self.interrupt_pending.store(true, Ordering::Release);
        // SAFETY: the GIL is held (`_py`); the exception type is a live type
        // object; the ident is the worker's Python thread id.
        unsafe {
            ffi::PyThreadState_SetAsyncExc(ident as _, types.interrupted.as_ptr());
        }
    }

    /// After a job: an interrupt aimed at it may not have fired yet; clear
    /// it so that it cannot hit the next job.
    fn clear_interrupt(&self, _py: Python<'_>) {
        if self.interrupt_pending.swap(false, Ordering::AcqRel) {
            // SAFETY: the GIL is held (`_py`); NULL clears the pending async
            // exception of the worker's own thread.
            unsafe {
                ffi::PyThreadState_SetAsyncExc(
                    self.py_ident.load(Ordering::Acquire) as _,
                    std::ptr::null_mut(),
                );
            }
        }
    }

    /// The job starts: its caller is recorded for the watch.
    fn begin(&self, job: &Job) {
        let mut current = sync::lock(&self.current);
        current.reference = Some(job.env.run(|env| job.reference.load(env).as_c_arg()));
        current.caller = Some(job.caller);
        current.job_id = job.id;
        current.cell = job.cell().cloned();
        current.answered = false;
        current.orphaned = false;
    }

    /// The job ended: true when its caller was answered already.
    fn end(&self) -> bool {
        let mut current = sync::lock(&self.current);
        current.caller = None;
        current.reference = None;
        current.cell = None;
        current.answered
    }

    /// (The watch thread, after the owner died.) Answers the running job's
    /// caller with `{py_worker_down, Id}`; the job's own reply, if it ever
    /// ends, is dropped.
    pub fn answer_running_down(&self) {
        let mut guard = sync::lock(&self.current);
        let current = &mut *guard;
        if current.answered {
            return;
        }
        let (Some(caller), Some(reference)) = (current.caller, current.reference.take()) else {
            return;
        };
        let id = self.id;
        let env = &current.env;
        let message = env.run(|e| {
            // SAFETY: `reference` is a live term of the running job's
            // environment (see `Current::reference`: the job is not
            // recycled before `end`, which takes this lock); enif_make_copy
            // only reads it, into this thread's own environment.
            let reference =
                unsafe { Term::new(e, rustler::sys::enif_make_copy(e.as_c_arg(), reference)) };
            let reply = (atoms::error(), (atoms::py_worker_down(), id)).encode(e);
            env.save((reference, reply).encode(e))
        });
        let send = || {
            send_from_thread(env, &caller, message);
        };
        match &current.cell {
            Some(cell) => cell.finish(send),
            None => send(),
        }
        current.env.clear();
        current.answered = true;
    }

    /// (The watch thread.) The id of the running job when its caller died
    /// (once per job): it is to be interrupted.
    pub fn orphaned_job(&self) -> Option<u64> {
        let mut current = sync::lock(&self.current);
        match current.caller {
            Some(caller) if !current.answered && !current.orphaned && !watch::is_alive(&caller) => {
                current.orphaned = true;
                Some(current.job_id)
            }
            _ => None,
        }
    }

    pub fn owner_gone(&self) -> bool {
        self.owner_gone.load(Ordering::Acquire)
    }

    /// The error of a job that did not run, or whose owner died meanwhile.
    fn not_run_reason(&self) -> (Atom, u64) {
        if self.owner_gone() {
            (atoms::py_worker_down(), self.id)
        } else {
            (atoms::py_worker_stopped(), self.id)
        }
    }
}

fn thread_main(shared: Arc<WorkerShared>, ready: crossbeam_channel::Sender<Result<(), String>>) {
    shared.queue.bind_thread();
    let shared_queue = queue::shared();
    // Declared first, dropped last: the thread's Python state outlives
    // everything that holds Python objects.
    let _py_thread = PyThread::new();
    let setup = Python::attach(|py| -> PyResult<WorkerState> {
        let ident: u64 = py.import("_thread")?.call_method0("get_ident")?.extract()?;
        shared.py_ident.store(ident, Ordering::Release);
        WorkerState::new(py)
    });
    let mut state = match setup {
        Ok(state) => state,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    shared_queue.join();
    let _ = ready.send(Ok(()));

    let mut stopping = false;
    while !stopping {
        let first = match shared.queue.next(shared_queue) {
            Msg::Job(job) => job,
            Msg::Stop => break,
        };
        Python::attach(|py| {
            // Busy, unless stopped meanwhile (`queue_len` reads `stopped`).
            let _ = shared.state.compare_exchange(
                STATE_IDLE,
                STATE_BUSY,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            run_job(py, &shared, &mut state, first);
            for _ in 1..BATCH {
                match shared.queue.try_next(shared_queue) {
                    Some(Msg::Job(job)) => run_job(py, &shared, &mut state, job),
                    Some(Msg::Stop) => {
                        stopping = true;
                        break;
                    }
                    None => break,
                }
            }
            state.trim_caches();
            // Back to idle, unless stopped meanwhile.
            let _ = shared.state.compare_exchange(
                STATE_BUSY,
                STATE_IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        });
        event_loop::flush_handed_over();
    }
    leave(&shared, state);
}

/// The worker leaves: it answers what is still queued for it; the last
/// worker told to stop also answers the shared queue. A stop runs those
/// jobs; an owner's death refuses them (`run_job` checks).
fn leave(shared: &Arc<WorkerShared>, mut state: WorkerState) {
    shared.state.store(STATE_STOPPED, Ordering::Release);
    for job in shared.queue.close() {
        reply_not_run(shared, job);
    }
    let shared_queue = queue::shared();
    Python::attach(|py| {
        if shared.queue.drains_shared() {
            while let Some(job) = shared_queue.try_take() {
                run_job(py, shared, &mut state, job);
            }
        }
        // Python objects are dropped with the GIL held.
        drop(state);
    });
    event_loop::flush_handed_over();
    shared.left.store(true, Ordering::Release);
}

/// Answers a job that will not run.
fn reply_not_run(shared: &WorkerShared, job: Box<Job>) {
    let reason = shared.not_run_reason();
    let message = job.env.run(|env| {
        let reply = (atoms::error(), reason).encode(env);
        job.env.save((job.reference.load(env), reply))
    });
    job.reply(message);
}

/// Runs one job and answers its caller.
fn run_job(py: Python<'_>, shared: &Arc<WorkerShared>, state: &mut WorkerState, job: Box<Job>) {
    if shared.owner_gone() {
        return reply_not_run(shared, job);
    }
    if !job.start(shared) || !watch::is_alive(&job.caller) {
        // Its caller already gave up, or died: skip it, and send nothing.
        return job.recycle();
    }
    // Counted before it shows as running: whoever sees it running sees it
    // counted.
    shared.calls.fetch_add(1, Ordering::Relaxed);
    shared.running.store(job.id, Ordering::Release);
    let mut awaited = None;
    shared.begin(&job);
    let message = job.env.run(|env| {
        let reference = job.reference.load(env);
        // Python's output and logs of the call reach the caller through
        // this scope; dropped (sending what is left) before the reply.
        let call = call_scope::enter(env, job.caller, reference, job.cell().cloned());
        let request = job.request.load(env);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            request::execute(py, env, state, request, job.context.as_deref())
        }))
        .unwrap_or_else(|panic| Err(panic_reason(env, panic)));
        let reply = match outcome {
            _ if shared.owner_gone() => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                (atoms::error(), shared.not_run_reason()).encode(env)
            }
            Ok(Executed::Value(reply)) => reply,
            Ok(Executed::Await { awaitable, flags }) => {
                awaited = Some((awaitable, flags));
                return None;
            }
            Err(reason) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                (atoms::error(), reason).encode(env)
            }
        };
        drop(call);
        Some(job.env.save((reference, reply)))
    });
    shared.running.store(0, Ordering::Release);
    shared.clear_interrupt(py);
    // Answered already (its worker's owner died meanwhile): nothing more to
    // send, nor to await.
    let answered = shared.end();
    match (message, awaited) {
        _ if answered => job.recycle(),
        (Some(message), _) => job.reply(message),
        // Awaited on the event loop, which answers the caller: this worker
        // is free.
        (None, Some((awaitable, flags))) => {
            event_loop::hand_over(py, job, awaitable.into_bound(py), flags)
        }
        (None, None) => job.recycle(),
    }
    state.after_reply.clear();
}

fn panic_reason<'a>(env: Env<'a>, panic: Box<dyn std::any::Any + Send>) -> Term<'a> {
    let text = if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else {
        "unknown panic".to_string()
    };
    (atoms::py_worker_panic(), text).encode(env)
}
