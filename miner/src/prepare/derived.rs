//! Derived variables: new fields computed from others on the same record.
//!
//! Arithmetic on integer inputs is exact.  Each derived field carries its definition as a
//! term (`a + b`, `MAX(a, b)`, `a / b` …) so that entailment and enforcement know how it
//! relates to its inputs; `std`, `count_nonzero`, `exists` and `forall` have none and are
//! constrained by their domains only.  A record where the value is undefined (a ratio with
//! a zero denominator, a fraction in an integer field) is skipped and reported.

use std::path::Path;
use std::sync::Arc;

use rulepacks::eval::apply as apply_func;
use rulepacks::pack::Component;
use rulepacks::schema::ValueType;
use rulepacks::{ArithOp, Func, Num, Over, Term, UserFunction};

use super::{Dataset, FieldInfo};
use crate::spec::{DerivedOperation, DerivedVariableSpec};
use crate::table::ColumnData;

/// A user function a derived field calls, loaded from its component file.
#[derive(Clone, Debug)]
pub struct LoadedFunction {
    pub function: Arc<dyn UserFunction>,
    /// What the pack embeds.
    pub component: Component,
}

impl LoadedFunction {
    /// Loads a component file (`.wasm`, or `.wat` as the host accepts it).
    pub fn load(file: &Path) -> Result<LoadedFunction, String> {
        let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
        let function = rulepacks::user::load(&bytes)?;
        let component = Component::new(function.name(), &function.component_bytes());
        Ok(LoadedFunction {
            function,
            component,
        })
    }
}

/// Loads the component a `function` derived variable names.
fn load_function(spec: &DerivedVariableSpec, spec_dir: &Path) -> Result<LoadedFunction, String> {
    let file = spec_dir.join(spec.component.as_deref().unwrap_or_default());
    LoadedFunction::load(&file).map_err(|e| {
        format!(
            "derived variable `{}`: component {}: {e}",
            spec.name,
            file.display()
        )
    })
}

pub(super) fn apply(
    dataset: &mut Dataset,
    specs: &[DerivedVariableSpec],
    spec_dir: &Path,
    options: &super::PrepareOptions,
) -> Result<(), String> {
    let strict = options.strict;
    for spec in specs {
        if dataset.field_index(&spec.name).is_some() {
            return Err(format!(
                "derived variable `{}` has the name of an existing field",
                spec.name
            ));
        }
        let (inputs, function) = if spec.operation == DerivedOperation::Function {
            if !matches!(spec.value_type, ValueType::Integer | ValueType::Real) {
                return Err(format!(
                    "derived variable `{}`: a function's value_type must be `integer` or \
                     `real`, not `{}`",
                    spec.name, spec.value_type
                ));
            }
            let loaded = match options.embedded.get(&spec.name) {
                Some(f) => LoadedFunction {
                    function: f.clone(),
                    component: Component::new(f.name(), &f.component_bytes()),
                },
                None => load_function(spec, spec_dir)?,
            };
            let inputs = function_inputs(dataset, spec)?;
            let function = loaded.function.clone();
            if !dataset
                .functions
                .iter()
                .any(|f| f.component.name == loaded.component.name)
            {
                dataset.functions.push(loaded);
            }
            (inputs, Some(function))
        } else {
            (input_columns(dataset, spec)?, None)
        };
        let over = if spec.family.is_some() {
            Over::Family
        } else {
            Over::Fields
        };
        let mut values = Vec::with_capacity(dataset.rows());
        let mut bad = Vec::new();
        for row in 0..dataset.rows() {
            let args: Vec<Num> = inputs
                .iter()
                .map(|&c| number(&dataset.columns[c], row))
                .collect();
            let value = match &function {
                // A user function must be defined on every record: a failure (an error, a
                // trap, running out of fuel, NaN) stops here, naming the record, rather
                // than dropping records the rules would then not cover.
                Some(f) => Ok(call(f.as_ref(), over, &args).map_err(|why| {
                    format!(
                        "derived variable `{}` at {}: {why} (a user function must be \
                         defined on every record: fix it, or filter the records first)",
                        spec.name, dataset.origins[row]
                    )
                })?),
                None => compute(spec, &args),
            };
            match value {
                Ok(v) => values.push(v),
                Err(why) => {
                    bad.push((row, why));
                    values.push(Num::Int(0));
                }
            }
        }
        if let Some((row, why)) = bad.first()
            && strict
        {
            return Err(format!(
                "derived variable `{}` at {}: {why}",
                spec.name, dataset.origins[*row]
            ));
        }
        let column = match spec.value_type {
            ValueType::Real => ColumnData::Real(values.iter().map(|v| v.to_f64()).collect()),
            _ => {
                let mut ints = Vec::with_capacity(values.len());
                for (row, v) in values.iter().enumerate() {
                    match v {
                        Num::Int(i) if i64::try_from(*i).is_ok() => ints.push(*i as i64),
                        // A whole number a function returned as a float.
                        Num::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => {
                            ints.push(*r as i64);
                        }
                        other => {
                            ints.push(0);
                            bad.push((row, format!("value {} is not an integer", other.to_f64())));
                        }
                    }
                }
                ColumnData::Int(ints)
            }
        };
        let names: Vec<String> = inputs
            .iter()
            .map(|&c| dataset.fields[c].name.clone())
            .collect();
        dataset.fields.push(FieldInfo {
            name: spec.name.clone(),
            value_type: spec.value_type,
            roles: spec.roles.clone(),
            constants: Vec::new(),
            enum_labels: Default::default(),
            declared_domain: None,
            bounds: None,
            family: None,
            index: None,
            definition: match &function {
                Some(f) => Some(Term::User {
                    function: f.name().to_owned(),
                    family: spec.family.clone(),
                    args: if spec.family.is_some() {
                        Vec::new()
                    } else {
                        names.iter().map(Term::symbol).collect()
                    },
                }),
                None => definition(spec.operation, &names),
            },
            description: spec.description.clone(),
        });
        dataset.columns.push(column);
        drop_rows(dataset, &spec.name, bad);
    }
    Ok(())
}

