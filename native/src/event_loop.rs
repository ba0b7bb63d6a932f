//! py's asyncio event loop: one OS thread running one asyncio loop, on
//! which the awaitables that calls return (coroutines, Tasks, Futures) are
//! awaited without holding a worker.
//!
//! * A worker whose call returned an awaitable hands it over with
//!   [`hand_over`] (it holds the GIL): the job (the caller's environment,
//!   reference and cancellation cell) travels with it, wrapped in an
//!   [`AsyncJob`] Python object, and the worker is free at once.
//! * The loop thread has an inbox: a channel plus an `eventfd` that the
//!   asyncio loop watches (`loop.add_reader`). Anything may push to it
//!   without the GIL, from any thread, schedulers included (a push is a
//!   channel send and at most one `write` of 8 bytes): new awaitables,
//!   cancellations (a caller that timed out, a caller that died), replies
//!   of `beam.async_call`, and the stop request.
//! * When an awaited task finishes, the loop thread converts its result in
//!   the job's environment and sends `{Ref, Reply}` with `enif_send` (a
//!   thread of its own, not a scheduler), exactly as a worker does.
//!
//! The Python half (`beam/_asyncio.py`) runs the asyncio loop itself.
//!
//! Why one loop on its own thread rather than one per worker: the workers
//! share one GIL, so more loops would not run more Python at once; a
//! worker's idle protocol (spin, then park) would have to wait on a
//! selector as well; a coroutine that blocks its loop would also block the
//! synchronous calls of that worker; and any task may then await any other
//! (they are on the same loop). See the README for the figures.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use crossbeam_channel::{unbounded, Receiver, Sender};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Resource, ResourceArc, Term};

use crate::atoms;
use crate::beam_native::{self, CallbackRes};
use crate::call_scope::{self, Delivery};
use crate::error::PyNifError;
use crate::exception::exception_term;
use crate::job::Job;
use crate::map_build::LargeMaps;
use crate::output;
use crate::py_thread::PyThread;
use crate::runtime::{self, BeamTypes};
use crate::send::send_from_thread;
use crate::sync::{lock, read, write};
use crate::to_erlang::{EncodeError, Encoder2, Options, TypeNames};
use crate::to_python::{DecodeError, Decoder};

/// What the loop thread is asked to do.
enum Event {
    /// Await `awaitable` for `job`'s caller.
    Await {
        job: Py<AsyncJob>,
        awaitable: Py<PyAny>,
    },
    /// Cancel the task of job `id` (its caller timed out or died).
    Cancel(u64),
    /// The reply of the `beam.async_call` numbered `id`; `None` when the
    /// Erlang process running the function died without answering.
    Reply {
        id: u64,
        reply: Option<(OwnedEnv, SavedTerm)>,
    },
    /// Cancel every task, give them `grace_ms` to finish, and stop.
    Stop { grace_ms: u64 },
}

/// What the loop thread and the rest of the NIF share.
pub struct LoopShared {
    pub id: u64,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// `eventfd` the asyncio loop watches; written when the inbox gets
    /// something and no wake-up is pending.
    efd: RawFd,
    wake_pending: AtomicBool,
    /// False once the loop stops: new awaitables are refused (answered
    /// `py_loop_stopped` by whoever hands them over).
    accepting: RwLock<bool>,
    /// Tasks on the loop now (as the Python side counts them).
    pending: AtomicUsize,
    /// The jobs handed over and not answered yet, answerable without
    /// Python (see [`abandon`]).
    jobs: Mutex<HashMap<u64, Arc<Pending>>>,
    /// Told `{py_loop_stopped, Id}` when the thread has finished.
    owner: LocalPid,
}

impl Drop for LoopShared {
    fn drop(&mut self) {
        // SAFETY: `efd` is the eventfd this struct created and owns; no one
        // else closes it.
        unsafe {
            libc::close(self.efd);
        }
    }
}

