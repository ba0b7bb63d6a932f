//! Errors of the NIF's own making (not Python exceptions, which travel as
//! `{python, Type, Message, Traceback}` terms).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PyNifError {
    #[error("cannot load libpython from {path}: {reason}")]
    LibPython { path: String, reason: String },
    #[error("Python initialisation failed: {0}")]
    Init(String),
    #[error("cannot start worker thread: {0}")]
    Spawn(String),
    #[error("the Python runtime is not started (call py_nif:init/1 first)")]
    NotStarted,
}
