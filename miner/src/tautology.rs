//! What holds regardless of the data: predicates and rules that the field domains alone
//! make true.
//!
//! A predicate on one field compared with a constant has a *satisfying set* within the
//! field's domain (a set of categorical values, or integer intervals).  Two such
//! predicates with the same set are the same predicate (`Bytes > 99` and `Bytes >= 100`;
//! `Flags != noflags` and `Flags = hasflags` when there are two flags), so only the first
//! is kept.  A predicate whose set is the whole domain is valid, and one whose set is empty
//! is unsatisfiable; neither can be part of a strongest rule.  A disjunction is valid when
//! the predicates on one field together cover its domain; disjunctions with predicates over
//! several fields at once (`Packets * 42 <= Bytes`) go to z3.

use std::collections::HashMap;

use rulepacks::resolve::{Expr, Prop};
use rulepacks::schema::{Domain, FieldId, Schema};
use rulepacks::{CmpOp, Value};
use solver::Theory;

use crate::bitset::Bitset;

/// The values of one field a predicate allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Allowed {
    /// Positions in the categorical domain.
    Values(Bitset),
    /// Disjoint, sorted, closed integer intervals.
    Ranges(Vec<(i64, i64)>),
    /// Disjoint, sorted real intervals.
    Spans(Vec<Span>),
}

/// A real interval; the ends are `f64` bits so that intervals hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    lo: u64,
    lo_closed: bool,
    hi: u64,
    hi_closed: bool,
}

impl Span {
    fn new(lo: f64, lo_closed: bool, hi: f64, hi_closed: bool) -> Option<Span> {
        let empty = lo > hi || (lo == hi && !(lo_closed && hi_closed));
        (!empty).then(|| Span {
            lo: (lo + 0.0).to_bits(),
            lo_closed,
            hi: (hi + 0.0).to_bits(),
            hi_closed,
        })
    }

    fn lo(&self) -> f64 {
        f64::from_bits(self.lo)
    }

    fn hi(&self) -> f64 {
        f64::from_bits(self.hi)
    }
}

/// The reals in `[min, max]` with `x op c`.
fn real_spans(op: CmpOp, c: f64, min: f64, max: f64) -> Vec<Span> {
    let spans = match op {
        CmpOp::Eq => vec![Span::new(c, true, c, true)],
        CmpOp::Lt => vec![Span::new(min, true, c, false)],
        CmpOp::Le => vec![Span::new(min, true, c, true)],
        CmpOp::Gt => vec![Span::new(c, false, max, true)],
        CmpOp::Ge => vec![Span::new(c, true, max, true)],
        CmpOp::Ne => vec![
            Span::new(min, true, c, false),
            Span::new(c, false, max, true),
        ],
    };
    let clipped = spans.into_iter().flatten().filter_map(|s| {
        let (lo, lo_closed) = if s.lo() < min {
            (min, true)
        } else {
            (s.lo(), s.lo_closed)
        };
        let (hi, hi_closed) = if s.hi() > max {
            (max, true)
        } else {
            (s.hi(), s.hi_closed)
        };
        Span::new(lo, lo_closed, hi, hi_closed)
    });
    merge_spans(clipped.collect())
}

fn merge_spans(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| {
        a.lo()
            .total_cmp(&b.lo())
            .then(b.lo_closed.cmp(&a.lo_closed))
    });
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last)
                if s.lo() < last.hi()
                    || (s.lo() == last.hi() && (last.hi_closed || s.lo_closed)) =>
            {
                if s.hi() > last.hi() || (s.hi() == last.hi() && s.hi_closed) {
                    last.hi = s.hi;
                    last.hi_closed = s.hi_closed || (s.hi() == last.hi() && last.hi_closed);
                }
            }
            _ => out.push(s),
        }
    }
    out
}

impl Allowed {
    fn is_empty(&self) -> bool {
        match self {
            Allowed::Values(b) => b.is_empty(),
            Allowed::Ranges(r) => r.is_empty(),
            Allowed::Spans(r) => r.is_empty(),
        }
    }

    fn union(&self, other: &Allowed) -> Option<Allowed> {
        match (self, other) {
            (Allowed::Values(a), Allowed::Values(b)) => {
                let mut u = a.clone();
                u.or_assign(b);
                Some(Allowed::Values(u))
            }
            (Allowed::Spans(a), Allowed::Spans(b)) => Some(Allowed::Spans(merge_spans(
                a.iter().chain(b).copied().collect(),
            ))),
            (Allowed::Ranges(a), Allowed::Ranges(b)) => {
                let mut all: Vec<(i64, i64)> = a.iter().chain(b).copied().collect();
                all.sort_unstable();
                let mut out: Vec<(i64, i64)> = Vec::new();
                for (lo, hi) in all {
                    match out.last_mut() {
                        Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                        _ => out.push((lo, hi)),
                    }
                }
                Some(Allowed::Ranges(out))
            }
            _ => None,
        }
    }
}

