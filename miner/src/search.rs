//! Enumeration of minimal hitting sets: every strongest rule up to a size bound.
//!
//! A rule is a disjunction of predicates.  It holds on every record exactly when, for
//! every distinct evidence row, one of its predicates holds there: its predicate set *hits*
//! every row.  The strongest rules are the minimal hitting sets (no predicate can be
//! dropped).  We enumerate them with MMCS (K. Murakami and T. Uno, "Efficient algorithms
//! for dualizing large-scale hypergraphs", Discrete Applied Mathematics 170, 2014):
//!
//! - branch on the uncovered row with the fewest candidate predicates; its candidates are
//!   tried in turn, each removed from the candidates of the later siblings, so that each
//!   minimal set is reached exactly once;
//! - keep, for each chosen predicate, the rows only it covers (its *critical* rows); adding
//!   a predicate that leaves another without a critical row would make the set
//!   non-minimal, and that whole subtree is skipped.  Every emitted set is therefore
//!   minimal when emitted: nothing is filtered afterwards.
//!
//! Sizes are enumerated in increasing order (iterative deepening on the size bound): each
//! level `k` emits exactly the minimal sets of size `k`, so a time budget or Ctrl-C leaves
//! a result complete up to the last finished level.  Each level splits its top branches
//! across threads.  Bitsets over rows and predicates make each node cost
//! O(|set| · rows / 64) word operations.
//!
//! With an error budget (approximate rules), the sets sought are the minimal sets whose
//! uncovered records weigh at most the budget; MMCS's branching rule does not apply (a row
//! may stay uncovered), so the search is a depth-first enumeration in index order that
//! stops at satisfying sets and checks minimality on the sets one smaller.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::bitset::Bitset;
use crate::evidence::Evidence;

/// When a search must stop early.
#[derive(Clone, Debug, Default)]
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    /// Set from outside (Ctrl-C) to stop the search.
    pub cancel: Option<&'a AtomicBool>,
    /// Stop a pass once it has found this many sets (`None`: no limit).
    pub max_sets: Option<usize>,
}

impl Limits<'_> {
    /// Why to stop now, if the deadline passed or the search was cancelled.
    pub fn expired(&self) -> Option<Stop> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some(Stop::Interrupted)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Stop::TimeBudget)
        } else {
            None
        }
    }
}

/// Why a level did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    TimeBudget,
    Interrupted,
    /// The pass found more sets than [`Limits::max_sets`].
    TooMany,
}

impl Stop {
    /// The word a pack's provenance records.
    pub fn token(self) -> &'static str {
        match self {
            Stop::TimeBudget => "time_budget",
            Stop::Interrupted => "interrupted",
            Stop::TooMany => "max_rules",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stop::TimeBudget => "the time budget",
            Stop::Interrupted => "an interrupt",
            Stop::TooMany => "the rule cap",
        }
    }
}

/// The minimal sets a pass found, and whether it finished.
#[derive(Clone, Debug, Default)]
pub struct Level {
    /// Predicate indices, each set sorted; the sets sorted by size, then lexicographically.
    pub sets: Vec<Vec<u32>>,
    pub stopped: Option<Stop>,
    pub nodes: u64,
    /// Whether the size bound cut the search short (there may be larger minimal sets).
    pub cut: bool,
}

struct Shared<'a> {
    ev: &'a Evidence,
    limits: &'a Limits<'a>,
    stop: AtomicBool,
    why: std::sync::Mutex<Option<Stop>>,
    nodes: AtomicU64,
    found: AtomicU64,
}

impl Shared<'_> {
    fn check(&self, local: &mut u64) -> bool {
        *local += 1;
        if *local % 1024 != 1 {
            return self.stop.load(Ordering::Relaxed);
        }
        self.nodes.fetch_add(1024, Ordering::Relaxed);
        if let Some(w) = self.limits.expired() {
            self.halt(w);
        }
        self.stop.load(Ordering::Relaxed)
    }

    fn halt(&self, why: Stop) {
        self.stop.store(true, Ordering::Relaxed);
        self.why.lock().expect("not poisoned").get_or_insert(why);
    }

    /// Counts a found set; past the limit, stops the pass.
    fn found_one(&self) {
        let n = self.found.fetch_add(1, Ordering::Relaxed) + 1;
        if self.limits.max_sets.is_some_and(|m| n > m as u64) {
            self.halt(Stop::TooMany);
        }
    }
}

