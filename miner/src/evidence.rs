//! Evidence: which predicates hold on which records, deduplicated.
//!
//! Every record is reduced to the set of predicates it satisfies (a bitset over the
//! predicates).  Records with the same set are one *distinct row* with a count: a rule (a
//! disjunction of predicates) holds on a record exactly when one of its predicates is in
//! the record's set, so duplicates change nothing but support counts, and the search
//! never sees them.  Built in one parallel pass over blocks of records; memory is one
//! block's bits per thread plus the distinct rows.

use std::collections::HashMap;

use rayon::prelude::*;
use rulepacks::resolve::Prop;

use crate::bitset::{Bitset, words_for};
use crate::columnar::Evaluator;
use crate::prepare::Dataset;

/// Records per block of the parallel pass.
const BLOCK: usize = 4096;

/// Distinct evidence rows and, transposed, the rows each predicate holds on.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub predicates: usize,
    /// Per distinct row: the predicates that hold.
    pub rows: Vec<Bitset>,
    /// Per distinct row: how many records have it.
    pub counts: Vec<u64>,
    /// Per distinct row: the first record (dataset row index) that has it.
    pub first: Vec<usize>,
    /// Per predicate: the distinct rows it holds on.
    pub hits: Vec<Bitset>,
    /// Per predicate: the records it holds on.
    pub support: Vec<u64>,
    pub records: u64,
}

type Distinct = HashMap<Vec<u64>, (u64, usize)>;

/// Builds the evidence of `props` on every record of `dataset`; `progress` is told how
/// many records each finished block held.
pub fn build(dataset: &Dataset, props: &[Prop], progress: &(dyn Fn(u64) + Sync)) -> Evidence {
    let n = dataset.rows();
    let p = props.len();
    let eval = Evaluator::new(dataset);
    let blocks: Vec<usize> = (0..n).step_by(BLOCK).collect();
    let merged = blocks
        .par_iter()
        .map(|&start| {
            let len = BLOCK.min(n - start);
            let columns: Vec<Vec<u64>> = props
                .iter()
                .map(|prop| eval.prop(prop, start, len))
                .collect();
            let mut local = Distinct::new();
            for r in 0..len {
                let mut row = vec![0u64; words_for(p)];
                for (j, col) in columns.iter().enumerate() {
                    if col[r / 64] >> (r % 64) & 1 == 1 {
                        row[j / 64] |= 1 << (j % 64);
                    }
                }
                let e = local.entry(row).or_insert((0, start + r));
                e.0 += 1;
            }
            progress(len as u64);
            local
        })
        .reduce(Distinct::new, |mut a, b| {
            for (k, (c, f)) in b {
                let e = a.entry(k).or_insert((0, f));
                e.0 += c;
                e.1 = e.1.min(f);
            }
            a
        });
    let mut distinct: Vec<(Vec<u64>, u64, usize)> =
        merged.into_iter().map(|(k, (c, f))| (k, c, f)).collect();
    distinct.sort_by_key(|d| d.2);
    let d = distinct.len();
    let mut hits = vec![Bitset::new(d); p];
    let mut support = vec![0u64; p];
    let mut rows = Vec::with_capacity(d);
    let mut counts = Vec::with_capacity(d);
    let mut first = Vec::with_capacity(d);
    for (i, (words, count, f)) in distinct.into_iter().enumerate() {
        let row = Bitset::from_words(words, p);
        for j in row.ones() {
            hits[j].set(i);
            support[j] += count;
        }
        rows.push(row);
        counts.push(count);
        first.push(f);
    }
    Evidence {
        predicates: p,
        rows,
        counts,
        first,
        hits,
        support,
        records: n as u64,
    }
}

impl Evidence {
    pub fn distinct(&self) -> usize {
        self.rows.len()
    }

    /// Records on which the disjunction of `set` holds.
    pub fn satisfied(&self, set: &[u32]) -> u64 {
        let mut covered = Bitset::new(self.distinct());
        for &e in set {
            covered.or_assign(&self.hits[e as usize]);
        }
        covered.ones().map(|r| self.counts[r]).sum()
    }
}
