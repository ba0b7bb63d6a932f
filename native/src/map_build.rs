//! Large maps in results, built where the VM allows it.
//!
//! A map of more than 32 keys is a hash trie, and
//! `enif_make_map_from_arrays` builds one with the scheduler's temporary
//! memory: on OTP 25, called off a scheduler thread (a worker), it crashes
//! the VM. Inserting key by key works anywhere but costs O(n log n) words of
//! garbage (10x `maps:from_list`).
//!
//! So a worker does not build such maps: it encodes their keys and values
//! and sends the reply `{py_maps, Nodes}`, and the caller's process (a
//! scheduler thread) builds them with `build/1` (`build_dirty/1` when big),
//! then the reply is `{ok, Term}` as usual. Every container on the way from
//! the result's root to a large map is deferred as well (terms are
//! immutable: a parent is made after its children), siblings included as
//! ready terms, so the work is linear in what is deferred.
//!
//! `Nodes` is a tuple of `{Kind, Items, Links, Handle}`, children before
//! parents, the last one the root: `Kind` 0 (list), 1 (tuple) or 2 (map,
//! `Items` its keys then its values); `Items` a tuple of terms, where the
//! positions listed in `Links` (`{Pos1, Node1, Pos2, Node2, ...}`) hold a
//! placeholder for node `NodeN`; `Handle` the dict's handle, for the
//! `{py_badresult, duplicate_key, Handle}` error (`undefined` otherwise).

use rustler::sys::ErlNifTerm;
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Encoder, Env, Term};

use crate::atoms;
use crate::term_budget::CELL_BUDGET;

pub const KIND_LIST: u8 = 0;
pub const KIND_TUPLE: u8 = 1;
pub const KIND_MAP: u8 = 2;

/// One deferred container, its items as terms of the encoding env.
pub struct Node {
    kind: u8,
    items: Vec<ErlNifTerm>,
    /// `(position in items, node index)`.
    links: Vec<(usize, usize)>,
    handle: Option<ErlNifTerm>,
}

/// How the encoder makes maps of more than 32 keys.
pub enum LargeMaps {
    /// Key by key, in the encoding env (messages that Python sends itself).
    InPlace,
    /// Deferred to the receiving process (call replies).
    Deferred(Vec<Node>),
}

impl LargeMaps {
    pub fn deferred() -> Self {
        LargeMaps::Deferred(Vec::new())
    }

    /// Nodes made so far (0 when not deferring).
    #[inline]
    pub fn count(&self) -> usize {
        match self {
            LargeMaps::InPlace => 0,
            LargeMaps::Deferred(nodes) => nodes.len(),
        }
    }

    pub fn is_deferred(&self) -> bool {
        matches!(self, LargeMaps::Deferred(_))
    }

    /// Records a node and returns the placeholder the parent sees.
    pub fn push<'a>(
        &mut self,
        env: Env<'a>,
        kind: u8,
        items: Vec<ErlNifTerm>,
        links: Vec<(usize, usize)>,
        handle: Option<Term<'a>>,
    ) -> Term<'a> {
        if let LargeMaps::Deferred(nodes) = self {
            nodes.push(Node {
                kind,
                items,
                links,
                handle: handle.map(|h| h.as_c_arg()),
            });
        }
        atoms::undefined().to_term(env)
    }

    /// The reply for `root`: `{ok, Root}`, or `{py_maps, Nodes}` when
    /// something was deferred (the root is then the last node).
    pub fn reply<'a>(self, env: Env<'a>, root: Term<'a>) -> Term<'a> {
        let nodes = match self {
            LargeMaps::Deferred(nodes) if !nodes.is_empty() => nodes,
            _ => return (atoms::ok(), root).encode(env),
        };
        let undefined = atoms::undefined().to_term(env);
        let terms: Vec<Term<'a>> = nodes
            .into_iter()
            .map(|node| {
                // SAFETY (both): the raw terms were made in `env`, which
                // is still alive (nothing was cleared since).
                let items = raw_tuple(env, &node.items);
                let mut links = Vec::with_capacity(node.links.len() * 2);
                for (pos, idx) in node.links {
                    links.push(pos.encode(env).as_c_arg());
                    links.push(idx.encode(env).as_c_arg());
                }
                let links = raw_tuple(env, &links);
                let handle = match node.handle {
                    // SAFETY: as above.
                    Some(h) => unsafe { Term::new(env, h) },
                    None => undefined,
                };
                make_tuple(env, &[node.kind.encode(env), items, links, handle])
            })
            .collect();
        (atoms::py_maps(), make_tuple(env, &terms)).encode(env)
    }
}

fn raw_tuple<'a>(env: Env<'a>, items: &[ErlNifTerm]) -> Term<'a> {
    // SAFETY: every item is a term of `env`; the call copies the array.
    unsafe {
        Term::new(
            env,
            rustler::sys::enif_make_tuple_from_array(
                env.as_c_arg(),
                items.as_ptr(),
                items.len() as _,
            ),
        )
    }
}