/// One branch of the exact search, with a buffer per depth so that no node allocates.
struct Branch<'a, 's> {
    shared: &'s Shared<'a>,
    bound: usize,
    set: Vec<u32>,
    /// `crit[i]`: the rows only `set[i]` covers.
    crit: Vec<Bitset>,
    uncov: Bitset,
    cand: Bitset,
    /// Per depth: saved `crit` entries, saved `uncov`, and the branching choices.
    saved_crit: Vec<Vec<Bitset>>,
    saved_uncov: Vec<Bitset>,
    choices: Vec<Bitset>,
    out: Vec<Vec<u32>>,
    /// Whether some branch still had rows to cover when it reached the bound.
    cut: bool,
    nodes: u64,
}

impl<'a, 's> Branch<'a, 's> {
    fn new(shared: &'s Shared<'a>, bound: usize, cand: Bitset) -> Self {
        let d = shared.ev.distinct();
        let p = shared.ev.predicates;
        Branch {
            shared,
            bound,
            set: Vec::with_capacity(bound),
            crit: vec![Bitset::new(d); bound],
            uncov: Bitset::full(d),
            cand,
            saved_crit: vec![vec![Bitset::new(d); bound]; bound + 1],
            saved_uncov: vec![Bitset::new(d); bound + 1],
            choices: vec![Bitset::new(p); bound + 1],
            out: Vec::new(),
            cut: false,
            nodes: 0,
        }
    }

    /// The uncovered row with the fewest candidate predicates (exact for small inputs,
    /// over the first uncovered rows otherwise).
    fn pivot(&self) -> usize {
        let ev = self.shared.ev;
        let limit = if ev.distinct() * ev.rows[0].words().len() <= 200_000 {
            usize::MAX
        } else {
            64
        };
        self.uncov
            .ones()
            .take(limit)
            .min_by_key(|&r| ev.rows[r].and_count(&self.cand))
            .expect("called with uncovered rows")
    }

    fn emit(&mut self, extra: Option<u32>) {
        let mut s = self.set.clone();
        s.extend(extra);
        s.sort_unstable();
        self.out.push(s);
        self.shared.found_one();
    }

    fn search(&mut self) {
        if self.shared.check(&mut self.nodes) {
            return;
        }
        if self.uncov.is_empty() {
            self.emit(None);
            return;
        }
        let depth = self.set.len();
        if depth >= self.bound {
            self.cut = true;
            return;
        }
        let ev = self.shared.ev;
        let pivot = self.pivot();
        let mut choices = std::mem::take(&mut self.choices[depth]);
        choices.clone_from(&ev.rows[pivot]);
        choices.and_assign(&self.cand);
        if depth + 1 == self.bound {
            self.last_level(&choices);
        } else {
            self.cand.and_not_assign(&choices);
            for e in choices.ones() {
                self.try_add(e);
                self.cand.set(e);
            }
        }
        self.choices[depth] = choices;
    }

    /// With one predicate left to add, it must cover every uncovered row by itself; a
    /// choice that covers only some of them means larger sets lie past the bound.
    fn last_level(&mut self, choices: &Bitset) {
        let ev = self.shared.ev;
        for e in choices.ones() {
            let hits = &ev.hits[e];
            if self.uncov.has_outside(hits) {
                self.cut = true;
                continue;
            }
            if self.crit[..self.set.len()]
                .iter()
                .all(|c| c.has_outside(hits))
            {
                self.emit(Some(e as u32));
            }
        }
    }

    fn try_add(&mut self, e: usize) {
        let ev = self.shared.ev;
        let hits = &ev.hits[e];
        let d = self.set.len();
        if !self.crit[..d].iter().all(|c| c.has_outside(hits)) {
            return;
        }
        for i in 0..d {
            self.saved_crit[d][i].clone_from(&self.crit[i]);
            self.crit[i].and_not_assign(hits);
        }
        self.crit[d].clone_from(&self.uncov);
        self.crit[d].and_assign(hits);
        self.saved_uncov[d].clone_from(&self.uncov);
        self.uncov.and_not_assign(hits);
        self.set.push(e as u32);
        self.search();
        self.set.pop();
        for i in 0..d {
            std::mem::swap(&mut self.crit[i], &mut self.saved_crit[d][i]);
        }
        std::mem::swap(&mut self.uncov, &mut self.saved_uncov[d]);
    }
}

