//! Jobs: one Erlang request on its way to a worker, and the optional
//! cancellation cell shared with a caller that waits with a timeout.
//!
//! A job owns an environment holding the caller's reference and request.
//! Calls without a timeout carry no cell (nothing to synchronise: the
//! reply is always sent). Calls with a timeout carry a `JobCell`, also held
//! by the caller as a `JobRes` resource: the cell's lock orders "reply
//! sent" against "caller gave up", so a timed-out caller learns for sure
//! whether the reply is in its mailbox.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crossbeam_queue::ArrayQueue;

use rustler::env::SavedTerm;
use rustler::{LocalPid, OwnedEnv, Resource, Term};

use crate::atoms;
use crate::context::ContextInner;
use crate::event_loop::LoopShared;
use crate::handoff::{Handoff, InFlight};
use crate::housekeeper;
use crate::send::send_from_thread;
use crate::sync;
use crate::term_budget::Cost;
use crate::tuple::Tuple;
use crate::worker::WorkerShared;

static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

pub struct Job {
    pub id: u64,
    pub env: OwnedEnv,
    pub caller: LocalPid,
    pub reference: SavedTerm,
    pub request: SavedTerm,
    cell: Option<Arc<JobCell>>,
    /// The context the call runs in (its namespace), if any.
    pub context: Option<Arc<ContextInner>>,
    /// Set when the caller waits for the reply in its NIF (`handoff`).
    handoff: Option<Arc<Handoff>>,
    /// Counts the job among those with a handoff, while it lives.
    _in_flight: Option<InFlight>,
    /// About the words `env` holds (earlier jobs' terms and this job's
    /// request), when they hold nothing else (no binary, no resource):
    /// then the environment may be reused without clearing it (see
    /// `recycle_handed_over`). `None`: unknown, cleared when recycled.
    env_units: Option<usize>,
    /// What `env` held before this job (see `env_units`).
    env_held: usize,
}

/// Environments ready for reuse, with the units they still hold (0 when
/// cleared): allocating one costs more than a small call's conversions.
static ENV_POOL: OnceLock<ArrayQueue<(OwnedEnv, usize)>> = OnceLock::new();
const ENV_POOL_SIZE: usize = 256;

/// An environment that holds at most this many units of earlier small
/// jobs' terms (and nothing they keep alive) is reused without clearing
/// it: clearing frees its heap fragment, and the next job's copy
/// allocates one again, a third of a small call's cost on the
/// scheduler thread. About 8 KB at most per environment.
const ENV_KEEP_UNITS: usize = 1024;

fn env_pool() -> &'static ArrayQueue<(OwnedEnv, usize)> {
    ENV_POOL.get_or_init(|| ArrayQueue::new(ENV_POOL_SIZE))
}

impl Job {
    /// Copies `reference` and `request` into an environment: only a copy,
    /// no conversion (that is the worker's). The caller makes sure the copy
    /// is cheap enough for its thread (`term_budget`).
    pub fn new<'a>(
        caller: LocalPid,
        reference: Term<'a>,
        request: Term<'a>,
        cancellable: bool,
    ) -> Box<Job> {
        let (env, env_held) = env_pool().pop().unwrap_or_default();
        // One copy of both (a pair made where they are): each copy sizes
        // its term and may take a heap fragment.
        let pair = env.save(pair(reference, request));
        let (reference, request) = env.run(|e| {
            let parts = Tuple::new(pair.load(e)).and_then(|t| t.get(0).zip(t.get(1)));
            match parts {
                Some((reference, request)) => (env.save(reference), env.save(request)),
                // Cannot happen: the pair was made just above.
                None => (pair.clone(), pair.clone()),
            }
        });
        Box::new(Job {
            id: NEXT_JOB_ID.fetch_add(1, Ordering::Relaxed),
            env,
            caller,
            reference,
            request,
            cell: cancellable.then(|| Arc::new(JobCell::default())),
            context: None,
            handoff: None,
            _in_flight: None,
            env_units: None,
            env_held,
        })
    }

    /// The same job, its request known to cost `request` to copy (see
    /// `recycle_handed_over`).
    pub fn with_request_cost(mut self: Box<Self>, request: Cost) -> Box<Job> {
        self.env_units = (!request.holds).then(|| self.env_held.saturating_add(request.units));
        self
    }

    /// The same job, counted among the jobs of callers that may wait in
    /// their NIF (see `handoff`), and whether no other one is in flight.
    pub fn counted(mut self: Box<Self>) -> (Box<Job>, bool) {
        let (in_flight, alone) = InFlight::enter();
        self._in_flight = Some(in_flight);
        (self, alone)
    }

    /// The same job, its reply to be handed to a caller that waits in its
    /// NIF, and the caller's side of the handoff.
    pub fn with_handoff(mut self: Box<Self>) -> (Box<Job>, Arc<Handoff>) {
        let handoff = Arc::new(Handoff::default());
        self.handoff = Some(handoff.clone());
        (self, handoff)
    }
}

