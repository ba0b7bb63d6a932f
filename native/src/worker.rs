//! Worker threads: each is an OS thread with a long-lived Python thread
//! state and its own `__main__`-like globals, fed by a channel of jobs.
//!
//! A job is an Erlang request copied into an owned environment. The worker
//! decodes it with the GIL held, runs it, encodes the result into the same
//! environment and sends `{Ref, Result}` to the caller with `enif_send`.
//! Python never runs on a scheduler thread.
//!
//! Jobs of one worker carry increasing sequence numbers, which makes
//! cancellation race-free: `done_upto` (updated under the `cancelled` lock
//! just before a reply is sent) tells a timed-out caller whether its reply
//! is already in its mailbox or will never be sent.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Resource, ResourceArc, Term};

use crate::atoms;
use crate::error::PyNifError;
use crate::housekeeper;
use crate::request;

/// Stack of a worker thread: deep (up to the documented nesting limit)
/// structures are converted recursively.
const WORKER_STACK: usize = 256 * 1024 * 1024;
/// Jobs run back to back under one GIL hold before letting other threads in.
const BATCH: usize = 64;

pub const STATE_IDLE: u8 = 0;
pub const STATE_BUSY: u8 = 1;
pub const STATE_STOPPED: u8 = 2;

pub struct Job {
    env: OwnedEnv,
    caller: LocalPid,
    reference: SavedTerm,
    request: SavedTerm,
    seq: u64,
}

enum Msg {
    Job(Box<Job>),
    Stop,
}

/// What the worker thread and Erlang callers share.
pub struct WorkerShared {
    pub id: u64,
    tx: Sender<Msg>,
    next_seq: AtomicU64,
    /// Sequence number of the job now running (0: none).
    pub running: AtomicU64,
    /// Highest sequence number whose reply was sent or dropped.
    done_upto: AtomicU64,
    cancelled: Mutex<HashSet<u64>>,
    /// Python thread ident of the worker, target of interrupts.
    pub py_ident: AtomicU64,
    /// An interrupt exception may be pending in the worker thread.
    pub interrupt_pending: AtomicBool,
    pub state: AtomicU8,
    /// The owning Erlang process is gone: answer everything with an error.
    pub owner_gone: AtomicBool,
    pub calls: AtomicU64,
    pub errors: AtomicU64,
}

/// The Erlang-visible worker resource. Dropping the last reference stops
/// the thread after it has answered the jobs already queued.
pub struct WorkerRes {
    pub shared: Arc<WorkerShared>,
}

#[rustler::resource_impl]
impl Resource for WorkerRes {
    /// The owning Erlang process (the `py_worker` that started the thread)
    /// died, even by `kill`: the worker stops taking jobs, answers the
    /// queued ones with `{py_worker_down, Id}` and interrupts the running
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

/// Per-thread Python state of a worker: its namespace and caches.
pub struct WorkerState {
    pub globals: Py<PyDict>,
    /// Modules resolved from an atom, keyed by the atom's term value
    /// (atoms are never freed, so the key is stable).
    pub modules: HashMap<rustler::Atom, Py<PyAny>>,
    /// Attribute names made from atoms.
    pub names: HashMap<rustler::Atom, Py<PyString>>,
    /// Erlang-visible type names of handles, per type object.
    pub type_names: HashMap<usize, (Py<PyType>, String)>,
}

const CACHE_LIMIT: usize = 4096;

impl WorkerState {
    fn new(py: Python<'_>) -> PyResult<Self> {
        let globals = PyDict::new(py);
        globals.set_item("__builtins__", py.import("builtins")?)?;
        globals.set_item("__name__", "__main__")?;
        Ok(WorkerState {
            globals: globals.unbind(),
            modules: HashMap::new(),
            names: HashMap::new(),
            type_names: HashMap::new(),
        })
    }

