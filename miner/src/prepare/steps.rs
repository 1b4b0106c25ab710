//! Row-wise preprocessing: the reference's `preprocessing` steps, compiled against the
//! column names once and applied to each record as it streams in.

use std::collections::HashMap;

use rulepacks::Value;

use crate::input::Cell;
use crate::spec::{
    CastTarget, MappingRuleMode, MappingRuleSpec, PreprocessKind, PreprocessStepSpec, cast_target,
};

/// A compiled step; columns are slots of the working row.
#[derive(Debug)]
pub(crate) enum Op {
    Cast {
        slot: usize,
        to: CastTarget,
        column: String,
    },
    ParseHex {
        slot: usize,
        column: String,
    },
    Fill {
        slot: usize,
        value: Cell,
    },
    MapValues {
        src: usize,
        dst: usize,
        mapping: HashMap<String, Cell>,
    },
    MapRules {
        src: usize,
        dst: usize,
        rules: Vec<Rule>,
    },
    Filter {
        slot: usize,
        test: Filter,
        step: usize,
    },
}

#[derive(Debug)]
pub(crate) enum Filter {
    Equals(Cell),
    In(Vec<Cell>),
    Present,
}

#[derive(Debug)]
pub(crate) struct Rule {
    mode: MappingRuleMode,
    output: Cell,
    values: Vec<Cell>,
    regex: Option<regex::Regex>,
    lower: Option<f64>,
    upper: Option<f64>,
    inclusive_lower: bool,
    inclusive_upper: bool,
}

/// The plan: ops, the final column names by slot, and the sort keys (as slots).
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub ops: Vec<Op>,
    /// Column name of each slot; `None` once dropped.
    pub names: Vec<Option<String>>,
    /// Sort steps in order: their key slots.
    pub sorts: Vec<Vec<usize>>,
    /// Human descriptions of the filter steps, by step index.
    pub filter_labels: HashMap<usize, String>,
}

impl Plan {
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.as_deref() == Some(name))
    }

    /// The live column names, in slot order.
    pub fn live_names(&self) -> Vec<&str> {
        self.names.iter().flatten().map(String::as_str).collect()
    }

    fn require(&self, name: &str, step: usize) -> Result<usize, String> {
        self.slot(name).ok_or_else(|| {
            format!(
                "preprocessing[{step}]: unknown column `{name}` (columns at this point: {})",
                self.live_names().join(", ")
            )
        })
    }
}

/// Converts a spec value to a cell.
pub(crate) fn value_cell(value: &Value) -> Cell {
    match value {
        Value::Bool(b) => Cell::Int(i64::from(*b)),
        Value::Int(i) => Cell::Int(*i),
        Value::Real(r) => Cell::Real(*r),
        Value::Str(s) => Cell::Text(s.clone()),
    }
}

pub(crate) fn json_cell(value: &serde_json::Value) -> Cell {
    match value {
        serde_json::Value::Null => Cell::Missing,
        serde_json::Value::Bool(b) => Cell::Int(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

/// Equality as the steps use it: numbers by value, otherwise by text.
pub(crate) fn cells_equal(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Missing, _) | (_, Cell::Missing) => false,
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.text() == y.text(),
        },
    }
}

/// Builds the plan for `columns` (the reader's names after source renames).
pub(crate) fn compile(columns: &[String], steps: &[PreprocessStepSpec]) -> Result<Plan, String> {
    let mut plan = Plan {
        names: columns.iter().cloned().map(Some).collect(),
        ..Plan::default()
    };
    for (i, step) in steps.iter().enumerate() {
        compile_step(&mut plan, i, step)?;
    }
    Ok(plan)
}