/// `{A, B}`, made where `a` is (rustler's `make_tuple` goes through a
/// `Vec`).
fn pair<'a>(a: Term<'a>, b: Term<'a>) -> Term<'a> {
    let env = a.get_env();
    let items = [a.as_c_arg(), b.as_c_arg()];
    // SAFETY: both are live terms of `env`, the environment the tuple is
    // made in; the call reads the two elements of `items`.
    unsafe {
        Term::new(
            env,
            rustler::sys::enif_make_tuple_from_array(env.as_c_arg(), items.as_ptr(), 2),
        )
    }
}

// Jobs travel boxed through the queues: taking the box as it comes.
#[allow(clippy::boxed_local)]
impl Job {
    /// The cancellation cell, for calls with a timeout or aimed at a worker.
    pub fn cell(&self) -> Option<&Arc<JobCell>> {
        self.cell.as_ref()
    }

    /// The caller's handle for `cancel/1`, when it waits with a timeout.
    pub fn handle(&self) -> Option<JobRes> {
        self.cell.clone().map(|cell| JobRes { cell })
    }

    /// Marks the job as started on `worker`; false when its caller gave up
    /// while it was queued (then it must not run).
    pub fn start(&self, worker: &Arc<WorkerShared>) -> bool {
        match &self.cell {
            Some(cell) => cell.start(worker, self.id),
            None => true,
        }
    }

    /// Its result is to be awaited on the event loop `target` (the task of
    /// this job's id); false when its caller gave up meanwhile (then there
    /// is nothing to await).
    pub fn awaiting(&self, target: &Arc<LoopShared>) -> bool {
        match &self.cell {
            Some(cell) => cell.awaiting(Arc::downgrade(target), self.id),
            None => true,
        }
    }

    /// As `reply`, for a sender that is not one of py's threads (a dirty
    /// NIF, which sends with its own env): `send` sends, unless the caller
    /// gave up meanwhile.
    pub fn reply_with(self: Box<Self>, send: impl FnOnce(&Job)) {
        match &self.cell {
            Some(cell) => cell.finish(|| send(&self)),
            None => send(&self),
        }
        // A caller waiting in its NIF stops waiting (recycle tells it).
        self.recycle();
    }

    /// Sends `message` (a term saved in the job's environment) to the
    /// caller, unless the caller gave up meanwhile; then recycles the job.
    /// Runs on one of py's threads (a worker, the event loop).
    pub fn reply(self: Box<Self>, message: SavedTerm) {
        // A caller still waiting in its NIF takes the reply from memory.
        let (job, message) = match self.handoff.clone() {
            Some(handoff) => match handoff.fill(self, message) {
                None => return,
                Some(back) => back,
            },
            None => (self, message),
        };
        job.send_reply(message);
    }

    fn send_reply(self: Box<Self>, message: SavedTerm) {
        let send = || {
            send_from_thread(&self.env, &self.caller, message);
        };
        match &self.cell {
            Some(cell) => cell.finish(send),
            None => send(),
        }
        self.recycle();
    }

