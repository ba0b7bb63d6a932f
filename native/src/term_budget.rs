//! Decides whether terms are cheap enough to copy on a normal scheduler.
//!
//! A NIF on a normal scheduler must return within about a millisecond.
//! Copying a term (`enif_make_copy`: a sizing walk, then the copy) costs
//! time in proportion to the words it copies, so `submit` and
//! `callback_reply` first walk the terms with a budget, and answer `big`
//! (use the dirty-scheduler variant) when it runs out. The walk itself
//! stops as soon as the budget is spent, and never does anything whose
//! cost grows with the size of one term:
//!
//! * list cells, tuple elements and map entries cost one unit each; the
//!   size of a tuple or map is checked before its elements are looked at;
//!   an improper list's tail is walked like any term;
//! * a bignum costs its size in words, up to `BIG_WORDS`; a larger one is
//!   over budget (its size is known by comparing it with 2^(64 x
//!   `BIG_WORDS`), which compares sizes first);
//! * a binary costs a few units whatever its size: a large binary is
//!   reference-counted and copied by reference, and only a heap binary
//!   (64 bytes at most), or the heap binary under a sub-binary, is copied
//!   byte by byte;
//! * a fun is over budget: its environment (the variables it closes over)
//!   is copied with it and cannot be measured from a NIF; no request can
//!   use one anyway (`unsupported_fun`).

use rustler::sys::{ErlNifTerm, ErlNifTermType};
use rustler::{Env, Term};
use smallvec::SmallVec;

use crate::bigint;

/// Units a normal-scheduler copy may cost: a few microseconds of copying
/// (measured by `make bench`, "longest normal-scheduler NIF").
pub const CELL_BUDGET: usize = 4096;

/// The largest bignum (in 64-bit words) copied on a normal scheduler.
const BIG_WORDS: usize = 512;

/// What a binary costs: the header of a sub-binary and of a reference, or
/// a heap binary of up to 64 bytes.
const BINARY_COST: usize = 12;

/// What a pid, port or reference costs (an external one holds a node).
pub const IDENTIFIER_COST: usize = 8;

/// True when copying all of `terms` costs at most `budget` units.
/// Iterative: a scheduler thread's stack is small and terms can nest
/// deeply.
pub fn within_budget(terms: &[Term<'_>], budget: usize) -> bool {
    copy_cost(terms, budget).is_some()
}

/// What a copy of terms costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Units spent: about the words copied.
    pub units: usize,
    /// The terms hold something outside their words, that a copy keeps
    /// alive: a binary (its data), a reference (a resource, such as a
    /// Python object's handle), a pid or a port (an external one, its
    /// node).
    pub holds: bool,
}

/// What copying all of `terms` costs, or `None` above `budget`.
pub fn copy_cost(terms: &[Term<'_>], budget: usize) -> Option<Cost> {
    let Some(env) = terms.first().map(|t| t.get_env()) else {
        return Some(Cost {
            units: 0,
            holds: false,
        });
    };
    let mut walk = Walk {
        env,
        left: budget,
        holds: false,
        big_limit: None,
    };
    // Containers still to open. On the stack for the usual small request
    // (no allocation: this runs twice per call); spills to the heap for
    // larger ones. Leaves (atoms, numbers, binaries, ...) are paid for
    // when met and never pushed; raw terms of `env` and raw calls: this
    // walk runs on every call, and rustler's wrappers (a `Result` with an
    // `Error` made and dropped at each list's end) cost as much as the
    // calls themselves.
    let mut stack = Stack::new();
    for term in terms {
        if !walk.visit(term.as_c_arg(), &mut stack) {
            return None;
        }
    }
    while let Some((term, kind)) = stack.pop() {
        let fits = match kind {
            Container::List => walk.list(term, &mut stack),
            Container::Tuple => walk.tuple(term, &mut stack),
            Container::Map => walk.map(term, &mut stack),
        };
        if !fits {
            return None;
        }
    }
    Some(Cost {
        units: budget - walk.left,
        holds: walk.holds,
    })
}

#[derive(Clone, Copy)]
enum Container {
    List,
    Tuple,
    Map,
}

type Stack = SmallVec<[(ErlNifTerm, Container); 16]>;

struct Walk<'a> {
    env: Env<'a>,
    left: usize,
    holds: bool,
    /// -2^(64 x BIG_WORDS) and 2^(64 x BIG_WORDS), made at the first bignum.
    big_limit: Option<Option<(Term<'a>, Term<'a>)>>,
}

