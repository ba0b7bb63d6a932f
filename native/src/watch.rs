//! The watch: one background thread (it never takes the GIL) that keeps
//! the promises no Erlang process is left to keep.
//!
//! * A worker whose owner died while its Python code is blocked in C has
//!   its caller answered at once, `{py_worker_down, Id}`, whatever the
//!   scheduler (`WorkerRes::down` hands the worker over).
//! * A caller that died mid-call has its running job interrupted, as on a
//!   timeout, and the worker's owner is told (`{py_job_orphaned, JobId}`)
//!   so that it watches for a job the interrupt cannot reach. (A dead
//!   caller's queued jobs are dropped by the worker, see `worker`.)
//! * A releaser stuck in a `__del__` is replaced (see `housekeeper`), and
//!   the py_pool process is told, to log it.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use rustler::{Encoder, LocalPid, OwnedEnv};

use crate::atoms;
use crate::housekeeper;
use crate::send::send_from_thread;
use crate::sync;
use crate::worker::WorkerShared;

/// How often running jobs' callers and the releaser are looked at.
const TICK: Duration = Duration::from_millis(100);

enum Event {
    /// The worker's owner died.
    Down(Arc<WorkerShared>),
}

static EVENTS: OnceLock<Sender<Event>> = OnceLock::new();
/// Every worker started, for the caller watch.
static WORKERS: Mutex<Vec<Weak<WorkerShared>>> = Mutex::new(Vec::new());

/// Starts the watch thread (once).
pub fn start() -> Result<(), std::io::Error> {
    if EVENTS.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = unbounded();
    if EVENTS.set(tx).is_ok() {
        std::thread::Builder::new()
            .name("py-watch".into())
            .spawn(move || loop {
                match rx.recv_timeout(TICK) {
                    Ok(Event::Down(worker)) => worker.answer_running_down(),
                    Err(RecvTimeoutError::Timeout) => tick(),
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
    }
    Ok(())
}

/// Watches `worker` (until it is gone).
pub fn register(worker: &Arc<WorkerShared>) {
    let mut workers = sync::lock(&WORKERS);
    workers.retain(|w| w.strong_count() > 0);
    workers.push(Arc::downgrade(worker));
}

/// The owner of `worker` died: its running job's caller is answered now.
pub fn worker_down(worker: Arc<WorkerShared>) {
    if let Some(tx) = EVENTS.get() {
        let _ = tx.send(Event::Down(worker));
    }
}

fn tick() {
    let workers: Vec<Arc<WorkerShared>> = sync::lock(&WORKERS)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for worker in workers {
        if worker.owner_gone() {
            // Covers a job that started as the owner died.
            worker.answer_running_down();
            continue;
        }
        if let Some(job_id) = worker.orphaned_job() {
            housekeeper::interrupt(worker.clone(), job_id);
            notify(&worker.owner, |env| {
                (atoms::job_orphaned(), job_id).encode(env)
            });
        }
    }
    if let Some((stuck_ms, abandoned)) = housekeeper::check_releaser() {
        if let Some(pool) = whereis(atoms::pool()) {
            notify(&pool, |env| {
                (atoms::release_stuck(), stuck_ms, abandoned).encode(env)
            });
        }
    }
}

/// True when the local process `pid` is alive. Callable from any thread.
pub fn is_alive(pid: &LocalPid) -> bool {
    // SAFETY: a NULL caller env is allowed from threads ERTS did not start
    // (and ignored otherwise); `pid` is a valid pid.
    unsafe { rustler::sys::enif_is_process_alive(std::ptr::null_mut(), pid.as_c_arg()) != 0 }
}

fn whereis(name: rustler::Atom) -> Option<LocalPid> {
    let mut pid = std::mem::MaybeUninit::uninit();
    // SAFETY: a NULL env from a non-ERTS thread; `pid` is written on
    // success only.
    let found = unsafe {
        rustler::sys::enif_whereis_pid(std::ptr::null_mut(), name.as_c_arg(), pid.as_mut_ptr())
    };
    // SAFETY: initialised by the successful call.
    (found != 0).then(|| LocalPid::from_c_arg(unsafe { pid.assume_init() }))
}

fn notify(to: &LocalPid, message: impl for<'a> FnOnce(rustler::Env<'a>) -> rustler::Term<'a>) {
    let env = OwnedEnv::new();
    let saved = env.run(|e| env.save(message(e)));
    send_from_thread(&env, to, saved);
}