impl LoopShared {
    fn push(&self, event: Event) -> Result<(), Event> {
        {
            let accepting = read(&self.accepting);
            if !*accepting && matches!(event, Event::Await { .. }) {
                return Err(event);
            }
            self.tx.send(event).map_err(|e| e.into_inner())?;
        }
        self.wake();
        Ok(())
    }

    /// At most one pending `write` at a time: the loop reads the eventfd,
    /// then clears the flag, then drains the channel (see
    /// `LoopInbox::take`), so nothing pushed is missed.
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd
            // (non-blocking: never waits, not even on a scheduler thread).
            unsafe {
                libc::write(self.efd, (&one as *const u64).cast(), 8);
            }
        }
    }

    /// Tasks on the loop now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Cancels the task of job `id` (no GIL needed: any thread). The job
    /// is marked first: a cancellation that reaches the loop before the
    /// job itself (a caller that died, or timed out, just as its call was
    /// handed over) finds no task, and the job's task is then never
    /// started.
    pub fn cancel(&self, id: u64) {
        if let Some(pending) = lock(&self.jobs).get(&id) {
            pending.cancelled.store(true, Ordering::SeqCst);
        }
        let _ = self.push(Event::Cancel(id));
    }

    fn stop(&self, grace_ms: u64) {
        {
            let mut accepting = write(&self.accepting);
            if !*accepting {
                return;
            }
            *accepting = false;
        }
        let mut current = write(&CURRENT);
        if current.as_ref().is_some_and(|l| l.id == self.id) {
            *current = None;
        }
        drop(current);
        let _ = self.tx.send(Event::Stop { grace_ms });
        self.wake();
    }
}

/// The loop new awaitables go to.
static CURRENT: RwLock<Option<Arc<LoopShared>>> = RwLock::new(None);
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_CALL_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// On the loop thread: its loop (for `beam.async_call`).
    static THIS_LOOP: RefCell<Option<Arc<LoopShared>>> = const { RefCell::new(None) };
    /// On a worker: awaitables handed over, pushed to the loop once the
    /// GIL is released.
    static HANDED_OVER: RefCell<Vec<(Arc<LoopShared>, Event)>> = const { RefCell::new(Vec::new()) };
    /// On the loop thread: type names of handles made from results.
    static TYPE_NAMES: RefCell<TypeNames> = RefCell::new(TypeNames::default());
}

fn current() -> Option<Arc<LoopShared>> {
    read(&CURRENT).clone()
}

/// `beam._asyncio._job`, the context variable holding the job of the
/// running task.
static JOB_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// On a loop's thread, the job of the task running now (its context
/// holds it; so do the tasks that task made): the caller its output goes
/// to. None elsewhere, and for tasks no call made.
pub fn current_task(py: Python<'_>) -> Option<Py<AsyncJob>> {
    if THIS_LOOP.with(|l| l.borrow().is_none()) {
        return None;
    }
    let var = JOB_VAR
        .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py.import("beam._asyncio")?.getattr("_job")?.unbind())
        })
        .ok()?;
    let job = var.bind(py).call_method0("get").ok()?;
    job.cast::<AsyncJob>().ok().map(|j| j.clone().unbind())
}

/// The Erlang-visible loop, owned by the `py_loop` process: it stops when
/// that process dies or calls `loop_stop`.
pub struct LoopRes {
    pub shared: Arc<LoopShared>,
}

#[rustler::resource_impl]
impl Resource for LoopRes {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        self.shared.stop(0);
    }
}

impl Drop for LoopRes {
    fn drop(&mut self) {
        self.shared.stop(0);
    }
}

