//! Worker threads: each is an OS thread with a long-lived Python thread
//! state and its own `__main__`-like globals. It takes jobs from its own
//! queue (calls aimed at this worker) and from the shared queue (calls any
//! worker may serve).
//!
//! A job is an Erlang request copied into an owned environment. The worker
//! decodes it with the GIL held, runs it, encodes the result into the same
//! environment and sends `{Ref, Result}` to the caller with `enif_send`.
//! Python never runs on a scheduler thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use rustler::{Encoder, Env, LocalPid, Resource, ResourceArc, Term};

use crate::atoms;
use crate::beam_native;
use crate::error::PyNifError;
use crate::housekeeper;
use crate::job::Job;
use crate::queue::{self, SharedQueue};
use crate::request;
use crate::to_erlang::TypeNames;

/// Stack of a worker thread (conversions of deep terms grow theirs on
/// demand, see `to_python`).
const WORKER_STACK: usize = 16 * 1024 * 1024;
/// Jobs run back to back under one GIL hold before letting other threads in.
const BATCH: usize = 64;
/// How long an idle worker spins on the shared queue before parking.
/// Waking a parked thread costs tens of microseconds: more than a small
/// call. The spinner yields its core every 64 rounds: on a machine whose
/// cores the BEAM's schedulers need, a pure spin would preempt them for
/// milliseconds (measured: dozens of long_schedule events per bench run).
const SPIN: Duration = Duration::from_micros(20);

pub const STATE_IDLE: u8 = 0;
pub const STATE_BUSY: u8 = 1;
pub const STATE_STOPPED: u8 = 2;

enum Msg {
    Job(Box<Job>),
    Stop,
}

