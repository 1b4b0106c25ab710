//! The grammar: which predicates the miner may build, and how large rules may be.

use std::path::Path;

use rulepacks::schema::{Role, ValueType};
use rulepacks::{CmpOp, Func, Value};
use serde::Deserialize;

use super::dataset::ConstantKind;
use super::{SpecError, load_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstantMode {
    Explicit,
    Domain,
    Profile,
    FieldConstants,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantSelectorSpec {
    #[serde(default = "profile")]
    pub mode: ConstantMode,
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub kinds: Vec<ConstantKind>,
    #[serde(default = "ten")]
    pub top_k: usize,
    #[serde(default = "default_quantiles")]
    pub quantiles: Vec<f64>,
}

fn profile() -> ConstantMode {
    ConstantMode::Profile
}

fn ten() -> usize {
    10
}

fn default_quantiles() -> Vec<f64> {
    vec![0.25, 0.5, 0.75, 0.9]
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableSelectorSpec {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub types: Vec<ValueType>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub derived_only: Option<bool>,
    #[serde(default)]
    pub context_family: Option<String>,
    #[serde(default)]
    pub window_only: Option<bool>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermKind {
    Field,
    Constant,
    Scalar,
    Addition,
    /// *Extension*: `MOD(field, constant)`.
    Mod,
    /// *Extension*: `field * other_field`.
    Product,
    /// *Extension*: a function (`aggregate`) over a whole window family.
    Aggregate,
    /// *Extension*: a user function (a WebAssembly component) on a window family or on
    /// fields.
    Function,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermTemplateSpec {
    #[serde(default = "field_kind")]
    pub kind: TermKind,
    #[serde(default)]
    pub field: Option<VariableSelectorSpec>,
    #[serde(default)]
    pub other_field: Option<VariableSelectorSpec>,
    #[serde(default)]
    pub constant: Option<ConstantSelectorSpec>,
    #[serde(default)]
    pub allow_same_field: bool,
    #[serde(default)]
    pub description: String,
    /// *Extension*: for `aggregate`, the function (min, max, sum, avg).
    #[serde(default)]
    pub function: Option<Func>,
    /// *Extension*: for `aggregate` and `function`, which window families (matched by
    /// family name and by their members' types and roles).
    #[serde(default)]
    pub family: Option<VariableSelectorSpec>,
    /// *Extension*: for `function`, the component file (relative to the grammar file)
    /// whose function the term calls: on each family `family` selects, or on each field
    /// `field` selects (and, with `other_field`, on each pair).
    #[serde(default)]
    pub component: Option<String>,
}

fn field_kind() -> TermKind {
    TermKind::Field
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateTemplateSpec {
    pub name: String,
    #[serde(default)]
    pub lhs: Option<VariableSelectorSpec>,
    pub operators: Vec<CmpOp>,
    #[serde(default)]
    pub rhs_field: Option<VariableSelectorSpec>,
    #[serde(default)]
    pub rhs_constant: Option<ConstantSelectorSpec>,
    #[serde(default)]
    pub lhs_term: Option<TermTemplateSpec>,
    #[serde(default)]
    pub rhs_term: Option<TermTemplateSpec>,
    #[serde(default)]
    pub allow_same_field: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    Forall,
    Exists,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregator {
    Min,
    Max,
    Sum,
    Avg,
    CountNonzero,
    Exists,
    Forall,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantifierTemplateSpec {
    pub name: String,
    pub quantifier: Quantifier,
    pub selector: VariableSelectorSpec,
    pub operators: Vec<CmpOp>,
    pub constant: ConstantSelectorSpec,
    #[serde(default)]
    pub aggregator_projection: Option<Aggregator>,
    #[serde(default)]
    pub description: String,
}

/// A grammar.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrammarSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "four")]
    pub max_clause_size: u32,
    #[serde(default = "default_max_rules")]
    pub max_rules: u64,
    #[serde(default)]
    pub predicate_templates: Vec<PredicateTemplateSpec>,
    #[serde(default)]
    pub quantifier_templates: Vec<QuantifierTemplateSpec>,
}

fn four() -> u32 {
    4
}

fn default_max_rules() -> u64 {
    250
}

impl GrammarSpec {
    /// Reads and checks a grammar; returns it with its JSON as read.
    pub fn load(path: &Path) -> Result<(GrammarSpec, serde_json::Value), SpecError> {
        let (spec, value): (GrammarSpec, _) = load_json(path)?;
        spec.check().map_err(|message| SpecError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok((spec, value))
    }

    /// Checks what the types alone cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.max_clause_size == 0 {
            return Err("`max_clause_size` is 0; rules need at least one predicate".into());
        }
        if self.max_rules == 0 {
            return Err("`max_rules` is 0; the pack would hold no rules".into());
        }
        if self.predicate_templates.is_empty() && self.quantifier_templates.is_empty() {
            return Err("the grammar has no predicate or quantifier templates".into());
        }
        let mut names = std::collections::HashSet::new();
        let all = self
            .predicate_templates
            .iter()
            .map(|t| &t.name)
            .chain(self.quantifier_templates.iter().map(|t| &t.name));
        for name in all {
            if !names.insert(name) {
                return Err(format!("template name `{name}` is used twice"));
            }
        }
        for (i, t) in self.predicate_templates.iter().enumerate() {
            let at = format!("predicate_templates[{i}] `{}`", t.name);
            check_template(t).map_err(|m| format!("{at}: {m}"))?;
        }
        for (i, t) in self.quantifier_templates.iter().enumerate() {
            let at = format!("quantifier_templates[{i}] `{}`", t.name);
            if t.operators.is_empty() {
                return Err(format!("{at}: `operators` is empty"));
            }
            check_selector(&t.selector).map_err(|m| format!("{at}: selector: {m}"))?;
            check_constants(&t.constant).map_err(|m| format!("{at}: constant: {m}"))?;
        }
        Ok(())
    }
}

fn check_template(t: &PredicateTemplateSpec) -> Result<(), String> {
    if t.operators.is_empty() {
        return Err("`operators` is empty".into());
    }
    if t.lhs.is_none() && t.lhs_term.is_none() {
        return Err("define either `lhs` or `lhs_term`".into());
    }
    let rhs = [
        t.rhs_field.is_some(),
        t.rhs_constant.is_some(),
        t.rhs_term.is_some(),
    ];
    match rhs.iter().filter(|b| **b).count() {
        0 => return Err("define one of `rhs_field`, `rhs_constant` or `rhs_term`".into()),
        1 => {}
        _ => return Err("define only one of `rhs_field`, `rhs_constant` or `rhs_term`".into()),
    }
    for s in [&t.lhs, &t.rhs_field].into_iter().flatten() {
        check_selector(s)?;
    }
    if let Some(c) = &t.rhs_constant {
        check_constants(c).map_err(|m| format!("rhs_constant: {m}"))?;
    }
    for (side, term) in [("lhs_term", &t.lhs_term), ("rhs_term", &t.rhs_term)] {
        if let Some(term) = term {
            check_term(term).map_err(|m| format!("{side}: {m}"))?;
        }
    }
    Ok(())
}

fn check_term(t: &TermTemplateSpec) -> Result<(), String> {
    let needs = |what: &str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(format!("a `{:?}` term needs `{what}`", t.kind).to_lowercase())
        }
    };
    match t.kind {
        TermKind::Field => needs("field", t.field.is_some())?,
        TermKind::Constant => needs("constant", t.constant.is_some())?,
        TermKind::Scalar | TermKind::Mod => {
            needs("field", t.field.is_some())?;
            needs("constant", t.constant.is_some())?;
        }
        TermKind::Addition => {
            needs("field", t.field.is_some())?;
            needs(
                "other_field or constant",
                t.other_field.is_some() || t.constant.is_some(),
            )?;
        }
        TermKind::Product => {
            needs("field", t.field.is_some())?;
            needs("other_field", t.other_field.is_some())?;
        }
        TermKind::Function => {
            needs("component", t.component.is_some())?;
            if t.family.is_some() == t.field.is_some() {
                return Err("a `function` term needs one of `family` or `field`".into());
            }
        }
        TermKind::Aggregate => {
            needs("family", t.family.is_some())?;
            match t.function {
                Some(Func::Mod) => return Err("an aggregate cannot be MOD".into()),
                None => {
                    return Err("an aggregate term needs `function` (min, max, sum, avg)".into());
                }
                Some(_) => {}
            }
        }
    }
    if t.kind == TermKind::Constant
        && let Some(c) = &t.constant
        && c.mode != ConstantMode::Explicit
    {
        return Err("a constant term needs `constant.mode` = `explicit`".into());
    }
    for s in [&t.field, &t.other_field, &t.family].into_iter().flatten() {
        check_selector(s)?;
    }
    if let Some(c) = &t.constant {
        check_constants(c).map_err(|m| format!("constant: {m}"))?;
    }
    Ok(())
}

fn check_selector(s: &VariableSelectorSpec) -> Result<(), String> {
    if let Some(re) = &s.regex {
        regex::Regex::new(re).map_err(|e| format!("bad regex `{re}`: {e}"))?;
    }
    Ok(())
}

fn check_constants(c: &ConstantSelectorSpec) -> Result<(), String> {
    if let Some(q) = c
        .quantiles
        .iter()
        .find(|q| !(0.0..=1.0).contains(*q) || q.is_nan())
    {
        return Err(format!("quantile {q} is outside [0, 1]"));
    }
    if c.mode == ConstantMode::Explicit && c.values.is_empty() {
        return Err("mode `explicit` needs `values`".into());
    }
    if c.mode == ConstantMode::Profile && c.top_k == 0 {
        return Err("`top_k` is 0".into());
    }
    Ok(())
}
