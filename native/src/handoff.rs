//! The reply handed to a caller that waits inside its `submit_wait` NIF.
//!
//! A small call on an idle pool takes a worker about a microsecond; the
//! message that carries its reply costs more than that: `enif_send`, the
//! receive, and, when the caller's scheduler has nothing else to run, a
//! sleep and a futex wake-up of that scheduler (tens of microseconds on a
//! virtual machine). When a worker was spinning on the shared queue at the
//! moment of the push, the caller instead waits for a few microseconds in
//! the NIF itself (`SPIN_WAIT`, below the VM's own busy wait of an idle
//! scheduler), and a reply that comes in that time is handed over in
//! memory: no message, no wake-up. Otherwise the reply comes as a message,
//! as for any other call.
//!
//! One compare-and-swap decides who wins, with no state in between: the
//! worker stores the job (its environment holds the reply) in the slot and
//! then swaps `WAITING` for `FILLED`; a caller that stops waiting swaps
//! `WAITING` for `GAVE_UP`. The loser of the swap knows: a worker that
//! loses takes its job back and sends the reply; a caller that loses
//! finds the slot filled. Nobody ever waits for the other side's lock:
//! the slot's mutex is taken by the worker before its swap and by the
//! caller after it saw `FILLED`, never at the same time.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustler::env::SavedTerm;
use rustler::{Env, Term};

use crate::job::Job;
use crate::queue;
use crate::sync;
use crate::term_budget::{copy_cost, Cost, CELL_BUDGET, IDENTIFIER_COST};
use crate::tuple::Tuple;
use crate::valgrind;

/// How long a caller waits in the NIF for a reply. A normal-scheduler NIF
/// must return within a millisecond; this stays far below, and below the
/// busy wait of an idle BEAM scheduler (which would spin anyway).
const SPIN_WAIT: Duration = Duration::from_micros(10);
/// Under valgrind, yields before the caller stops waiting.
const VALGRIND_YIELDS: u32 = 64;
/// Polls between clock reads.
const CLOCK_EVERY: u32 = 16;

const WAITING: u8 = 0;
const FILLED: u8 = 1;
/// The caller stopped waiting: the reply is to be sent.
const GAVE_UP: u8 = 2;
/// The reply was sent as a message (too large to copy on a scheduler, or
/// sent by a thread that does not hand over): the caller receives it.
const SENT: u8 = 3;

/// Jobs with a handoff not yet finished (queued, running, or with a reply
/// not yet taken or sent). A caller waits in its NIF only when its job is
/// the only one: a lone caller wants its reply soon; with several calls in
/// flight the scheduler is better used running the other callers (when
/// each waited, 8 callers on 2 cores lost a third of their throughput).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One job counted in `IN_FLIGHT`, until dropped with the job.
pub struct InFlight;

impl InFlight {
    /// Counts a job in; true when it is the only one.
    pub fn enter() -> (InFlight, bool) {
        (InFlight, IN_FLIGHT.fetch_add(1, Ordering::AcqRel) == 0)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
pub struct Handoff {
    state: AtomicU8,
    slot: Mutex<Option<(Box<Job>, SavedTerm, Cost)>>,
}

/// What the waiting caller got.
pub enum Waited<'a> {
    /// The reply message (`{Ref, Reply}`), copied into the caller's env.
    Reply(Term<'a>),
    /// No reply in time: it comes as a message.
    Message,
}

/// What copying a reply message `{Ref, Reply}` costs: the caller's own
/// plain reference keeps nothing alive, so only `Reply` is looked at for
/// what it holds (see `Job::recycle_handed_over`).
fn reply_cost(message: Term<'_>) -> Option<Cost> {
    let reply = Tuple::new(message).and_then(|t| t.get(1))?;
    let cost = copy_cost(&[reply], CELL_BUDGET - IDENTIFIER_COST - 3)?;
    Some(Cost {
        units: cost.units + IDENTIFIER_COST + 3,
        ..cost
    })
}

impl Handoff {
    /// Worker side: hands `job`'s reply `message` (saved in `job`'s
    /// environment) to the waiting caller. Gives the job back when the
    /// caller stopped waiting or the reply is too large to copy on a
    /// scheduler thread: then the reply must be sent.
    pub fn fill(&self, job: Box<Job>, message: SavedTerm) -> Option<(Box<Job>, SavedTerm)> {
        if self.state.load(Ordering::Acquire) != WAITING {
            return Some((job, message));
        }
        let Some(cost) = job.env.run(|env| reply_cost(message.load(env))) else {
            return Some((job, message));
        };
        *sync::lock(&self.slot) = Some((job, message, cost));
        match self
            .state
            .compare_exchange(WAITING, FILLED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => None,
            // The caller gave up meanwhile: the job is the worker's again.
            Err(_) => sync::lock(&self.slot)
                .take()
                .map(|(job, message, _)| (job, message)),
        }
    }

    /// Worker side: the reply goes (or went) as a message, or there is
    /// none: a caller still waiting stops at once.
    pub fn decline(&self) {
        let _ = self
            .state
            .compare_exchange(WAITING, SENT, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Caller side, on a scheduler thread: waits up to `SPIN_WAIT` for the
    /// reply, polling without ever yielding. `spinner` is the core of the
    /// worker that was spinning when the job was pushed (-1: unknown).
    /// Gives up at once with no spinner (the reply is tens of microseconds
    /// away), and when the spinner runs on this very core: the worker
    /// could only run if this thread yielded, and a yield on a busy
    /// machine gives the core away for a time slice (measured with two
    /// CPU hogs on 2 cores: 3.5% of such calls held their scheduler for
    /// 4-20 ms). (With other calls in flight, see `IN_FLIGHT`, the job has
    /// no handoff at all.)
    pub fn wait<'a>(&self, env: Env<'a>, spinner: Option<i32>) -> Waited<'a> {
        if spinner.is_some() && valgrind::running_on_valgrind() {
            // One thread at a time, whatever the cores: the worker runs
            // only when this one yields (see `valgrind`).
            for _ in 0..VALGRIND_YIELDS {
                match self.state.load(Ordering::Acquire) {
                    FILLED => return self.take(env),
                    SENT => return Waited::Message,
                    _ => std::thread::yield_now(),
                }
            }
        } else if spinner.is_some_and(|cpu| cpu < 0 || cpu != queue::current_cpu()) {
            let start = Instant::now();
            let mut n = 0u32;
            loop {
                match self.state.load(Ordering::Acquire) {
                    FILLED => return self.take(env),
                    SENT => return Waited::Message,
                    _ => {}
                }
                n = n.wrapping_add(1);
                if n.is_multiple_of(CLOCK_EVERY) && start.elapsed() > SPIN_WAIT {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        match self
            .state
            .compare_exchange(WAITING, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Waited::Message,
            Err(FILLED) => self.take(env),
            Err(_) => Waited::Message,
        }
    }

    /// The filled slot's reply, copied into `env` (it passed the budget
    /// check, so the copy is short); the job is recycled.
    fn take<'a>(&self, env: Env<'a>) -> Waited<'a> {
        match sync::lock(&self.slot).take() {
            Some((job, message, cost)) => {
                let reply = job.env.run(|e| message.load(e).in_env(env));
                drop(message);
                job.recycle_handed_over(cost);
                Waited::Reply(reply)
            }
            // Cannot happen: FILLED is set after the slot.
            None => Waited::Message,
        }
    }
}