/// What the domains say of one predicate.
#[derive(Clone, Debug)]
pub struct Shape {
    field: Option<(FieldId, Allowed)>,
    full: Allowed,
}

/// Domain facts about predicates, and validity of disjunctions of them.
#[derive(Debug)]
pub struct Domains {
    shapes: Vec<Option<Shape>>,
    /// Per predicate: its truth on each of [`SAMPLES`] records drawn from the domains.
    masks: Vec<[u64; SAMPLE_WORDS]>,
    /// Per predicate over several fields: its normalised linear form, when it has one.
    linear: Vec<Option<LinearKey>>,
    theory: Theory,
    props: Vec<Prop>,
    cache: HashMap<Vec<u32>, bool>,
    /// Disjunctions sent to z3 (for the report).
    pub solver_checks: u64,
}

/// How one predicate relates to the domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Valid,
    Unsatisfiable,
    Contingent,
}

impl Domains {
    /// `data`: a few records of the data (any in-domain records would do), mixed field
    /// by field into samples that make equalities between fields true and false.
    pub fn new(schema: &Schema, props: &[Prop], data: &[Vec<Value>]) -> Domains {
        let shapes = props.iter().map(|p| shape(schema, p)).collect();
        let samples = sample_records(schema, data);
        let masks = props.iter().map(|p| truth_mask(p, &samples)).collect();
        let linear = props.iter().map(linear_key).collect();
        Domains {
            shapes,
            masks,
            linear,
            theory: Theory::new(schema, 10_000),
            props: props.to_vec(),
            cache: HashMap::new(),
            solver_checks: 0,
        }
    }

    /// A key equal for predicates the domains make equivalent: single-field predicates by
    /// the values they allow, linear ones by their normalised form.
    pub fn key(&self, i: usize) -> Option<PredicateKey> {
        if let Some((f, a)) = self.shapes[i].as_ref().and_then(|s| s.field.as_ref()) {
            return Some(PredicateKey::Field(*f, a.clone()));
        }
        self.linear[i].clone().map(PredicateKey::Linear)
    }

    /// Whether predicate `i` is valid, unsatisfiable, or neither, given the domains.
    pub fn standing(&mut self, i: usize) -> Standing {
        if let Some(Shape {
            field: Some((_, a)),
            full,
        }) = &self.shapes[i]
        {
            if a.is_empty() {
                return Standing::Unsatisfiable;
            }
            return if a == full {
                Standing::Valid
            } else {
                Standing::Contingent
            };
        }
        let mask = &self.masks[i];
        let all_true = mask.iter().all(|w| *w == u64::MAX);
        let all_false = mask.iter().all(|w| *w == 0);
        if !all_true && !all_false {
            return Standing::Contingent;
        }
        let p = self.props[i].clone();
        self.solver_checks += 2;
        if self.theory.valid(&p) == Some(true) {
            return Standing::Valid;
        }
        if self.theory.valid(&Prop::Not(Box::new(p))) == Some(true) {
            return Standing::Unsatisfiable;
        }
        Standing::Contingent
    }

    /// Whether the disjunction of `set` holds whatever the data (a tautology).
    pub fn tautology(&mut self, set: &[u32]) -> bool {
        // A sampled record where every predicate is false refutes validity at once.
        let mut any = [0u64; SAMPLE_WORDS];
        for &e in set {
            for (a, m) in any.iter_mut().zip(&self.masks[e as usize]) {
                *a |= m;
            }
        }
        if any.iter().any(|w| *w != u64::MAX) {
            return false;
        }
        let mut by_field: HashMap<FieldId, (Allowed, &Allowed)> = HashMap::new();
        let mut others = false;
        for &e in set {
            match &self.shapes[e as usize] {
                Some(Shape {
                    field: Some((f, a)),
                    full,
                }) => match by_field.get_mut(f) {
                    Some((acc, _)) => {
                        if let Some(u) = acc.union(a) {
                            *acc = u;
                        }
                    }
                    None => {
                        by_field.insert(*f, (a.clone(), full));
                    }
                },
                _ => others = true,
            }
        }
        if by_field.values().any(|(acc, full)| acc == *full) {
            return true;
        }
        if !others {
            return false;
        }
        if let Some(v) = self.cache.get(set) {
            return *v;
        }
        self.solver_checks += 1;
        let clause = Prop::Or(
            set.iter()
                .map(|&e| self.props[e as usize].clone())
                .collect(),
        );
        let valid = self.theory.valid(&clause) == Some(true);
        self.cache.insert(set.to_vec(), valid);
        valid
    }
}

