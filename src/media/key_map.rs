//! Hash maps keyed by the shard's own numeric ids (peers, tracks, SSRCs it chose), hashed by
//! one multiplication instead of SipHash: the packet path looks them up per subscriber leg,
//! and the keys are assigned by the shard, not chosen by clients, so there is nothing to flood.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of integer keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// A map keyed by a shard-assigned integer.
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_spread_and_round_trip() {
        let mut map: KeyMap<u64, u64> = KeyMap::default();
        for k in 0..10_000u64 {
            map.insert(k, k * 2);
        }
        assert!((0..10_000u64).all(|k| map[&k] == k * 2));
        let low: std::collections::HashSet<u64> = (0..64u64)
            .map(|k| {
                let mut h = KeyHasher::default();
                h.write_u64(k);
                h.finish() >> 57
            })
            .collect();
        assert!(low.len() > 32, "the top bits (hashbrown's tags) differ");
    }
}