/// Starts the loop thread, owned by (and monitoring) `owner`, and makes it
/// the loop that new awaitables go to.
pub fn start(env: Env<'_>, owner: LocalPid) -> Result<ResourceArc<LoopRes>, PyNifError> {
    // SAFETY: plain syscall; the flags make reads and writes non-blocking.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        return Err(PyNifError::Spawn(format!(
            "eventfd: {}",
            std::io::Error::last_os_error()
        )));
    }
    let (tx, rx) = unbounded();
    let shared = Arc::new(LoopShared {
        id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
        tx,
        rx,
        efd,
        wake_pending: AtomicBool::new(false),
        accepting: RwLock::new(true),
        pending: AtomicUsize::new(0),
        jobs: Mutex::new(HashMap::new()),
        owner,
    });
    let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("py-loop-{}", shared.id))
        .stack_size(16 * 1024 * 1024)
        .spawn(move || thread_main(thread_shared, ready_tx))
        .map_err(|e| PyNifError::Spawn(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(PyNifError::Spawn(e)),
        Err(_) => return Err(PyNifError::Spawn("the loop thread died at start".into())),
    }
    let res = ResourceArc::new(LoopRes { shared });
    if env.monitor(&res, &owner).is_none() {
        res.shared.stop(0);
        return Err(PyNifError::Spawn("the owning process is not alive".into()));
    }
    *write(&CURRENT) = Some(res.shared.clone());
    Ok(res)
}

/// Stops the loop: pending tasks are cancelled and given `grace_ms` to
/// finish; their callers are answered. The owner gets
/// `{py_loop_stopped, Id}` when the thread is gone.
pub fn stop(res: &LoopRes, grace_ms: u64) {
    res.shared.stop(grace_ms);
}

