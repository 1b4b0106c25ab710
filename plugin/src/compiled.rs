//! A rule pack compiled for enforcement, and the exact set of values each field may take
//! next.
//!
//! # The question
//!
//! Records are generated field by field in the pack's order.  When the fields before `x`
//! have values (the *assignment*), which values may `x` take such that some completion of
//! the record satisfies every rule and every domain?  This set, `F(x)`, is what the mask
//! allows: nothing outside it (soundness), and every value in it leads to a completable
//! record (no dead ends).
//!
//! # How
//!
//! 1. Every rule is simplified under the assignment: rules that the assigned values decide
//!    drop out; the rest (the *residual*) mention unassigned fields only.
//! 2. If no residual rule links `x` to another unassigned field, `F(x)` is the set of
//!    domain values on which `x`'s residual rules hold, computed exactly by interval
//!    arithmetic (linear terms) or by trying each value (categorical fields, small
//!    domains).  No solver call.
//! 3. Otherwise `F(x)` is a union of *cases*: z3 finds a completion `(x*, Y*)` outside the
//!    values found so far; fixing the other fields at `Y*` leaves rules over `x` alone,
//!    whose set (containing `x*`) is added; repeat until z3 finds no completion outside.
//!    Each case is one solver call; packs mined from data have few cases per field.
//!
//! 4. Rules that call a user function (a WebAssembly component, a black box) are enforced
//!    on concrete values: z3 sees a call only as a number within the function's declared
//!    bounds, so each completion it finds is a *candidate*, checked by calling the
//!    function on the candidate's values.  A candidate that fails is repaired — z3 looks
//!    for a completion near points between it and the even spread of the same total over
//!    the function's open arguments — and checked again.  `F(x)` is the union of the
//!    cases of verified completions, and the completion behind each allowed value is kept
//!    for the next step, so the mask is sound and never dead-ends; it may leave out
//!    feasible values no search verified.  The values tried are spread over the range the
//!    other rules allow (up to `SPREAD`), then z3's own (`VERIFIED_CASES`).  Cost, on a
//!    cache miss: up to (`SPREAD` + `VERIFIED_CASES`) × (1 + 8 repairs) solver calls,
//!    each followed by one function call per call site (microseconds when the component
//!    is warm); a cache hit costs nothing more than without functions.
//!
//! Results are cached by field and assignment, so a state seen before costs a lookup.
//! z3 objects are not `Send`: each thread keeps its own solver per pack, built on first use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rulepacks::eval::{EvalError, eval};
use rulepacks::record::{RecordFormat, Spelling};
use rulepacks::resolve::{Expr, Prop};
use rulepacks::schema::{Domain, FieldId, Schema};
use rulepacks::{ArithOp, CmpOp, Func, Num, RulePack, Value};
use solver::Theory;

use crate::sets::Grid;

/// The values one slot (a written field) may take.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SlotSet {
    /// By choice index.
    Choice(Vec<bool>),
    /// Grid points (values times `10^decimals`).
    Grid(Grid),
    /// Any text.
    Any,
}

impl SlotSet {
    pub fn is_empty(&self) -> bool {
        match self {
            SlotSet::Choice(c) => !c.iter().any(|b| *b),
            SlotSet::Grid(g) => g.is_empty(),
            SlotSet::Any => false,
        }
    }
}

/// What a slot's domain is, on the grid or as choices.
#[derive(Clone, Debug)]
enum SlotDomain {
    Choice(Vec<Value>),
    Grid { grid: Grid, decimals: u32 },
    Text,
}

/// Why enforcement cannot go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnforceError {
    #[error("the solver gave up on field `{field}`: {reason}")]
    SolverGaveUp { field: String, reason: String },
    #[error("no value of `{field}` can complete the record")]
    DeadEnd { field: String },
    #[error("{0}")]
    Pack(String),
    /// A user function failed on the values at hand (its message names it).
    #[error("{0}")]
    Function(String),
}

/// Three-valued result of simplifying a rule under an assignment.
enum Tri {
    True,
    False,
    Open(Prop),
    /// A user function failed on the assigned values (its message).
    Failed(String),
}

type CacheKey = (usize, String);

/// A pack ready for enforcement.
#[derive(Debug)]
pub struct Compiled {
    pub id: String,
    pub hash: String,
    pub schema: Schema,
    pub format: RecordFormat,
    /// Rules with derived fields replaced by their definitions, then the domains of
    /// derived fields as rules.
    rules: Vec<Prop>,
    /// How many of `rules` are the pack's.
    pack_rules: usize,
    /// The rules as stored, for the solver (which has the definitions as axioms).
    stored: Vec<Prop>,
    domains: Vec<SlotDomain>,
    cache: Mutex<HashMap<CacheKey, Arc<SlotSet>>>,
    /// The same sets by what decides them: the slot and its residual rules.
    by_residual: Mutex<HashMap<CacheKey, Arc<SlotSet>>>,
    /// The fields of each rule (derived fields replaced).
    rule_fields: Vec<Vec<FieldId>>,
    solver_timeout_ms: u32,
    /// Counters for the cost model.
    pub stats: Stats,
    /// Complete records the solver found, newest last: each is a known completion that
    /// later computations try before asking the solver.
    witnesses: Mutex<Vec<Vec<Value>>>,
    /// Completions on which the user functions were evaluated and every rule holds, by
    /// the assignment they complete: the step after a value was allowed finds its
    /// completion here, so a field tied to a user function never dead-ends.
    verified: Mutex<HashMap<String, Vec<Value>>>,
}

/// Values spread over a field's range tried per computation of a set tied to a user
/// function (when the range is known without z3).
const SPREAD: usize = 12;
/// Further searches for verified completions (z3's choice of value) per computation.
const VERIFIED_CASES: usize = 4;
/// How far a repair moves toward the even spread (1 is all the way), in the order tried.
const REPAIR_MIXES: [f64; 4] = [1.0, 0.5, 0.75, 0.25];
/// Box half-widths around a repair target, relative to the target.
const REPAIR_WIDTHS: [f64; 2] = [0.02, 0.2];

/// Records kept as witnesses.
const WITNESSES: usize = 2048;
/// Witnesses tried per computation before the solver.
const WITNESS_TRIES: usize = 32;

/// How often the expensive paths were taken.
#[derive(Debug, Default)]
pub struct Stats {
    pub lookups: std::sync::atomic::AtomicU64,
    pub computed: std::sync::atomic::AtomicU64,
    pub solver_calls: std::sync::atomic::AtomicU64,
}

thread_local! {
    /// This thread's solvers, by pack hash.
    static THEORIES: RefCell<Vec<(String, Theory)>> = const { RefCell::new(Vec::new()) };
}