/// The minimal hitting sets of at most `bound` predicates among `candidates`.
///
/// `Level::cut` tells whether the bound cut some branch short: when it did not, these are
/// all the minimal hitting sets, of any size.
pub fn exact_up_to(ev: &Evidence, candidates: &Bitset, bound: usize, limits: &Limits<'_>) -> Level {
    let shared = Shared {
        ev,
        limits,
        stop: AtomicBool::new(false),
        why: std::sync::Mutex::new(None),
        nodes: AtomicU64::new(0),
        found: AtomicU64::new(0),
    };
    if ev.distinct() == 0 || bound == 0 {
        return Level {
            cut: bound == 0 && ev.distinct() > 0,
            ..Level::default()
        };
    }
    let root = Branch::new(&shared, bound, candidates.clone());
    let mut choices = ev.rows[root.pivot()].clone();
    choices.and_assign(candidates);
    let order: Vec<usize> = choices.ones().collect();
    // Child i may use every candidate but the pivot row's, plus the pivot's earlier ones.
    let results: Vec<(Vec<Vec<u32>>, bool)> = order
        .par_iter()
        .enumerate()
        .rev()
        .map(|(i, &e)| {
            let mut cand = candidates.clone();
            cand.and_not_assign(&choices);
            for &earlier in &order[..i] {
                cand.set(earlier);
            }
            let mut b = Branch::new(&shared, bound, cand);
            b.try_add(e);
            shared.nodes.fetch_add(b.nodes % 1024, Ordering::Relaxed);
            (b.out, b.cut)
        })
        .collect();
    let cut = results.iter().any(|r| r.1);
    let mut sets: Vec<Vec<u32>> = results.into_iter().flat_map(|r| r.0).collect();
    sets.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    let stopped = *shared.why.lock().expect("not poisoned");
    Level {
        sets,
        stopped,
        nodes: shared.nodes.load(Ordering::Relaxed),
        cut,
    }
}

/// The minimal sets of exactly `size` predicates whose uncovered records number at most
/// `budget`.
pub fn approximate_level(
    ev: &Evidence,
    candidates: &Bitset,
    size: usize,
    budget: u64,
    limits: &Limits<'_>,
) -> Level {
    let shared = Shared {
        ev,
        limits,
        stop: AtomicBool::new(false),
        why: std::sync::Mutex::new(None),
        nodes: AtomicU64::new(0),
        found: AtomicU64::new(0),
    };
    let order: Vec<usize> = candidates.ones().collect();
    let mut sets: Vec<Vec<u32>> = order
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, &e)| {
            let mut out = Vec::new();
            let mut nodes = 0;
            let mut set = vec![e as u32];
            grow(
                &shared,
                &order[i + 1..],
                &mut set,
                size,
                budget,
                &mut out,
                &mut nodes,
            );
            out
        })
        .collect();
    sets.sort_unstable();
    let stopped = *shared.why.lock().expect("not poisoned");
    Level {
        sets,
        stopped,
        nodes: shared.nodes.load(Ordering::Relaxed),
        cut: true,
    }
}

/// Records not covered by `set`, counting up only to `cap + 1`.
fn uncovered(ev: &Evidence, set: &[u32], skip: Option<usize>, cap: u64) -> u64 {
    let mut covered = Bitset::new(ev.distinct());
    for (i, &e) in set.iter().enumerate() {
        if Some(i) != skip {
            covered.or_assign(&ev.hits[e as usize]);
        }
    }
    let mut missing = Bitset::full(ev.distinct());
    missing.and_not_assign(&covered);
    let mut total = 0;
    for r in missing.ones() {
        total += ev.counts[r];
        if total > cap {
            break;
        }
    }
    total
}