fn thread_main(shared: Arc<LoopShared>, ready: Sender<Result<(), String>>) {
    THIS_LOOP.with(|l| *l.borrow_mut() = Some(shared.clone()));
    // Declared first, dropped last: the thread's Python state outlives
    // everything that holds Python objects.
    let _py_thread = PyThread::new();
    // The GIL is held from here on, except while asyncio waits in its
    // selector (which releases it).
    Python::attach(|py| {
        let run = py
            .import("beam._asyncio")
            .and_then(|m| m.getattr("_run"))
            .and_then(|run| {
                let inbox = Py::new(
                    py,
                    LoopInbox {
                        shared: Arc::downgrade(&shared),
                        backlog: Mutex::new(Vec::new()),
                    },
                )?;
                Ok((run, inbox))
            });
        let (run, inbox) = match run {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(format!("cannot start the event loop: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        if let Err(e) = run.call1((inbox.clone_ref(py),)) {
            e.print(py);
        }
        // Refuses new awaitables (if the loop ended on its own, on an
        // error, it was not stopped yet).
        shared.stop(0);
        inbox.get().stop_backlog(py);
        // Whatever is left (the loop ended on an error, or events came in
        // after the stop): answered or dropped here, with the GIL held.
        while let Ok(event) = shared.rx.try_recv() {
            if let Event::Await { job, awaitable } = event {
                close_awaitable(awaitable.bind(py));
                job.get().stopped(py);
            }
        }
    });
    THIS_LOOP.with(|l| *l.borrow_mut() = None);
    let env = OwnedEnv::new();
    let message = env.run(|e| env.save((atoms::py_loop_stopped(), shared.id).encode(e)));
    send_from_thread(&env, &shared.owner, message);
}

/// Closes a coroutine that will never run (no "never awaited" warning).
fn close_awaitable(obj: &Bound<'_, PyAny>) {
    // SAFETY: `obj` is a valid object and the GIL is held.
    if unsafe { ffi::PyCoro_CheckExact(obj.as_ptr()) } != 0 {
        if let Err(e) = obj.call_method0("close") {
            e.restore(obj.py());
            // SAFETY: GIL held; clears the error just restored.
            unsafe { ffi::PyErr_Clear() };
        }
    }
}

/// True for an object that `await` accepts: its type has an `__await__`
/// slot (coroutines, Tasks, Futures, classes defining `__await__`). As
/// cheap as a pointer test: every result of a call is checked.
pub fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: the type object of a live object is valid while the GIL is
    // held; `tp_as_async` is NULL or a valid slot table.
    unsafe {
        let tp = ffi::Py_TYPE(obj.as_ptr());
        let slots = (*tp).tp_as_async;
        !slots.is_null() && (*slots).am_await.is_some()
    }
}

/// Hands `awaitable` over to the loop, with the job it is the result of;
/// the caller will be answered from the loop thread. Called on a worker
/// with the GIL held, which calls [`flush_handed_over`] after releasing
/// it. Never fails: with no loop running, the caller is answered
/// `py_loop_stopped`.
pub fn hand_over(py: Python<'_>, job: Box<Job>, awaitable: Bound<'_, PyAny>, flags: u64) {
    let id = job.id;
    let caller = job.caller;
    let Some(lp) = current() else {
        close_awaitable(&awaitable);
        AsyncJob::new(job, flags, None, None).stopped(py);
        return;
    };
    // In the loop's table first: from here on a cancellation (the
    // caller's timeout or death) finds the job and marks it, even if it
    // reaches the loop before the job does (see `LoopShared::cancel`).
    let asyncjob = AsyncJob::new(job, flags, None, Some(lp.clone()));
    let awaiting = lock(&asyncjob.pending.job)
        .as_ref()
        .is_some_and(|job| job.awaiting(&lp));
    if !awaiting {
        // The caller gave up while the call ran: nothing to await.
        close_awaitable(&awaitable);
        asyncjob.discard();
        return;
    }
    // The caller's death cancels the task.
    let watch = ResourceArc::new(AwaitWatch {
        target: Arc::downgrade(&lp),
        id,
    });
    if watch.monitor(None, &caller).is_none() {
        close_awaitable(&awaitable);
        asyncjob.discard();
        return;
    }
    *lock(&asyncjob.pending.watch) = Some(watch);
    let pyjob = match Py::new(py, asyncjob) {
        Ok(j) => j,
        Err(e) => {
            e.print(py);
            return;
        }
    };
    let event = Event::Await {
        job: pyjob,
        awaitable: awaitable.unbind(),
    };
    HANDED_OVER.with(|h| h.borrow_mut().push((lp, event)));
}

/// Passes what [`hand_over`] collected to the loop. The worker calls it
/// once it has released the GIL: the loop thread, woken, finds the GIL
/// free rather than waiting for the worker to let go of it (measured: a
/// third of an awaited call's latency).
pub fn flush_handed_over() {
    let handed = HANDED_OVER.with(|h| std::mem::take(&mut *h.borrow_mut()));
    for (lp, event) in handed {
        if let Err(Event::Await { job, awaitable }) = lp.push(event) {
            // The loop stopped meanwhile: the caller is answered here.
            Python::attach(|py| {
                close_awaitable(awaitable.bind(py));
                job.get().stopped(py);
            });
        }
    }
}

/// Monitors the caller of an awaited job: its death cancels the task.
/// Held by the job; freed (and the monitor with it) when it is answered.
pub struct AwaitWatch {
    target: Weak<LoopShared>,
    id: u64,
}

#[rustler::resource_impl]
impl Resource for AwaitWatch {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _mon: rustler::Monitor) {
        if let Some(lp) = self.target.upgrade() {
            lp.cancel(self.id);
        }
    }
}

/// What answering an awaited job takes, Python aside: its job (the
/// caller's environment, reference and cell) and the monitor on the
/// caller. Shared by the Python `Job` object and the loop's table.
struct Pending {
    job: Mutex<Option<Box<Job>>>,
    watch: Mutex<Option<ResourceArc<AwaitWatch>>>,
    /// Its caller gave up (timed out, died): its task is not to run.
    cancelled: AtomicBool,
}

impl Pending {
    /// The job, once: whoever takes it answers.
    fn take(&self) -> Option<Box<Job>> {
        let job = lock(&self.job).take();
        if job.is_some() {
            drop(lock(&self.watch).take());
        }
        job
    }
}

