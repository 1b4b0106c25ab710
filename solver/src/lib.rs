//! Entailment, consistency and validity checks over rule packs, with z3.
//!
//! A [`Theory`] holds one z3 solver loaded once with the schema's axioms — every field's
//! domain (categorical values, integer and real bounds, `multiple_of`) and every derived
//! field's definition — and then any rules asserted into it.  Queries push a scope, assert,
//! check and pop, so one solver serves many queries.
//!
//! Encoding: integer, boolean and categorical fields with numeric values are z3 integers;
//! real fields are reals; text values (categorical labels, addresses, strings) are
//! integers standing for interned strings, so equality between text fields (`ip.src_ctx0 =
//! ip.dst_ctx1`) is integer equality.  Division is exact (real) division, `MOD` is z3's
//! `mod` with a positive constant divisor, MIN/MAX are if-then-else chains and AVG is a
//! real sum over the count — the semantics of [`rulepacks::eval`], so that what the
//! solver proves agrees with what evaluation finds on records.
//!
//! z3 objects are not `Send`: a [`Theory`] stays on the thread that made it.

use std::collections::HashMap;

use rulepacks::resolve::{Expr, Kind, Prop, field_kind};
use rulepacks::schema::{Domain, FieldId, Schema, ValueType};
use rulepacks::{ArithOp, CmpOp, Func, Value};
use z3::ast::{Bool, Int, Real};
use z3::{Model, Params, SatResult, Solver};

/// The answer to "do the rules entail this formula?".
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// True in every record the rules allow.
    Entailed,
    /// False in every record the rules allow.
    Contradicted,
    /// True in some allowed records and false in others; `counterexample` is an allowed
    /// record where it is false.
    Contingent {
        counterexample: Vec<(String, Value)>,
    },
    /// z3 gave up (timeout or an undecidable fragment); counts as not entailed.
    Unknown { reason: String },
}