/// Solvers kept per thread (the newest packs).
const THEORIES_PER_THREAD: usize = 8;
/// Cached slot sets per pack before the cache is cleared.
const CACHE_LIMIT: usize = 200_000;
/// Cases tried per slot before settling for the values found (a sound subset).
const MAX_CASES: usize = 48;
/// Largest domain whose values are tried one by one.
const ENUMERATION_LIMIT: u128 = 4096;

impl Compiled {
    pub fn new(pack: &RulePack) -> Result<Compiled, EnforceError> {
        let (schema, stored) = pack.validate().map_err(EnforceError::Pack)?;
        let format = RecordFormat::new(&schema).map_err(|e| EnforceError::Pack(e.message))?;
        let definitions = rulepacks::resolve::definitions(&schema);
        let mut rules: Vec<Prop> = stored
            .iter()
            .map(|p| substitute_prop(p, &definitions))
            .collect();
        let pack_rules = rules.len();
        // A derived field's domain binds like a rule: its definition stays in bounds.
        for (f, def) in schema.fields().iter().zip(&definitions) {
            let Some(def) = def else { continue };
            let def = substitute(def, &definitions);
            let (min, max) = match f.domain {
                Domain::Integer { min, max, .. } => (Value::Int(min), Value::Int(max)),
                Domain::Real { min, max, .. } => (Value::Real(min), Value::Real(max)),
                _ => continue,
            };
            rules.push(Prop::And(vec![
                Prop::Cmp(CmpOp::Ge, def.clone(), Expr::Const(min)),
                Prop::Cmp(CmpOp::Le, def, Expr::Const(max)),
            ]));
        }
        let rule_fields = rules.iter().map(Prop::fields).collect();
        let domains = format
            .slots()
            .iter()
            .map(|s| slot_domain(&schema, s.field, &s.spelling))
            .collect();
        Ok(Compiled {
            id: pack.id(),
            hash: pack.hash.clone(),
            schema,
            format,
            rules,
            pack_rules,
            stored,
            domains,
            cache: Mutex::new(HashMap::new()),
            by_residual: Mutex::new(HashMap::new()),
            rule_fields,
            solver_timeout_ms: 5_000,
            stats: Stats::default(),
            witnesses: Mutex::new(Vec::new()),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The pack's rules, derived fields substituted.
    pub fn rules(&self) -> &[Prop] {
        &self.rules[..self.pack_rules]
    }

    /// The slot's decimals (0 for integers and choices).
    pub fn decimals(&self, slot: usize) -> u32 {
        match &self.domains[slot] {
            SlotDomain::Grid { decimals, .. } => *decimals,
            _ => 0,
        }
    }

    /// The value of grid point `k` in `slot`.
    pub fn grid_value(&self, slot: usize, k: i128) -> Value {
        match &self.domains[slot] {
            SlotDomain::Grid { decimals: 0, .. } => Value::Int(k as i64),
            SlotDomain::Grid { decimals, .. } => {
                Value::Real(k as f64 / 10f64.powi(*decimals as i32))
            }
            _ => Value::Int(k as i64),
        }
    }

    /// The grid point of a numeric value in `slot`.
    pub fn grid_point(&self, slot: usize, v: &Value) -> Option<i128> {
        let d = self.decimals(slot);
        let x = v.as_num()?;
        match x {
            Num::Int(i) => Some(i * 10i128.pow(d)),
            other => {
                let scaled = other.to_f64() * 10f64.powi(d as i32);
                (scaled.is_finite() && (scaled - scaled.round()).abs() < 1e-6)
                    .then(|| scaled.round() as i128)
            }
        }
    }

    /// Whether `value` is in `set` (for `slot`).
    pub fn set_contains(&self, slot: usize, set: &SlotSet, value: &Value) -> bool {
        match (set, &self.domains[slot]) {
            (SlotSet::Choice(allowed), SlotDomain::Choice(values)) => {
                values.iter().zip(allowed).any(|(v, a)| *a && v.same(value))
            }
            (SlotSet::Grid(g), _) => self.grid_point(slot, value).is_some_and(|k| g.contains(k)),
            (SlotSet::Any, _) => true,
            _ => false,
        }
    }

    /// The values `slot` may take after `assigned` (indexed by schema field).
    pub fn allowed(
        &self,
        slot: usize,
        assigned: &[Option<Value>],
    ) -> Result<Arc<SlotSet>, EnforceError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.lookups.fetch_add(1, Relaxed);
        let key = (slot, assignment_key(assigned));
        if let Some(hit) = self.cache.lock().expect("not poisoned").get(&key) {
            return Ok(hit.clone());
        }
        self.stats.computed.fetch_add(1, Relaxed);
        let set = Arc::new(self.compute(slot, assigned)?);
        insert_bounded(&self.cache, key, set.clone());
        Ok(set)
    }

    fn field_name(&self, slot: usize) -> String {
        self.format.slots()[slot].name.clone()
    }

    /// The rules the assignment leaves open, simplified; `None` when it breaks one, an
    /// error when a user function fails on it.
    fn residual(&self, assigned: &[Option<Value>]) -> Result<Option<Vec<Prop>>, String> {
        let mut residual = Vec::new();
        for rule in &self.rules {
            match simplify(rule, assigned) {
                Tri::True => {}
                Tri::False => return Ok(None),
                Tri::Open(p) => residual.push(p),
                Tri::Failed(m) => return Err(m),
            }
        }
        Ok(Some(residual))
    }

    fn compute(&self, slot: usize, assigned: &[Option<Value>]) -> Result<SlotSet, EnforceError> {
        let x = FieldId(self.format.slots()[slot].field as u32);
        let Some(residual) = self.residual(assigned).map_err(EnforceError::Function)? else {
            return Ok(self.empty(slot));
        };
        let linked = component(x, &residual);
        // Only the rules of x's component decide F(x): assignments that leave them the
        // same share the answer.
        let rules: Vec<Prop> = residual
            .into_iter()
            .filter(|p| p.fields().iter().any(|f| linked.contains(f)))
            .collect();
        let key = (
            slot,
            rules
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join("\u{1}"),
        );
        if let Some(hit) = self.by_residual.lock().expect("not poisoned").get(&key) {
            return Ok((**hit).clone());
        }
        let own: Vec<&Prop> = rules.iter().filter(|p| mentions(p, x)).collect();
        let set = if rules.iter().any(Prop::calls_user) {
            self.verified_cases(slot, x, assigned, &linked, &rules)?
        } else if linked.len() == 1 {
            self.solve_alone(slot, x, &own, assigned, &rules)?
        } else if let Some(set) = self.star(slot, x, &linked, &rules) {
            set
        } else {
            self.cases(slot, x, &own, assigned, &linked, &rules)?
        };
        if set.is_empty() {
            return Err(EnforceError::DeadEnd {
                field: self.field_name(slot),
            });
        }
        insert_bounded(&self.by_residual, key, Arc::new(set.clone()));
        Ok(set)
    }

    fn empty(&self, slot: usize) -> SlotSet {
        match &self.domains[slot] {
            SlotDomain::Choice(v) => SlotSet::Choice(vec![false; v.len()]),
            SlotDomain::Grid { grid, .. } => SlotSet::Grid(Grid::empty(grid.step())),
            SlotDomain::Text => SlotSet::Any,
        }
    }

    fn full(&self, slot: usize) -> SlotSet {
        match &self.domains[slot] {
            SlotDomain::Choice(v) => SlotSet::Choice(vec![true; v.len()]),
            SlotDomain::Grid { grid, .. } => SlotSet::Grid(grid.clone()),
            SlotDomain::Text => SlotSet::Any,
        }
    }

    /// `x`'s values on which rules over `x` alone hold; `None` if some rule is beyond
    /// interval arithmetic and the domain too large to try value by value.
    fn over_x(
        &self,
        slot: usize,
        x: FieldId,
        rules: &[Prop],
        assigned: &[Option<Value>],
    ) -> Option<SlotSet> {
        let mut set = self.full(slot);
        for r in rules {
            let s = self.set_of(slot, x, r, assigned)?;
            set = self.meet(&set, &s);
        }
        Some(set)
    }

    fn solve_alone(
        &self,
        slot: usize,
        x: FieldId,
        rules: &[&Prop],
        assigned: &[Option<Value>],
        component_rules: &[Prop],
    ) -> Result<SlotSet, EnforceError> {
        let owned: Vec<Prop> = rules.iter().map(|p| (*p).clone()).collect();
        match self.over_x(slot, x, &owned, assigned) {
            Some(s) => Ok(s),
            None => self.cases(slot, x, rules, assigned, &[x], component_rules),
        }
    }

    /// `F(x)` as a union of cases found by z3.
    #[allow(clippy::too_many_arguments)]
    fn cases(
        &self,
        slot: usize,
        x: FieldId,
        rules: &[&Prop],
        assigned: &[Option<Value>],
        linked: &[FieldId],
        component_rules: &[Prop],
    ) -> Result<SlotSet, EnforceError> {
        let mut found = self.empty(slot);
        // Known completions first: each gives a case without a solver call.
        for w in self.witnesses_for(component_rules) {
            if self.set_contains(slot, &found, &w[x.index()]) {
                continue;
            }
            let case = self.case_of(slot, x, rules, &w);
            found = self.join(&found, &case);
        }
        // The solver holds the rules as stored: fix the assigned fields they tie to x's
        // component (the others do not matter, and leaving them free is cheaper).
        let relevant: Vec<Option<Value>> = self.relevant(assigned, linked);
        let fixed = self.fixed_props(&relevant);
        for _ in 0..MAX_CASES {
            let mut extra = fixed.clone();
            extra.extend(self.exclusion(slot, x, &found));
            let Some(record) = self.solve(slot, &extra, !found.is_empty())? else {
                return Ok(found);
            };
            let case = self.case_of(slot, x, rules, &record);
            self.remember(record);
            let before = found.clone();
            found = self.join(&found, &case);
            if found == before {
                // The model lies in a set already found (a rounding corner); stop here.
                return Ok(found);
            }
        }
        tracing::debug!(
            "`{}`: stopped after {MAX_CASES} cases",
            self.field_name(slot)
        );
        Ok(found)
    }

    /// `F(x)` when a rule of `x`'s component calls a user function: a union of cases
    /// around *verified* completions, on which the functions were called and every rule of
    /// the component holds.  z3 knows a function only by its declared bounds, so its
    /// completions are candidates: one that fails is repaired by [`Compiled::repair`] or
    /// its value of `x` is left out.  Every value allowed has a verified completion, kept
    /// for the next step (sound, and no dead ends); a feasible value no search verified is
    /// left out (the set may be smaller than the exact one).
    fn verified_cases(
        &self,
        slot: usize,
        x: FieldId,
        assigned: &[Option<Value>],
        linked: &[FieldId],
        rules: &[Prop],
    ) -> Result<SlotSet, EnforceError> {
        let own: Vec<&Prop> = rules.iter().filter(|p| mentions(p, x)).collect();
        let mut found = self.empty(slot);
        // What the search has tried: found values and values no completion was verified for.
        let mut tried = self.empty(slot);
        let mut known: Vec<Vec<Value>> = self
            .verified
            .lock()
            .expect("not poisoned")
            .get(&assignment_key(assigned))
            .cloned()
            .into_iter()
            .collect();
        known.extend(self.witnesses_for(rules));
        for w in known {
            if !self.set_contains(slot, &found, &w[x.index()]) && holds_on(rules, &w)? {
                self.keep_verified(assigned, x, &w);
                found = self.join(&found, &self.case_of(slot, x, &own, &w));
            }
        }
        tried = self.join(&tried, &found);
        let relevant = self.relevant(assigned, linked);
        // Values spread over the set the other rules allow (when it is known without z3),
        // so that the model has a choice across the whole range; then values z3 finds
        // outside what was tried.
        let spread = self.spread(slot, x, linked, rules);
        for k in 0..spread.len() + VERIFIED_CASES {
            let mut extra = self.fixed_props(&relevant);
            match spread.get(k) {
                Some(v) if self.set_contains(slot, &tried, v) => continue,
                Some(v) => {
                    let mut pinned = vec![None; relevant.len()];
                    pinned[x.index()] = Some(v.clone());
                    extra.extend(self.fixed_props(&pinned));
                }
                None => extra.extend(self.exclusion(slot, x, &tried)),
            }
            let Some(candidate) = self.solve(slot, &extra, !found.is_empty())? else {
                if k < spread.len() {
                    tried = self.join(&tried, &self.point(slot, &spread[k]));
                    continue;
                }
                break;
            };
            let value = candidate[x.index()].clone();
            tried = self.join(&tried, &self.point(slot, &value));
            let verified = if holds_on(rules, &candidate)? {
                Some(candidate)
            } else {
                let mut pinned = relevant.clone();
                pinned[x.index()] = Some(value);
                self.repair(slot, &pinned, &candidate, rules)?
            };
            if let Some(w) = verified {
                self.keep_verified(assigned, x, &w);
                found = self.join(&found, &self.case_of(slot, x, &own, &w));
                tried = self.join(&tried, &found);
                self.remember(w);
            }
        }
        Ok(found)
    }

    /// Up to `SPREAD` values of `x` evenly spaced over the set the rules without user
    /// calls allow, when that set is known without z3 (see [`Compiled::star`]); empty
    /// otherwise.  Each is only a candidate: the functions decide.
    fn spread(&self, slot: usize, x: FieldId, linked: &[FieldId], rules: &[Prop]) -> Vec<Value> {
        let plain: Vec<Prop> = rules.iter().filter(|p| !p.calls_user()).cloned().collect();
        let Some(SlotSet::Grid(relaxed)) = self.star(slot, x, linked, &plain) else {
            return Vec::new();
        };
        let (Some(&(lo, _)), Some(&(_, hi))) = (relaxed.ranges().first(), relaxed.ranges().last())
        else {
            return Vec::new();
        };
        let mut out: Vec<Value> = Vec::new();
        for i in 0..SPREAD as i128 {
            let target = lo + (hi - lo) * i / (SPREAD as i128 - 1);
            // The first point of the set at or above the target.
            let step = relaxed.step();
            let point = relaxed
                .ranges()
                .iter()
                .find(|&&(_, h)| h >= target)
                .map(|&(l, _)| {
                    let c = l.max(target);
                    c + (step - c.rem_euclid(step)) % step
                });
            if let Some(k) = point.filter(|&k| relaxed.contains(k)) {
                let v = self.grid_value(slot, k);
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// A completion z3 finds with `extra`; when it gives up, an error if nothing was found
    /// yet (`have_some` false), else `None` (the search stops with what it has).
    fn solve(
        &self,
        slot: usize,
        extra: &[Prop],
        have_some: bool,
    ) -> Result<Option<Vec<Value>>, EnforceError> {
        self.stats
            .solver_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.with_theory(|t| t.find_record(extra)) {
            Ok(r) => Ok(r),
            Err(reason) if have_some => {
                tracing::debug!(
                    "z3 gave up on `{}` after some cases: {reason}",
                    self.field_name(slot)
                );
                Ok(None)
            }
            Err(reason) => Err(EnforceError::SolverGaveUp {
                field: self.field_name(slot),
                reason,
            }),
        }
    }

    /// A verified completion that keeps `pinned`, near `candidate` (a completion z3 found,
    /// on which a function rule fails).  Tries points between `candidate` and the point
    /// that spreads the same total evenly over the functions' open arguments — from even
    /// (a peak-to-mean or variance rule) back toward `candidate` — each snapped to a
    /// completion by z3 within a small box, and verified.
    fn repair(
        &self,
        slot: usize,
        pinned: &[Option<Value>],
        candidate: &[Value],
        rules: &[Prop],
    ) -> Result<Option<Vec<Value>>, EnforceError> {
        let mut args: Vec<FieldId> = Vec::new();
        for p in rules {
            user_args(p, &mut args);
        }
        args.sort_unstable();
        args.dedup();
        args.retain(|f| pinned[f.index()].is_none());
        let values: Vec<f64> = args
            .iter()
            .filter_map(|f| candidate[f.index()].as_num().map(|n| n.to_f64()))
            .collect();
        if args.is_empty() || values.len() != args.len() {
            return Ok(None);
        }
        let even = values.iter().sum::<f64>() / values.len() as f64;
        let fixed = self.fixed_props(pinned);
        for mix in REPAIR_MIXES {
            for width in REPAIR_WIDTHS {
                let mut extra = fixed.clone();
                for (f, v) in args.iter().zip(&values) {
                    let target = mix * even + (1.0 - mix) * v;
                    let radius = (width * target.abs()).max(1.0);
                    extra.extend(self.near(*f, target, radius));
                }
                let Some(w) = self.solve(slot, &extra, true)? else {
                    continue;
                };
                if holds_on(rules, &w)? {
                    return Ok(Some(w));
                }
            }
        }
        Ok(None)
    }

    /// Props keeping field `f` within `radius` of `target`.
    fn near(&self, f: FieldId, target: f64, radius: f64) -> [Prop; 2] {
        let integer = matches!(self.schema.field(f).domain, Domain::Integer { .. });
        let bound = |x: f64, up: bool| {
            if integer {
                let r = if up { x.floor() } else { x.ceil() };
                Expr::Const(Value::Int(r.clamp(i64::MIN as f64, i64::MAX as f64) as i64))
            } else {
                Expr::Const(Value::Real(x))
            }
        };
        [
            Prop::Cmp(CmpOp::Ge, Expr::Field(f), bound(target - radius, false)),
            Prop::Cmp(CmpOp::Le, Expr::Field(f), bound(target + radius, true)),
        ]
    }

    /// Keeps `w` as the verified completion of `assigned` with `x` set to `w`'s value.
    fn keep_verified(&self, assigned: &[Option<Value>], x: FieldId, w: &[Value]) {
        let mut next = assigned.to_vec();
        next[x.index()] = Some(w[x.index()].clone());
        insert_bounded(&self.verified, assignment_key(&next), w.to_vec());
    }

    /// The values of `x` that complete the record when every other field takes its value
    /// in `record` (a completion): a set that contains `record`'s own value of `x`.
    fn case_of(&self, slot: usize, x: FieldId, rules: &[&Prop], record: &[Value]) -> SlotSet {
        let mut others: Vec<Option<Value>> = record.iter().cloned().map(Some).collect();
        others[x.index()] = None;
        let over: Vec<Prop> = rules
            .iter()
            .filter_map(|p| match simplify(p, &others) {
                Tri::Open(q) => Some(q),
                Tri::True => None,
                Tri::False | Tri::Failed(_) => Some(Prop::Const(false)),
            })
            .collect();
        let point = self.point(slot, &record[x.index()]);
        self.over_x(slot, x, &over, &others)
            .filter(|c| self.subset(&point, c))
            .unwrap_or(point)
    }

    fn remember(&self, record: Vec<Value>) {
        let mut w = self.witnesses.lock().expect("not poisoned");
        if w.len() >= WITNESSES {
            w.remove(0);
        }
        w.push(record);
    }

    /// Recent witnesses on which x's component rules hold: completions of this state.
    fn witnesses_for(&self, component_rules: &[Prop]) -> Vec<Vec<Value>> {
        let w = self.witnesses.lock().expect("not poisoned");
        w.iter()
            .rev()
            .filter(|r| holds_on(component_rules, r).unwrap_or(false))
            .take(WITNESS_TRIES)
            .cloned()
            .collect()
    }

    /// The assigned values of fields that share a rule with one of `linked`.
    fn relevant(&self, assigned: &[Option<Value>], linked: &[FieldId]) -> Vec<Option<Value>> {
        let mut keep = vec![false; assigned.len()];
        for fields in &self.rule_fields {
            if fields.iter().any(|f| linked.contains(f)) {
                for f in fields {
                    keep[f.index()] = true;
                }
            }
        }
        assigned
            .iter()
            .zip(keep)
            .map(|(v, k)| if k { v.clone() } else { None })
            .collect()
    }

    /// `F(x)` exactly, when `x`'s component is a star of single linear constraints: each
    /// rule is one comparison (not `!=`) of integer fields, every other field appears in
    /// one rule only, with coefficient ±1.  Then each rule bounds `x` on its own, by the
    /// range the sum of its other fields can take.  `None` otherwise.
    fn star(
        &self,
        slot: usize,
        x: FieldId,
        linked: &[FieldId],
        residual: &[Prop],
    ) -> Option<SlotSet> {
        let SlotDomain::Grid { grid, decimals: 0 } = &self.domains[slot] else {
            return None;
        };
        let rules: Vec<&Prop> = residual
            .iter()
            .filter(|p| p.fields().iter().any(|f| linked.contains(f)))
            .collect();
        let mut used = std::collections::HashSet::new();
        let mut set = grid.clone();
        for r in rules {
            let Prop::Cmp(op, l, rgt) = r else {
                return None;
            };
            if *op == CmpOp::Ne {
                return None;
            }
            let (mut coefs, b) = linear_many(l)?;
            let (rc, rb) = linear_many(rgt)?;
            for (f, c) in rc {
                let e = coefs.entry(f).or_insert(Num::Int(0));
                *e = e.checked_sub(c).ok()?;
            }
            let b = b.checked_sub(rb).ok()?;
            // a·x + Σ cᵢ·vᵢ + b  op  0
            let a = coefs.remove(&x)?;
            let (mut smin, mut smax) = (0i128, 0i128);
            for (f, c) in &coefs {
                if !used.insert(*f) {
                    return None;
                }
                let unit = match c {
                    Num::Int(1) => 1,
                    Num::Int(-1) => -1,
                    Num::Int(0) => continue,
                    _ => return None,
                };
                let (lo, hi) = self.int_bounds(*f)?;
                let (lo, hi) = if unit == 1 { (lo, hi) } else { (-hi, -lo) };
                smin = smin.checked_add(lo)?;
                smax = smax.checked_add(hi)?;
            }
            let Num::Int(bi) = b else { return None };
            // a·x op -(b + s) for some s in [smin, smax]: the loosest s decides.
            let allowed = match op {
                CmpOp::Le | CmpOp::Lt => solve_linear(*op, a, Num::Int(-(bi + smin)), 0, grid)?,
                CmpOp::Ge | CmpOp::Gt => solve_linear(*op, a, Num::Int(-(bi + smax)), 0, grid)?,
                _ => {
                    let lo = solve_linear(CmpOp::Ge, a, Num::Int(-(bi + smax)), 0, grid)?;
                    lo.intersect(&solve_linear(
                        CmpOp::Le,
                        a,
                        Num::Int(-(bi + smin)),
                        0,
                        grid,
                    )?)
                }
            };
            set = set.intersect(&allowed);
        }
        Some(SlotSet::Grid(set))
    }

    /// An integer field's bounds, if it has them (with no step).
    fn int_bounds(&self, f: FieldId) -> Option<(i128, i128)> {
        match &self.schema.field(f).domain {
            Domain::Integer {
                min,
                max,
                multiple_of: None | Some(1),
            } => Some((i128::from(*min), i128::from(*max))),
            _ => None,
        }
    }

    fn point(&self, slot: usize, v: &Value) -> SlotSet {
        match &self.domains[slot] {
            SlotDomain::Choice(values) => {
                SlotSet::Choice(values.iter().map(|c| c.same(v)).collect())
            }
            SlotDomain::Grid { grid, .. } => match self.grid_point(slot, v) {
                Some(k) => SlotSet::Grid(Grid::point(k, grid.step())),
                None => SlotSet::Grid(Grid::empty(grid.step())),
            },
            SlotDomain::Text => SlotSet::Any,
        }
    }

    fn subset(&self, a: &SlotSet, b: &SlotSet) -> bool {
        match (a, b) {
            (SlotSet::Choice(x), SlotSet::Choice(y)) => x.iter().zip(y).all(|(p, q)| !p || *q),
            (SlotSet::Grid(x), SlotSet::Grid(y)) => x.intersect(y) == *x,
            _ => true,
        }
    }

    fn join(&self, a: &SlotSet, b: &SlotSet) -> SlotSet {
        match (a, b) {
            (SlotSet::Choice(x), SlotSet::Choice(y)) => {
                SlotSet::Choice(x.iter().zip(y).map(|(p, q)| *p || *q).collect())
            }
            (SlotSet::Grid(x), SlotSet::Grid(y)) => SlotSet::Grid(x.union(y)),
            _ => SlotSet::Any,
        }
    }

    fn meet(&self, a: &SlotSet, b: &SlotSet) -> SlotSet {
        match (a, b) {
            (SlotSet::Choice(x), SlotSet::Choice(y)) => {
                SlotSet::Choice(x.iter().zip(y).map(|(p, q)| *p && *q).collect())
            }
            (SlotSet::Grid(x), SlotSet::Grid(y)) => SlotSet::Grid(x.intersect(y)),
            (SlotSet::Any, other) | (other, SlotSet::Any) => other.clone(),
            _ => a.clone(),
        }
    }

    fn complement(&self, slot: usize, a: &SlotSet) -> SlotSet {
        match (a, &self.domains[slot]) {
            (SlotSet::Choice(x), _) => SlotSet::Choice(x.iter().map(|p| !p).collect()),
            (SlotSet::Grid(x), SlotDomain::Grid { grid, .. }) => {
                SlotSet::Grid(x.complement_in(grid))
            }
            _ => a.clone(),
        }
    }

    /// The set of `x`'s values on which `p` (over `x` alone) holds.
    fn set_of(
        &self,
        slot: usize,
        x: FieldId,
        p: &Prop,
        assigned: &[Option<Value>],
    ) -> Option<SlotSet> {
        if let SlotDomain::Choice(values) = &self.domains[slot] {
            return Some(SlotSet::Choice(
                values
                    .iter()
                    .map(|v| self.holds_at(x, v, p, assigned))
                    .collect(),
            ));
        }
        let linear = match p {
            Prop::Const(true) => return Some(self.full(slot)),
            Prop::Const(false) => return Some(self.empty(slot)),
            Prop::Not(q) => {
                return Some(self.complement(slot, &self.set_of(slot, x, q, assigned)?));
            }
            Prop::And(qs) | Prop::Or(qs) => {
                let and = matches!(p, Prop::And(_));
                let mut acc = if and {
                    self.full(slot)
                } else {
                    self.empty(slot)
                };
                for q in qs {
                    let s = self.set_of(slot, x, q, assigned)?;
                    acc = if and {
                        self.meet(&acc, &s)
                    } else {
                        self.join(&acc, &s)
                    };
                }
                return Some(acc);
            }
            Prop::Cmp(op, l, r) => linear(l, x).zip(linear(r, x)).map(|(a, b)| (*op, a, b)),
        };
        match (linear, &self.domains[slot]) {
            (Some((op, (a1, b1), (a2, b2))), SlotDomain::Grid { grid, decimals }) => {
                let a = a1.checked_sub(a2).ok()?;
                let b = b2.checked_sub(b1).ok()?;
                Some(SlotSet::Grid(solve_linear(op, a, b, *decimals, grid)?))
            }
            (_, SlotDomain::Grid { grid, .. }) if grid.len() <= ENUMERATION_LIMIT => {
                let mut points = Grid::empty(grid.step());
                for &(lo, hi) in grid.ranges() {
                    let mut k = lo;
                    while k <= hi {
                        if self.holds_at(x, &self.grid_value(slot, k), p, assigned) {
                            points = points.union(&Grid::point(k, grid.step()));
                        }
                        k += grid.step();
                    }
                }
                Some(SlotSet::Grid(points))
            }
            _ => None,
        }
    }

    fn holds_at(&self, x: FieldId, v: &Value, p: &Prop, assigned: &[Option<Value>]) -> bool {
        let mut record = assigned.to_vec();
        if record.len() <= x.index() {
            record.resize(x.index() + 1, None);
        }
        record[x.index()] = Some(v.clone());
        eval(p, record.as_slice()).unwrap_or(false)
    }

    /// Props fixing the assigned fields (reals through their grid point, exactly).
    pub(crate) fn fixed_props(&self, assigned: &[Option<Value>]) -> Vec<Prop> {
        let mut out = Vec::new();
        for (slot, s) in self.format.slots().iter().enumerate() {
            let Some(v) = assigned.get(s.field).and_then(Option::as_ref) else {
                continue;
            };
            let field = Expr::Field(FieldId(s.field as u32));
            match (&self.domains[slot], self.grid_point(slot, v)) {
                (SlotDomain::Grid { decimals, .. }, Some(k)) if *decimals > 0 => {
                    out.push(Prop::Cmp(
                        CmpOp::Eq,
                        scaled(field, *decimals),
                        Expr::Const(Value::Int(k as i64)),
                    ));
                }
                _ => out.push(Prop::Cmp(CmpOp::Eq, field, Expr::Const(v.clone()))),
            }
        }
        out
    }

    /// Props saying `x` is outside `found`.
    fn exclusion(&self, slot: usize, x: FieldId, found: &SlotSet) -> Vec<Prop> {
        let field = Expr::Field(x);
        match (found, &self.domains[slot]) {
            (SlotSet::Choice(allowed), SlotDomain::Choice(values)) => values
                .iter()
                .zip(allowed)
                .filter(|(_, a)| **a)
                .map(|(v, _)| Prop::Cmp(CmpOp::Ne, field.clone(), Expr::Const(v.clone())))
                .collect(),
            (SlotSet::Grid(g), SlotDomain::Grid { decimals, .. }) => {
                let term = if *decimals > 0 {
                    scaled(field, *decimals)
                } else {
                    field
                };
                g.ranges()
                    .iter()
                    .map(|&(lo, hi)| {
                        Prop::Or(vec![
                            Prop::Cmp(CmpOp::Lt, term.clone(), Expr::Const(Value::Int(lo as i64))),
                            Prop::Cmp(CmpOp::Gt, term.clone(), Expr::Const(Value::Int(hi as i64))),
                        ])
                    })
                    .collect()
            }
            _ => vec![],
        }
    }

    fn with_theory<T>(&self, f: impl FnOnce(&mut Theory) -> T) -> T {
        THEORIES.with(|cell| {
            let mut theories = cell.borrow_mut();
            let pos = match theories.iter().position(|(h, _)| *h == self.hash) {
                Some(p) => p,
                None => {
                    let mut t = Theory::new(&self.schema, self.solver_timeout_ms);
                    for p in &self.stored {
                        t.assert(p);
                    }
                    if theories.len() >= THEORIES_PER_THREAD {
                        theories.remove(0);
                    }
                    theories.push((self.hash.clone(), t));
                    theories.len() - 1
                }
            };
            f(&mut theories[pos].1)
        })
    }

    /// Whether the pack admits any record at all, given `pinned` values; the rules that
    /// conflict are not named by z3, so the answer is yes or no.
    ///
    /// With rules over user functions, yes means a completion on which the functions were
    /// called and every rule holds; when z3's completion fails them and no repair is
    /// verified, the answer is an error saying so (the pack may still admit a record).
    pub fn satisfiable(&self, pinned: &[Option<Value>]) -> Result<bool, String> {
        let fixed = self.fixed_props(pinned);
        let Some(candidate) = self.with_theory(|t| t.find_record(&fixed))? else {
            return Ok(false);
        };
        if !self.rules.iter().any(Prop::calls_user) {
            return Ok(true);
        }
        let Some(residual) = self.residual(pinned)? else {
            return Ok(false);
        };
        let verified = if holds_on(&residual, &candidate).map_err(|e| e.to_string())? {
            Some(candidate)
        } else {
            self.repair(0, pinned, &candidate, &residual)
                .map_err(|e| e.to_string())?
        };
        let Some(w) = verified else {
            return Err(
                "no completion was found on which the user functions satisfy the \
                 rules (z3 knows a function only by its bounds; its completions failed and \
                 could not be repaired)"
                    .into(),
            );
        };
        insert_bounded(&self.verified, assignment_key(pinned), w);
        Ok(true)
    }
}

/// Inserts into a cache, clearing it first when it holds `CACHE_LIMIT` entries.
fn insert_bounded<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut cache = cache.lock().expect("not poisoned");
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, value);
}

/// A string that identifies an assignment (reals by their bits, so it is exact).
fn assignment_key(assigned: &[Option<Value>]) -> String {
    let mut key = String::with_capacity(assigned.len() * 4);
    for v in assigned {
        match v {
            None => key.push('_'),
            Some(Value::Real(r)) => key.push_str(&format!("r{:x}", r.to_bits())),
            Some(Value::Str(s)) => {
                key.push('s');
                key.push_str(&s.len().to_string());
                key.push(':');
                key.push_str(s);
            }
            Some(other) => key.push_str(&other.to_string()),
        }
        key.push('\u{1}');
    }
    key
}

fn scaled(e: Expr, decimals: u32) -> Expr {
    Expr::Arith(
        ArithOp::Mul,
        Box::new(e),
        Box::new(Expr::Const(Value::Int(10i64.pow(decimals)))),
    )
}

fn slot_domain(schema: &Schema, field: usize, spelling: &Spelling) -> SlotDomain {
    match (spelling, &schema.fields()[field].domain) {
        (Spelling::Choice(choices), _) => {
            SlotDomain::Choice(choices.iter().map(|(_, v)| v.clone()).collect())
        }
        (
            Spelling::Integer,
            Domain::Integer {
                min,
                max,
                multiple_of,
            },
        ) => SlotDomain::Grid {
            grid: Grid::range(
                i128::from(*min),
                i128::from(*max),
                i128::from(multiple_of.unwrap_or(1)),
            ),
            decimals: 0,
        },
        (Spelling::Decimal(d), Domain::Real { min, max, .. }) => {
            let scale = 10f64.powi(*d as i32);
            let (lo, hi) = (
                (min * scale - 1e-6).ceil() as i128,
                (max * scale + 1e-6).floor() as i128,
            );
            SlotDomain::Grid {
                grid: Grid::range(lo, hi, 1),
                decimals: *d,
            }
        }
        _ => SlotDomain::Text,
    }
}

/// Replaces derived fields by their definitions.
fn substitute_prop(p: &Prop, defs: &[Option<Expr>]) -> Prop {
    match p {
        Prop::Const(b) => Prop::Const(*b),
        Prop::Cmp(op, l, r) => Prop::Cmp(*op, substitute(l, defs), substitute(r, defs)),
        Prop::Not(q) => Prop::Not(Box::new(substitute_prop(q, defs))),
        Prop::And(qs) => Prop::And(qs.iter().map(|q| substitute_prop(q, defs)).collect()),
        Prop::Or(qs) => Prop::Or(qs.iter().map(|q| substitute_prop(q, defs)).collect()),
    }
}

fn substitute(e: &Expr, defs: &[Option<Expr>]) -> Expr {
    match e {
        Expr::Field(id) => match &defs[id.index()] {
            Some(def) => substitute(def, defs),
            None => e.clone(),
        },
        Expr::Const(_) => e.clone(),
        Expr::Arith(op, l, r) => Expr::Arith(
            *op,
            Box::new(substitute(l, defs)),
            Box::new(substitute(r, defs)),
        ),
        Expr::Func(f, args) => Expr::Func(*f, args.iter().map(|a| substitute(a, defs)).collect()),
        Expr::User(call) => Expr::User(rulepacks::resolve::UserCall {
            function: call.function.clone(),
            over: call.over,
            args: call.args.iter().map(|a| substitute(a, defs)).collect(),
        }),
    }
}

/// Replaces assigned fields by their values.
fn bind(e: &Expr, a: &[Option<Value>]) -> Expr {
    match e {
        Expr::Field(id) => match a.get(id.index()).and_then(Option::as_ref) {
            Some(v) => Expr::Const(v.clone()),
            None => e.clone(),
        },
        Expr::Const(_) => e.clone(),
        Expr::Arith(op, l, r) => Expr::Arith(*op, Box::new(bind(l, a)), Box::new(bind(r, a))),
        Expr::Func(f, args) => Expr::Func(*f, args.iter().map(|x| bind(x, a)).collect()),
        Expr::User(call) => Expr::User(rulepacks::resolve::UserCall {
            function: call.function.clone(),
            over: call.over,
            args: call.args.iter().map(|x| bind(x, a)).collect(),
        }),
    }
}

fn closed(e: &Expr) -> bool {
    match e {
        Expr::Field(_) => false,
        Expr::Const(_) => true,
        Expr::Arith(_, l, r) => closed(l) && closed(r),
        Expr::Func(_, args) => args.iter().all(closed),
        Expr::User(call) => call.args.iter().all(closed),
    }
}

fn simplify(p: &Prop, a: &[Option<Value>]) -> Tri {
    match p {
        Prop::Const(true) => Tri::True,
        Prop::Const(false) => Tri::False,
        Prop::Cmp(op, l, r) => {
            let (l, r) = (bind(l, a), bind(r, a));
            let q = Prop::Cmp(*op, l, r);
            if let Prop::Cmp(_, l, r) = &q
                && closed(l)
                && closed(r)
            {
                // An expression that cannot be evaluated (division by zero) cannot hold; a
                // user function that fails says why.
                return match eval(&q, &[] as &[Value]) {
                    Ok(true) => Tri::True,
                    Err(EvalError::User(m)) => Tri::Failed(m),
                    Ok(false) | Err(_) => Tri::False,
                };
            }
            Tri::Open(q)
        }
        Prop::Not(q) => match simplify(q, a) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Open(q) => Tri::Open(Prop::Not(Box::new(q))),
            Tri::Failed(m) => Tri::Failed(m),
        },
        Prop::And(qs) | Prop::Or(qs) => {
            let and = matches!(p, Prop::And(_));
            let mut open = Vec::new();
            let mut failed = None;
            for q in qs {
                match (simplify(q, a), and) {
                    (Tri::False, true) => return Tri::False,
                    (Tri::True, false) => return Tri::True,
                    (Tri::Open(q), _) => open.push(q),
                    (Tri::Failed(m), _) => failed = Some(m),
                    _ => {}
                }
            }
            // A part that decides the whole wins over a failed part; otherwise the
            // failure is the answer.
            if let Some(m) = failed {
                return Tri::Failed(m);
            }
            match open.len() {
                0 if and => Tri::True,
                0 => Tri::False,
                1 => Tri::Open(open.pop().expect("one")),
                _ if and => Tri::Open(Prop::And(open)),
                _ => Tri::Open(Prop::Or(open)),
            }
        }
    }
}

/// Whether every rule holds on a complete record: an error counts as not holding, except a
/// user function's failure, which is the answer.
fn holds_on(rules: &[Prop], record: &[Value]) -> Result<bool, EnforceError> {
    for p in rules {
        match eval(p, record) {
            Ok(true) => {}
            Err(EvalError::User(m)) => return Err(EnforceError::Function(m)),
            Ok(false) | Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// The fields user calls in `p` read.
fn user_args(p: &Prop, out: &mut Vec<FieldId>) {
    fn expr(e: &Expr, out: &mut Vec<FieldId>) {
        match e {
            Expr::Const(_) | Expr::Field(_) => {}
            Expr::Arith(_, l, r) => {
                expr(l, out);
                expr(r, out);
            }
            Expr::Func(_, args) => args.iter().for_each(|a| expr(a, out)),
            Expr::User(call) => call
                .args
                .iter()
                .for_each(|a| a.visit_fields(&mut |f| out.push(f))),
        }
    }
    match p {
        Prop::Const(_) => {}
        Prop::Cmp(_, l, r) => {
            expr(l, out);
            expr(r, out);
        }
        Prop::Not(q) => user_args(q, out),
        Prop::And(qs) | Prop::Or(qs) => qs.iter().for_each(|q| user_args(q, out)),
    }
}

fn mentions(p: &Prop, x: FieldId) -> bool {
    let mut found = false;
    p.visit_fields(&mut |f| found |= f == x);
    found
}

/// The unassigned fields linked to `x` through residual rules.
fn component(x: FieldId, residual: &[Prop]) -> Vec<FieldId> {
    let fields: Vec<Vec<FieldId>> = residual.iter().map(Prop::fields).collect();
    let mut seen = vec![x];
    let mut frontier = vec![x];
    while let Some(f) = frontier.pop() {
        for fs in &fields {
            if fs.contains(&f) {
                for g in fs {
                    if !seen.contains(g) {
                        seen.push(*g);
                        frontier.push(*g);
                    }
                }
            }
        }
    }
    seen
}

/// `e` as `Σ cᵢ·vᵢ + b` with exact coefficients, if it is linear.
fn linear_many(e: &Expr) -> Option<(std::collections::BTreeMap<FieldId, Num>, Num)> {
    let zero = Num::Int(0);
    let is_zero = |n: &Num| n.cmp_num(&zero) == Some(std::cmp::Ordering::Equal);
    let scale = |m: &mut std::collections::BTreeMap<FieldId, Num>, k: Num| -> Option<()> {
        for c in m.values_mut() {
            *c = c.checked_mul(k).ok()?;
        }
        Some(())
    };
    Some(match e {
        Expr::Const(v) => (Default::default(), v.as_num()?),
        Expr::Field(id) => ([(*id, Num::Int(1))].into_iter().collect(), zero),
        Expr::Arith(op, l, r) => {
            let ((mut lc, lb), (mut rc, rb)) = (linear_many(l)?, linear_many(r)?);
            match op {
                ArithOp::Add | ArithOp::Sub => {
                    if *op == ArithOp::Sub {
                        scale(&mut rc, Num::Int(-1))?;
                    }
                    for (f, c) in rc {
                        let e = lc.entry(f).or_insert(zero);
                        *e = e.checked_add(c).ok()?;
                    }
                    let b = if *op == ArithOp::Add {
                        lb.checked_add(rb)
                    } else {
                        lb.checked_sub(rb)
                    };
                    (lc, b.ok()?)
                }
                ArithOp::Mul if lc.is_empty() => {
                    scale(&mut rc, lb)?;
                    (rc, lb.checked_mul(rb).ok()?)
                }
                ArithOp::Mul if rc.is_empty() => {
                    scale(&mut lc, rb)?;
                    (lc, lb.checked_mul(rb).ok()?)
                }
                ArithOp::Div if rc.is_empty() && !is_zero(&rb) => {
                    let inv = Num::Int(1).checked_div(rb).ok()?;
                    scale(&mut lc, inv)?;
                    (lc, lb.checked_div(rb).ok()?)
                }
                _ => return None,
            }
        }
        Expr::Func(Func::Sum, args) => {
            let mut acc: std::collections::BTreeMap<FieldId, Num> = Default::default();
            let mut b = zero;
            for a in args {
                let (c, k) = linear_many(a)?;
                for (f, v) in c {
                    let e = acc.entry(f).or_insert(zero);
                    *e = e.checked_add(v).ok()?;
                }
                b = b.checked_add(k).ok()?;
            }
            (acc, b)
        }
        Expr::Func(..) | Expr::User(..) => return None,
    })
}

/// `e` as `a·x + b` with exact coefficients, if it is linear in `x`.
fn linear(e: &Expr, x: FieldId) -> Option<(Num, Num)> {
    let zero = Num::Int(0);
    Some(match e {
        Expr::Const(v) => (zero, v.as_num()?),
        Expr::Field(id) if *id == x => (Num::Int(1), zero),
        Expr::Field(_) => return None,
        Expr::Arith(op, l, r) => {
            let ((a1, b1), (a2, b2)) = (linear(l, x)?, linear(r, x)?);
            let is_zero = |n: &Num| n.cmp_num(&zero) == Some(std::cmp::Ordering::Equal);
            match op {
                ArithOp::Add => (a1.checked_add(a2).ok()?, b1.checked_add(b2).ok()?),
                ArithOp::Sub => (a1.checked_sub(a2).ok()?, b1.checked_sub(b2).ok()?),
                ArithOp::Mul if is_zero(&a1) => {
                    (b1.checked_mul(a2).ok()?, b1.checked_mul(b2).ok()?)
                }
                ArithOp::Mul if is_zero(&a2) => {
                    (a1.checked_mul(b2).ok()?, b1.checked_mul(b2).ok()?)
                }
                ArithOp::Div if is_zero(&a2) && !is_zero(&b2) => {
                    (a1.checked_div(b2).ok()?, b1.checked_div(b2).ok()?)
                }
                _ => return None,
            }
        }
        Expr::Func(f, args) => {
            let parts: Vec<(Num, Num)> =
                args.iter().map(|a| linear(a, x)).collect::<Option<_>>()?;
            let constant = parts
                .iter()
                .all(|(a, _)| a.cmp_num(&zero) == Some(std::cmp::Ordering::Equal));
            match f {
                Func::Sum | Func::Avg => {
                    let (mut a, mut b) = (zero, zero);
                    for (pa, pb) in parts {
                        a = a.checked_add(pa).ok()?;
                        b = b.checked_add(pb).ok()?;
                    }
                    if *f == Func::Avg {
                        let n = Num::Int(args.len() as i128);
                        (a.checked_div(n).ok()?, b.checked_div(n).ok()?)
                    } else {
                        (a, b)
                    }
                }
                _ if constant => {
                    let values: Vec<Num> = parts.iter().map(|(_, b)| *b).collect();
                    (zero, rulepacks::eval::apply(*f, &values).ok()?)
                }
                _ => return None,
            }
        }
        Expr::User(_) => return None,
    })
}

/// The grid points `k` (value `k / 10^d`) with `a · k / 10^d  op  b`, within `domain`.
fn solve_linear(op: CmpOp, a: Num, b: Num, decimals: u32, domain: &Grid) -> Option<Grid> {
    let zero = Num::Int(0);
    let step = domain.step();
    let (lo, hi) = (domain.ranges().first()?.0, domain.ranges().last()?.1);
    let sign = a.cmp_num(&zero)?;
    if sign == std::cmp::Ordering::Equal {
        let holds = zero.cmp_num(&b).is_some_and(|o| op.holds(o));
        return Some(if holds {
            domain.clone()
        } else {
            Grid::empty(step)
        });
    }
    // k op' t with t = b · 10^d / a (the comparison flips when a < 0).
    let t = b
        .checked_mul(Num::Int(10i128.pow(decimals)))
        .ok()?
        .checked_div(a)
        .ok()?;
    let op = if sign == std::cmp::Ordering::Less {
        op.flipped()
    } else {
        op
    };
    let (fl, ce) = floor_ceil(t)?;
    let exact = fl == ce;
    let range = |a: i128, b: i128| Grid::range(a.max(lo), b.min(hi), step);
    let g = match op {
        CmpOp::Le => range(lo, fl),
        CmpOp::Lt => range(lo, if exact { fl - 1 } else { fl }),
        CmpOp::Ge => range(ce, hi),
        CmpOp::Gt => range(if exact { ce + 1 } else { ce }, hi),
        CmpOp::Eq if exact => range(fl, fl),
        CmpOp::Eq => Grid::empty(step),
        CmpOp::Ne if exact => range(lo, fl - 1).union(&range(fl + 1, hi)),
        CmpOp::Ne => range(lo, hi),
    };
    Some(g.intersect(domain))
}

fn floor_ceil(t: Num) -> Option<(i128, i128)> {
    match t {
        Num::Int(i) => Some((i, i)),
        Num::Frac(n, d) => Some((n.div_euclid(d), -(-n).div_euclid(d))),
        Num::Real(r) if r.is_finite() => Some((r.floor() as i128, r.ceil() as i128)),
        Num::Real(_) => None,
    }
}