impl<'a> Walk<'a> {
    /// One term of `env`: a leaf is paid for at once, a container is
    /// pushed to be opened.
    fn visit(&mut self, term: ErlNifTerm, stack: &mut Stack) -> bool {
        if !self.spend(1) {
            return false;
        }
        // SAFETY: `term` is a live term of `env` (given, or an element of
        // one).
        let kind = unsafe { rustler::sys::enif_term_type(self.env.as_c_arg(), term) };
        match kind {
            ErlNifTermType::ERL_NIF_TERM_TYPE_ATOM => true,
            ErlNifTermType::ERL_NIF_TERM_TYPE_INTEGER => self.integer(term),
            ErlNifTermType::ERL_NIF_TERM_TYPE_FLOAT => self.spend(1),
            ErlNifTermType::ERL_NIF_TERM_TYPE_BITSTRING => {
                self.holds = true;
                self.spend(BINARY_COST)
            }
            ErlNifTermType::ERL_NIF_TERM_TYPE_PID
            | ErlNifTermType::ERL_NIF_TERM_TYPE_PORT
            | ErlNifTermType::ERL_NIF_TERM_TYPE_REFERENCE => {
                self.holds = true;
                self.spend(IDENTIFIER_COST)
            }
            ErlNifTermType::ERL_NIF_TERM_TYPE_LIST => {
                stack.push((term, Container::List));
                true
            }
            ErlNifTermType::ERL_NIF_TERM_TYPE_TUPLE => {
                stack.push((term, Container::Tuple));
                true
            }
            ErlNifTermType::ERL_NIF_TERM_TYPE_MAP => {
                stack.push((term, Container::Map));
                true
            }
            // A fun, or a type newer than this code.
            _ => false,
        }
    }

    fn spend(&mut self, units: usize) -> bool {
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }

    /// The cells of a list, then its tail (`[]`, or anything when the
    /// list is improper).
    fn list(&mut self, list: ErlNifTerm, stack: &mut Stack) -> bool {
        let env = self.env.as_c_arg();
        let mut cell = list;
        let mut head = ErlNifTerm::default();
        let mut tail = ErlNifTerm::default();
        // SAFETY: `cell` is a live term of `env` (the list, then a tail of
        // it); on success the call stores the cell's head and tail, terms
        // of the same environment.
        while unsafe { rustler::sys::enif_get_list_cell(env, cell, &mut head, &mut tail) } != 0 {
            if !self.spend(1) || !self.visit(head, stack) {
                return false;
            }
            cell = tail;
        }
        // SAFETY: as above.
        let empty = unsafe { rustler::sys::enif_is_empty_list(env, cell) } != 0;
        empty || self.visit(cell, stack)
    }

    fn tuple(&mut self, tuple: ErlNifTerm, stack: &mut Stack) -> bool {
        let mut arity: std::os::raw::c_int = 0;
        let mut items: *const ErlNifTerm = std::ptr::null();
        // SAFETY: `tuple` is a live term of `self.env`; on success the call
        // points `items` at the tuple's `arity` elements (no copy), which
        // live as long as the term.
        let ok = unsafe {
            rustler::sys::enif_get_tuple(self.env.as_c_arg(), tuple, &mut arity, &mut items)
        };
        let arity = usize::try_from(arity).unwrap_or(usize::MAX);
        if ok == 0 || !self.spend(arity) {
            return false;
        }
        if arity == 0 {
            return true;
        }
        // SAFETY: as above: `arity` valid elements at `items`.
        let items = unsafe { std::slice::from_raw_parts(items, arity) };
        items.iter().all(|&item| self.visit(item, stack))
    }

    #[inline(never)]
    fn map(&mut self, map: ErlNifTerm, stack: &mut Stack) -> bool {
        // SAFETY: `map` is a live term of `env`.
        let map = unsafe { Term::new(self.env, map) };
        let Ok(size) = map.map_size() else {
            return false;
        };
        if !self.spend(size.saturating_mul(2)) {
            return false;
        }
        let Some(iter) = rustler::types::map::MapIterator::new(map) else {
            return false;
        };
        for (k, v) in iter {
            if !self.visit(k.as_c_arg(), stack) || !self.visit(v.as_c_arg(), stack) {
                return false;
            }
        }
        true
    }

    fn integer(&mut self, int: ErlNifTerm) -> bool {
        let env = self.env.as_c_arg();
        let (mut signed, mut unsigned) = (0i64, 0u64);
        // SAFETY: `int` is a live integer term of `env`; the calls only
        // store into the given locals.
        let fits_word = unsafe {
            rustler::sys::enif_get_int64(env, int, &mut signed) != 0
                || rustler::sys::enif_get_uint64(env, int, &mut unsigned) != 0
        };
        if fits_word {
            return self.spend(1);
        }
        self.bignum(int)
    }

    /// A bignum: rare, and kept out of `visit` (which runs for every term).
    #[cold]
    #[inline(never)]
    fn bignum(&mut self, int: ErlNifTerm) -> bool {
        // SAFETY: `int` is a live term of `env`.
        let int = unsafe { Term::new(self.env, int) };
        let limit = *self.big_limit.get_or_insert_with(|| big_limits(self.env));
        match limit {
            Some((low, high)) if low < int && int < high => self.spend(BIG_WORDS),
            _ => false,
        }
    }
}

fn big_limits(env: Env<'_>) -> Option<(Term<'_>, Term<'_>)> {
    let high = num_bigint::BigInt::from(1) << (64 * BIG_WORDS);
    let low = -high.clone();
    Some((bigint::to_term(env, &low)?, bigint::to_term(env, &high)?))
}
