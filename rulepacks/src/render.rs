//! Readable renderings of formulas: categorical values by label, and clauses as
//! implications (`Proto = UDP -> Flags = noflags` rather than
//! `(Proto != 1) OR (Flags = 0)`).  Every rendering parses back (labels resolve against the
//! schema) to an equivalent formula.

use crate::formula::{CmpOp, Formula, Term};
use crate::schema::{Schema, ValueType};
use crate::value::Value;

/// Renders a rule: a disjunction whose `!=` literals on categorical fields become the
/// conditions of an implication.
pub fn rule_text(formula: &Formula, schema: &Schema) -> String {
    let literals = match formula {
        Formula::Or { values } => values.as_slice(),
        other => std::slice::from_ref(other),
    };
    let (mut conditions, mut conclusions) = (Vec::new(), Vec::new());
    for literal in literals {
        match literal {
            Formula::Compare {
                op: CmpOp::Ne,
                left,
                right,
            } if is_categorical(left, schema) => {
                conditions.push(compare_text(CmpOp::Eq, left, right, schema));
            }
            other => conclusions.push(formula_text(other, schema)),
        }
    }
    match (conditions.is_empty(), conclusions.is_empty()) {
        (true, _) => conclusions.join(" OR "),
        (false, true) => format!("NOT ({})", conditions.join(" AND ")),
        (false, false) => format!(
            "{} -> {}",
            conditions.join(" AND "),
            conclusions.join(" OR ")
        ),
    }
}

/// Renders any formula with categorical values by label.
pub fn formula_text(formula: &Formula, schema: &Schema) -> String {
    let join = |values: &[Formula], sep: &str| {
        values
            .iter()
            .map(|v| format!("({})", formula_text(v, schema)))
            .collect::<Vec<_>>()
            .join(sep)
    };
    match formula {
        Formula::Compare { op, left, right } => compare_text(*op, left, right, schema),
        Formula::And { values } if !values.is_empty() => join(values, " AND "),
        Formula::Or { values } if !values.is_empty() => join(values, " OR "),
        Formula::Not { value } => format!("NOT ({})", formula_text(value, schema)),
        Formula::Implies { left, right } => {
            format!(
                "({}) -> ({})",
                formula_text(left, schema),
                formula_text(right, schema)
            )
        }
        other => other.to_string(),
    }
}

fn is_categorical(term: &Term, schema: &Schema) -> bool {
    matches!(term, Term::Symbol { name } if schema.by_name(name).is_some_and(|f| {
        matches!(f.value_type, ValueType::Categorical | ValueType::Boolean)
    }))
}

fn compare_text(op: CmpOp, left: &Term, right: &Term, schema: &Schema) -> String {
    let label = |field: &Term, value: &Term| -> Option<String> {
        let (Term::Symbol { name }, Term::Constant { value }) = (field, value) else {
            return None;
        };
        let category = schema.by_name(name)?.domain.category(value)?;
        let text = category.label.clone()?;
        Some(if is_identifier(&text) && schema.id(&text).is_none() {
            text
        } else {
            Value::Str(text).to_string()
        })
    };
    match (label(left, right), label(right, left)) {
        (Some(l), _) => format!("{left} {op} {l}"),
        (_, Some(l)) => format!("{l} {op} {right}"),
        _ => Formula::compare(op, left.clone(), right.clone()).to_string(),
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && ![
            "and", "or", "not", "forall", "exists", "in", "true", "false",
        ]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(text))
}