    /// Keeps the caches bounded (a program that makes atoms in a loop must
    /// not grow them without end).
    pub fn trim_caches(&mut self) {
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
        next_seq: AtomicU64::new(1),
        running: AtomicU64::new(0),
        done_upto: AtomicU64::new(0),
        cancelled: Mutex::new(HashSet::new()),
        py_ident: AtomicU64::new(0),
        interrupt_pending: AtomicBool::new(false),
        state: AtomicU8::new(STATE_IDLE),
        owner_gone: AtomicBool::new(false),
        calls: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let thread_shared = shared.clone();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    std::thread::Builder::new()
        .name(format!("py-worker-{}", shared.id))
        .stack_size(WORKER_STACK)
        .spawn(move || thread_main(thread_shared, rx, ready_tx))
        .map_err(|e| PyNifError::Spawn(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {
            let res = ResourceArc::new(WorkerRes { shared });
            if env.monitor(&res, &owner).is_none() {
                // The owner is already dead.
                res.shared.stop();
                return Err(PyNifError::Spawn("the owning process is not alive".into()));
            }
            Ok(res)
        }
        Ok(Err(e)) => Err(PyNifError::Spawn(e)),
        Err(_) => Err(PyNifError::Spawn("worker thread died at start".into())),
    }
}

/// Outcome of a submission.
pub enum Submitted {
    Seq(u64),
    Stopped,
}

impl WorkerShared {
    /// Queues a request. Copies `reference` and `request` into an owned
    /// environment: the caller must make sure the copy is cheap enough for
    /// the thread it runs on (see `term_budget`).
    pub fn submit(&self, caller: LocalPid, reference: Term, request: Term) -> Submitted {
        if self.state.load(Ordering::Acquire) == STATE_STOPPED {
            return Submitted::Stopped;
        }
        let env = OwnedEnv::new();
        let reference = env.save(reference);
        let request = env.save(request);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let job = Box::new(Job {
            env,
            caller,
            reference,
            request,
            seq,
        });
        match self.tx.send(Msg::Job(job)) {
            Ok(()) => Submitted::Seq(seq),
            Err(_) => Submitted::Stopped,
        }
    }

    /// Cancels job `seq` after its caller gave up waiting. Returns `replied`
    /// when the reply was already sent (it is in the caller's mailbox), and
    /// `cancelled` when no reply will ever come; a running job is then
    /// interrupted.
    pub fn cancel(self: &Arc<Self>, seq: u64) -> rustler::Atom {
        let mut set = match self.cancelled.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        if self.done_upto.load(Ordering::Acquire) >= seq {
            return atoms::replied();
        }
        set.insert(seq);
        drop(set);
        if self.running.load(Ordering::Acquire) == seq {
            housekeeper::interrupt(self.clone(), seq);
        }
        atoms::cancelled()
    }

    pub fn queue_len(&self) -> usize {
        self.tx.len()
    }

    pub fn stop(&self) {
        if self.state.swap(STATE_STOPPED, Ordering::AcqRel) != STATE_STOPPED {
            let _ = self.tx.send(Msg::Stop);
        }
    }

    /// Records that job `seq` is finished and, unless its caller cancelled
    /// it, sends the reply built by `reply`.
    fn finish(&self, seq: u64, send: impl FnOnce()) {
        let mut set = match self.cancelled.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        let was_cancelled = set.remove(&seq);
        if !was_cancelled {
            send();
        }
        self.done_upto.store(seq, Ordering::Release);
    }

    fn is_cancelled(&self, seq: u64) -> bool {
        match self.cancelled.lock() {
            Ok(set) => set.contains(&seq),
            Err(poisoned) => poisoned.into_inner().contains(&seq),
        }
    }
}

fn thread_main(
    shared: Arc<WorkerShared>,
    rx: Receiver<Msg>,
    ready: crossbeam_channel::Sender<Result<(), String>>,
) {
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
        Ok(state) => {
            let _ = ready.send(Ok(()));
            state
        }
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };

    let mut stopping = false;
    while !stopping {
        let first = match rx.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Stop) | Err(_) => break,
        };
        Python::attach(|py| {
            shared.state.store(STATE_BUSY, Ordering::Release);
            run_job(py, &shared, &mut state, first);
            for _ in 1..BATCH {
                match rx.try_recv() {
                    Ok(Msg::Job(job)) => run_job(py, &shared, &mut state, job),
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            state.trim_caches();
            if shared.state.load(Ordering::Acquire) == STATE_BUSY {
                shared.state.store(STATE_IDLE, Ordering::Release);
            }
        });
    }
    // Answer whatever is still queued: nobody waits forever.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Job(job) = msg {
            reply_stopped(&shared, job);
        }
    }
    // SAFETY: re-attach the thread state saved above, then release it with
    // the matching PyGILState_Release, which deletes it.
    unsafe {
        ffi::PyEval_RestoreThread(saved);
        drop(state);
        ffi::PyGILState_Release(gstate);
    }
}

