//! Predicate generation: the grammar's templates, grounded on the prepared fields.
//!
//! This follows the reference implementation template by template, so that its grammars
//! yield the same predicates here: fields are chosen by selectors (names, regex, types,
//! roles, window family), constants by mode (explicit values, the field's domain, data
//! profiles, the spec's field constants), and pairs of terms only when they are
//! comparable — ordering comparisons need ordered numeric terms of the same comparison
//! group (the first of the roles `size`, `count`, `time`, `sequence` a field has; a
//! sequence number plus a size is a sequence number).  Quantifier templates project
//! "for all/some window positions k: f[k] op c" onto MIN/MAX of the family (or onto a
//! finite conjunction/disjunction for `=` and `!=`).
//!
//! Extensions of the reference's term kinds: `mod` (`MOD(field, c)`), `product`
//! (`field * other_field`) and `aggregate` (MIN/MAX/SUM/AVG over a window family).

use std::collections::BTreeMap;

use rulepacks::resolve::{Prop, closest, resolve};
use rulepacks::schema::{Role, Schema, ValueType};
use rulepacks::{ArithOp, CmpOp, Formula, Func, Term, Value};

use crate::prepare::{Dataset, FieldInfo};
use crate::profile;
use crate::spec::{
    ConstantKind, ConstantMode, ConstantSelectorSpec, GrammarSpec, PredicateTemplateSpec,
    Quantifier, QuantifierTemplateSpec, TermKind, TermTemplateSpec, VariableSelectorSpec,
};

/// A grounded predicate.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    pub formula: Formula,
    /// The formula as text (also its identity: two templates making the same text make one
    /// predicate).
    pub text: String,
    pub template: String,
    pub prop: Prop,
}

/// A term a template generated, with what compatibility checks need.
#[derive(Clone, Debug)]
struct GenTerm {
    term: Term,
    fields: Vec<usize>,
    ordered_numeric: bool,
    group: Option<Role>,
    value_type: ValueType,
    /// Scalar and product terms compare with any ordered numeric term.
    scaled: bool,
}

impl GenTerm {
    fn has_field(&self) -> bool {
        !self.fields.is_empty()
    }
}

struct Generator<'a> {
    dataset: &'a Dataset,
    /// User functions of `function` terms: the component as the grammar names it, and the
    /// function's name.
    functions: &'a BTreeMap<String, String>,
    /// Window families: name to member field indices in window order.
    families: BTreeMap<String, Vec<usize>>,
    warnings: Vec<String>,
}

/// The predicates of `grammar` on `dataset`, sorted by text; warnings for templates that
/// produced nothing.
///
/// `functions` names the function of each component that `function` terms use (the
/// caller loads them and binds them to `schema`).
pub fn generate(
    dataset: &Dataset,
    schema: &Schema,
    grammar: &GrammarSpec,
    functions: &BTreeMap<String, String>,
) -> Result<(Vec<Predicate>, Vec<String>), String> {
    let mut g = Generator {
        dataset,
        functions,
        families: dataset.families(),
        warnings: Vec::new(),
    };
    let mut candidates: BTreeMap<String, (Formula, String)> = BTreeMap::new();
    for t in &grammar.predicate_templates {
        let before = candidates.len();
        g.predicate_template(t, &mut candidates)
            .map_err(|e| format!("template `{}`: {e}", t.name))?;
        if candidates.len() == before {
            g.warnings.push(format!(
                "template `{}` made no new predicate on this data",
                t.name
            ));
        }
    }
    for t in &grammar.quantifier_templates {
        let before = candidates.len();
        g.quantifier_template(t, &mut candidates)
            .map_err(|e| format!("quantifier template `{}`: {e}", t.name))?;
        if candidates.len() == before {
            g.warnings.push(format!(
                "quantifier template `{}` made no new predicate on this data",
                t.name
            ));
        }
    }
    let mut out = Vec::with_capacity(candidates.len());
    for (text, (formula, template)) in candidates {
        let prop = resolve(&formula, schema).map_err(|e| format!("predicate `{text}`: {e}"))?;
        out.push(Predicate {
            formula,
            text,
            template,
            prop,
        });
    }
    Ok((out, g.warnings))
}

