//! A fixed-length bitset over 64-bit words.

use std::fmt;

/// A set of `0..len`, one bit each.  Bits at or past `len` are always zero.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl fmt::Debug for Bitset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.ones()).finish()
    }
}

pub fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

impl Bitset {
    pub fn new(len: usize) -> Bitset {
        Bitset {
            words: vec![0; words_for(len)],
            len,
        }
    }

    pub fn full(len: usize) -> Bitset {
        let mut b = Bitset {
            words: vec![u64::MAX; words_for(len)],
            len,
        };
        b.trim();
        b
    }

    /// A bitset from words; bits past `len` are cleared.
    pub fn from_words(words: Vec<u64>, len: usize) -> Bitset {
        assert_eq!(
            words.len(),
            words_for(len),
            "word count does not fit the length"
        );
        let mut b = Bitset { words, len };
        b.trim();
        b
    }

    fn trim(&mut self) {
        let rem = self.len % 64;
        if rem != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn and_assign(&mut self, other: &Bitset) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= b);
    }

    pub fn or_assign(&mut self, other: &Bitset) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a |= b);
    }

    pub fn and_not_assign(&mut self, other: &Bitset) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= !b);
    }

    pub fn intersects(&self, other: &Bitset) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// Whether `self` has a bit that `other` lacks.
    pub fn has_outside(&self, other: &Bitset) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .any(|(a, b)| a & !b != 0)
    }

    pub fn and_count(&self, other: &Bitset) -> usize {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    pub fn first(&self) -> Option<usize> {
        self.words
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }

    /// The members in increasing order.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_operations() {
        let mut a = Bitset::new(130);
        a.set(0);
        a.set(64);
        a.set(129);
        assert_eq!(a.ones().collect::<Vec<_>>(), [0, 64, 129]);
        assert_eq!(a.count(), 3);
        let full = Bitset::full(130);
        assert_eq!(full.count(), 130);
        let mut b = full.clone();
        b.and_not_assign(&a);
        assert_eq!(b.count(), 127);
        assert!(!b.intersects(&a));
        assert!(full.has_outside(&a));
        assert!(!a.has_outside(&full));
        assert_eq!(a.first(), Some(0));
        a.clear(0);
        assert_eq!(a.first(), Some(64));
    }
}
