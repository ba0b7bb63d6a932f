//! The atom that Python's `None` is, both ways: the `none` setting of the
//! application (`undefined` unless it says otherwise; `nil` for Elixir).
//! `None` comes back as that atom; on the way in, that atom and
//! `undefined` both become `None`.
//!
//! Set at each start of the application (before any worker runs), read on
//! every conversion: one relaxed atomic load, no lock.

use std::sync::atomic::{AtomicUsize, Ordering};

use rustler::Atom;

use crate::atoms;

/// The raw term of the atom; 0 (never an atom) until set: `undefined`.
static NONE: AtomicUsize = AtomicUsize::new(0);

/// Makes `atom` the one `None` converts to.
pub fn set(atom: Atom) {
    // SAFETY: `Atom` is `repr(transparent)` over `ErlNifTerm`, itself
    // `repr(transparent)` over a `usize`: the same bits, read as an integer.
    let raw: usize = unsafe { std::mem::transmute::<Atom, usize>(atom) };
    NONE.store(raw, Ordering::Relaxed);
}

/// The atom `None` converts to.
#[inline]
pub fn get() -> Atom {
    match NONE.load(Ordering::Relaxed) {
        0 => atoms::undefined(),
        // SAFETY: a non-zero value was stored by `set` from an `Atom`; atoms
        // are never freed in a running VM and are valid in every env.
        raw => unsafe { std::mem::transmute::<usize, Atom>(raw) },
    }
}

#[cfg(test)]
mod tests {
    // Atoms need a running VM: `set`/`get` are exercised by the Erlang and
    // Elixir tests; here only the layout that `set` relies on.
    #[test]
    fn atom_is_a_machine_word() {
        assert_eq!(
            std::mem::size_of::<rustler::Atom>(),
            std::mem::size_of::<usize>()
        );
    }
}