fn input_columns(dataset: &Dataset, spec: &DerivedVariableSpec) -> Result<Vec<usize>, String> {
    let mut names: Vec<&String> = spec.inputs.iter().collect();
    if spec.operation == DerivedOperation::Ratio {
        names = match (&spec.numerator, &spec.denominator) {
            (Some(n), Some(d)) => vec![n, d],
            (Some(n), None) => vec![n, &spec.inputs[1]],
            (None, Some(d)) => vec![&spec.inputs[0], d],
            (None, None) => vec![&spec.inputs[0], &spec.inputs[1]],
        };
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some(i) = dataset.field_index(name) else {
            let known: Vec<&str> = dataset.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(format!(
                "derived variable `{}` needs `{name}`, which is not a field (fields: {})",
                spec.name,
                known.join(", ")
            ));
        };
        if matches!(dataset.columns[i], ColumnData::Text(_)) {
            return Err(format!(
                "derived variable `{}`: input `{name}` is not numeric",
                spec.name
            ));
        }
        out.push(i);
    }
    Ok(out)
}

/// The columns a function takes: a family's members in order, or the named inputs.
fn function_inputs(dataset: &Dataset, spec: &DerivedVariableSpec) -> Result<Vec<usize>, String> {
    let Some(family) = &spec.family else {
        return input_columns(dataset, spec);
    };
    let Some(members) = dataset.families().remove(family) else {
        return Err(format!(
            "derived variable `{}`: no window family `{family}`",
            spec.name
        ));
    };
    for &c in &members {
        if matches!(dataset.columns[c], ColumnData::Text(_)) {
            return Err(format!(
                "derived variable `{}`: family member `{}` is not numeric",
                spec.name, dataset.fields[c].name
            ));
        }
    }
    Ok(members)
}

/// A user function on one record's inputs.
fn call(f: &dyn UserFunction, over: Over, args: &[Num]) -> Result<Num, String> {
    let values: Vec<f64> = args.iter().map(|a| a.to_f64()).collect();
    f.call(over, &values).map(Num::Real)
}

