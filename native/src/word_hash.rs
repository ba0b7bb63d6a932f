//! A hasher for keys that are one machine word each (atoms, type object
//! addresses) in py's own caches: one multiplication, where the default
//! SipHash costs a hundred instructions or so per lookup on the call path.
//! The keys are not chosen by an attacker who could aim at collisions
//! (atoms are interned by the VM; addresses by the allocator), and the
//! caches are bounded.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the rotation brings the well-mixed high bits
        // down to where hashbrown takes its bucket index.
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A map keyed by one word.
pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash_of<T: Hash>(t: T) -> u64 {
        let mut h = WordHasher::default();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn distinct_words_spread() {
        // Aligned addresses (low bits zero) must not share buckets.
        let hashes: std::collections::HashSet<u64> =
            (0..10_000usize).map(|i| hash_of(i * 64) & 0xFFF).collect();
        assert!(
            hashes.len() > 3_000,
            "only {} of 4096 buckets used",
            hashes.len()
        );
    }

    #[test]
    fn works_as_a_map() {
        let mut m: WordMap<usize, usize> = WordMap::default();
        for i in 0..1000 {
            m.insert(i * 8, i);
        }
        assert!((0..1000).all(|i| m.get(&(i * 8)) == Some(&i)));
    }
}