/// Answers a job that will not run: `{py_worker_down, Id}` when the
/// owner died, `{py_worker_stopped, Id}` when the worker was stopped.
fn reply_stopped(shared: &WorkerShared, mut job: Box<Job>) {
    let seq = job.seq;
    let caller = job.caller;
    let why = if shared.owner_gone.load(Ordering::Acquire) {
        atoms::py_worker_down()
    } else {
        atoms::py_worker_stopped()
    };
    shared.finish(seq, || {
        let reference = job.reference.clone();
        let _ = job.env.send_and_clear(&caller, |env| {
            let err = (atoms::error(), (why, shared.id)).encode(env);
            (reference.load(env), err).encode(env)
        });
    });
}

fn run_job(py: Python<'_>, shared: &WorkerShared, state: &mut WorkerState, job: Box<Job>) {
    let seq = job.seq;
    if shared.owner_gone.load(Ordering::Acquire) {
        reply_stopped(shared, job);
        return;
    }
    if shared.is_cancelled(seq) {
        // Its caller already gave up: skip it, and send nothing.
        shared.finish(seq, || {});
        return;
    }
    shared.running.store(seq, Ordering::Release);
    shared.calls.fetch_add(1, Ordering::Relaxed);
    let caller = job.caller;
    let request = job.request.clone();
    let reference = job.reference.clone();
    let message = job.env.run(|env| -> rustler::sys::ErlNifTerm {
        let req = request.load(env);
        let result = match catch_unwind(AssertUnwindSafe(|| request::execute(py, env, state, req)))
        {
            Ok(term) => term,
            Err(panic) => panic_term(env, panic),
        };
        let result = if shared.owner_gone.load(Ordering::Acquire) {
            (atoms::error(), (atoms::py_worker_down(), shared.id)).encode(env)
        } else {
            result
        };
        if result.is_tuple()
            && rustler::types::tuple::get_tuple(result)
                .ok()
                .and_then(|t| t.first().copied())
                .is_some_and(|tag| tag == atoms::error().to_term(env))
        {
            shared.errors.fetch_add(1, Ordering::Relaxed);
        }
        (reference.load(env), result).encode(env).as_c_arg()
    });
    shared.running.store(0, Ordering::Release);
    if shared.interrupt_pending.swap(false, Ordering::AcqRel) {
        // An interrupt aimed at this job may not have fired yet: clear it so
        // that it cannot hit the next job, and drop it if it was raised.
        // SAFETY: we hold the GIL; NULL clears the pending async exception.
        unsafe {
            ffi::PyThreadState_SetAsyncExc(shared.py_ident.load(Ordering::Acquire) as _, std::ptr::null_mut());
        }
        let _ = PyErr::take(py);
    }
    shared.finish(seq, || {
        job.env.run(|env| {
            // SAFETY: `message` was built in this very environment, which has
            // not been cleared since; the caller pid is a valid local pid.
            unsafe {
                rustler::sys::enif_send(
                    std::ptr::null_mut(),
                    caller.as_c_arg(),
                    env.as_c_arg(),
                    message,
                );
            }
        });
    });
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