fn number(column: &ColumnData, row: usize) -> Num {
    match column {
        ColumnData::Int(v) => Num::Int(i128::from(v[row])),
        ColumnData::Real(v) => Num::Real(v[row]),
        ColumnData::Text(_) => Num::Real(f64::NAN),
    }
}

fn compute(spec: &DerivedVariableSpec, args: &[Num]) -> Result<Num, String> {
    let arith = |r: Result<Num, rulepacks::value::ArithError>| r.map_err(|e| e.to_string());
    let zero = Num::Int(0);
    let nonzero = |n: &Num| n.cmp_num(&zero).is_some_and(|o| o.is_ne());
    let flag = |b: bool| Num::Int(i128::from(b));
    Ok(match spec.operation {
        DerivedOperation::Copy => args[0],
        DerivedOperation::Sum => arith(apply_func(Func::Sum, args))?,
        DerivedOperation::Min => arith(apply_func(Func::Min, args))?,
        DerivedOperation::Max => arith(apply_func(Func::Max, args))?,
        DerivedOperation::Avg => arith(apply_func(Func::Avg, args))?,
        DerivedOperation::Diff => arith(args[0].checked_sub(args[1]))?,
        DerivedOperation::Ratio => arith(args[0].checked_div(args[1]))?,
        DerivedOperation::Std => {
            let n = args.len() as f64;
            let mean = args.iter().map(|a| a.to_f64()).sum::<f64>() / n;
            Num::Real(
                (args
                    .iter()
                    .map(|a| (a.to_f64() - mean).powi(2))
                    .sum::<f64>()
                    / n)
                    .sqrt(),
            )
        }
        DerivedOperation::CountNonzero => {
            Num::Int(args.iter().filter(|a| nonzero(a)).count() as i128)
        }
        DerivedOperation::Exists => flag(args.iter().any(nonzero)),
        DerivedOperation::Forall => flag(args.iter().all(nonzero)),
        DerivedOperation::Function => return Err("a function is called, not computed".into()),
    })
}

/// The derived value as a term over its inputs, where one exists.
fn definition(op: DerivedOperation, inputs: &[String]) -> Option<Term> {
    let syms: Vec<Term> = inputs.iter().map(Term::symbol).collect();
    let fold = |op: ArithOp| syms.iter().cloned().reduce(|a, b| Term::binary(op, a, b));
    match op {
        DerivedOperation::Copy => syms.first().cloned(),
        DerivedOperation::Sum => fold(ArithOp::Add),
        DerivedOperation::Min => Some(Term::call(Func::Min, syms)),
        DerivedOperation::Max => Some(Term::call(Func::Max, syms)),
        DerivedOperation::Avg => Some(Term::call(Func::Avg, syms)),
        DerivedOperation::Diff => {
            Some(Term::binary(ArithOp::Sub, syms[0].clone(), syms[1].clone()))
        }
        DerivedOperation::Ratio => {
            Some(Term::binary(ArithOp::Div, syms[0].clone(), syms[1].clone()))
        }
        DerivedOperation::Std
        | DerivedOperation::CountNonzero
        | DerivedOperation::Exists
        | DerivedOperation::Forall
        | DerivedOperation::Function => None,
    }
}

/// Removes the records where a derived value is undefined, reporting each.
fn drop_rows(dataset: &mut Dataset, name: &str, mut bad: Vec<(usize, String)>) {
    if bad.is_empty() {
        return;
    }
    bad.sort_by_key(|(row, _)| *row);
    bad.dedup_by_key(|(row, _)| *row);
    let class = format!("derived `{name}` undefined");
    for (row, why) in &bad {
        let origin = dataset.origins[*row];
        dataset
            .report
            .skip(class.clone(), origin, format!("derived `{name}`: {why}"));
    }
    let mut drop = bad.iter().map(|(r, _)| *r).peekable();
    let keep: Vec<usize> = (0..dataset.rows())
        .filter(|r| {
            if drop.peek() == Some(r) {
                drop.next();
                false
            } else {
                true
            }
        })
        .collect();
    for c in &mut dataset.columns {
        *c = c.gather(&keep);
    }
    dataset.origins = keep.iter().map(|&r| dataset.origins[r]).collect();
}
