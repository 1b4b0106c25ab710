//! Resolution of formulas against a schema.
//!
//! A resolved formula ([`Prop`]) names fields by [`FieldId`], has no quantifiers (each is
//! unrolled over its window positions), no implications, and has been type-checked: ordering
//! comparisons and arithmetic see numbers only, equality sees two values of one kind.
//! Evaluation, the solver and the enforcement engine all work on this form.

use std::collections::HashMap;
use std::sync::Arc;

use crate::formula::{ArithOp, CmpOp, Formula, Func, Index, Term};
use crate::schema::{Domain, FieldId, Schema, ValueType};
use crate::user::{Over, UserFunction};
use crate::value::Value;

/// A resolved term.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(Value),
    Field(FieldId),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Func(Func, Vec<Expr>),
    /// A user function on numeric arguments (a family's members, or terms).
    User(UserCall),
}

/// A call of a bound user function.
#[derive(Clone)]
pub struct UserCall {
    pub function: Arc<dyn UserFunction>,
    pub over: Over,
    pub args: Vec<Expr>,
}

/// The call as written, by the function's name: stable, so that it can key caches.
impl std::fmt::Debug for UserCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}{:?}", self.function.name(), self.over, self.args)
    }
}

impl PartialEq for UserCall {
    fn eq(&self, other: &UserCall) -> bool {
        self.function.name() == other.function.name()
            && self.over == other.over
            && self.args == other.args
    }
}

/// A resolved formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Prop {
    Const(bool),
    Cmp(CmpOp, Expr, Expr),
    Not(Box<Prop>),
    And(Vec<Prop>),
    Or(Vec<Prop>),
}

/// The kind of value a term has, for type checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Number,
    Text,
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "text",
            Kind::Bool => "a boolean",
        }
    }
}

/// A formula that does not fit the schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ResolveError> {
    Err(ResolveError(message.into()))
}

/// The kind of a field's values.
pub fn field_kind(schema: &Schema, id: FieldId) -> Kind {
    let field = schema.field(id);
    match field.value_type {
        ValueType::Integer | ValueType::Real => Kind::Number,
        ValueType::Boolean => Kind::Bool,
        ValueType::String => Kind::Text,
        ValueType::Categorical => match &field.domain {
            Domain::Categorical { values } if values.iter().all(|c| c.value.is_numeric()) => {
                if values.is_empty() {
                    Kind::Text
                } else {
                    Kind::Number
                }
            }
            _ => Kind::Text,
        },
    }
}

fn value_kind(value: &Value) -> Kind {
    match value {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Real(_) => Kind::Number,
        Value::Str(_) => Kind::Text,
    }
}

struct Resolver<'a> {
    schema: &'a Schema,
    env: HashMap<String, u32>,
}