fn compile_step(plan: &mut Plan, i: usize, step: &PreprocessStepSpec) -> Result<(), String> {
    match step.kind {
        PreprocessKind::Rename => {
            for (old, new) in &step.mapping {
                let slot = plan.require(old, i)?;
                let new = new.as_str().unwrap_or_default().to_owned();
                if plan.slot(&new).is_some_and(|s| s != slot) {
                    return Err(format!(
                        "preprocessing[{i}]: renaming `{old}` to `{new}`, but column `{new}` already exists (drop it first)"
                    ));
                }
                plan.names[slot] = Some(new);
            }
        }
        PreprocessKind::Drop => {
            for c in &step.columns {
                let slot = plan.require(c, i)?;
                plan.names[slot] = None;
            }
        }
        PreprocessKind::Cast => {
            let to = step
                .dtype
                .as_deref()
                .and_then(cast_target)
                .unwrap_or(CastTarget::Keep);
            for c in &step.columns {
                let slot = plan.require(c, i)?;
                plan.ops.push(Op::Cast {
                    slot,
                    to,
                    column: c.clone(),
                });
            }
        }
        PreprocessKind::ParseHex => {
            for c in &step.columns {
                let slot = plan.require(c, i)?;
                plan.ops.push(Op::ParseHex {
                    slot,
                    column: c.clone(),
                });
            }
        }
        PreprocessKind::Fillna => {
            let value = json_cell(step.value.as_ref().unwrap_or(&serde_json::Value::Null));
            for c in &step.columns {
                let slot = plan.require(c, i)?;
                plan.ops.push(Op::Fill {
                    slot,
                    value: value.clone(),
                });
            }
        }
        PreprocessKind::MapValues | PreprocessKind::MapRules => compile_map(plan, i, step)?,
        PreprocessKind::FilterEquals | PreprocessKind::FilterIn | PreprocessKind::FilterPresent => {
            compile_filter(plan, i, step)?;
        }
        PreprocessKind::Sort => {
            let by = if step.by.is_empty() {
                &step.columns
            } else {
                &step.by
            };
            let keys = by
                .iter()
                .map(|c| plan.require(c, i))
                .collect::<Result<_, _>>()?;
            plan.sorts.push(keys);
        }
    }
    Ok(())
}

fn compile_filter(plan: &mut Plan, i: usize, step: &PreprocessStepSpec) -> Result<(), String> {
    let value = step.value.as_ref();
    for c in &step.columns {
        let slot = plan.require(c, i)?;
        let (test, label) = match step.kind {
            PreprocessKind::FilterEquals => {
                let v = json_cell(value.unwrap_or(&serde_json::Value::Null));
                let label = format!("filter_equals `{c}` = {v}");
                (Filter::Equals(v), label)
            }
            PreprocessKind::FilterIn => {
                let list = value
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default();
                let label = format!("filter_in `{c}` ({} values)", list.len());
                (Filter::In(list.iter().map(json_cell).collect()), label)
            }
            _ => (Filter::Present, format!("filter_present `{c}`")),
        };
        plan.filter_labels.insert(i, label);
        plan.ops.push(Op::Filter {
            slot,
            test,
            step: i,
        });
    }
    Ok(())
}

fn compile_map(plan: &mut Plan, i: usize, step: &PreprocessStepSpec) -> Result<(), String> {
    for c in &step.columns {
        let src = plan.require(c, i)?;
        let dst = match &step.target_column {
            Some(target) => match plan.slot(target) {
                Some(slot) => slot,
                None => {
                    plan.names.push(Some(target.clone()));
                    plan.names.len() - 1
                }
            },
            None => src,
        };
        if step.kind == PreprocessKind::MapValues {
            let mapping = step
                .mapping
                .iter()
                .map(|(k, v)| (k.clone(), value_cell(v)))
                .collect();
            plan.ops.push(Op::MapValues { src, dst, mapping });
        } else {
            let rules = step.rules.iter().map(compile_rule).collect();
            plan.ops.push(Op::MapRules { src, dst, rules });
        }
    }
    Ok(())
}

fn compile_rule(r: &MappingRuleSpec) -> Rule {
    let mut values: Vec<Cell> = r.values.iter().map(value_cell).collect();
    if let Some(v) = &r.value {
        values.insert(0, value_cell(v));
    }
    let regex = match (&r.mode, &r.value) {
        (MappingRuleMode::Regex, Some(Value::Str(re))) => regex::Regex::new(re).ok(),
        _ => None,
    };
    Rule {
        mode: r.mode,
        output: value_cell(&r.output),
        values,
        regex,
        lower: r.lower,
        upper: r.upper,
        inclusive_lower: r.inclusive_lower,
        inclusive_upper: r.inclusive_upper,
    }
}

/// What happened to a record.
pub(crate) enum Outcome {
    Keep,
    /// Removed by the filter of this step.
    Filtered(usize),
    /// Unusable: the reason.
    Bad(String),
}