/// See [`Domains::key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PredicateKey {
    Field(FieldId, Allowed),
    Linear(LinearKey),
}

/// A linear comparison `Σ cᵢ·xᵢ op k` over integers, normalised: coefficients coprime with
/// the first positive, strict comparisons made non-strict.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinearKey {
    terms: Vec<(FieldId, i128)>,
    op: CmpOp,
    bound: i128,
}

/// Records drawn from the domains to refute validity cheaply.
const SAMPLE_WORDS: usize = 4;
const SAMPLES: usize = SAMPLE_WORDS * 64;

/// Deterministic pseudo-random records within the field domains: a quarter drawn
/// uniformly, a quarter near the domains' ends, half by taking each field from one of two
/// records of the data.  Derived fields are computed from their definitions, and a sample
/// whose derived value falls outside its domain is no sample (`None`).
fn sample_records(schema: &Schema, data: &[Vec<Value>]) -> Vec<Option<Vec<Option<Value>>>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let definitions = rulepacks::resolve::definitions(schema);
    (0..SAMPLES)
        .map(|k| {
            let mut record: Vec<Option<Value>> = if k % 2 == 1 && !data.is_empty() {
                let (a, b) = (next() as usize % data.len(), next() as usize % data.len());
                let mask = next();
                (0..schema.len())
                    .map(|i| {
                        Some(
                            if mask >> (i % 64) & 1 == 1 {
                                &data[a]
                            } else {
                                &data[b]
                            }[i]
                                .clone(),
                        )
                    })
                    .collect()
            } else {
                schema
                    .fields()
                    .iter()
                    .map(|f| Some(sample_value(&f.domain, next(), k % 4 == 0)))
                    .collect()
            };
            for (i, def) in definitions.iter().enumerate() {
                if let Some(def) = def {
                    let value = rulepacks::eval::eval_num(def, record.as_slice())
                        .ok()
                        .flatten()?
                        .to_value();
                    if !schema.fields()[i].domain.contains(&value) {
                        return None;
                    }
                    record[i] = Some(value);
                }
            }
            Some(record)
        })
        .collect()
}

fn sample_value(domain: &Domain, r: u64, edge: bool) -> Value {
    match domain {
        Domain::Categorical { values } if !values.is_empty() => {
            values[(r % values.len() as u64) as usize].value.clone()
        }
        Domain::Integer {
            min,
            max,
            multiple_of,
        } => {
            let span = (*max as i128 - *min as i128 + 1).max(1) as u128;
            let offset = if edge {
                u128::from(r % 4)
            } else {
                u128::from(r) % span
            };
            let offset = if edge && r % 8 >= 4 {
                span - 1 - offset.min(span - 1)
            } else {
                offset.min(span - 1)
            };
            let mut v = (*min as i128 + offset as i128) as i64;
            if let Some(m) = multiple_of.filter(|m| *m > 1) {
                v -= v.rem_euclid(m);
                if v < *min {
                    v += m;
                }
            }
            Value::Int(v)
        }
        Domain::Real { min, max, .. } => {
            let t = if edge {
                [0.0, 1.0][(r % 2) as usize]
            } else {
                (r % 1_000_000) as f64 / 1e6
            };
            Value::Real(min + (max - min) * t)
        }
        Domain::Boolean => Value::Bool(r % 2 == 1),
        _ => Value::Str(format!("<sample {}>", r % 8)),
    }
}

fn truth_mask(p: &Prop, samples: &[Option<Vec<Option<Value>>>]) -> [u64; SAMPLE_WORDS] {
    let mut mask = [0u64; SAMPLE_WORDS];
    for (k, s) in samples.iter().enumerate() {
        // A sample that cannot be evaluated refutes nothing: count it as true.
        let truth = s
            .as_ref()
            .is_none_or(|r| rulepacks::eval::eval(p, r.as_slice()).unwrap_or(true));
        if truth {
            mask[k / 64] |= 1 << (k % 64);
        }
    }
    mask
}