fn insert(candidates: &mut BTreeMap<String, (Formula, String)>, formula: Formula, template: &str) {
    candidates
        .entry(formula.to_string())
        .or_insert_with(|| (formula, template.to_owned()));
}

impl Generator<'_> {
    fn info(&self, i: usize) -> &FieldInfo {
        &self.dataset.fields[i]
    }

    fn predicate_template(
        &mut self,
        t: &PredicateTemplateSpec,
        out: &mut BTreeMap<String, (Formula, String)>,
    ) -> Result<(), String> {
        if t.lhs_term.is_some() || t.rhs_term.is_some() {
            let lhs_spec = t
                .lhs_term
                .clone()
                .unwrap_or_else(|| field_term(t.lhs.clone()));
            let rhs_spec = match (&t.rhs_term, &t.rhs_field, &t.rhs_constant) {
                (Some(r), _, _) => r.clone(),
                (None, Some(f), _) => field_term(Some(f.clone())),
                (None, None, Some(c)) => TermTemplateSpec {
                    kind: TermKind::Constant,
                    constant: Some(c.clone()),
                    ..field_term(None)
                },
                _ => return Err("no right-hand side".into()),
            };
            let lhs = self.terms(&lhs_spec)?;
            let rhs = self.terms(&rhs_spec)?;
            for l in &lhs {
                for r in &rhs {
                    if !t.allow_same_field && l.fields.iter().any(|f| r.fields.contains(f)) {
                        continue;
                    }
                    if !compatible_terms(l, r, &t.operators) {
                        continue;
                    }
                    for op in &t.operators {
                        insert(
                            out,
                            Formula::compare(*op, l.term.clone(), r.term.clone()),
                            &t.name,
                        );
                    }
                }
            }
            return Ok(());
        }
        let lhs = self.select(t.lhs.as_ref().expect("checked by the grammar"))?;
        if let Some(sel) = &t.rhs_field {
            let rhs = self.select(sel)?;
            for &l in &lhs {
                for &r in &rhs {
                    if (l == r && !t.allow_same_field)
                        || !self.compatible_fields(l, r, &t.operators)
                    {
                        continue;
                    }
                    for op in &t.operators {
                        let f = Formula::compare(*op, self.symbol(l), self.symbol(r));
                        insert(out, f, &t.name);
                    }
                }
            }
        }
        if let Some(sel) = &t.rhs_constant {
            for &l in &lhs {
                for (value, _) in self.constants(l, sel) {
                    if t.operators.iter().any(|o| o.is_ordering())
                        && (!self.ordered_numeric(l) || matches!(value, Value::Str(_)))
                    {
                        continue;
                    }
                    for op in &t.operators {
                        let f =
                            Formula::compare(*op, self.symbol(l), Term::constant(value.clone()));
                        insert(out, f, &t.name);
                    }
                }
            }
        }
        Ok(())
    }

    fn quantifier_template(
        &mut self,
        t: &QuantifierTemplateSpec,
        out: &mut BTreeMap<String, (Formula, String)>,
    ) -> Result<(), String> {
        let families: Vec<(String, Vec<usize>)> = self
            .families
            .iter()
            .filter(|(name, members)| {
                let first = self.info(members[0]);
                let s = &t.selector;
                s.context_family.as_ref().is_none_or(|c| c == *name)
                    && (s.types.is_empty() || s.types.contains(&first.value_type))
                    && (s.roles.is_empty() || s.roles.iter().any(|r| first.roles.contains(r)))
            })
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        for (family, members) in families {
            for (value, _) in self.family_constants(&members, &t.constant) {
                for op in &t.operators {
                    let f = self.project(t.quantifier, &family, &members, *op, &value);
                    insert(out, f, &t.name);
                }
            }
        }
        Ok(())
    }

    /// "for all (some) k: family[k] op c" as an aggregate comparison or a finite formula.
    fn project(
        &self,
        q: Quantifier,
        family: &str,
        members: &[usize],
        op: CmpOp,
        c: &Value,
    ) -> Formula {
        let forall = q == Quantifier::Forall;
        let function = match op {
            CmpOp::Gt | CmpOp::Ge => Some(if forall { Func::Min } else { Func::Max }),
            CmpOp::Lt | CmpOp::Le => Some(if forall { Func::Max } else { Func::Min }),
            CmpOp::Eq | CmpOp::Ne => None,
        };
        if let Some(function) = function {
            let agg = Term::Aggregate {
                function,
                family: family.to_owned(),
            };
            return Formula::compare(op, agg, Term::constant(c.clone()));
        }
        let grounded: Vec<Formula> = members
            .iter()
            .map(|&m| Formula::compare(op, self.symbol(m), Term::constant(c.clone())))
            .collect();
        if forall {
            Formula::And { values: grounded }
        } else {
            Formula::Or { values: grounded }
        }
    }

    fn symbol(&self, i: usize) -> Term {
        Term::symbol(&self.info(i).name)
    }

    /// Fields a selector picks, in field order.  Names that are not fields are errors.
    fn select(&self, s: &VariableSelectorSpec) -> Result<Vec<usize>, String> {
        for name in s.names.iter().chain(&s.exclude) {
            if self.dataset.field_index(name).is_none() {
                return Err(self.unknown(name));
            }
        }
        let regex = s
            .regex
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        let candidates: Vec<usize> = if s.names.is_empty() {
            (0..self.dataset.fields.len()).collect()
        } else {
            s.names
                .iter()
                .filter_map(|n| self.dataset.field_index(n))
                .collect()
        };
        Ok(candidates
            .into_iter()
            .filter(|&i| {
                let f = self.info(i);
                regex.as_ref().is_none_or(|re| re.is_match(&f.name))
                    && !s.exclude.contains(&f.name)
                    && (s.types.is_empty() || s.types.contains(&f.value_type))
                    && (s.roles.is_empty() || s.roles.iter().any(|r| f.roles.contains(r)))
                    && s.derived_only.is_none_or(|d| d == f.is_derived())
                    && s.context_family
                        .as_ref()
                        .is_none_or(|c| f.family.as_ref() == Some(c))
                    && s.window_only.is_none_or(|w| w == f.family.is_some())
            })
            .collect())
    }

    fn unknown(&self, name: &str) -> String {
        let close = closest(name, self.dataset.fields.iter().map(|f| f.name.as_str()));
        if close.is_empty() {
            format!("unknown field `{name}`")
        } else {
            format!(
                "unknown field `{name}` (did you mean `{}`?)",
                close.join("`, `")
            )
        }
    }

    fn ordered_numeric(&self, i: usize) -> bool {
        let f = self.info(i);
        f.value_type.is_numeric()
            && f.enum_labels.is_empty()
            && !f
                .constants
                .iter()
                .any(|c| c.kind == ConstantKind::Assignment)
    }

    fn group(&self, i: usize) -> Option<Role> {
        if !self.ordered_numeric(i) {
            return None;
        }
        let roles = &self.info(i).roles;
        [Role::Size, Role::Count, Role::Time, Role::Sequence]
            .into_iter()
            .find(|r| roles.contains(r))
    }

    fn compatible_fields(&self, l: usize, r: usize, ops: &[CmpOp]) -> bool {
        if ops.iter().any(|o| o.is_ordering()) {
            return self.ordered_numeric(l)
                && self.ordered_numeric(r)
                && self.group(l).is_some()
                && self.group(l) == self.group(r);
        }
        let (a, b) = (self.info(l).value_type, self.info(r).value_type);
        a == b || (is_textual(a) && is_textual(b))
    }

    /// Constants for field `i` from a selector, with their labels.
    fn constants(&self, i: usize, s: &ConstantSelectorSpec) -> Vec<(Value, String)> {
        let info = self.info(i);
        let dedupe = |values: Vec<Value>| -> Vec<(Value, String)> {
            let mut out: Vec<(Value, String)> = Vec::new();
            for v in values {
                if !out.iter().any(|(x, _)| *x == v) {
                    out.push((v, String::new()));
                }
            }
            out
        };
        match s.mode {
            ConstantMode::Explicit => dedupe(s.values.clone()),
            ConstantMode::FieldConstants => dedupe(
                info.constants
                    .iter()
                    .filter(|c| s.kinds.is_empty() || s.kinds.contains(&c.kind))
                    .flat_map(|c| c.values.clone())
                    .collect(),
            ),
            ConstantMode::Domain => dedupe(match &info.declared_domain {
                Some(d) => d.clone(),
                None => profile::distinct_values(&self.dataset.columns[i], self.dataset),
            }),
            ConstantMode::Profile => {
                self.profile_constants(&[i], s, info.value_type == ValueType::Integer)
            }
        }
    }

    fn family_constants(
        &self,
        members: &[usize],
        s: &ConstantSelectorSpec,
    ) -> Vec<(Value, String)> {
        match s.mode {
            ConstantMode::Explicit => s
                .values
                .iter()
                .map(|v| (v.clone(), String::new()))
                .collect(),
            ConstantMode::Domain => {
                let mut all: Vec<Value> = members
                    .iter()
                    .flat_map(|&m| profile::distinct_values(&self.dataset.columns[m], self.dataset))
                    .collect();
                all.sort_by_key(Value::to_string);
                all.dedup();
                all.into_iter().map(|v| (v, String::new())).collect()
            }
            _ => {
                let integer = members
                    .iter()
                    .all(|&m| matches!(self.dataset.columns[m], crate::table::ColumnData::Int(_)));
                self.profile_constants(members, s, integer)
            }
        }
    }

    fn profile_constants(
        &self,
        columns: &[usize],
        s: &ConstantSelectorSpec,
        integer: bool,
    ) -> Vec<(Value, String)> {
        let cols: Vec<&crate::table::ColumnData> =
            columns.iter().map(|&c| &self.dataset.columns[c]).collect();
        let numeric = columns
            .iter()
            .all(|&c| self.info(c).value_type.is_numeric());
        if numeric
            && let Some(mut values) = cols
                .iter()
                .map(|c| profile::as_reals(c))
                .collect::<Option<Vec<_>>>()
        {
            let mut flat: Vec<f64> = values.iter_mut().flat_map(std::mem::take).collect();
            return profile::quantile_constants(&mut flat, &s.quantiles, integer);
        }
        profile::top_values(&cols, self.dataset, s.top_k)
    }

    /// The terms a term template generates.
    fn terms(&self, t: &TermTemplateSpec) -> Result<Vec<GenTerm>, String> {
        let sel = |s: &Option<VariableSelectorSpec>| {
            self.select(s.as_ref().expect("checked by the grammar"))
        };
        let mut out = Vec::new();
        match t.kind {
            TermKind::Field => {
                for i in sel(&t.field)? {
                    out.push(self.field_term(i));
                }
            }
            TermKind::Constant => {
                let c = t.constant.as_ref().expect("checked by the grammar");
                for v in &c.values {
                    out.push(constant_term(v));
                }
            }
            TermKind::Scalar | TermKind::Mod => {
                for i in sel(&t.field)? {
                    if !self.ordered_numeric(i) {
                        continue;
                    }
                    for (v, _) in self.constants(i, t.constant.as_ref().expect("checked")) {
                        if matches!(v, Value::Str(_))
                            || (t.kind == TermKind::Mod && !matches!(v, Value::Int(d) if d > 0))
                        {
                            continue;
                        }
                        out.push(self.scaled_term(i, &v, t.kind));
                    }
                }
            }
            TermKind::Addition => out.extend(self.addition_terms(t)?),
            TermKind::Product => {
                for l in sel(&t.field)? {
                    for r in sel(&t.other_field)? {
                        if (l == r && !t.allow_same_field)
                            || !self.ordered_numeric(l)
                            || !self.ordered_numeric(r)
                        {
                            continue;
                        }
                        let term = Term::binary(ArithOp::Mul, self.symbol(l), self.symbol(r));
                        let value_type = combine(self.info(l).value_type, self.info(r).value_type);
                        out.push(GenTerm {
                            term,
                            fields: vec![l, r],
                            ordered_numeric: true,
                            group: self.group(l),
                            value_type,
                            scaled: true,
                        });
                    }
                }
            }
            TermKind::Aggregate => out.extend(self.aggregate_terms(t)),
            TermKind::Function => out.extend(self.function_terms(t)?),
        }
        Ok(out)
    }

    /// Calls of a user function on each selected family, field or pair of fields.
    fn function_terms(&self, t: &TermTemplateSpec) -> Result<Vec<GenTerm>, String> {
        let component = t.component.as_deref().expect("checked by the grammar");
        let name = self
            .functions
            .get(component)
            .ok_or_else(|| format!("component {component} was not loaded"))?;
        let call = |family: Option<String>, args: Vec<usize>, fields: Vec<usize>| GenTerm {
            term: Term::User {
                function: name.clone(),
                family,
                args: args.iter().map(|&i| self.symbol(i)).collect(),
            },
            fields,
            ordered_numeric: true,
            group: None,
            value_type: ValueType::Real,
            // A function's value has no unit: compare it with any ordered numeric term.
            scaled: true,
        };
        let mut out = Vec::new();
        if let Some(s) = &t.family {
            for (family, members) in self.selected_families(s) {
                out.push(call(Some(family), vec![], members));
            }
            return Ok(out);
        }
        let numeric = |i: &usize| self.info(*i).value_type.is_numeric();
        let lhs: Vec<usize> = self
            .select(t.field.as_ref().expect("checked by the grammar"))?
            .into_iter()
            .filter(numeric)
            .collect();
        match &t.other_field {
            None => out.extend(lhs.iter().map(|&l| call(None, vec![l], vec![l]))),
            Some(other) => {
                let rhs: Vec<usize> = self.select(other)?.into_iter().filter(numeric).collect();
                for &l in &lhs {
                    for &r in &rhs {
                        if l != r || t.allow_same_field {
                            out.push(call(None, vec![l, r], vec![l, r]));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn field_term(&self, i: usize) -> GenTerm {
        GenTerm {
            term: self.symbol(i),
            fields: vec![i],
            ordered_numeric: self.ordered_numeric(i),
            group: self.group(i),
            value_type: self.info(i).value_type,
            scaled: false,
        }
    }

    fn scaled_term(&self, i: usize, v: &Value, kind: TermKind) -> GenTerm {
        let (term, group, scaled) = if kind == TermKind::Mod {
            (
                Term::call(Func::Mod, vec![self.symbol(i), Term::constant(v.clone())]),
                None,
                false,
            )
        } else {
            (
                Term::binary(ArithOp::Mul, self.symbol(i), Term::constant(v.clone())),
                self.group(i),
                true,
            )
        };
        let value_type = if kind == TermKind::Mod {
            ValueType::Integer
        } else {
            combine(self.info(i).value_type, value_type_of(v))
        };
        GenTerm {
            term,
            fields: vec![i],
            ordered_numeric: true,
            group,
            value_type,
            scaled,
        }
    }

    fn addition_terms(&self, t: &TermTemplateSpec) -> Result<Vec<GenTerm>, String> {
        let left = self.select(t.field.as_ref().expect("checked"))?;
        let mut out = Vec::new();
        if let Some(other) = &t.other_field {
            let right = self.select(other)?;
            for &l in &left {
                for &r in &right {
                    if (l == r && !t.allow_same_field)
                        || !self.ordered_numeric(l)
                        || !self.ordered_numeric(r)
                    {
                        continue;
                    }
                    let Some(group) = addition_group(self.group(l), self.group(r)) else {
                        continue;
                    };
                    out.push(GenTerm {
                        term: Term::binary(ArithOp::Add, self.symbol(l), self.symbol(r)),
                        fields: vec![l, r],
                        ordered_numeric: true,
                        group: Some(group),
                        value_type: combine(self.info(l).value_type, self.info(r).value_type),
                        scaled: false,
                    });
                }
            }
        }
        if let Some(c) = &t.constant {
            for &l in &left {
                if !self.ordered_numeric(l) {
                    continue;
                }
                for (v, _) in self.constants(l, c) {
                    if matches!(v, Value::Str(_)) {
                        continue;
                    }
                    out.push(GenTerm {
                        term: Term::binary(ArithOp::Add, self.symbol(l), Term::constant(v.clone())),
                        fields: vec![l],
                        ordered_numeric: true,
                        group: self.group(l),
                        value_type: combine(self.info(l).value_type, value_type_of(&v)),
                        scaled: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The window families a selector picks (of ordered numeric members), by name.
    fn selected_families(&self, s: &VariableSelectorSpec) -> Vec<(String, Vec<usize>)> {
        let regex = s.regex.as_deref().and_then(|r| regex::Regex::new(r).ok());
        self.families
            .iter()
            .filter(|(name, members)| {
                let first = self.info(members[0]);
                (s.names.is_empty() || s.names.contains(name))
                    && regex.as_ref().is_none_or(|re| re.is_match(name))
                    && (s.types.is_empty() || s.types.contains(&first.value_type))
                    && (s.roles.is_empty() || s.roles.iter().any(|r| first.roles.contains(r)))
                    && members.iter().all(|&m| self.ordered_numeric(m))
            })
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect()
    }

    fn aggregate_terms(&self, t: &TermTemplateSpec) -> Vec<GenTerm> {
        let s = t.family.clone().unwrap_or_default();
        let function = t.function.unwrap_or(Func::Sum);
        self.selected_families(&s)
            .into_iter()
            .map(|(name, members)| GenTerm {
                term: Term::Aggregate {
                    function,
                    family: name,
                },
                fields: members.clone(),
                ordered_numeric: true,
                group: self.group(members[0]),
                value_type: if function == Func::Avg {
                    ValueType::Real
                } else {
                    self.info(members[0]).value_type
                },
                scaled: false,
            })
            .collect()
    }
}

fn field_term(field: Option<VariableSelectorSpec>) -> TermTemplateSpec {
    TermTemplateSpec {
        kind: TermKind::Field,
        field,
        other_field: None,
        constant: None,
        allow_same_field: false,
        description: String::new(),
        function: None,
        family: None,
        component: None,
    }
}

fn constant_term(v: &Value) -> GenTerm {
    GenTerm {
        term: Term::constant(v.clone()),
        fields: vec![],
        ordered_numeric: false,
        group: None,
        value_type: value_type_of(v),
        scaled: false,
    }
}

fn value_type_of(v: &Value) -> ValueType {
    match v {
        Value::Bool(_) => ValueType::Boolean,
        Value::Int(_) => ValueType::Integer,
        Value::Real(_) => ValueType::Real,
        Value::Str(_) => ValueType::String,
    }
}

fn is_textual(t: ValueType) -> bool {
    matches!(t, ValueType::Categorical | ValueType::String)
}

fn combine(a: ValueType, b: ValueType) -> ValueType {
    if a == ValueType::Real || b == ValueType::Real {
        ValueType::Real
    } else {
        ValueType::Integer
    }
}

fn addition_group(l: Option<Role>, r: Option<Role>) -> Option<Role> {
    match (l?, r?) {
        (a, b) if a == b => Some(a),
        (Role::Sequence, Role::Size) | (Role::Size, Role::Sequence) => Some(Role::Sequence),
        _ => None,
    }
}

/// The reference's compatibility test for two terms under a set of operators.
fn compatible_terms(l: &GenTerm, r: &GenTerm, ops: &[CmpOp]) -> bool {
    let numeric = |t: ValueType| t.is_numeric();
    if ops.iter().any(|o| o.is_ordering()) {
        if !numeric(l.value_type) || !numeric(r.value_type) {
            return false;
        }
        return match (l.has_field(), r.has_field()) {
            (true, true) if l.scaled || r.scaled => l.ordered_numeric && r.ordered_numeric,
            (true, true) => {
                l.ordered_numeric && r.ordered_numeric && l.group.is_some() && l.group == r.group
            }
            (true, false) => l.ordered_numeric,
            (false, true) => r.ordered_numeric,
            (false, false) => true,
        };
    }
    if l.value_type == r.value_type {
        if numeric(l.value_type)
            && l.has_field()
            && r.has_field()
            && l.ordered_numeric
            && r.ordered_numeric
        {
            return l.scaled || r.scaled || (l.group.is_some() && l.group == r.group);
        }
        return true;
    }
    if numeric(l.value_type) && numeric(r.value_type) {
        return true;
    }
    is_textual(l.value_type) && is_textual(r.value_type)
}
