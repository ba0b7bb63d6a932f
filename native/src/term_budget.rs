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

use rustler::{Env, Term, TermType};
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
const IDENTIFIER_COST: usize = 8;

/// True when copying all of `terms` costs at most `budget` units.
/// Iterative: a scheduler thread's stack is small and terms can nest
/// deeply.
pub fn within_budget(terms: &[Term<'_>], budget: usize) -> bool {
    let Some(env) = terms.first().map(|t| t.get_env()) else {
        return true;
    };
    let mut walk = Walk {
        env,
        left: budget,
        big_limit: None,
    };
    // On the stack for the usual small request (no allocation: this runs
    // twice per call); spills to the heap for larger ones.
    let mut stack: Stack<'_> = terms.iter().copied().collect();
    while let Some(t) = stack.pop() {
        if !walk.spend(1) {
            return false;
        }
        let fits = match t.get_type() {
            TermType::List => walk.list(t, &mut stack),
            TermType::Tuple => walk.tuple(t, &mut stack),
            TermType::Map => walk.map(t, &mut stack),
            TermType::Integer => walk.integer(t),
            TermType::Float => walk.spend(1),
            TermType::Binary => walk.spend(BINARY_COST),
            TermType::Pid | TermType::Port | TermType::Ref => walk.spend(IDENTIFIER_COST),
            TermType::Atom => true,
            TermType::Fun | TermType::Unknown => false,
        };
        if !fits {
            return false;
        }
    }
    true
}

type Stack<'a> = SmallVec<[Term<'a>; 32]>;

struct Walk<'a> {
    env: Env<'a>,
    left: usize,
    /// -2^(64 x BIG_WORDS) and 2^(64 x BIG_WORDS), made at the first bignum.
    big_limit: Option<Option<(Term<'a>, Term<'a>)>>,
}

impl<'a> Walk<'a> {
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
    fn list(&mut self, list: Term<'a>, stack: &mut Stack<'a>) -> bool {
        let mut cell = list;
        while let Ok((head, tail)) = cell.list_get_cell() {
            if !self.spend(1) {
                return false;
            }
            stack.push(head);
            cell = tail;
        }
        if !cell.is_empty_list() {
            stack.push(cell);
        }
        true
    }

    fn tuple(&mut self, tuple: Term<'a>, stack: &mut Stack<'a>) -> bool {
        let mut arity: std::os::raw::c_int = 0;
        let mut items: *const rustler::sys::ErlNifTerm = std::ptr::null();
        // SAFETY: `tuple` is a live term of `self.env`; on success the call
        // points `items` at the tuple's `arity` elements (no copy), which
        // live as long as the term.
        let ok = unsafe {
            rustler::sys::enif_get_tuple(
                self.env.as_c_arg(),
                tuple.as_c_arg(),
                &mut arity,
                &mut items,
            )
        };
        let arity = usize::try_from(arity).unwrap_or(usize::MAX);
        if ok == 0 || !self.spend(arity) {
            return false;
        }
        if arity > 0 {
            // SAFETY: as above: `arity` valid elements at `items`.
            let items = unsafe { std::slice::from_raw_parts(items, arity) };
            // SAFETY: each element is a term of the same environment.
            stack.extend(items.iter().map(|&t| unsafe { Term::new(self.env, t) }));
        }
        true
    }

    fn map(&mut self, map: Term<'a>, stack: &mut Stack<'a>) -> bool {
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
            stack.push(k);
            stack.push(v);
        }
        true
    }

    fn integer(&mut self, int: Term<'a>) -> bool {
        if int.decode::<i64>().is_ok() || int.decode::<u64>().is_ok() {
            return self.spend(1);
        }
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