/// The integer linear form of a term: coefficients per field and a constant.
fn linear_term(
    e: &Expr,
    out: &mut std::collections::BTreeMap<FieldId, i128>,
    scale: i128,
) -> Option<i128> {
    match e {
        Expr::Const(Value::Int(c)) => Some(scale.checked_mul(i128::from(*c))?),
        Expr::Field(id) => {
            *out.entry(*id).or_default() += scale;
            Some(0)
        }
        Expr::Arith(rulepacks::ArithOp::Add, l, r) => {
            Some(linear_term(l, out, scale)? + linear_term(r, out, scale)?)
        }
        Expr::Arith(rulepacks::ArithOp::Sub, l, r) => {
            Some(linear_term(l, out, scale)? + linear_term(r, out, -scale)?)
        }
        Expr::Arith(rulepacks::ArithOp::Mul, l, r) => match (l.as_ref(), r.as_ref()) {
            (Expr::Const(Value::Int(c)), other) | (other, Expr::Const(Value::Int(c))) => {
                linear_term(other, out, scale.checked_mul(i128::from(*c))?)
            }
            _ => None,
        },
        _ => None,
    }
}

fn linear_key(p: &Prop) -> Option<LinearKey> {
    let Prop::Cmp(op, l, r) = p else { return None };
    let mut coefs = std::collections::BTreeMap::new();
    let k = linear_term(l, &mut coefs, 1)? + linear_term(r, &mut coefs, -1)?;
    coefs.retain(|_, c| *c != 0);
    if coefs.len() < 2 {
        return None;
    }
    // Σ c·x + k op 0  ⇔  Σ c·x op -k; make it non-strict and the first coefficient positive.
    let (mut op, mut bound) = (*op, -k);
    match op {
        CmpOp::Lt => (op, bound) = (CmpOp::Le, bound - 1),
        CmpOp::Gt => (op, bound) = (CmpOp::Ge, bound + 1),
        _ => {}
    }
    let mut terms: Vec<(FieldId, i128)> = coefs.into_iter().collect();
    if terms[0].1 < 0 {
        terms.iter_mut().for_each(|t| t.1 = -t.1);
        bound = -bound;
        op = op.flipped();
    }
    let g = terms.iter().fold(0i128, |g, t| gcd(g, t.1));
    terms.iter_mut().for_each(|t| t.1 /= g);
    bound = match op {
        CmpOp::Le => bound.div_euclid(g),
        CmpOp::Ge => -(-bound).div_euclid(g),
        _ if bound % g != 0 => return None,
        _ => bound / g,
    };
    Some(LinearKey { terms, op, bound })
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn shape(schema: &Schema, p: &Prop) -> Option<Shape> {
    let Prop::Cmp(op, l, r) = p else { return None };
    let (id, op, c) = match (l, r) {
        (Expr::Field(id), Expr::Const(c)) => (*id, *op, c),
        (Expr::Const(c), Expr::Field(id)) => (*id, op.flipped(), c),
        _ => return None,
    };
    match &schema.field(id).domain {
        Domain::Categorical { values } => {
            let mut sat = Bitset::new(values.len());
            for (i, cat) in values.iter().enumerate() {
                if holds(op, &cat.value, c)? {
                    sat.set(i);
                }
            }
            Some(Shape {
                field: Some((id, Allowed::Values(sat))),
                full: Allowed::Values(Bitset::full(values.len())),
            })
        }
        Domain::Integer {
            min,
            max,
            multiple_of,
        } => {
            let c = match c {
                Value::Int(i) => *i,
                Value::Real(r) if r.fract() == 0.0 => *r as i64,
                _ => return None,
            };
            // With a step m, count in multiples: value k·m for k in [⌈min/m⌉, ⌊max/m⌋].
            let m = multiple_of.filter(|m| *m > 1).unwrap_or(1);
            let steps = |lo: i64, hi: i64| {
                let (lo, hi) = (div_ceil(lo, m), hi.div_euclid(m));
                (lo <= hi).then_some((lo, hi))
            };
            let ranges = int_ranges(op, c, *min, *max)
                .into_iter()
                .filter_map(|(lo, hi)| steps(lo, hi))
                .collect();
            let full = steps(*min, *max).into_iter().collect();
            Some(Shape {
                field: Some((id, Allowed::Ranges(ranges))),
                full: Allowed::Ranges(full),
            })
        }
        Domain::Real { min, max, .. } => {
            let c = c.as_num()?.to_f64();
            let full = Span::new(*min, true, *max, true).into_iter().collect();
            Some(Shape {
                field: Some((id, Allowed::Spans(real_spans(op, c, *min, *max)))),
                full: Allowed::Spans(full),
            })
        }
        Domain::Boolean => {
            let mut sat = Bitset::new(2);
            for (i, v) in [Value::Bool(false), Value::Bool(true)].iter().enumerate() {
                if holds(op, v, c)? {
                    sat.set(i);
                }
            }
            Some(Shape {
                field: Some((id, Allowed::Values(sat))),
                full: Allowed::Values(Bitset::full(2)),
            })
        }
        _ => None,
    }
}

fn holds(op: CmpOp, a: &Value, b: &Value) -> Option<bool> {
    match (a.as_num(), b.as_num(), a, b) {
        (Some(x), Some(y), _, _) => Some(x.cmp_num(&y).is_some_and(|o| op.holds(o))),
        (_, _, Value::Str(x), Value::Str(y)) if !op.is_ordering() => Some(op.holds(x.cmp(y))),
        _ => None,
    }
}

fn div_ceil(a: i64, m: i64) -> i64 {
    -(-a).div_euclid(m)
}

/// The integers in `[min, max]` with `x op c`.
fn int_ranges(op: CmpOp, c: i64, min: i64, max: i64) -> Vec<(i64, i64)> {
    let clip = |lo: i64, hi: i64| {
        if lo <= hi {
            vec![(lo.max(min), hi.min(max))]
        } else {
            vec![]
        }
    };
    let ranges = match op {
        CmpOp::Eq => clip(c, c),
        CmpOp::Lt => clip(min, c.saturating_sub(1)),
        CmpOp::Le => clip(min, c),
        CmpOp::Gt => clip(c.saturating_add(1), max),
        CmpOp::Ge => clip(c, max),
        CmpOp::Ne => {
            let mut v = clip(min, c.saturating_sub(1));
            v.extend(clip(c.saturating_add(1), max));
            v
        }
    };
    ranges.into_iter().filter(|(lo, hi)| lo <= hi).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rulepacks::parse_formula;
    use rulepacks::resolve::resolve;
    use rulepacks::schema::{Category, Field, ValueType};

    fn schema() -> Schema {
        let f = Field::plain;
        let flags = Domain::Categorical {
            values: vec![
                Category {
                    value: Value::Int(0),
                    label: Some("noflags".into()),
                },
                Category {
                    value: Value::Int(1),
                    label: Some("hasflags".into()),
                },
            ],
        };
        Schema::new(vec![
            f("Flags", ValueType::Categorical, flags),
            f(
                "Bytes",
                ValueType::Integer,
                Domain::Integer {
                    min: 20,
                    max: 1500,
                    multiple_of: None,
                },
            ),
            f(
                "Packets",
                ValueType::Integer,
                Domain::Integer {
                    min: 1,
                    max: 10,
                    multiple_of: None,
                },
            ),
        ])
        .unwrap()
    }

    fn domains(texts: &[&str]) -> Domains {
        let s = schema();
        let props: Vec<Prop> = texts
            .iter()
            .map(|t| resolve(&parse_formula(t).unwrap(), &s).unwrap())
            .collect();
        Domains::new(&s, &props, &[])
    }

    #[test]
    fn equivalent_predicates_share_a_key() {
        let d = domains(&[
            "Bytes > 99",
            "Bytes >= 100",
            "Flags != 0",
            "Flags = 1",
            "Bytes < 100",
        ]);
        assert!(d.key(0) == d.key(1));
        assert!(d.key(2) == d.key(3));
        assert!(d.key(0) != d.key(4));
    }

    #[test]
    fn standing_and_tautologies() {
        let mut d = domains(&[
            "Bytes >= 20",
            "Bytes < 20",
            "Bytes > 99",
            "Bytes <= 99",
            "Flags = 0",
            "Flags = 1",
            "Packets * 42 <= Bytes",
            "Packets * 42 > Bytes",
            "Packets * 1500 >= Bytes",
        ]);
        assert_eq!(d.standing(0), Standing::Valid);
        assert_eq!(d.standing(1), Standing::Unsatisfiable);
        assert_eq!(d.standing(2), Standing::Contingent);
        assert_eq!(d.standing(8), Standing::Valid);
        assert!(d.tautology(&[2, 3]));
        assert!(d.tautology(&[4, 5]));
        assert!(!d.tautology(&[2, 4]));
        assert!(d.tautology(&[6, 7]));
        assert!(!d.tautology(&[6, 4]));
    }
}
