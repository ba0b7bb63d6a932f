//! Messages to Erlang processes from py's own threads (workers, threads
//! that Python code starts), which are not BEAM scheduler threads.

use rustler::env::SavedTerm;
use rustler::{LocalPid, OwnedEnv};

/// True when the calling thread is one of the BEAM's (a scheduler, dirty
/// or not, or another ERTS thread).
pub fn is_erts_thread() -> bool {
    // SAFETY: enif_thread_type has no preconditions.
    unsafe { rustler::sys::enif_thread_type() != rustler::sys::ERL_NIF_THR_UNDEFINED }
}

/// Sends `message`, a term saved in `env`, to `to`; true when the process
/// was alive. `env`'s terms are invalid afterwards: clear or drop it.
/// Must not run on an ERTS thread (those send with their own env): the
/// callers are py's threads, and `beam.send` checks first.
pub fn send_from_thread(env: &OwnedEnv, to: &LocalPid, message: SavedTerm) -> bool {
    debug_assert!(!is_erts_thread());
    env.run(|e| {
        let message = message.load(e);
        // SAFETY: not an ERTS thread, so the caller env is NULL; `message`
        // belongs to `e`, the owned env passed as the message environment,
        // which the call invalidates (the caller clears or frees it).
        unsafe {
            rustler::sys::enif_send(
                std::ptr::null_mut(),
                to.as_c_arg(),
                e.as_c_arg(),
                message.as_c_arg(),
            ) != 0
        }
    })
}
