//! Decides whether a term is small enough to copy on a normal scheduler.
//!
//! A NIF on a normal scheduler must return within about a millisecond.
//! Copying a term costs time proportional to its size, so `submit` walks
//! the term with a budget of cells first; a term over budget is submitted
//! through the dirty-scheduler variant instead. Binaries are not counted by
//! size: large ones are reference-counted and copied by reference.

use rustler::{Term, TermType};

/// Cells a normal-scheduler submission may copy (a few microseconds).
pub const CELL_BUDGET: usize = 4096;

/// True when `term` has at most `budget` cells. Iterative: the scheduler
/// thread's stack is small and terms can nest deeply.
pub fn within_budget(term: Term<'_>, budget: usize) -> bool {
    let mut left = budget;
    let mut stack: Vec<Term<'_>> = Vec::with_capacity(16);
    stack.push(term);
    while let Some(t) = stack.pop() {
        if left == 0 {
            return false;
        }
        left -= 1;
        match t.get_type() {
            TermType::List => {
                let mut cell = t;
                while let Ok((head, tail)) = cell.list_get_cell() {
                    if left == 0 {
                        return false;
                    }
                    left -= 1;
                    stack.push(head);
                    cell = tail;
                }
            }
            TermType::Tuple => match rustler::types::tuple::get_tuple(t) {
                Ok(items) => {
                    if items.len() > left {
                        return false;
                    }
                    stack.extend(items);
                }
                Err(_) => return false,
            },
            TermType::Map => {
                let Some(iter) = rustler::types::map::MapIterator::new(t) else {
                    return false;
                };
                for (k, v) in iter {
                    if left < 2 {
                        return false;
                    }
                    left -= 2;
                    stack.push(k);
                    stack.push(v);
                }
            }
            // A bignum's size grows with its digits; count it generously.
            TermType::Integer if t.decode::<i64>().is_err() => {
                left = left.saturating_sub(8);
            }
            _ => {}
        }
    }
    true
}