/// A job whose result is being awaited on the loop: the Python side calls
/// one of `reply`, `fail`, `stopped` once, when its task is done.
#[pyclass(frozen, module = "beam._asyncio", name = "Job")]
pub struct AsyncJob {
    #[pyo3(get)]
    id: u64,
    flags: u64,
    caller: LocalPid,
    pending: Arc<Pending>,
    /// The loop whose table lists it. Weak: a Python object (a task's
    /// context, an exception's traceback, a cycle waiting for the
    /// collector) must not keep a stopped loop (its eventfd) alive.
    target: Option<Weak<LoopShared>>,
    /// What its task wrote to `sys.stdout`/`sys.stderr` and did not send
    /// yet (an unfinished line), per stream: see `output`.
    output: Mutex<[Vec<u8>; 2]>,
}

impl AsyncJob {
    fn new(
        job: Box<Job>,
        flags: u64,
        watch: Option<ResourceArc<AwaitWatch>>,
        target: Option<Arc<LoopShared>>,
    ) -> AsyncJob {
        let id = job.id;
        let caller = job.caller;
        let pending = Arc::new(Pending {
            job: Mutex::new(Some(job)),
            watch: Mutex::new(watch),
            cancelled: AtomicBool::new(false),
        });
        if let Some(lp) = &target {
            lock(&lp.jobs).insert(id, pending.clone());
        }
        AsyncJob {
            id,
            flags,
            caller,
            pending,
            target: target.as_ref().map(Arc::downgrade),
            output: Mutex::new([Vec::new(), Vec::new()]),
        }
    }

    /// Its caller.
    pub fn caller_pid(&self) -> LocalPid {
        self.caller
    }

    /// What its task wrote and did not send yet, per stream.
    pub fn output_buffers(&self) -> MutexGuard<'_, [Vec<u8>; 2]> {
        lock(&self.output)
    }

    /// Sends `{Ref, {py_output, Event}}` to its caller, `Event` made by
    /// `event` in the message's environment: as `call_scope::send_event`
    /// for a call on a worker. `Gone` once the job was answered (or
    /// abandoned), or its caller gave up. Under the job's lock: no output
    /// goes after the reply.
    pub fn send_event<F>(&self, event: F) -> Delivery
    where
        F: for<'b> FnOnce(Env<'b>) -> Term<'b>,
    {
        let guard = lock(&self.pending.job);
        let Some(job) = guard.as_ref() else {
            return Delivery::Gone;
        };
        let send = || {
            let env = OwnedEnv::new();
            let message = job.env.run(|je| {
                let reference = job.reference.load(je);
                env.run(|e| {
                    env.save((reference.in_env(e), (atoms::py_output(), event(e))).encode(e))
                })
            });
            send_from_thread(&env, &job.caller, message)
        };
        call_scope::deliver(job.cell().map(Arc::as_ref), send)
    }

    /// Lets go of a job that will not be awaited, without answering it.
    fn discard(self) {
        if let Some(lp) = self.target.as_ref().and_then(Weak::upgrade) {
            lock(&lp.jobs).remove(&self.id);
        }
        if let Some(job) = self.pending.take() {
            job.recycle();
        }
    }

    /// Sends `{Ref, Reply}` (unless the caller gave up) and lets go of the
    /// job. Only the first answer counts. `enif_send` is quick and calls
    /// no Python: the GIL stays held.
    fn answer(&self, py: Python<'_>, build: impl for<'a> FnOnce(Python<'_>, Env<'a>) -> Term<'a>) {
        // What its task printed comes first.
        output::end_of_task(self);
        let Some(job) = self.pending.take() else {
            return;
        };
        if let Some(lp) = self.target.as_ref().and_then(Weak::upgrade) {
            lock(&lp.jobs).remove(&self.id);
        }
        let message = job.env.run(|e| {
            let reply = build(py, e);
            job.env.save((job.reference.load(e), reply))
        });
        job.reply(message);
    }
}

