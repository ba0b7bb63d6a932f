//! The call a worker thread is running: who called, the reference its
//! reply will carry, and the job's cancellation cell.
//!
//! Python code running for that call reaches the caller through it:
//! `beam.self()`, and the messages `{Ref, {py_output, Event}}` that carry
//! what the call prints or logs. The worker sends them from the same thread
//! as the reply, before it, so the caller's wait loop sees them in order
//! and before the result. Setting and clearing the scope costs a
//! thread-local write: calls that print nothing pay nothing else.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use rustler::sys::ErlNifTerm;
use rustler::{Env, LocalPid, OwnedEnv, Term};

use crate::atoms;
use crate::job::JobCell;
use crate::output;
use crate::send::send_from_thread;

struct Current {
    caller: LocalPid,
    /// The reply reference: a term of the job's environment, valid while
    /// the guard lives (see `enter`).
    reference: ErlNifTerm,
    cell: Option<Arc<JobCell>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The scope of one call on this thread; dropping it sends what the call
/// left unflushed, then ends the scope.
pub struct CallGuard<'a> {
    /// Tied to the environment holding the reference; not `Send`.
    _env: PhantomData<Env<'a>>,
}

/// Marks the job whose reply `reference` (a term of the job's
/// environment `_env`) will go to `caller` as running on this thread. The
/// guard must be dropped inside the same `OwnedEnv::run` as `reference` was
/// loaded in, before the reply is sent.
pub fn enter<'a>(
    _env: Env<'a>,
    caller: LocalPid,
    reference: Term<'a>,
    cell: Option<Arc<JobCell>>,
) -> CallGuard<'a> {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            caller,
            reference: reference.as_c_arg(),
            cell,
        })
    });
    CallGuard { _env: PhantomData }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        output::end_of_call();
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// The caller of the call running on this thread, if any.
pub fn caller() -> Option<LocalPid> {
    CURRENT.with(|c| c.borrow().as_ref().map(|cur| cur.caller))
}

/// Whether a call runs on this thread.
pub fn in_call() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// What became of a message for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// No call runs on this thread.
    NoCall,
    /// The caller is gone or gave up on the call (timed out): it will
    /// never read the message.
    Gone,
}

/// Sends `{Ref, {py_output, Event}}` to the caller of the running call,
/// `Event` made by `event` in the message's environment. Under the job's
/// cell lock: once a timed-out caller was told `cancelled`, no message of
/// the call reaches it any more.
pub fn send_event<F>(event: F) -> Delivery
where
    F: for<'b> FnOnce(Env<'b>) -> Term<'b>,
{
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some(cur) = current.as_ref() else {
            return Delivery::NoCall;
        };
        let send = || {
            let env = OwnedEnv::new();
            let message = env.run(|e| {
                // SAFETY: `cur.reference` is a term of the job's
                // environment, alive and not cleared while the scope is
                // (see `enter`); enif_make_copy copies it into `e`.
                let reference = unsafe {
                    Term::new(e, rustler::sys::enif_make_copy(e.as_c_arg(), cur.reference))
                };
                env.save((reference, (atoms::py_output(), event(e))))
            });
            send_from_thread(&env, &cur.caller, message)
        };
        deliver(cur.cell.as_deref(), send)
    })
}

/// Runs `send` (true when the caller was alive) unless the call's job was
/// cancelled: a caller that gave up gets nothing more of its call.
pub fn deliver(cell: Option<&JobCell>, send: impl FnOnce() -> bool) -> Delivery {
    let delivered = match cell {
        Some(cell) => cell.unless_cancelled(send).unwrap_or(false),
        None => send(),
    };
    if delivered {
        Delivery::Delivered
    } else {
        Delivery::Gone
    }
}