/// Applies the plan's ops to one record in place (`row` has one cell per slot).
pub(crate) fn apply(plan: &Plan, row: &mut [Cell]) -> Outcome {
    for op in &plan.ops {
        match op {
            Op::Cast { slot, to, column } => match cast(&row[*slot], *to) {
                Ok(cell) => row[*slot] = cell,
                Err(why) => return Outcome::Bad(format!("cast of `{column}`: {why}")),
            },
            Op::ParseHex { slot, column } => match parse_hex(&row[*slot]) {
                Ok(cell) => row[*slot] = cell,
                Err(why) => return Outcome::Bad(format!("parse_hex of `{column}`: {why}")),
            },
            Op::Fill { slot, value } => {
                if row[*slot].is_missing() {
                    row[*slot] = value.clone();
                }
            }
            Op::MapValues { src, dst, mapping } => {
                let mapped = mapping.get(&row[*src].text()).cloned();
                row[*dst] = mapped.unwrap_or_else(|| row[*src].clone());
            }
            Op::MapRules { src, dst, rules } => row[*dst] = map_rules(&row[*src], rules),
            Op::Filter { slot, test, step } => {
                if !passes(&row[*slot], test) {
                    return Outcome::Filtered(*step);
                }
            }
        }
    }
    Outcome::Keep
}

fn passes(cell: &Cell, test: &Filter) -> bool {
    match test {
        Filter::Equals(v) => cells_equal(cell, v),
        Filter::In(vs) => vs.iter().any(|v| cells_equal(cell, v)),
        Filter::Present => match cell {
            Cell::Missing => false,
            Cell::Text(t) => !t.trim().is_empty(),
            _ => true,
        },
    }
}

fn map_rules(cell: &Cell, rules: &[Rule]) -> Cell {
    let mut default = cell.clone();
    for rule in rules {
        let hit = match rule.mode {
            MappingRuleMode::Default => {
                default = rule.output.clone();
                false
            }
            MappingRuleMode::Equals => rule.values.first().is_some_and(|v| cells_equal(cell, v)),
            MappingRuleMode::In => rule.values.iter().any(|v| cells_equal(cell, v)),
            MappingRuleMode::Prefix => match (cell, rule.values.first()) {
                (Cell::Text(t), Some(Cell::Text(p))) => t.starts_with(p.as_str()),
                _ => false,
            },
            MappingRuleMode::Regex => {
                !cell.is_missing()
                    && rule
                        .regex
                        .as_ref()
                        .is_some_and(|re| re.is_match(&cell.text()))
            }
            MappingRuleMode::Range => in_range(cell, rule),
        };
        if hit {
            return rule.output.clone();
        }
    }
    default
}

fn in_range(cell: &Cell, rule: &Rule) -> bool {
    let x = match cell {
        Cell::Text(t) => t.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    };
    x.is_some_and(|x| {
        let lo = rule
            .lower
            .is_none_or(|l| if rule.inclusive_lower { x >= l } else { x > l });
        let hi = rule
            .upper
            .is_none_or(|u| if rule.inclusive_upper { x <= u } else { x < u });
        lo && hi
    })
}

fn integral(r: f64) -> Option<i64> {
    (r.fract() == 0.0 && r.abs() < 9.2e18).then_some(r as i64)
}

fn cast(cell: &Cell, to: CastTarget) -> Result<Cell, String> {
    let not_int = || format!("{cell} is not an integer");
    Ok(match (to, cell) {
        (_, Cell::Missing) | (CastTarget::Keep, _) | (CastTarget::Int, Cell::Int(_)) => {
            cell.clone()
        }
        (CastTarget::Int, Cell::Real(r)) => Cell::Int(integral(*r).ok_or_else(not_int)?),
        (CastTarget::Int, Cell::Text(t)) => match Cell::parse(t) {
            Cell::Int(i) => Cell::Int(i),
            Cell::Real(r) => Cell::Int(integral(r).ok_or_else(not_int)?),
            _ => return Err(not_int()),
        },
        (CastTarget::Real, Cell::Text(t)) => match Cell::parse(t).as_f64() {
            Some(r) => Cell::Real(r),
            None => return Err(format!("{cell} is not a number")),
        },
        (CastTarget::Real, other) => Cell::Real(other.as_f64().unwrap_or(f64::NAN)),
        (CastTarget::Text, other) => Cell::Text(other.text()),
        (CastTarget::Bool, other) => Cell::Int(i64::from(parse_bool(other)?)),
    })
}