/// The loop did not end in time after its stop (a coroutine blocked in C
/// code holds its thread): every job still pending on it is answered
/// `{error, py_loop_stopped}` from here, the calling (dirty) NIF's
/// process sending. Their tasks are abandoned: if the thread ever comes
/// back, their answers are dropped. Returns how many were answered.
pub fn abandon(env: Env<'_>, res: &LoopRes) -> usize {
    let jobs: Vec<Arc<Pending>> = lock(&res.shared.jobs).drain().map(|(_, p)| p).collect();
    let mut answered = 0;
    for pending in jobs {
        let Some(job) = pending.take() else {
            continue;
        };
        job.reply_with(|job| {
            let message = job.env.run(|je| {
                let reference = job.reference.load(je).in_env(env);
                (reference, (atoms::error(), atoms::py_loop_stopped())).encode(env)
            });
            let _ = env.send(&job.caller, message);
        });
        answered += 1;
    }
    answered
}

impl Drop for AsyncJob {
    /// Never answered (its task was lost): the caller must not wait for
    /// ever. Dropped by Python, so with the GIL held.
    fn drop(&mut self) {
        if lock(&self.pending.job).is_some() {
            Python::attach(|py| self.stopped(py));
        }
    }
}

fn types() -> PyResult<&'static BeamTypes> {
    runtime::beam_types().map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The reply for `value`, as a worker makes it: `{ok, Term}`, or
/// `{py_maps, Nodes}` (maps of more than 32 keys are built by the caller's
/// process: this is not a scheduler thread), or the error it gives.
fn value_reply<'a>(py: Python<'_>, env: Env<'a>, value: &Bound<'_, PyAny>, flags: u64) -> Term<'a> {
    let types = match types() {
        Ok(t) => t,
        Err(e) => return (atoms::error(), exception_term(py, env, &e)).encode(env),
    };
    TYPE_NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if names.len() > 4096 {
            names.clear();
        }
        let mut enc = Encoder2 {
            env,
            py,
            types,
            type_names: &mut names,
            opts: Options::from_flags(flags),
            large_maps: LargeMaps::deferred(),
        };
        match enc.encode(value) {
            Ok(term) => enc.large_maps.reply(env, term),
            Err(EncodeError::Python(e)) => {
                (atoms::error(), exception_term(py, env, &e)).encode(env)
            }
            Err(EncodeError::Result { why, obj }) => {
                let handle = enc.handle(obj.bind(py));
                (atoms::error(), (atoms::py_badresult(), why, handle)).encode(env)
            }
        }
    })
}

#[pymethods]
impl AsyncJob {
    /// The task returned `value`.
    fn reply(&self, py: Python<'_>, value: Bound<'_, PyAny>) {
        let flags = self.flags;
        self.answer(py, |py, env| value_reply(py, env, &value, flags));
    }

    /// The task raised `exc`.
    fn fail(&self, py: Python<'_>, exc: Bound<'_, PyAny>) {
        let err = PyErr::from_value(exc);
        self.answer(py, |py, env| {
            (atoms::error(), exception_term(py, env, &err)).encode(env)
        });
    }

    /// py is stopping: the task was cancelled (or never started).
    fn stopped(&self, py: Python<'_>) {
        self.answer(py, |_, env| {
            (atoms::error(), atoms::py_loop_stopped()).encode(env)
        });
    }

    /// Its caller gave up on it (timed out, died): not to be started.
    #[getter]
    fn cancelled(&self) -> bool {
        self.pending.cancelled.load(Ordering::SeqCst)
    }

    /// The caller, as a `beam.Pid` (`beam.self()` inside the task).
    fn caller(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        beam_native::pid_object(py, self.caller)
    }
}

/// The loop's inbox as the Python side sees it.
#[pyclass(frozen, module = "beam._asyncio", name = "Inbox")]
pub struct LoopInbox {
    /// Weak: the Python side's objects (the asyncio loop and its state
    /// refer to each other, a cycle only the collector frees) must not
    /// keep a stopped loop alive; its thread holds it while it runs.
    shared: Weak<LoopShared>,
    /// Events taken from the channel and not yet handed to Python (making
    /// the list failed partway): handed first next time.
    backlog: Mutex<Vec<Item>>,
}

