//! Tuples read in place. rustler's `get_tuple` copies a tuple's elements
//! into a fresh `Vec` (an allocation and a free); the request and its
//! target are read on every call, so their tuples are read here instead.

use rustler::sys::ErlNifTerm;
use rustler::{Env, Term};

/// The elements of a tuple term, where the term keeps them.
#[derive(Clone, Copy)]
pub struct Tuple<'a> {
    env: Env<'a>,
    items: &'a [ErlNifTerm],
}

impl<'a> Tuple<'a> {
    /// `term`'s elements, or `None` when it is not a tuple.
    pub fn new(term: Term<'a>) -> Option<Tuple<'a>> {
        let env = term.get_env();
        let mut arity: std::os::raw::c_int = 0;
        let mut items: *const ErlNifTerm = std::ptr::null();
        // SAFETY: `term` is a live term of `env`; on success the call
        // points `items` at the tuple's `arity` elements, inside the term
        // itself, which lives as long as `env` ('a).
        let ok = unsafe {
            rustler::sys::enif_get_tuple(env.as_c_arg(), term.as_c_arg(), &mut arity, &mut items)
        };
        let arity = usize::try_from(arity).ok()?;
        if ok == 0 {
            return None;
        }
        let items = if arity == 0 {
            &[][..]
        } else {
            // SAFETY: as above: `arity` valid elements at `items`, for 'a.
            unsafe { std::slice::from_raw_parts(items, arity) }
        };
        Some(Tuple { env, items })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Element `i` (from 0).
    pub fn get(&self, i: usize) -> Option<Term<'a>> {
        // SAFETY: an element of a live tuple of `env` is a term of `env`.
        self.items
            .get(i)
            .map(|&item| unsafe { Term::new(self.env, item) })
    }
}