impl Verdict {
    pub fn is_entailed(&self) -> bool {
        matches!(self, Verdict::Entailed)
    }

    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Entailed => "entailed",
            Verdict::Contradicted => "contradicted",
            Verdict::Contingent { .. } => "contingent",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

/// `None` when `rules` (with the schema's domains) admit some record; otherwise a message
/// naming rules that cannot all hold, by their ids.
pub fn contradiction(
    schema: &Schema,
    rules: &[Prop],
    ids: &[String],
    timeout_ms: u32,
) -> Option<String> {
    let mut t = Theory::new(schema, timeout_ms);
    rules.iter().for_each(|p| t.assert(p));
    if t.consistent() != Some(false) {
        return None;
    }
    let names: Vec<&str> = match Theory::conflict(schema, rules, timeout_ms) {
        Some(core) if !core.is_empty() => core.iter().map(|&i| ids[i].as_str()).collect(),
        _ => vec![],
    };
    Some(match names.len() {
        0 => "the field domains admit no record at all".to_owned(),
        n if n > 12 => format!(
            "its rules contradict each other: {} and {} more cannot all hold with the field domains",
            names[..12].join(", "),
            n - 12
        ),
        _ => format!(
            "its rules contradict each other: {} cannot all hold with the field domains",
            names.join(", ")
        ),
    })
}

/// A lowered numeric term.
#[derive(Clone, Debug)]
enum Z {
    I(Int),
    R(Real),
}

impl Z {
    fn real(&self) -> Real {
        match self {
            Z::I(i) => i.to_real(),
            Z::R(r) => r.clone(),
        }
    }
}

/// A solver loaded with a schema's axioms, and rules.
#[derive(Debug)]
pub struct Theory {
    solver: Solver,
    schema: Schema,
    vars: Vec<Z>,
    /// Interned text values and their integer codes.
    text_codes: HashMap<String, i64>,
    /// Rules asserted so far.
    rules: usize,
    /// One variable per distinct user-function call (a black box to the solver).
    calls: HashMap<String, Real>,
}

impl Theory {
    /// A theory holding only the schema's axioms; `timeout_ms` bounds every check.
    pub fn new(schema: &Schema, timeout_ms: u32) -> Theory {
        let solver = Solver::new();
        let mut params = Params::new();
        params.set_u32("timeout", timeout_ms);
        // The program handles Ctrl-C itself; z3 must not take the signal.
        params.set_bool("ctrl_c", false);
        solver.set_params(&params);
        let mut theory = Theory {
            solver,
            schema: schema.clone(),
            vars: Vec::new(),
            text_codes: HashMap::new(),
            rules: 0,
            calls: HashMap::new(),
        };
        theory.declare();
        theory
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn rule_count(&self) -> usize {
        self.rules
    }

    fn code(&mut self, text: &str) -> i64 {
        let next = self.text_codes.len() as i64;
        *self.text_codes.entry(text.to_owned()).or_insert(next)
    }

    fn declare(&mut self) {
        let fields = self.schema.fields().to_vec();
        // Text codes follow the sorted order of all text values, so that a large domain
        // is a range of codes.
        let mut texts: Vec<&str> = fields
            .iter()
            .filter_map(|f| match &f.domain {
                Domain::Categorical { values } => {
                    Some(values.iter().filter_map(|c| c.value.as_str()))
                }
                _ => None,
            })
            .flatten()
            .collect();
        texts.sort_unstable();
        texts.dedup();
        for t in texts {
            self.code(t);
        }
        for (i, f) in fields.iter().enumerate() {
            let name = format!("f{i}");
            let var = match (f.value_type, &f.domain) {
                (ValueType::Real, _) => Z::R(Real::new_const(name)),
                (ValueType::Categorical, Domain::Categorical { values })
                    if values.iter().any(|c| matches!(c.value, Value::Real(_))) =>
                {
                    Z::R(Real::new_const(name))
                }
                _ => Z::I(Int::new_const(name)),
            };
            self.vars.push(var);
        }
        for (i, f) in fields.iter().enumerate() {
            let axiom = self.domain_axiom(FieldId(i as u32), &f.domain);
            self.solver.assert(&axiom);
        }
        // A definition that does not resolve was refused when the pack was loaded.
        let definitions = rulepacks::resolve::definitions(&self.schema);
        for (i, expr) in definitions.iter().enumerate() {
            let Some(expr) = expr else { continue };
            let rhs = self.term(expr);
            let lhs = self.vars[i].clone();
            let eq = self.cmp(CmpOp::Eq, lhs, rhs);
            self.solver.assert(&eq);
        }
    }

    fn domain_axiom(&mut self, id: FieldId, domain: &Domain) -> Bool {
        let var = self.vars[id.index()].clone();
        match domain {
            Domain::Categorical { values } if values.len() > LARGE_DOMAIN => {
                // A disjunction of thousands of values slows every check; the range of
                // the values' codes is weaker but sound (it may miss entailments).
                let codes: Vec<Z> = values.iter().map(|c| self.value(&c.value)).collect();
                let (lo, hi) =
                    codes
                        .iter()
                        .fold((None, None), |(lo, hi): (Option<Z>, Option<Z>), z| {
                            (
                                Some(lo.map_or(z.clone(), |l| min_z(&l, z))),
                                Some(hi.map_or(z.clone(), |h| max_z(&h, z))),
                            )
                        });
                match (lo, hi) {
                    (Some(lo), Some(hi)) => {
                        let a = self.cmp(CmpOp::Ge, var.clone(), lo);
                        let b = self.cmp(CmpOp::Le, var, hi);
                        Bool::and(&[a, b])
                    }
                    _ => Bool::from_bool(false),
                }
            }
            Domain::Categorical { values } => {
                let options: Vec<Bool> = values
                    .iter()
                    .map(|c| {
                        let v = self.value(&c.value);
                        self.cmp(CmpOp::Eq, var.clone(), v)
                    })
                    .collect();
                Bool::or(&options)
            }
            Domain::Integer {
                min,
                max,
                multiple_of,
            } => {
                let Z::I(x) = &var else {
                    return Bool::from_bool(true);
                };
                let mut parts = vec![x.ge(Int::from_i64(*min)), x.le(Int::from_i64(*max))];
                if let Some(m) = multiple_of.filter(|m| *m > 1) {
                    parts.push(x.modulo(Int::from_i64(m)).eq(Int::from_i64(0)));
                }
                Bool::and(&parts)
            }
            Domain::Real { min, max, decimals } => {
                let x = var.real();
                let mut parts = vec![x.ge(real_const(*min)), x.le(real_const(*max))];
                // Values are written with this many decimals: x · 10^d is an integer.
                if let Some(d) = decimals.filter(|d| *d <= 12) {
                    let k = Int::new_const(format!("grid{}", id.0));
                    let scaled = x * rational(10i64.pow(d), 1);
                    parts.push(scaled.eq(k.to_real()));
                }
                Bool::and(&parts)
            }
            Domain::Boolean => match &var {
                Z::I(x) => Bool::and(&[x.ge(Int::from_i64(0)), x.le(Int::from_i64(1))]),
                Z::R(_) => Bool::from_bool(true),
            },
            Domain::String => {
                // Any text: codes of text values are non-negative.
                match &var {
                    Z::I(x) => x.ge(Int::from_i64(0)),
                    Z::R(_) => Bool::from_bool(true),
                }
            }
        }
    }

    fn value(&mut self, v: &Value) -> Z {
        match v {
            Value::Bool(b) => Z::I(Int::from_i64(i64::from(*b))),
            Value::Int(i) => Z::I(Int::from_i64(*i)),
            Value::Real(r) => Z::R(real_const(*r)),
            Value::Str(s) => Z::I(Int::from_i64(self.code(s))),
        }
    }

    fn term(&mut self, e: &Expr) -> Z {
        match e {
            Expr::Const(v) => self.value(v),
            Expr::Field(id) => self.vars[id.index()].clone(),
            Expr::Arith(op, l, r) => {
                let (a, b) = (self.term(l), self.term(r));
                arith(*op, a, b)
            }
            Expr::Func(f, args) => {
                let args: Vec<Z> = args.iter().map(|a| self.term(a)).collect();
                func(*f, &args)
            }
            Expr::User(call) => Z::R(self.user_call(call)),
        }
    }

    /// A user function is a black box: each distinct call is a real variable within the
    /// bounds the function declares.  Sound for entailment (a formula entailed for every
    /// value of the call is entailed for the function's value), but blind to how the value
    /// follows from the inputs.
    fn user_call(&mut self, call: &rulepacks::resolve::UserCall) -> Real {
        let key = format!("{}{:?}", call.function.name(), call.args);
        if let Some(v) = self.calls.get(&key) {
            return v.clone();
        }
        let v = Real::new_const(format!("call{}", self.calls.len()));
        let (lo, hi) = call.function.bounds();
        if let Some(lo) = lo.filter(|x| x.is_finite()) {
            self.solver.assert(v.ge(real_const(lo)));
        }
        if let Some(hi) = hi.filter(|x| x.is_finite()) {
            self.solver.assert(v.le(real_const(hi)));
        }
        self.calls.insert(key, v.clone());
        v
    }

    fn cmp(&self, op: CmpOp, a: Z, b: Z) -> Bool {
        match (a, b) {
            (Z::I(x), Z::I(y)) => match op {
                CmpOp::Eq => x.eq(&y),
                CmpOp::Ne => x.eq(&y).not(),
                CmpOp::Lt => x.lt(&y),
                CmpOp::Le => x.le(&y),
                CmpOp::Gt => x.gt(&y),
                CmpOp::Ge => x.ge(&y),
            },
            (a, b) => {
                let (x, y) = (a.real(), b.real());
                match op {
                    CmpOp::Eq => x.eq(&y),
                    CmpOp::Ne => x.eq(&y).not(),
                    CmpOp::Lt => x.lt(&y),
                    CmpOp::Le => x.le(&y),
                    CmpOp::Gt => x.gt(&y),
                    CmpOp::Ge => x.ge(&y),
                }
            }
        }
    }

    /// Lowers a resolved formula (resolved against this theory's schema).
    pub fn lower(&mut self, p: &Prop) -> Bool {
        match p {
            Prop::Const(b) => Bool::from_bool(*b),
            Prop::Cmp(op, l, r) => {
                let (a, b) = (self.term(l), self.term(r));
                self.cmp(*op, a, b)
            }
            Prop::Not(q) => self.lower(q).not(),
            Prop::And(qs) => {
                let parts: Vec<Bool> = qs.iter().map(|q| self.lower(q)).collect();
                Bool::and(&parts)
            }
            Prop::Or(qs) => {
                let parts: Vec<Bool> = qs.iter().map(|q| self.lower(q)).collect();
                Bool::or(&parts)
            }
        }
    }

    /// Adds a rule to the theory.
    pub fn assert(&mut self, p: &Prop) {
        let b = self.lower(p);
        self.solver.assert(&b);
        self.rules += 1;
    }

    /// Some rules that cannot all hold together (with the domains), by their position in
    /// `rules`; `None` when they can (or z3 gave up).  The set is z3's unsat core: it
    /// conflicts, but need not be the smallest conflicting set.
    pub fn conflict(schema: &Schema, rules: &[Prop], timeout_ms: u32) -> Option<Vec<usize>> {
        let mut t = Theory::new(schema, timeout_ms);
        let mut markers = Vec::with_capacity(rules.len());
        for (i, p) in rules.iter().enumerate() {
            let b = t.lower(p);
            let marker = Bool::new_const(format!("rule{i}"));
            t.solver.assert_and_track(b, &marker);
            markers.push(marker);
        }
        if t.solver.check() != SatResult::Unsat {
            return None;
        }
        let core = t.solver.get_unsat_core();
        let mut out: Vec<usize> = markers
            .iter()
            .enumerate()
            .filter(|(_, m)| core.iter().any(|c| c == *m))
            .map(|(i, _)| i)
            .collect();
        out.sort_unstable();
        Some(out)
    }

    /// Whether some record satisfies every axiom and rule (`None`: z3 gave up).
    pub fn consistent(&mut self) -> Option<bool> {
        match self.solver.check() {
            SatResult::Sat => Some(true),
            SatResult::Unsat => Some(false),
            SatResult::Unknown => None,
        }
    }

    fn check_with(&mut self, extra: &Bool) -> SatResult {
        self.solver.push();
        self.solver.assert(extra);
        let r = self.solver.check();
        if r != SatResult::Sat {
            self.solver.pop(1);
        }
        r
    }

    /// Whether the theory entails `q`, contradicts it, or neither.
    pub fn entails(&mut self, q: &Prop) -> Verdict {
        let b = self.lower(q);
        match self.check_with(&b.not()) {
            SatResult::Unsat => Verdict::Entailed,
            SatResult::Unknown => Verdict::Unknown {
                reason: self.unknown_reason(),
            },
            SatResult::Sat => {
                let counterexample = self.model_record(q);
                self.solver.pop(1);
                match self.check_with(&b) {
                    SatResult::Unsat => Verdict::Contradicted,
                    SatResult::Unknown => Verdict::Unknown {
                        reason: self.unknown_reason(),
                    },
                    SatResult::Sat => {
                        self.solver.pop(1);
                        Verdict::Contingent { counterexample }
                    }
                }
            }
        }
    }

    /// Whether `q` holds in every record the theory allows (`None`: z3 gave up).
    pub fn valid(&mut self, q: &Prop) -> Option<bool> {
        let b = self.lower(q);
        match self.check_with(&b.not()) {
            SatResult::Unsat => Some(true),
            SatResult::Sat => {
                self.solver.pop(1);
                Some(false)
            }
            SatResult::Unknown => None,
        }
    }

    fn unknown_reason(&self) -> String {
        self.solver
            .get_reason_unknown()
            .unwrap_or_else(|| "unknown".into())
    }

    /// A record the theory allows together with `extra`, with a value for every field;
    /// `Ok(None)` when there is none, `Err` when z3 gave up.
    pub fn find_record(&mut self, extra: &[Prop]) -> Result<Option<Vec<Value>>, String> {
        let parts: Vec<Bool> = extra.iter().map(|p| self.lower(p)).collect();
        let all = Bool::and(&parts);
        match self.check_with(&all) {
            SatResult::Unsat => Ok(None),
            SatResult::Unknown => Err(self.unknown_reason()),
            SatResult::Sat => {
                let record = self.model_values();
                self.solver.pop(1);
                record
                    .map(Some)
                    .ok_or_else(|| "z3 gave a model without values".into())
            }
        }
    }

    /// The model's value of each field.
    fn model_values(&self) -> Option<Vec<Value>> {
        let model = self.solver.get_model()?;
        let codes = self.codes();
        (0..self.vars.len())
            .map(|i| self.model_value(&model, &codes, FieldId(i as u32)))
            .collect()
    }

    /// The model's values of the fields `q` mentions, by field name.
    fn model_record(&self, q: &Prop) -> Vec<(String, Value)> {
        let Some(model) = self.solver.get_model() else {
            return Vec::new();
        };
        let codes = self.codes();
        q.fields()
            .into_iter()
            .filter_map(|id| {
                let field = self.schema.field(id);
                let value = self.model_value(&model, &codes, id)?;
                // Categorical values by their labels, as records write them.
                let shown = match field.domain.category(&value).and_then(|c| c.label.clone()) {
                    Some(label) => Value::Str(label),
                    None => value,
                };
                Some((field.name.clone(), shown))
            })
            .collect()
    }

    /// Texts by the integer codes the theory gives them.
    fn codes(&self) -> HashMap<i64, &str> {
        self.text_codes
            .iter()
            .map(|(k, v)| (*v, k.as_str()))
            .collect()
    }

    /// One field's value in `model` (texts by `codes`).
    fn model_value(&self, model: &Model, codes: &HashMap<i64, &str>, id: FieldId) -> Option<Value> {
        Some(match &self.vars[id.index()] {
            Z::I(x) => {
                let v = model.eval(x, true)?.as_i64()?;
                if field_kind(&self.schema, id) == Kind::Text {
                    Value::Str(
                        codes
                            .get(&v)
                            .map_or_else(|| format!("<text #{v}>"), |s| (*s).to_owned()),
                    )
                } else if self.schema.field(id).value_type == ValueType::Boolean {
                    Value::Bool(v != 0)
                } else {
                    Value::Int(v)
                }
            }
            Z::R(x) => {
                let (n, d) = model.eval(x, true)?.as_rational()?;
                Value::Real(n as f64 / d as f64)
            }
        })
    }
}

/// `num / den` as a z3 real (through text: the system libz3 lacks the 64-bit constructor).
fn rational(num: i64, den: i64) -> Real {
    Real::from_rational_str(&num.to_string(), &den.to_string())
        .expect("decimal digits are a numeral")
}

/// Categorical domains with more values than this are encoded by their range.
pub const LARGE_DOMAIN: usize = 256;

fn z_value(z: &Z) -> f64 {
    match z {
        Z::I(i) => i.as_i64().map_or(f64::NAN, |v| v as f64),
        Z::R(r) => r
            .as_rational()
            .map_or(f64::NAN, |(n, d)| n as f64 / d as f64),
    }
}

fn min_z(a: &Z, b: &Z) -> Z {
    if z_value(b) < z_value(a) {
        b.clone()
    } else {
        a.clone()
    }
}

fn max_z(a: &Z, b: &Z) -> Z {
    if z_value(b) > z_value(a) {
        b.clone()
    } else {
        a.clone()
    }
}

fn real_const(r: f64) -> Real {
    // Reals in packs come from decimal text; scale by a power of ten to keep them exact.
    let mut den: i64 = 1;
    let mut num = r;
    while num.fract() != 0.0 && den < 1_000_000_000_000 {
        num *= 10.0;
        den *= 10;
    }
    if num.abs() < 9e18 {
        rational(num.round() as i64, den)
    } else {
        rational(r as i64, 1)
    }
}

fn arith(op: ArithOp, a: Z, b: Z) -> Z {
    match (op, a, b) {
        (ArithOp::Div, a, b) => Z::R(a.real() / b.real()),
        (op, Z::I(x), Z::I(y)) => Z::I(match op {
            ArithOp::Add => x + y,
            ArithOp::Sub => x - y,
            _ => x * y,
        }),
        (op, a, b) => {
            let (x, y) = (a.real(), b.real());
            Z::R(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                _ => x * y,
            })
        }
    }
}

fn func(f: Func, args: &[Z]) -> Z {
    let all_int = args.iter().all(|a| matches!(a, Z::I(_)));
    match f {
        Func::Mod => match (&args[0], &args[1]) {
            (Z::I(x), Z::I(y)) => Z::I(x.modulo(y)),
            // The resolver only lets integer divisors through; a real dividend is floored.
            (x, Z::I(y)) => Z::I(x.real().to_int().modulo(y)),
            (x, y) => Z::I(x.real().to_int().modulo(y.real().to_int())),
        },
        Func::Sum | Func::Avg if all_int => {
            let ints: Vec<Int> = args
                .iter()
                .map(|a| {
                    if let Z::I(i) = a {
                        i.clone()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            let sum = Int::add(&ints);
            if f == Func::Sum {
                Z::I(sum)
            } else {
                Z::R(sum.to_real() / rational(args.len() as i64, 1))
            }
        }
        Func::Sum | Func::Avg => {
            let reals: Vec<Real> = args.iter().map(Z::real).collect();
            let sum = Real::add(&reals);
            if f == Func::Sum {
                Z::R(sum)
            } else {
                Z::R(sum / rational(args.len() as i64, 1))
            }
        }
        Func::Min | Func::Max => {
            let pick_left = |a: &Z, b: &Z| match (a, b) {
                (Z::I(x), Z::I(y)) => {
                    if f == Func::Min {
                        x.le(y)
                    } else {
                        x.ge(y)
                    }
                }
                _ => {
                    if f == Func::Min {
                        a.real().le(b.real())
                    } else {
                        a.real().ge(b.real())
                    }
                }
            };
            let mut acc = args[0].clone();
            for b in &args[1..] {
                let c = pick_left(&acc, b);
                acc = match (&acc, b) {
                    (Z::I(x), Z::I(y)) => Z::I(c.ite(x, y)),
                    _ => Z::R(c.ite(&acc.real(), &b.real())),
                };
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rulepacks::parse_formula;
    use rulepacks::resolve::resolve;
    use rulepacks::schema::{Category, Field};

    fn field(name: &str, value_type: ValueType, domain: Domain) -> Field {
        Field::plain(name, value_type, domain)
    }

    fn schema() -> Schema {
        let cat = |values: &[(i64, &str)]| Domain::Categorical {
            values: values
                .iter()
                .map(|(v, l)| Category {
                    value: Value::Int(*v),
                    label: Some((*l).into()),
                })
                .collect(),
        };
        let mut total = field(
            "Total",
            ValueType::Integer,
            Domain::Integer {
                min: 0,
                max: 1000,
                multiple_of: None,
            },
        );
        total.definition = Some(rulepacks::Term::binary(
            ArithOp::Add,
            rulepacks::Term::symbol("Packets"),
            rulepacks::Term::symbol("Bytes"),
        ));
        Schema::new(vec![
            field(
                "Proto",
                ValueType::Categorical,
                cat(&[(0, "TCP"), (1, "UDP")]),
            ),
            field(
                "Flags",
                ValueType::Categorical,
                cat(&[(0, "noflags"), (1, "hasflags")]),
            ),
            field(
                "Packets",
                ValueType::Integer,
                Domain::Integer {
                    min: 1,
                    max: 100,
                    multiple_of: None,
                },
            ),
            field(
                "Bytes",
                ValueType::Integer,
                Domain::Integer {
                    min: 20,
                    max: 900,
                    multiple_of: Some(4),
                },
            ),
            field(
                "src",
                ValueType::Categorical,
                Domain::Categorical {
                    values: vec![
                        Category {
                            value: "a".into(),
                            label: None,
                        },
                        Category {
                            value: "b".into(),
                            label: None,
                        },
                    ],
                },
            ),
            field(
                "dst",
                ValueType::Categorical,
                Domain::Categorical {
                    values: vec![
                        Category {
                            value: "b".into(),
                            label: None,
                        },
                        Category {
                            value: "c".into(),
                            label: None,
                        },
                    ],
                },
            ),
            total,
        ])
        .unwrap()
    }

    fn prop(s: &Schema, text: &str) -> Prop {
        resolve(&parse_formula(text).unwrap(), s).unwrap()
    }

    #[test]
    fn domains_alone_decide_some_queries() {
        let s = schema();
        let mut t = Theory::new(&s, 5000);
        assert_eq!(t.entails(&prop(&s, "Proto <= 1")), Verdict::Entailed);
        assert_eq!(t.entails(&prop(&s, "MOD(Bytes, 4) = 0")), Verdict::Entailed);
        assert_eq!(t.entails(&prop(&s, "Proto = 2")), Verdict::Contradicted);
        assert_eq!(
            t.entails(&prop(&s, "Total = Packets + Bytes")),
            Verdict::Entailed
        );
        // src = dst only when both are "b".
        assert!(matches!(
            t.entails(&prop(&s, "src = dst")),
            Verdict::Contingent { .. }
        ));
        assert_eq!(
            t.entails(&prop(&s, "src = dst -> dst = 'b'")),
            Verdict::Entailed
        );
    }

    #[test]
    fn rules_entail_what_follows_from_them() {
        let s = schema();
        let mut t = Theory::new(&s, 5000);
        t.assert(&prop(&s, "Proto = UDP -> Flags = noflags"));
        t.assert(&prop(&s, "42 * Packets <= Bytes"));
        assert_eq!(
            t.entails(&prop(&s, "Flags = hasflags -> Proto = TCP")),
            Verdict::Entailed
        );
        assert_eq!(
            t.entails(&prop(&s, "(Proto = UDP) -> (8 * Packets <= Bytes)")),
            Verdict::Entailed
        );
        let Verdict::Contingent { counterexample } =
            t.entails(&prop(&s, "Proto = TCP -> Flags = hasflags"))
        else {
            panic!("expected a counterexample");
        };
        let names: Vec<&str> = counterexample.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Proto", "Flags"]);
        assert_eq!(
            counterexample[0].1,
            Value::Str("TCP".into()),
            "labels, as records write them"
        );
        assert_eq!(t.consistent(), Some(true));
        t.assert(&prop(&s, "Bytes < 20"));
        assert_eq!(t.consistent(), Some(false));
    }

    #[test]
    fn validity_sees_tautologies() {
        let s = schema();
        let mut t = Theory::new(&s, 5000);
        assert_eq!(
            t.valid(&prop(&s, "Packets + 1 <= Bytes OR Packets + 1 >= Bytes")),
            Some(true)
        );
        assert_eq!(t.valid(&prop(&s, "Packets <= Bytes")), Some(false));
        assert_eq!(
            t.valid(&prop(&s, "AVG(Packets, Bytes) * 2 = Packets + Bytes")),
            Some(true)
        );
        assert_eq!(
            t.valid(&prop(&s, "MAX(Packets, Bytes) >= MIN(Packets, Bytes)")),
            Some(true)
        );
    }
}