/// What the worker thread and Erlang callers share.
pub struct WorkerShared {
    pub id: u64,
    tx: Sender<Msg>,
    /// Id of the job now running (0: none): the target of interrupts.
    pub running: AtomicU64,
    /// Python thread ident of the worker, target of interrupts.
    pub py_ident: AtomicU64,
    /// An interrupt exception may be pending in the worker thread.
    pub interrupt_pending: AtomicBool,
    pub state: AtomicU8,
    /// The owning Erlang process is gone: answer everything with an error.
    pub owner_gone: AtomicBool,
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    /// False once the thread has left: pushes are refused from then on.
    accepting: RwLock<bool>,
    /// The worker thread, for unparking it.
    thread: OnceLock<std::thread::Thread>,
    /// The thread is parked or about to park.
    pub parked: AtomicBool,
    /// The worker is on the shared queue's idle list.
    pub listed_idle: AtomicBool,
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
    /// Modules resolved from an atom (atoms are never freed: stable keys).
    pub modules: HashMap<rustler::Atom, Py<PyAny>>,
    /// Attribute names made from atoms.
    pub names: HashMap<rustler::Atom, Py<PyString>>,
    /// Erlang-visible type names of handles, per type object.
    pub type_names: TypeNames,
    /// Compiled `eval`/`exec` code, by source and mode.
    pub code: HashMap<(String, &'static str), Py<PyAny>>,
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
            modules: HashMap::new(),
            names: HashMap::new(),
            type_names: HashMap::new(),
            code: HashMap::new(),
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
    let (tx, rx) = unbounded();
    let shared = Arc::new(WorkerShared {
        id: NEXT_WORKER_ID.fetch_add(1, Ordering::Relaxed),
        tx,
        running: AtomicU64::new(0),
        py_ident: AtomicU64::new(0),
        interrupt_pending: AtomicBool::new(false),
        state: AtomicU8::new(STATE_IDLE),
        owner_gone: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        accepting: RwLock::new(true),
        thread: OnceLock::new(),
        parked: AtomicBool::new(false),
        listed_idle: AtomicBool::new(false),
    });
    let thread_shared = shared.clone();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let handle = std::thread::Builder::new()
        .name(format!("py-worker-{}", shared.id))
        .stack_size(WORKER_STACK)
        .spawn(move || thread_main(thread_shared, rx, ready_tx))
        .map_err(|e| PyNifError::Spawn(e.to_string()))?;
    let _ = shared.thread.set(handle.thread().clone());
    match ready_rx.recv() {
        Ok(Ok(())) => {
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
        {
            // Held across the check and the send: `leave` cannot drain the
            // queue in between, so no job is left there unanswered.
            let accepting = match self.accepting.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if !*accepting || self.state.load(Ordering::Acquire) == STATE_STOPPED {
                return Err(job);
            }
            self.tx
                .send(Msg::Job(job))
                .map_err(|e| match e.into_inner() {
                    Msg::Job(job) => job,
                    Msg::Stop => unreachable_stop(),
                })?;
        }
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.unpark();
        }
        Ok(())
    }

    pub fn unpark(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }

    pub fn stop(&self) {
        if self.state.swap(STATE_STOPPED, Ordering::AcqRel) != STATE_STOPPED {
            let _ = self.tx.send(Msg::Stop);
            self.unpark();
        }
    }
}

/// `push` only ever sends jobs, so a failed send gives a job back.
fn unreachable_stop() -> Box<Job> {
    panic!("py_nif: a Stop message came back from a job send")
}

fn thread_main(
    shared: Arc<WorkerShared>,
    rx: Receiver<Msg>,
    ready: crossbeam_channel::Sender<Result<(), String>>,
) {
    let shared_queue = queue::get();
    // SAFETY: the interpreter is initialised before any worker starts
    // (nifs::start_worker checks it). PyGILState_Ensure creates this
    // thread's Python thread state, kept for the thread's whole life.
    let gstate = unsafe { ffi::PyGILState_Ensure() };
    // SAFETY: the GIL is held by this thread (just ensured).
    let py = unsafe { Python::assume_attached() };
    let setup = (|| -> PyResult<WorkerState> {
        let ident: u64 = py.import("_thread")?.call_method0("get_ident")?.extract()?;
        shared.py_ident.store(ident, Ordering::Release);
        WorkerState::new(py)
    })();
    // SAFETY: releases the GIL held since PyGILState_Ensure, keeping the
    // thread state for later re-attachment.
    let saved = unsafe { ffi::PyEval_SaveThread() };
    let mut state = match setup {
        Ok(state) => state,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    match shared_queue.live.write() {
        Ok(mut live) => *live += 1,
        Err(p) => *p.into_inner() += 1,
    }
    let _ = ready.send(Ok(()));

    let mut stopping = false;
    while !stopping {
        let first = match next_message(&shared, &rx, shared_queue) {
            Some(Msg::Job(job)) => job,
            Some(Msg::Stop) | None => break,
        };
        Python::attach(|py| {
            shared.state.store(STATE_BUSY, Ordering::Release);
            run_job(py, &shared, &mut state, first);
            for _ in 1..BATCH {
                match try_next(&rx, shared_queue) {
                    Some(Msg::Job(job)) => run_job(py, &shared, &mut state, job),
                    Some(Msg::Stop) => {
                        stopping = true;
                        break;
                    }
                    None => break,
                }
            }
            state.trim_caches();
            if shared.state.load(Ordering::Acquire) == STATE_BUSY {
                shared.state.store(STATE_IDLE, Ordering::Release);
            }
        });
    }
    leave(&shared, &rx, shared_queue, &mut state);
    // SAFETY: re-attach the thread state saved above, then release it with
    // the matching PyGILState_Release, which deletes it.
    unsafe {
        ffi::PyEval_RestoreThread(saved);
        drop(state);
        ffi::PyGILState_Release(gstate);
    }
}

/// The worker leaves: it answers what is still queued for it; the last
/// worker to leave also answers the shared queue.
fn leave(
    shared: &Arc<WorkerShared>,
    rx: &Receiver<Msg>,
    shared_queue: &SharedQueue,
    state: &mut WorkerState,
) {
    shared.state.store(STATE_STOPPED, Ordering::Release);
    let mut accepting = match shared.accepting.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *accepting = false;
    drop(accepting);
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Job(job) = msg {
            reply_not_run(shared, job);
        }
    }
    let last = {
        let mut live = match shared_queue.live.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *live = live.saturating_sub(1);
        *live == 0
    };
    // The last worker answers what the shared queue accepted. No job can
    // arrive any more (pushes see no live worker), and the lock is not
    // held meanwhile: submitters run on schedulers. A stop runs them; an
    // owner's death refuses them (run_job checks).
    if last {
        Python::attach(|py| {
            while let Some(job) = shared_queue.try_take() {
                run_job(py, shared, state, job);
            }
        });
    }
}

/// A message without waiting: this worker's own queue first.
fn try_next(rx: &Receiver<Msg>, shared_queue: &SharedQueue) -> Option<Msg> {
    match rx.try_recv() {
        Ok(msg) => return Some(msg),
        Err(TryRecvError::Disconnected) => return Some(Msg::Stop),
        Err(TryRecvError::Empty) => {}
    }
    shared_queue.try_take().map(Msg::Job)
}

/// The next message: spins for a moment when no other worker spins, then
/// parks until a submitter unparks it (see `queue` for the protocol).
fn next_message(
    shared: &Arc<WorkerShared>,
    rx: &Receiver<Msg>,
    shared_queue: &SharedQueue,
) -> Option<Msg> {
    loop {
        if let Some(msg) = try_next(rx, shared_queue) {
            return Some(msg);
        }
        if shared_queue.try_become_spinner() {
            let found = spin(rx, shared_queue);
            shared_queue.stop_spinning();
            if found.is_some() {
                return found;
            }
            if let Some(msg) = try_next(rx, shared_queue) {
                return Some(msg);
            }
        }
        shared.parked.store(true, Ordering::SeqCst);
        shared_queue.list_idle(shared);
        if let Some(msg) = try_next(rx, shared_queue) {
            shared.parked.store(false, Ordering::SeqCst);
            return Some(msg);
        }
        std::thread::park();
        shared.parked.store(false, Ordering::SeqCst);
    }
}

fn spin(rx: &Receiver<Msg>, shared_queue: &SharedQueue) -> Option<Msg> {
    let start = Instant::now();
    let mut n = 0u32;
    loop {
        if let Some(msg) = try_next(rx, shared_queue) {
            return Some(msg);
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(64) {
            if start.elapsed() > SPIN {
                return None;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Answers a job that will not run: `{py_worker_down, Id}` when the
/// owner died, `{py_worker_stopped, Id}` when the worker was stopped.
fn reply_not_run(shared: &WorkerShared, mut job: Box<Job>) {
    let caller = job.caller;
    let why = if shared.owner_gone.load(Ordering::Acquire) {
        atoms::py_worker_down()
    } else {
        atoms::py_worker_stopped()
    };
    let reference = job.reference.clone();
    let id = shared.id;
    let send = |env_job: &mut Job| {
        let _ = env_job.env.send_and_clear(&caller, |env| {
            let err = (atoms::error(), (why, id)).encode(env);
            (reference.load(env), err).encode(env)
        });
    };
    match job.cell.clone() {
        Some(cell) => cell.finish(|| send(&mut job)),
        None => send(&mut job),
    }
}

fn run_job(py: Python<'_>, shared: &Arc<WorkerShared>, state: &mut WorkerState, mut job: Box<Job>) {
    if shared.owner_gone.load(Ordering::Acquire) {
        reply_not_run(shared, job);
        return;
    }
    if let Some(cell) = &job.cell {
        if !cell.start(shared, job.id) {
            // Its caller already gave up: skip it, and send nothing.
            return;
        }
    }
    // Counted before it shows as running: whoever sees it running sees it
    // counted.
    shared.calls.fetch_add(1, Ordering::Relaxed);
    shared.running.store(job.id, Ordering::Release);
    let predecoded = job.predecoded.take();
    beam_native::set_current_caller(Some(job.caller));
    let message = job.env.run(|env| -> rustler::sys::ErlNifTerm {
        let req = job.request.load(env);
        let result = match catch_unwind(AssertUnwindSafe(|| {
            request::execute(py, env, state, req, predecoded, job.context.as_deref())
        })) {
            Ok(term) => term,
            Err(panic) => panic_term(env, panic),
        };
        let result = if shared.owner_gone.load(Ordering::Acquire) {
            (atoms::error(), (atoms::py_worker_down(), shared.id)).encode(env)
        } else {
            result
        };
        if is_error(env, result) {
            shared.errors.fetch_add(1, Ordering::Relaxed);
        }
        (job.reference.load(env), result).encode(env).as_c_arg()
    });
    beam_native::set_current_caller(None);
    shared.running.store(0, Ordering::Release);
    if shared.interrupt_pending.swap(false, Ordering::AcqRel) {
        // An interrupt aimed at this job may not have fired yet: clear it so
        // that it cannot hit the next job.
        // SAFETY: we hold the GIL; NULL clears the pending async exception.
        unsafe {
            ffi::PyThreadState_SetAsyncExc(
                shared.py_ident.load(Ordering::Acquire) as _,
                std::ptr::null_mut(),
            );
        }
    }
    let send = || {
        job.env.run(|env| {
            // SAFETY: `message` was built in this very environment, which has
            // not been cleared since; the caller pid is a valid local pid.
            unsafe {
                rustler::sys::enif_send(
                    std::ptr::null_mut(),
                    job.caller.as_c_arg(),
                    env.as_c_arg(),
                    message,
                );
            }
        });
    };
    match &job.cell {
        Some(cell) => cell.finish(send),
        None => send(),
    }
    job.recycle();
}

fn is_error<'a>(env: Env<'a>, result: Term<'a>) -> bool {
    rustler::types::tuple::get_tuple(result)
        .ok()
        .and_then(|t| t.first().copied())
        .is_some_and(|tag| tag == atoms::error().to_term(env))
}

fn panic_term<'a>(env: Env<'a>, panic: Box<dyn std::any::Any + Send>) -> Term<'a> {
    let text = if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else {
        "unknown panic".to_string()
    };
    (atoms::error(), (atoms::py_worker_panic(), text)).encode(env)
}