    /// Gives the job's environment back for reuse, once its terms are no
    /// longer needed (after the reply was sent, or dropped).
    pub fn recycle(self: Box<Self>) {
        // The reply went as a message, or none comes from here: a caller
        // still waiting in its NIF stops waiting.
        if let Some(handoff) = &self.handoff {
            handoff.decline();
        }
        let Job { mut env, .. } = *self;
        env.clear();
        let _ = env_pool().push((env, 0));
    }

    /// Recycles a job whose reply, costing `reply`, was copied by its
    /// caller: its environment is reused as it is while it holds little
    /// (`ENV_KEEP_UNITS`) and nothing it keeps alive, else cleared.
    pub fn recycle_handed_over(self: Box<Self>, reply: Cost) {
        let held = match self.env_units {
            Some(units) if !reply.holds => units.saturating_add(reply.units),
            _ => usize::MAX,
        };
        if held > ENV_KEEP_UNITS {
            return self.recycle();
        }
        let Job { env, .. } = *self;
        let _ = env_pool().push((env, held));
    }
}

#[derive(Default)]
enum Phase {
    #[default]
    Queued,
    Running(Arc<WorkerShared>, u64),
    /// Its result is being awaited on the event loop (task of job `u64`).
    /// Weak: the caller's handle (a term it may keep) must not keep a
    /// stopped loop alive.
    Awaiting(Weak<LoopShared>, u64),
    Done,
    Cancelled,
}

#[derive(Default)]
pub struct JobCell {
    phase: Mutex<Phase>,
}

impl JobCell {
    fn lock(&self) -> MutexGuard<'_, Phase> {
        sync::lock(&self.phase)
    }

    fn start(&self, worker: &Arc<WorkerShared>, job_id: u64) -> bool {
        let mut phase = self.lock();
        match *phase {
            Phase::Cancelled => false,
            _ => {
                *phase = Phase::Running(worker.clone(), job_id);
                true
            }
        }
    }

    /// The job's result is handed to the event loop; false when the caller
    /// gave up meanwhile (then nothing is to be awaited).
    fn awaiting(&self, target: Weak<LoopShared>, job_id: u64) -> bool {
        let mut phase = self.lock();
        match *phase {
            Phase::Cancelled => false,
            _ => {
                *phase = Phase::Awaiting(target, job_id);
                true
            }
        }
    }

    /// Runs `send` unless the job was cancelled or answered, and marks it
    /// done.
    pub fn finish(&self, send: impl FnOnce()) {
        let mut phase = self.lock();
        if !matches!(*phase, Phase::Cancelled | Phase::Done) {
            send();
            *phase = Phase::Done;
        }
    }

    /// Runs `f` unless the job was cancelled: what `f` sends to the caller
    /// is in its mailbox before a `cancel` can return `cancelled`.
    pub fn unless_cancelled<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let phase = self.lock();
        if matches!(*phase, Phase::Cancelled) {
            None
        } else {
            Some(f())
        }
    }

    /// Where the job is: `Some((worker thread id, job id))` while it runs.
    pub fn running_on(&self) -> Option<(u64, u64)> {
        match &*self.lock() {
            Phase::Running(worker, job_id) => Some((worker.id, *job_id)),
            _ => None,
        }
    }

    /// The caller gave up: `replied` when the reply is already in its
    /// mailbox, `cancelled` when none will come (a running job is
    /// interrupted, an awaited one's task cancelled).
    pub fn cancel(&self) -> rustler::Atom {
        let mut phase = self.lock();
        match std::mem::replace(&mut *phase, Phase::Cancelled) {
            Phase::Done => {
                *phase = Phase::Done;
                atoms::replied()
            }
            Phase::Running(worker, job_id) => {
                housekeeper::interrupt(worker, job_id);
                atoms::cancelled()
            }
            Phase::Awaiting(target, job_id) => {
                if let Some(target) = target.upgrade() {
                    target.cancel(job_id);
                }
                atoms::cancelled()
            }
            Phase::Queued | Phase::Cancelled => atoms::cancelled(),
        }
    }
}

/// The caller's handle on a cancellable job.
pub struct JobRes {
    pub cell: Arc<JobCell>,
}

#[rustler::resource_impl]
impl Resource for JobRes {}