/// An event as the Python side gets it, its objects made.
enum Item {
    Await(Py<AsyncJob>, Py<PyAny>),
    Cancel(u64),
    Reply(u64, Py<PyAny>),
    Stop(f64),
}

impl Item {
    fn from_event(py: Python<'_>, event: Event) -> Item {
        match event {
            Event::Await { job, awaitable } => Item::Await(job, awaitable),
            Event::Cancel(id) => Item::Cancel(id),
            Event::Reply { id, reply } => Item::Reply(id, call_result(py, id, reply)),
            Event::Stop { grace_ms } => Item::Stop(grace_ms as f64 / 1000.0),
        }
    }

    /// `(kind, a, b)`; the item stays whole (it is kept if this fails).
    fn tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        match self {
            Item::Await(job, awaitable) => PyTuple::new(
                py,
                [
                    0u8.into_pyobject(py)?.into_any(),
                    job.bind(py).clone().into_any(),
                    awaitable.bind(py).clone(),
                ],
            ),
            Item::Cancel(id) => (1u8, *id, py.None()).into_pyobject(py),
            Item::Reply(id, result) => (2u8, *id, result.clone_ref(py)).into_pyobject(py),
            Item::Stop(grace_s) => (3u8, *grace_s, py.None()).into_pyobject(py),
        }
    }
}

impl LoopInbox {
    fn shared(&self) -> PyResult<Arc<LoopShared>> {
        self.shared
            .upgrade()
            .ok_or_else(|| PyRuntimeError::new_err("py's event loop is gone"))
    }

    /// The jobs of the events never handed to Python, answered
    /// `py_loop_stopped` (the loop has ended). GIL held.
    fn stop_backlog(&self, py: Python<'_>) {
        let backlog = std::mem::take(&mut *lock(&self.backlog));
        for item in backlog {
            if let Item::Await(job, awaitable) = item {
                close_awaitable(awaitable.bind(py));
                job.get().stopped(py);
            }
        }
    }
}

#[pymethods]
impl LoopInbox {
    fn fileno(&self) -> PyResult<i32> {
        Ok(self.shared()?.efd)
    }

    /// Tasks now on the loop (kept by the Python side).
    fn set_pending(&self, n: usize) {
        if let Some(s) = self.shared.upgrade() {
            s.pending.store(n, Ordering::Relaxed);
        }
    }

    /// Everything that arrived: a list of `(kind, a, b)`: `(0, job,
    /// awaitable)`, `(1, job_id, None)` (cancel), `(2, call_id, (ok,
    /// value_or_exception))` (an `async_call` reply), `(3, grace_s, None)`
    /// (stop). If making the list fails partway (no memory), the events
    /// not in it are kept for the next call (the loop is woken for it):
    /// none is lost.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let s = self.shared()?;
        // The eventfd is read *before* the flag is cleared: cleared first,
        // a push between the two would write, see its write consumed by
        // this read, and leave the flag set with nothing to read: no push
        // would ever wake the loop again (seen as lost cancellations).
        // In this order, a push that still saw the flag set sent its event
        // before the flag is cleared (it is in the channel drained below),
        // and one that sees it cleared writes a wake-up that stays.
        let mut buf: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our own non-blocking
        // eventfd (EAGAIN when nothing was written: ignored).
        unsafe {
            libc::read(s.efd, (&mut buf as *mut u64).cast(), 8);
        }
        s.wake_pending.store(false, Ordering::SeqCst);
        let mut items = std::mem::take(&mut *lock(&self.backlog));
        while let Ok(event) = s.rx.try_recv() {
            items.push(Item::from_event(py, event));
        }
        let out = PyList::empty(py);
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            if let Err(e) = item.tuple(py).and_then(|t| out.append(t)) {
                let mut backlog = lock(&self.backlog);
                backlog.push(item);
                backlog.extend(items);
                drop(backlog);
                // Called again soon, for what is kept.
                s.wake();
                if out.is_empty() {
                    return Err(e);
                }
                return Ok(out);
            }
        }
        Ok(out)
    }
}