impl Resolver<'_> {
    fn prop(&mut self, formula: &Formula) -> Result<Prop, ResolveError> {
        Ok(match formula {
            Formula::Bool { value } => Prop::Const(*value),
            Formula::Not { value } => Prop::Not(Box::new(self.prop(value)?)),
            Formula::And { values } => Prop::And(self.props(values)?),
            Formula::Or { values } => Prop::Or(self.props(values)?),
            Formula::Implies { left, right } => Prop::Or(vec![
                Prop::Not(Box::new(self.prop(left)?)),
                self.prop(right)?,
            ]),
            Formula::Forall {
                variable,
                domain,
                body,
            } => Prop::And(self.unroll(variable, domain, body)?),
            Formula::Exists {
                variable,
                domain,
                body,
            } => Prop::Or(self.unroll(variable, domain, body)?),
            Formula::Compare { op, left, right } => self.compare(*op, left, right)?,
        })
    }

    fn props(&mut self, values: &[Formula]) -> Result<Vec<Prop>, ResolveError> {
        values.iter().map(|v| self.prop(v)).collect()
    }

    fn unroll(
        &mut self,
        variable: &str,
        domain: &[u32],
        body: &Formula,
    ) -> Result<Vec<Prop>, ResolveError> {
        if domain.is_empty() {
            return err(format!("quantifier over `{variable}` has an empty domain"));
        }
        let shadowed = self.env.get(variable).copied();
        let mut out = Vec::with_capacity(domain.len());
        for &position in domain {
            self.env.insert(variable.to_owned(), position);
            out.push(self.prop(body));
        }
        match shadowed {
            Some(p) => self.env.insert(variable.to_owned(), p),
            None => self.env.remove(variable),
        };
        out.into_iter().collect()
    }

    fn compare(&mut self, op: CmpOp, left: &Term, right: &Term) -> Result<Prop, ResolveError> {
        // A bare name that is not a field may be a label of the field on the other side
        // (`Proto = TCP`).
        let (left_expr, right_expr) = match (self.label(left, right), self.label(right, left)) {
            (Some(value), None) => (Expr::Const(value), self.term(right)?.0),
            (None, Some(value)) => (self.term(left)?.0, Expr::Const(value)),
            _ => {
                self.no_such_label(left, right)?;
                self.no_such_label(right, left)?;
                (self.term(left)?.0, self.term(right)?.0)
            }
        };
        let (lk, rk) = (self.kind(&left_expr), self.kind(&right_expr));
        if op.is_ordering() && (lk != Kind::Number || rk != Kind::Number) {
            return err(format!(
                "`{left} {op} {right}` orders {} and {}; `{op}` needs numbers on both sides",
                lk.name(),
                rk.name()
            ));
        }
        if lk != rk
            && !(matches!(lk, Kind::Bool | Kind::Number) && matches!(rk, Kind::Bool | Kind::Number))
        {
            return err(format!(
                "`{left} {op} {right}` compares {} with {}",
                lk.name(),
                rk.name()
            ));
        }
        Ok(Prop::Cmp(op, left_expr, right_expr))
    }

    fn label(&self, candidate: &Term, other: &Term) -> Option<Value> {
        // A name that is not a field, or quoted text next to a field with coded values.
        let name = match candidate {
            Term::Symbol { name } if self.schema.id(name).is_none() => name,
            Term::Constant {
                value: Value::Str(text),
            } => text,
            _ => return None,
        };
        let field = match other {
            Term::Symbol { name } => self.schema.by_name(name)?,
            Term::Indexed { base, index } => {
                let position = match index {
                    Index::Position(p) => *p,
                    Index::Variable(v) => *self.env.get(v)?,
                };
                let id = *self.schema.family(base)?.get(position as usize)?;
                self.schema.field(id)
            }
            _ => return None,
        };
        let category = field.domain.category_by_label(name)?;
        // Quoted text already compares with text values as it is.
        match (candidate, &category.value) {
            (Term::Constant { .. }, Value::Str(_)) => None,
            _ => Some(category.value.clone()),
        }
    }

    /// A bare name that is neither a field nor a label of the categorical field it is
    /// compared with: say so, with the field's labels.
    fn no_such_label(&self, candidate: &Term, other: &Term) -> Result<(), ResolveError> {
        let (Term::Symbol { name }, Term::Symbol { name: field }) = (candidate, other) else {
            return Ok(());
        };
        if self.schema.id(name).is_some() {
            return Ok(());
        }
        let Some(Domain::Categorical { values }) = self.schema.by_name(field).map(|f| &f.domain)
        else {
            return Ok(());
        };
        let labels: Vec<String> = values
            .iter()
            .map(crate::schema::Category::label_or_value)
            .collect();
        let hint = match closest(name, labels.iter().map(String::as_str)).first() {
            Some(c) => format!(" (did you mean `{c}`?)"),
            None => {
                let shown: Vec<&str> = labels.iter().take(12).map(String::as_str).collect();
                let more = if labels.len() > 12 { ", …" } else { "" };
                format!(" (its values: {}{more})", shown.join(", "))
            }
        };
        err(format!(
            "`{name}` is neither a field nor a value of `{field}`{hint}"
        ))
    }

    fn kind(&self, expr: &Expr) -> Kind {
        match expr {
            Expr::Const(v) => value_kind(v),
            Expr::Field(id) => field_kind(self.schema, *id),
            Expr::Arith(..) | Expr::Func(..) | Expr::User(..) => Kind::Number,
        }
    }

    fn term(&mut self, term: &Term) -> Result<(Expr, Kind), ResolveError> {
        let expr = match term {
            Term::Constant { value } => {
                if let Value::Real(r) = value
                    && !r.is_finite()
                {
                    return err(format!("constant `{r}` is not a finite number"));
                }
                Expr::Const(value.clone())
            }
            Term::Symbol { name } => match self.schema.id(name) {
                Some(id) => Expr::Field(id),
                None => return err(self.unknown_field(name)),
            },
            Term::Indexed { base, index } => Expr::Field(self.member(base, index)?),
            Term::Binary { op, left, right } => {
                let l = self.numeric(left, term)?;
                let r = self.numeric(right, term)?;
                if *op == ArithOp::Div
                    && matches!(&r, Expr::Const(v) if v.as_num().is_some_and(|n| n.to_f64() == 0.0))
                {
                    return err(format!("`{term}` divides by zero"));
                }
                Expr::Arith(*op, Box::new(l), Box::new(r))
            }
            Term::Call { name, args } => self.call(*name, args, term)?,
            Term::Aggregate { function, family } => {
                if *function == Func::Mod {
                    return err(format!("`{term}`: MOD takes two arguments, not a family"));
                }
                let Some(members) = self.schema.family(family) else {
                    return err(format!("`{term}`: unknown window family `{family}`"));
                };
                let args: Vec<Expr> = members.iter().map(|id| Expr::Field(*id)).collect();
                for id in members {
                    if field_kind(self.schema, *id) != Kind::Number {
                        let name = &self.schema.field(*id).name;
                        return err(format!("`{term}`: member `{name}` is not numeric"));
                    }
                }
                Expr::Func(*function, args)
            }
            Term::User {
                function,
                family,
                args,
            } => {
                let Some(bound) = self.schema.function(function).cloned() else {
                    let known = self.schema.function_names();
                    return err(format!(
                        "`{term}`: unknown function `{function}`: not MIN, MAX, SUM, AVG or MOD, \
                         and no user function of that name is loaded{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (loaded: {})", known.join(", "))
                        }
                    ));
                };
                let (over, args) = match family {
                    Some(family) => {
                        if !args.is_empty() {
                            return err(format!(
                                "`{term}`: a call takes a whole family or arguments, not both"
                            ));
                        }
                        let Some(members) = self.schema.family(family) else {
                            return err(format!("`{term}`: unknown window family `{family}`"));
                        };
                        for id in members {
                            if field_kind(self.schema, *id) != Kind::Number {
                                let name = &self.schema.field(*id).name;
                                return err(format!("`{term}`: member `{name}` is not numeric"));
                            }
                        }
                        let args = members.iter().map(|id| Expr::Field(*id)).collect();
                        (Over::Family, args)
                    }
                    None => {
                        if let Some(n) = bound.arity()
                            && n != args.len()
                        {
                            return err(format!(
                                "`{term}`: function `{function}` takes {n} values, not {}",
                                args.len()
                            ));
                        }
                        let mut out = Vec::with_capacity(args.len());
                        for a in args {
                            out.push(self.numeric(a, term)?);
                        }
                        (Over::Fields, out)
                    }
                };
                Expr::User(UserCall {
                    function: bound,
                    over,
                    args,
                })
            }
        };
        let kind = self.kind(&expr);
        Ok((expr, kind))
    }

    fn numeric(&mut self, term: &Term, whole: &Term) -> Result<Expr, ResolveError> {
        let (expr, kind) = self.term(term)?;
        if kind != Kind::Number {
            return err(format!(
                "`{whole}`: `{term}` is {}, arithmetic needs numbers",
                kind.name()
            ));
        }
        Ok(expr)
    }

    fn call(&mut self, func: Func, args: &[Term], whole: &Term) -> Result<Expr, ResolveError> {
        if args.is_empty() {
            return err(format!("`{whole}`: {} needs arguments", func.name()));
        }
        let args = args
            .iter()
            .map(|a| self.numeric(a, whole))
            .collect::<Result<Vec<_>, _>>()?;
        if func == Func::Mod {
            let positive = matches!(args.get(1), Some(Expr::Const(Value::Int(d))) if *d > 0);
            if args.len() != 2 || !positive {
                return err(format!(
                    "`{whole}`: MOD takes a term and a positive integer divisor"
                ));
            }
        }
        Ok(Expr::Func(func, args))
    }

    fn member(&self, base: &str, index: &Index) -> Result<FieldId, ResolveError> {
        let position = match index {
            Index::Position(p) => *p,
            Index::Variable(v) => match self.env.get(v) {
                Some(p) => *p,
                None => return err(format!("`{base}[{v}]`: variable `{v}` is not bound")),
            },
        };
        let Some(members) = self.schema.family(base) else {
            return err(format!("`{base}[{index}]`: unknown window family `{base}`"));
        };
        match members.get(position as usize) {
            Some(id) => Ok(*id),
            None => err(format!(
                "`{base}[{index}]`: position {position} is outside window family `{base}` \
                 (positions 0 to {})",
                members.len() - 1
            )),
        }
    }

    fn unknown_field(&self, name: &str) -> String {
        let names = self.schema.fields().iter().map(|f| f.name.as_str());
        let close = closest(name, names);
        if close.is_empty() {
            format!("unknown field `{name}`")
        } else {
            format!(
                "unknown field `{name}` (did you mean `{}`?)",
                close.join("`, `")
            )
        }
    }
}

