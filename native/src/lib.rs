//! `py_nif`: CPython embedded in the BEAM.
//!
//! The crate owns one Python interpreter per VM, a set of worker OS threads
//! that run Python on behalf of Erlang callers, and the direct conversion
//! between Erlang terms and Python objects. The Erlang side (`src_erl/`) is
//! a thin layer that picks a worker, submits a request and waits for the
//! reply message.

mod atoms;
mod beam_native;
mod bigint;
mod buffer;
mod call_scope;
mod context;
mod conversions;
mod error;
mod event_loop;
mod exception;
mod handle;
mod handoff;
mod housekeeper;
mod job;
mod limits;
mod map_build;
mod nifs;
mod none_atom;
mod numpy;
mod output;
mod py_thread;
mod queue;
mod request;
mod resolve;
mod runtime;
mod send;
mod sync;
mod term_budget;
mod to_erlang;
mod to_python;
mod tuple;
mod valgrind;
mod watch;
mod word_hash;
mod worker;

pub use error::PyNifError;
pub use resolve::split_dotted;

rustler::init!("py_nif", load = nifs::load);