/// `(True, value)` or `(False, exception)` for a `beam.async_call` reply.
fn call_result(py: Python<'_>, id: u64, reply: Option<(OwnedEnv, SavedTerm)>) -> Py<PyAny> {
    let outcome = (|| -> PyResult<(bool, Py<PyAny>)> {
        let types = types()?;
        let Some((env, saved)) = reply else {
            return Ok((
                false,
                PyRuntimeError::new_err(format!(
                    "beam.async_call #{id}: the Erlang process died without replying"
                ))
                .into_value(py)
                .into_any(),
            ));
        };
        env.run(|e| {
            let dec = Decoder { py, types };
            let decoded = dec.decode(saved.load(e)).map_err(|err| match err {
                DecodeError::Python(p) => p,
                DecodeError::Badarg(b) => PyTypeError::new_err(format!(
                    "beam.async_call: the result has no Python counterpart ({:?})",
                    b.why
                )),
            })?;
            let (tag, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = decoded.extract()?;
            if tag.eq("ok")? {
                Ok((true, value.unbind()))
            } else {
                let (class, reason): (Bound<'_, PyAny>, Bound<'_, PyAny>) = value.extract()?;
                Ok((
                    false,
                    types.erlang_error.bind(py).call1((class, reason))?.unbind(),
                ))
            }
        })
    })();
    let pair = match outcome {
        Ok(pair) => pair,
        Err(e) => (false, e.into_value(py).into_any()),
    };
    match pair.into_pyobject(py) {
        Ok(t) => t.into_any().unbind(),
        Err(_) => py.None(),
    }
}

/// Where the answer of a `beam.async_call` goes.
pub struct LoopReply {
    target: Weak<LoopShared>,
    id: u64,
}

impl LoopReply {
    /// Hands the reply (in its own environment) to the loop.
    pub fn send(self, reply: Option<(OwnedEnv, SavedTerm)>) {
        if let Some(lp) = self.target.upgrade() {
            let _ = lp.push(Event::Reply { id: self.id, reply });
        }
    }
}

/// A `beam.async_call` on its way: its number (its reply comes through
/// the inbox as `(2, number, result)`) and `cancel()`, which stops the
/// Erlang process running the function (the coroutine gave up on it).
#[pyclass(frozen, module = "beam._asyncio", name = "AsyncCall")]
pub struct AsyncCall {
    #[pyo3(get)]
    id: u64,
    runner: Arc<beam_native::Runner>,
}

#[pymethods]
impl AsyncCall {
    /// Stops the function's process (or keeps it from starting); nothing
    /// when it already answered or died.
    fn cancel(&self) {
        self.runner.cancel();
    }
}

/// `_beam_native.async_call(module, function, args, job)`: sends the call
/// to `py_callback` and returns it as an [`AsyncCall`]. Only on the loop
/// thread. `job`, the job of the calling task (if any), gives the caller
/// whose group leader the function runs with.
#[pyfunction]
#[pyo3(signature = (module, function, args, job=None))]
pub fn async_call(
    py: Python<'_>,
    module: &str,
    function: &str,
    args: &Bound<'_, PyList>,
    job: Option<PyRef<'_, AsyncJob>>,
) -> PyResult<AsyncCall> {
    let Some(lp) = THIS_LOOP.with(|l| l.borrow().clone()) else {
        return Err(PyRuntimeError::new_err(
            "beam.async_call: only in a coroutine running on py's event loop (one called from Erlang)",
        ));
    };
    let id = NEXT_CALL_ID.fetch_add(1, Ordering::Relaxed);
    let slot = ResourceArc::new(CallbackRes::to_loop(LoopReply {
        target: Arc::downgrade(&lp),
        id,
    }));
    let caller = job.map(|j| j.caller);
    let runner = slot.runner();
    beam_native::send_call(py, &slot, module, function, args, caller)?;
    Ok(AsyncCall { id, runner })
}