/// Why a build failed.
enum BuildError<'a> {
    Badarg,
    Duplicate(Term<'a>),
}

/// Builds the deferred terms in the calling process: `{ok, Term}`, or
/// `{error, {py_badresult, duplicate_key, Handle}}` when two keys of a
/// dict became the same term. `big` when there is too much to build on a
/// normal scheduler (then use `build_dirty/1`).
#[rustler::nif]
fn build_maps<'a>(env: Env<'a>, nodes: Term<'a>) -> rustler::NifResult<Term<'a>> {
    match size(nodes) {
        Some(n) if n <= CELL_BUDGET => build_reply(env, nodes),
        Some(_) => Ok(atoms::big().encode(env)),
        None => Err(rustler::Error::BadArg),
    }
}

/// As `build_maps/1`, on a dirty scheduler (a scheduler thread too, where
/// maps can be built).
#[rustler::nif(schedule = "DirtyCpu")]
fn build_maps_dirty<'a>(env: Env<'a>, nodes: Term<'a>) -> rustler::NifResult<Term<'a>> {
    build_reply(env, nodes)
}

/// Items over all nodes; `None` when `nodes` is not a node tuple.
fn size(nodes: Term<'_>) -> Option<usize> {
    let mut total = 0usize;
    for node in get_tuple(nodes).ok()? {
        let parts = get_tuple(node).ok()?;
        if parts.len() != 4 {
            return None;
        }
        total += get_tuple(parts[1]).ok()?.len() + 1;
    }
    Some(total)
}

fn build_reply<'a>(env: Env<'a>, nodes: Term<'a>) -> rustler::NifResult<Term<'a>> {
    match build(env, nodes) {
        Ok(term) => Ok((atoms::ok(), term).encode(env)),
        Err(BuildError::Duplicate(handle)) => Ok((
            atoms::error(),
            (atoms::py_badresult(), atoms::duplicate_key(), handle),
        )
            .encode(env)),
        Err(BuildError::Badarg) => Err(rustler::Error::BadArg),
    }
}

fn build<'a>(env: Env<'a>, nodes: Term<'a>) -> Result<Term<'a>, BuildError<'a>> {
    let nodes = get_tuple(nodes).map_err(|_| BuildError::Badarg)?;
    let mut built: Vec<ErlNifTerm> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let parts = get_tuple(node).map_err(|_| BuildError::Badarg)?;
        let [kind, items, links, handle] = parts[..] else {
            return Err(BuildError::Badarg);
        };
        let kind: u8 = kind.decode().map_err(|_| BuildError::Badarg)?;
        let links = get_tuple(links).map_err(|_| BuildError::Badarg)?;
        let mut items: Vec<ErlNifTerm> = get_tuple(items)
            .map_err(|_| BuildError::Badarg)?
            .into_iter()
            .map(|t| t.as_c_arg())
            .collect();
        for pair in links.chunks(2) {
            let [pos, idx] = pair else {
                return Err(BuildError::Badarg);
            };
            let pos: usize = pos.decode().map_err(|_| BuildError::Badarg)?;
            let idx: usize = idx.decode().map_err(|_| BuildError::Badarg)?;
            // Children come before their parents.
            let child = *built.get(idx).ok_or(BuildError::Badarg)?;
            *items.get_mut(pos).ok_or(BuildError::Badarg)? = child;
        }
        let raw = env.as_c_arg();
        // SAFETY (the three calls): `items` are terms of `env` (read from
        // the message in this process's heap, or built here); the calls
        // copy the arrays.
        let term = match kind {
            KIND_LIST => unsafe {
                rustler::sys::enif_make_list_from_array(raw, items.as_ptr(), items.len() as _)
            },
            KIND_TUPLE => unsafe {
                rustler::sys::enif_make_tuple_from_array(raw, items.as_ptr(), items.len() as _)
            },
            KIND_MAP if items.len().is_multiple_of(2) => {
                let n = items.len() / 2;
                let mut map = ErlNifTerm::default();
                let ok = unsafe {
                    rustler::sys::enif_make_map_from_arrays(
                        raw,
                        items.as_ptr(),
                        items[n..].as_ptr(),
                        n as _,
                        &mut map,
                    )
                };
                // Large maps keep the last of equal keys (OTP 25 reports
                // duplicates for flat maps only): count them.
                let mut size: usize = 0;
                // SAFETY: `map` is a map of `env` when `ok` is nonzero.
                if ok == 0
                    || unsafe { rustler::sys::enif_get_map_size(raw, map, &mut size) } == 0
                    || size != n
                {
                    return Err(BuildError::Duplicate(handle));
                }
                map
            }
            _ => return Err(BuildError::Badarg),
        };
        built.push(term);
    }
    let root = *built.last().ok_or(BuildError::Badarg)?;
    // SAFETY: made in `env` just above.
    Ok(unsafe { Term::new(env, root) })
}