/// The candidates nearest to `name` within two edits (ignoring case), nearest first, at
/// most three: a hint for typos.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = distance(&c.to_lowercase(), &name.to_lowercase());
            (d <= 2).then_some((d, c))
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    let best = scored.first().map_or(0, |(d, _)| *d);
    scored
        .into_iter()
        .take_while(|(d, _)| *d == best)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

/// Levenshtein distance, giving up (returning 3) past two edits of length difference.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return 3;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Resolves `formula` against `schema`.
pub fn resolve(formula: &Formula, schema: &Schema) -> Result<Prop, ResolveError> {
    Resolver {
        schema,
        env: HashMap::new(),
    }
    .prop(formula)
}

/// Each field's definition, resolved: `None` for a field without one, or whose definition
/// does not resolve (loading a pack refuses those, naming the field).
pub fn definitions(schema: &Schema) -> Vec<Option<Expr>> {
    schema
        .fields()
        .iter()
        .map(|f| {
            f.definition
                .as_ref()
                .and_then(|d| resolve_term(d, schema).ok())
        })
        .collect()
}

/// Resolves a term (a derived field's definition, say) against `schema`.
pub fn resolve_term(term: &Term, schema: &Schema) -> Result<Expr, ResolveError> {
    Resolver {
        schema,
        env: HashMap::new(),
    }
    .term(term)
    .map(|(e, _)| e)
}

