//! Where jobs wait, and how idle workers wait for them.
//!
//! Each worker has its own queue (`WorkerQueue`: calls aimed at that
//! worker, or at a context pinned to it, and its stop message); all
//! workers serve the one `SharedQueue` (calls any worker may run). A
//! worker looks at its own queue first.
//!
//! The idle protocol: waking a parked thread costs tens of microseconds,
//! more than a small call, so an idle worker first spins on the queues for
//! a moment; at most one worker spins at a time (the cores are shared with
//! the BEAM's own schedulers). Other idle workers park and put themselves
//! on the shared queue's `idle` list. A submitter to the shared queue that
//! finds no spinner unparks one idle worker, and a worker that takes a job
//! and leaves others behind unparks one more (so that jobs pushed during a
//! spin do not wait for the spinner alone); a submitter to a worker's own
//! queue unparks that worker if it is parked. A spinner that finds itself
//! on the core of the last caller that may wait for it (see `handoff`)
//! moves to another core, at most once per `MOVE_EVERY`.
//!
//! Both sides use the same pattern (publish, full fence, then look at the
//! other side's flag), so a job can never be left with every worker
//! asleep: either the submitter sees the spinner or a parked worker, or the
//! worker sees the job on its last look before parking.
//!
//! Nothing is lost at shutdown either: pushes happen under a read lock
//! that the stopping side takes for writing before it answers what is
//! left (a worker's own queue when it leaves; the shared queue when the
//! last serving worker is stopped: that worker answers what is left when
//! it leaves). A worker stops serving the shared queue when it is told to
//! stop, not when its thread ends: a thread stuck in C code after its
//! owner died must not keep the queue's last jobs waiting for it.

use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use crossbeam_queue::SegQueue;

use crate::job::Job;
use crate::sync;
use crate::valgrind;

/// How long an idle worker spins before parking. The spinner yields its
/// core every few rounds: on a machine whose cores the BEAM's schedulers
/// need, a pure spin would preempt them for milliseconds (measured: dozens
/// of long_schedule events per bench run).
const SPIN: Duration = Duration::from_micros(20);
/// Polls between yields of a spinning worker. A poll is two loads (the
/// queues' counters); the yield lets a scheduler thread that shares the
/// core run.
const YIELD_EVERY: u32 = 8;

/// A spin's polls under valgrind (see `spun_out`), each followed by a
/// yield.
const VALGRIND_POLLS: u32 = 256;

/// What a worker takes from its queues.
pub enum Msg {
    Job(Box<Job>),
    /// Stop once the jobs queued before are answered.
    Stop,
}

/// The shared queue (one per VM).
pub struct SharedQueue {
    tx: Sender<Box<Job>>,
    rx: Receiver<Box<Job>>,
    /// Jobs sent and not yet taken: what a spinning worker polls (one
    /// load, where a channel receive costs dozens of instructions).
    queued: AtomicUsize,
    /// Workers serving the queue (started and not told to stop).
    /// Submitters hold the read lock while pushing; the last worker to
    /// retire takes the write lock, so no job can be pushed after that and
    /// stay unanswered.
    live: RwLock<usize>,
    /// One idle worker at a time may spin on the queue.
    spinner: AtomicBool,
    /// The core the spinner last ran on, and the core of the last caller
    /// that may wait for its reply (-1: not known). A caller never waits
    /// for a spinner on its own core; that spinner moves off it (see
    /// `spin`).
    spinner_cpu: AtomicI32,
    pusher_cpu: AtomicI32,
    /// Workers that are (or were about to be) parked.
    idle: SegQueue<Arc<Sleeper>>,
}

static SHARED: OnceLock<SharedQueue> = OnceLock::new();

/// The shared queue.
pub fn shared() -> &'static SharedQueue {
    SHARED.get_or_init(|| {
        let (tx, rx) = unbounded();
        SharedQueue {
            tx,
            rx,
            queued: AtomicUsize::new(0),
            live: RwLock::new(0),
            spinner: AtomicBool::new(false),
            spinner_cpu: AtomicI32::new(-1),
            pusher_cpu: AtomicI32::new(-1),
            idle: SegQueue::new(),
        }
    })
}