fn grow(
    shared: &Shared<'_>,
    rest: &[usize],
    set: &mut Vec<u32>,
    size: usize,
    budget: u64,
    out: &mut Vec<Vec<u32>>,
    nodes: &mut u64,
) {
    if shared.check(nodes) {
        return;
    }
    let ev = shared.ev;
    // A set with a satisfying subset one smaller is not minimal, nor is any superset.
    if set.len() > 1 && (0..set.len()).any(|i| uncovered(ev, set, Some(i), budget) <= budget) {
        return;
    }
    if uncovered(ev, set, None, budget) <= budget {
        if set.len() == size {
            out.push(set.clone());
            shared.found_one();
        }
        return;
    }
    if set.len() == size {
        return;
    }
    for (j, &e) in rest.iter().enumerate() {
        set.push(e as u32);
        grow(shared, &rest[j + 1..], set, size, budget, out, nodes);
        set.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evidence from explicit rows of predicate sets.
    fn evidence(p: usize, rows: &[&[usize]], counts: &[u64]) -> Evidence {
        let d = rows.len();
        let mut hits = vec![Bitset::new(d); p];
        let mut bits = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let mut b = Bitset::new(p);
            for &j in *r {
                b.set(j);
                hits[j].set(i);
            }
            bits.push(b);
        }
        Evidence {
            predicates: p,
            rows: bits,
            counts: counts.to_vec(),
            first: (0..d).collect(),
            hits,
            support: vec![0; p],
            records: counts.iter().sum(),
        }
    }

    /// All minimal hitting sets by brute force.
    fn brute(ev: &Evidence, max: usize) -> Vec<Vec<u32>> {
        let p = ev.predicates;
        let hits_all = |s: &[u32]| ev.rows.iter().all(|r| s.iter().any(|&e| r.get(e as usize)));
        let mut out = Vec::new();
        for mask in 1u32..(1 << p) {
            let s: Vec<u32> = (0..p as u32).filter(|i| mask >> i & 1 == 1).collect();
            if s.len() > max || !hits_all(&s) {
                continue;
            }
            let minimal = (0..s.len()).all(|i| {
                let mut t = s.clone();
                t.remove(i);
                !hits_all(&t)
            });
            if minimal {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        out
    }

    fn all_levels(ev: &Evidence, max: usize) -> Vec<Vec<u32>> {
        let cand = Bitset::full(ev.predicates);
        let limits = Limits::default();
        let all = exact_up_to(ev, &cand, max, &limits).sets;
        // Passes with smaller bounds find exactly the smaller sets.
        for k in 1..max {
            let small = exact_up_to(ev, &cand, k, &limits).sets;
            let expected: Vec<Vec<u32>> = all.iter().filter(|s| s.len() <= k).cloned().collect();
            assert_eq!(small, expected, "bound {k}");
        }
        all
    }

    #[test]
    fn mmcs_matches_brute_force() {
        // A small pseudo-random family of hypergraphs.
        let mut seed = 12345u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..60 {
            let p = 3 + (next() % 8) as usize;
            let d = 1 + (next() % 9) as usize;
            let rows: Vec<Vec<usize>> = (0..d)
                .map(|_| {
                    let mut r: Vec<usize> = (0..p).filter(|_| next() % 3 == 0).collect();
                    if r.is_empty() {
                        r.push((next() % p as u64) as usize);
                    }
                    r
                })
                .collect();
            let refs: Vec<&[usize]> = rows.iter().map(Vec::as_slice).collect();
            let ev = evidence(p, &refs, &vec![1; d]);
            for max in 1..=4 {
                assert_eq!(
                    all_levels(&ev, max),
                    brute(&ev, max),
                    "rows {rows:?}, max {max}"
                );
            }
        }
    }

    #[test]
    fn approximate_sets_may_miss_the_budget() {
        // Predicate 0 misses only row 2 (weight 1); predicate 1 misses row 0 (weight 5).
        let ev = evidence(3, &[&[0, 2], &[0, 1], &[1]], &[5, 3, 1]);
        let cand = Bitset::full(3);
        let limits = Limits::default();
        assert_eq!(
            approximate_level(&ev, &cand, 1, 1, &limits).sets,
            vec![vec![0]]
        );
        assert_eq!(
            approximate_level(&ev, &cand, 1, 0, &limits).sets,
            Vec::<Vec<u32>>::new()
        );
        assert_eq!(
            exact_up_to(&ev, &cand, 2, &limits).sets,
            vec![vec![0, 1], vec![1, 2]]
        );
        // With budget 1, {0, 1} is not minimal ({0} suffices); {1, 2} misses nothing.
        assert_eq!(
            approximate_level(&ev, &cand, 2, 1, &limits).sets,
            vec![vec![1, 2]]
        );
    }

    #[test]
    fn a_cancelled_search_says_so() {
        let cancel = AtomicBool::new(true);
        let rows: Vec<Vec<usize>> = (0..40).map(|i| vec![i % 20, 20 + i % 7]).collect();
        let refs: Vec<&[usize]> = rows.iter().map(Vec::as_slice).collect();
        let ev = evidence(27, &refs, &vec![1; 40]);
        let limits = Limits {
            deadline: None,
            cancel: Some(&cancel),
            max_sets: None,
        };
        let level = exact_up_to(&ev, &Bitset::full(27), 6, &limits);
        assert_eq!(level.stopped, Some(Stop::Interrupted));
    }

    #[test]
    fn a_pass_stops_past_its_set_limit() {
        // Ten disjoint pairs: 2^10 minimal hitting sets of size 10.
        let rows: Vec<Vec<usize>> = (0..10).map(|i| vec![2 * i, 2 * i + 1]).collect();
        let refs: Vec<&[usize]> = rows.iter().map(Vec::as_slice).collect();
        let ev = evidence(20, &refs, &[1; 10]);
        let limits = Limits {
            deadline: None,
            cancel: None,
            max_sets: Some(3),
        };
        let level = exact_up_to(&ev, &Bitset::full(20), 10, &limits);
        assert_eq!(level.stopped, Some(Stop::TooMany));
        let unlimited = Limits {
            deadline: None,
            cancel: None,
            max_sets: None,
        };
        let level = exact_up_to(&ev, &Bitset::full(20), 10, &unlimited);
        assert_eq!((level.stopped, level.sets.len()), (None, 1024));
    }
}