impl Prop {
    /// Calls `f` on every field the formula reads.
    pub fn visit_fields(&self, f: &mut impl FnMut(FieldId)) {
        match self {
            Prop::Const(_) => {}
            Prop::Cmp(_, l, r) => {
                l.visit_fields(f);
                r.visit_fields(f);
            }
            Prop::Not(p) => p.visit_fields(f),
            Prop::And(ps) | Prop::Or(ps) => ps.iter().for_each(|p| p.visit_fields(f)),
        }
    }

    /// Whether the formula calls a user function anywhere.
    pub fn calls_user(&self) -> bool {
        match self {
            Prop::Const(_) => false,
            Prop::Cmp(_, l, r) => l.calls_user() || r.calls_user(),
            Prop::Not(p) => p.calls_user(),
            Prop::And(ps) | Prop::Or(ps) => ps.iter().any(Prop::calls_user),
        }
    }

    /// The fields the formula reads, sorted and without repeats.
    pub fn fields(&self) -> Vec<FieldId> {
        let mut out = Vec::new();
        self.visit_fields(&mut |id| out.push(id));
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Expr {
    /// Whether the term calls a user function anywhere.
    pub fn calls_user(&self) -> bool {
        match self {
            Expr::Const(_) | Expr::Field(_) => false,
            Expr::Arith(_, l, r) => l.calls_user() || r.calls_user(),
            Expr::Func(_, args) => args.iter().any(Expr::calls_user),
            Expr::User(_) => true,
        }
    }

    pub fn visit_fields(&self, f: &mut impl FnMut(FieldId)) {
        match self {
            Expr::Const(_) => {}
            Expr::Field(id) => f(*id),
            Expr::Arith(_, l, r) => {
                l.visit_fields(f);
                r.visit_fields(f);
            }
            Expr::Func(_, args) => args.iter().for_each(|a| a.visit_fields(f)),
            Expr::User(call) => call.args.iter().for_each(|a| a.visit_fields(f)),
        }
    }
}
