//! The shared job queue: requests that any worker may take, and the
//! protocol that wakes workers for them.
//!
//! Waking a parked thread costs tens of microseconds, more than a small
//! call, so an idle worker first spins on the queue for a moment; at most
//! one worker spins at a time (two cores are shared with the BEAM's own
//! schedulers). Other idle workers park and put themselves on the `idle`
//! list. A submitter that finds no spinner unparks one idle worker.
//!
//! Both sides use the same pattern (publish, full fence, then look at the
//! other side's flag), so a job can never be left with every worker
//! asleep: either the submitter sees the spinner or a parked worker, or the
//! worker sees the job on its last look before parking.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crossbeam_channel::{unbounded, Receiver, Sender};
use crossbeam_queue::SegQueue;

use crate::job::Job;
use crate::worker::WorkerShared;

pub struct SharedQueue {
    tx: Sender<Box<Job>>,
    rx: Receiver<Box<Job>>,
    /// Live workers. Submitters hold the read lock while pushing; the last
    /// worker to leave takes the write lock and answers what is left, so no
    /// job can be pushed after that and stay unanswered.
    pub live: RwLock<usize>,
    /// One idle worker at a time may spin on the queue.
    spinner: AtomicBool,
    /// Workers that are (or were about to be) parked.
    idle: SegQueue<Arc<WorkerShared>>,
}

static QUEUE: OnceLock<SharedQueue> = OnceLock::new();

pub fn get() -> &'static SharedQueue {
    QUEUE.get_or_init(|| {
        let (tx, rx) = unbounded();
        SharedQueue {
            tx,
            rx,
            live: RwLock::new(0),
            spinner: AtomicBool::new(false),
            idle: SegQueue::new(),
        }
    })
}

impl SharedQueue {
    /// Pushes a job unless no worker is alive (then gives it back), and
    /// makes sure some worker will look at it.
    pub fn push(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        {
            let live = match self.live.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if *live == 0 {
                return Err(job);
            }
            self.tx.send(job).map_err(|e| e.into_inner())?;
        }
        fence(Ordering::SeqCst);
        if !self.spinner.load(Ordering::SeqCst) {
            self.wake_one();
        }
        Ok(())
    }

    /// Unparks one parked worker, skipping stale entries of workers that
    /// woke up on their own since.
    fn wake_one(&self) {
        while let Some(worker) = self.idle.pop() {
            worker.listed_idle.store(false, Ordering::SeqCst);
            if worker.parked.load(Ordering::SeqCst) {
                worker.unpark();
                return;
            }
        }
    }

    pub fn try_take(&self) -> Option<Box<Job>> {
        self.rx.try_recv().ok()
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn try_become_spinner(&self) -> bool {
        self.spinner
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Ends a spin; the caller must look at the queue once more afterwards.
    pub fn stop_spinning(&self) {
        self.spinner.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Lists `worker` as idle; the caller must look at the queue once more
    /// before parking.
    pub fn list_idle(&self, worker: &Arc<WorkerShared>) {
        if !worker.listed_idle.swap(true, Ordering::SeqCst) {
            self.idle.push(worker.clone());
        }
        fence(Ordering::SeqCst);
    }
}