/// Reads a boolean: 0/1, true/false, yes/no (any case).
pub(crate) fn parse_bool(cell: &Cell) -> Result<bool, String> {
    match cell {
        Cell::Int(0) => Ok(false),
        Cell::Int(1) => Ok(true),
        Cell::Real(r) if *r == 0.0 || *r == 1.0 => Ok(*r == 1.0),
        Cell::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "t" | "y" | "1" => Ok(true),
            "false" | "no" | "f" | "n" | "0" => Ok(false),
            _ => Err(format!("{cell} is not a boolean")),
        },
        _ => Err(format!("{cell} is not a boolean")),
    }
}

fn parse_hex(cell: &Cell) -> Result<Cell, String> {
    match cell {
        Cell::Missing | Cell::Int(_) => Ok(cell.clone()),
        Cell::Real(r) => integral(*r)
            .map(Cell::Int)
            .ok_or_else(|| format!("{cell} is not an integer")),
        Cell::Text(t) => {
            let t = t.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("none") {
                return Ok(Cell::Missing);
            }
            let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => i64::from_str_radix(hex, 16),
                None => t.parse::<i64>(),
            };
            parsed
                .map(Cell::Int)
                .map_err(|_| format!("{cell} is not a hexadecimal or decimal integer"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(json: serde_json::Value) -> PreprocessStepSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn map_rules_follow_the_reference_order() {
        let s = step(
            serde_json::json!({"kind": "map_rules", "columns": ["a"], "target_column": "b",
            "rules": [{"mode": "default", "output": 3}, {"mode": "equals", "value": "DNS", "output": 4},
                      {"mode": "prefix", "value": "192.168.", "output": 0},
                      {"mode": "range", "lower": 0, "upper": 1023, "output": 70000}]}),
        );
        let plan = compile(&["a".into()], &[s]).unwrap();
        let run = |c: Cell| {
            let mut row = vec![c, Cell::Missing];
            assert!(matches!(apply(&plan, &mut row), Outcome::Keep));
            row[1].clone()
        };
        assert_eq!(run(Cell::Text("DNS".into())), Cell::Int(4));
        assert_eq!(run(Cell::Text("192.168.1.2".into())), Cell::Int(0));
        assert_eq!(run(Cell::Text("10081_164".into())), Cell::Int(3));
        assert_eq!(run(Cell::Int(80)), Cell::Int(70000));
    }

    #[test]
    fn unknown_columns_are_named() {
        let s = step(serde_json::json!({"kind": "cast", "columns": ["nope"], "dtype": "int64"}));
        let e = compile(&["a".into()], &[s]).unwrap_err();
        assert!(e.contains("unknown column `nope`"), "{e}");
    }

    #[test]
    fn filters_casts_and_hex() {
        let steps = [
            step(serde_json::json!({"kind": "parse_hex", "columns": ["f"]})),
            step(serde_json::json!({"kind": "filter_equals", "columns": ["p"], "value": "TCP"})),
            step(serde_json::json!({"kind": "cast", "columns": ["n"], "dtype": "int64"})),
        ];
        let plan = compile(&["f".into(), "p".into(), "n".into()], &steps).unwrap();
        let mut row = vec![
            Cell::Text("0x0018".into()),
            Cell::Text("TCP".into()),
            Cell::Real(3.0),
        ];
        assert!(matches!(apply(&plan, &mut row), Outcome::Keep));
        assert_eq!(
            row,
            vec![Cell::Int(24), Cell::Text("TCP".into()), Cell::Int(3)]
        );
        let mut row = vec![Cell::Int(1), Cell::Text("UDP".into()), Cell::Int(3)];
        assert!(matches!(apply(&plan, &mut row), Outcome::Filtered(1)));
        let mut row = vec![Cell::Int(1), Cell::Text("TCP".into()), Cell::Real(3.5)];
        assert!(
            matches!(apply(&plan, &mut row), Outcome::Bad(why) if why.contains("not an integer"))
        );
    }
}