impl SharedQueue {
    /// Pushes a job unless no worker is alive (then gives it back), and
    /// makes sure some worker will look at it.
    pub fn push(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        self.push_job(job).map(|_| ())
    }

    /// As `push`, for a caller that will wait for the reply (`handoff`):
    /// `Some(core)` when a worker was spinning on the queue (it takes the
    /// job within a moment, where a parked one takes tens of microseconds
    /// to wake up), with the core it spins on (-1: unknown). The caller's
    /// own core is noted for the spinner (see `spin`).
    pub fn push_seeing_spinner(&self, job: Box<Job>) -> Result<Option<i32>, Box<Job>> {
        self.pusher_cpu.store(current_cpu(), Ordering::Relaxed);
        self.push_job(job)
            .map(|spinning| spinning.then(|| self.spinner_cpu.load(Ordering::Relaxed)))
    }

    /// Pushes; true when a worker was spinning (else one is woken).
    fn push_job(&self, job: Box<Job>) -> Result<bool, Box<Job>> {
        {
            let live = sync::read(&self.live);
            if *live == 0 {
                return Err(job);
            }
            self.tx.send(job).map_err(|e| e.into_inner())?;
            // Published after the job itself: a poller that sees it finds
            // the job.
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if !self.spinner.load(Ordering::SeqCst) {
            self.wake_one();
            return Ok(false);
        }
        Ok(true)
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// A job, without waiting. When more are waiting, one more idle worker
    /// is woken for them: a push that sees a spinner wakes nobody, and the
    /// spinner takes one job only, so jobs pushed during a spin would else
    /// wait for a busy worker while others sleep.
    #[inline]
    pub fn try_take(&self) -> Option<Box<Job>> {
        if self.queued.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let job = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if !self.rx.is_empty() {
            self.wake_one();
        }
        Some(job)
    }

    /// A worker starts serving the queue.
    pub fn join(&self) {
        *sync::write(&self.live) += 1;
    }

    /// A worker stops serving the queue; true when it was the last one
    /// (then it must answer what is left: `try_take` until `None`; no job
    /// can arrive any more).
    fn retire(&self) -> bool {
        let mut live = sync::write(&self.live);
        *live = live.saturating_sub(1);
        *live == 0
    }

    /// Unparks one parked worker, skipping stale entries of workers that
    /// woke up on their own since.
    fn wake_one(&self) {
        while let Some(sleeper) = self.idle.pop() {
            sleeper.listed_idle.store(false, Ordering::SeqCst);
            if sleeper.parked.load(Ordering::SeqCst) {
                sleeper.unpark();
                return;
            }
        }
    }

    fn try_become_spinner(&self) -> bool {
        self.spinner
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Ends a spin; the caller must look at the queues once more afterwards.
    fn stop_spinning(&self) {
        self.spinner.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Lists `sleeper` as idle; the caller must look at the queues once more
    /// before parking.
    fn list_idle(&self, sleeper: &Arc<Sleeper>) {
        if !sleeper.listed_idle.swap(true, Ordering::SeqCst) {
            self.idle.push(sleeper.clone());
        }
        fence(Ordering::SeqCst);
    }
}

/// How a worker thread is woken up.
#[derive(Default)]
struct Sleeper {
    thread: OnceLock<Thread>,
    /// The thread is parked or about to park.
    parked: AtomicBool,
    /// The worker is on the shared queue's idle list.
    listed_idle: AtomicBool,
}

impl Sleeper {
    fn unpark(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// One worker's own queue, and its side of the idle protocol.
pub struct WorkerQueue {
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    /// Messages sent and not yet taken (polled like `SharedQueue::queued`).
    queued: AtomicUsize,
    /// False once the worker has left: pushes are refused from then on.
    accepting: RwLock<bool>,
    /// A stop was asked: pushes are refused from then on.
    stopping: AtomicBool,
    /// This worker was the last one to stop serving the shared queue: it
    /// answers what is left there when it leaves.
    drains_shared: AtomicBool,
    sleeper: Arc<Sleeper>,
}

impl Default for WorkerQueue {
    fn default() -> Self {
        let (tx, rx) = unbounded();
        WorkerQueue {
            tx,
            rx,
            queued: AtomicUsize::new(0),
            accepting: RwLock::new(true),
            stopping: AtomicBool::new(false),
            drains_shared: AtomicBool::new(false),
            sleeper: Arc::default(),
        }
    }
}

impl WorkerQueue {
    /// Called by the worker thread itself before it takes anything.
    pub fn bind_thread(&self) {
        let _ = self.sleeper.thread.set(std::thread::current());
    }

    /// Queues a job for this worker; gives it back when the worker stopped
    /// or is stopping.
    pub fn push(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        {
            // Held across the check and the send: `close` cannot drain the
            // queue in between, so no job is left there unanswered.
            let accepting = sync::read(&self.accepting);
            if !*accepting || self.stopping.load(Ordering::Acquire) {
                return Err(job);
            }
            if let Err(e) = self.tx.send(Msg::Job(job)) {
                // Cannot happen (the queue holds its own receiver), but a
                // job is never lost.
                return match e.into_inner() {
                    Msg::Job(job) => Err(job),
                    Msg::Stop => Ok(()),
                };
            }
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if self.sleeper.parked.load(Ordering::SeqCst) {
            self.sleeper.unpark();
        }
        Ok(())
    }

    /// Asks the worker to stop after the jobs queued so far (it stops
    /// serving `shared` at once); true the first time.
    pub fn stop(&self, shared: &SharedQueue) -> bool {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return false;
        }
        // Before the stop message: the worker reads the flag once it has
        // taken that message.
        if shared.retire() {
            self.drains_shared.store(true, Ordering::SeqCst);
        }
        if self.tx.send(Msg::Stop).is_ok() {
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        self.sleeper.unpark();
        true
    }

    /// True when this worker, leaving, must answer the shared queue's
    /// last jobs.
    pub fn drains_shared(&self) -> bool {
        self.drains_shared.load(Ordering::SeqCst)
    }

    pub fn len(&self) -> usize {
        self.tx.len()
    }

    /// The worker leaves: no push is accepted any more; returns the jobs
    /// still queued (to be answered).
    pub fn close(&self) -> impl Iterator<Item = Box<Job>> + '_ {
        *sync::write(&self.accepting) = false;
        self.rx.try_iter().filter_map(|msg| match msg {
            Msg::Job(job) => Some(job),
            Msg::Stop => None,
        })
    }

    /// A message without waiting: this worker's own queue first.
    #[inline]
    pub fn try_next(&self, shared: &SharedQueue) -> Option<Msg> {
        if self.queued.load(Ordering::SeqCst) != 0 {
            match self.rx.try_recv() {
                Ok(msg) => {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    return Some(msg);
                }
                Err(TryRecvError::Disconnected) => return Some(Msg::Stop),
                Err(TryRecvError::Empty) => {}
            }
        }
        shared.try_take().map(Msg::Job)
    }

    /// The next message: spins for a moment when no other worker spins,
    /// then parks until a submitter unparks it.
    pub fn next(&self, shared: &SharedQueue) -> Msg {
        let sleeper = &self.sleeper;
        loop {
            if let Some(msg) = self.try_next(shared) {
                return msg;
            }
            if shared.try_become_spinner() {
                let found = self.spin(shared);
                shared.stop_spinning();
                if let Some(msg) = found.or_else(|| self.try_next(shared)) {
                    return msg;
                }
            }
            sleeper.parked.store(true, Ordering::SeqCst);
            shared.list_idle(sleeper);
            if let Some(msg) = self.try_next(shared) {
                sleeper.parked.store(false, Ordering::SeqCst);
                return msg;
            }
            std::thread::park();
            sleeper.parked.store(false, Ordering::SeqCst);
        }
    }

    fn spin(&self, shared: &SharedQueue) -> Option<Msg> {
        let start = Instant::now();
        let mut n = 0u32;
        let mut cpu = current_cpu();
        shared.spinner_cpu.store(cpu, Ordering::Relaxed);
        loop {
            if let Some(msg) = self.try_next(shared) {
                return Some(msg);
            }
            n = n.wrapping_add(1);
            // On the core of the last submitter (a caller that may be
            // waiting for this very worker): move to another core, where
            // the next call's caller can wait for it (a caller never waits
            // for a worker on its own core: see `handoff`); meanwhile, and
            // if it cannot move, every poll yields.
            let shares_core = cpu >= 0 && cpu == shared.pusher_cpu.load(Ordering::Relaxed);
            if shares_core && move_off(cpu) {
                cpu = current_cpu();
                shared.spinner_cpu.store(cpu, Ordering::Relaxed);
                continue;
            }
            // Under valgrind no other thread runs between two polls: each
            // poll yields (see `valgrind`).
            if shares_core || n.is_multiple_of(YIELD_EVERY) || valgrind::running_on_valgrind() {
                if spun_out(start, n) {
                    return None;
                }
                std::thread::yield_now();
                cpu = current_cpu();
                shared.spinner_cpu.store(cpu, Ordering::Relaxed);
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Whether a spin that began at `start` and polled `n` times is over:
/// after `SPIN`; under valgrind, which runs one thread at a time and
/// far slower, after `VALGRIND_POLLS` polls (time would run out before
/// the caller, which runs only while the spinner yields, could push the
/// next job; see `valgrind`).
fn spun_out(start: Instant, n: u32) -> bool {
    if valgrind::running_on_valgrind() {
        n >= VALGRIND_POLLS
    } else {
        start.elapsed() > SPIN
    }
}

/// The core this thread runs on, or -1.
pub fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu has no preconditions (it reads the kernel's
    // per-thread data, or asks the kernel).
    unsafe { libc::sched_getcpu() }
}

/// Least time between two moves of one worker (`move_off`): two callers on
/// two cores must not make a worker bounce between them.
const MOVE_EVERY: Duration = Duration::from_millis(50);

thread_local! {
    static LAST_MOVE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Moves the calling thread off core `cpu` to another core it may run on,
/// leaving its allowed cores as they were (the kernel migrates a thread at
/// once when its current core is taken out of its mask; putting the core
/// back does not move it again). False when it did not move: moved too
/// recently, no other core allowed, or the calls failed.
fn move_off(cpu: i32) -> bool {
    let Ok(cpu) = usize::try_from(cpu) else {
        return false;
    };
    let now = Instant::now();
    if LAST_MOVE.with(|last| {
        last.get()
            .is_some_and(|t| now.duration_since(t) < MOVE_EVERY)
    }) {
        return false;
    }
    LAST_MOVE.with(|last| last.set(Some(now)));
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data (all zeroes is the empty set); the
    // calls get the size of the set they are given, and pid 0 means this
    // thread. `cpu` was returned by sched_getcpu, below CPU_SETSIZE.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize || libc::sched_getaffinity(0, size, &mut allowed) != 0
        {
            return false;
        }
        let mut elsewhere = allowed;
        libc::CPU_CLR(cpu, &mut elsewhere);
        if libc::CPU_COUNT(&elsewhere) == 0 || libc::sched_setaffinity(0, size, &elsewhere) != 0 {
            return false;
        }
        let _ = libc::sched_setaffinity(0, size, &allowed);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> libc::cpu_set_t {
        // SAFETY: as in `move_off`: plain data, its own size, this thread.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            set
        }
    }

    #[test]
    fn move_off_leaves_the_core_and_keeps_the_mask() {
        std::thread::spawn(|| {
            let before = allowed();
            // SAFETY: reads a set.
            if unsafe { libc::CPU_COUNT(&before) } < 2 {
                return; // one core: nowhere to go
            }
            let cpu = current_cpu();
            assert!(move_off(cpu));
            assert_ne!(current_cpu(), cpu);
            let after = allowed();
            // SAFETY: compares two sets.
            assert!(unsafe { libc::CPU_EQUAL(&before, &after) });
            // Not again at once: a worker must not bounce between cores.
            assert!(!move_off(current_cpu()));
        })
        .join()
        .expect("the test thread panicked");
    }
}
