//! Evaluation of resolved formulas on records.

use std::cmp::Ordering;

use crate::formula::{ArithOp, CmpOp, Func};
use crate::resolve::{Expr, Prop};
use crate::schema::FieldId;
use crate::value::{ArithError, Num, Value};

/// Access to the values of one record by field.
pub trait Record {
    /// The value of a field, or `None` when the record lacks it.
    fn get(&self, id: FieldId) -> Option<&Value>;
}

impl Record for [Option<Value>] {
    fn get(&self, id: FieldId) -> Option<&Value> {
        self.get(id.index()).and_then(Option::as_ref)
    }
}

impl Record for Vec<Option<Value>> {
    fn get(&self, id: FieldId) -> Option<&Value> {
        self.as_slice().get(id.index()).and_then(Option::as_ref)
    }
}

impl Record for [Value] {
    fn get(&self, id: FieldId) -> Option<&Value> {
        self.get(id.index())
    }
}

/// Why a formula has no truth value on a record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the record has no value for field #{}", .0.0)]
    Missing(FieldId),
    #[error(transparent)]
    Arith(#[from] ArithError),
    #[error("cannot compare {0} with {1}")]
    Mismatch(&'static str, &'static str),
    /// A user function failed (its message names it).
    #[error("{0}")]
    User(String),
}

#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Num(Num),
    Text(&'a str),
}

impl Val<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Val::Num(_) => "a number",
            Val::Text(_) => "text",
        }
    }
}

/// Evaluates a term to a number; `None` for text values.
pub fn eval_num(expr: &Expr, record: &(impl Record + ?Sized)) -> Result<Option<Num>, EvalError> {
    Ok(match eval_expr(expr, record)? {
        Val::Num(n) => Some(n),
        Val::Text(_) => None,
    })
}

fn eval_expr<'a>(expr: &'a Expr, record: &'a (impl Record + ?Sized)) -> Result<Val<'a>, EvalError> {
    match expr {
        Expr::Const(v) => Ok(value_val(v)),
        Expr::Field(id) => record
            .get(*id)
            .map(value_val)
            .ok_or(EvalError::Missing(*id)),
        Expr::Arith(op, l, r) => {
            let (a, b) = (num(l, record)?, num(r, record)?);
            Ok(Val::Num(match op {
                ArithOp::Add => a.checked_add(b)?,
                ArithOp::Sub => a.checked_sub(b)?,
                ArithOp::Mul => a.checked_mul(b)?,
                ArithOp::Div => a.checked_div(b)?,
            }))
        }
        Expr::Func(func, args) => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(num(a, record)?);
            }
            Ok(Val::Num(apply(*func, &values)?))
        }
        Expr::User(call) => {
            let mut values = Vec::with_capacity(call.args.len());
            for a in &call.args {
                values.push(num(a, record)?.to_f64());
            }
            let result = call
                .function
                .call(call.over, &values)
                .map_err(EvalError::User)?;
            Ok(Val::Num(Num::Real(result)))
        }
    }
}

/// Applies a function to numbers (at least one).
pub fn apply(func: Func, values: &[Num]) -> Result<Num, ArithError> {
    let pick = |want: Ordering| {
        values
            .iter()
            .copied()
            .reduce(|a, b| if b.cmp_num(&a) == Some(want) { b } else { a })
    };
    let first = values[0];
    Ok(match func {
        Func::Min => pick(Ordering::Less).unwrap_or(first),
        Func::Max => pick(Ordering::Greater).unwrap_or(first),
        Func::Sum => values
            .iter()
            .try_fold(Num::Int(0), |acc, v| acc.checked_add(*v))?,
        Func::Avg => {
            let sum = values
                .iter()
                .try_fold(Num::Int(0), |acc, v| acc.checked_add(*v))?;
            sum.checked_div(Num::Int(values.len() as i128))?
        }
        Func::Mod => first.modulo(values[1])?,
    })
}

fn num(expr: &Expr, record: &(impl Record + ?Sized)) -> Result<Num, EvalError> {
    match eval_expr(expr, record)? {
        Val::Num(n) => Ok(n),
        other => Err(EvalError::Mismatch(other.kind(), "a number")),
    }
}

fn value_val(value: &Value) -> Val<'_> {
    match value {
        Value::Str(s) => Val::Text(s),
        other => Val::Num(other.as_num().unwrap_or(Num::Int(0))),
    }
}

/// Compares two evaluated values.
fn compare(op: CmpOp, a: Val<'_>, b: Val<'_>) -> Result<bool, EvalError> {
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) => match x.cmp_num(&y) {
            Some(ord) => ord,
            // NaN equals nothing and orders with nothing.
            None => return Ok(op == CmpOp::Ne),
        },
        (Val::Text(x), Val::Text(y)) => x.cmp(y),
        (x, y) => return Err(EvalError::Mismatch(x.kind(), y.kind())),
    };
    Ok(op.holds(ord))
}

/// Evaluates a formula on a record.
pub fn eval(prop: &Prop, record: &(impl Record + ?Sized)) -> Result<bool, EvalError> {
    match prop {
        Prop::Const(b) => Ok(*b),
        Prop::Cmp(op, l, r) => compare(*op, eval_expr(l, record)?, eval_expr(r, record)?),
        Prop::Not(p) => Ok(!eval(p, record)?),
        Prop::And(ps) => {
            for p in ps {
                if !eval(p, record)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Prop::Or(ps) => {
            for p in ps {
                if eval(p, record)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_formula;
    use crate::resolve::resolve;
    use crate::schema::{Category, Domain, Field, Schema, ValueType};

    fn schema() -> Schema {
        let int = |name: &str| Field {
            name: name.into(),
            value_type: ValueType::Integer,
            roles: vec![],
            domain: Domain::Integer {
                min: 0,
                max: i64::MAX,
                multiple_of: None,
            },
            family: None,
            index: None,
            definition: None,
            description: None,
        };
        let member = |name: &str, i: u32| Field {
            family: Some("x".into()),
            index: Some(i),
            ..int(name)
        };
        let proto = Field {
            value_type: ValueType::Categorical,
            domain: Domain::Categorical {
                values: vec![
                    Category {
                        value: Value::Int(0),
                        label: Some("TCP".into()),
                    },
                    Category {
                        value: Value::Int(1),
                        label: Some("UDP".into()),
                    },
                ],
            },
            ..int("Proto")
        };
        Schema::new(vec![
            int("Packets"),
            int("Bytes"),
            proto,
            member("x0", 0),
            member("x1", 1),
            member("x2", 2),
        ])
        .unwrap()
    }

    fn check(text: &str, record: &[Value]) -> bool {
        let s = schema();
        let prop = resolve(&parse_formula(text).unwrap(), &s).unwrap_or_else(|e| panic!("{e}"));
        eval(&prop, record).unwrap()
    }

    #[test]
    fn evaluates_arithmetic_exactly() {
        let r = [10, 660, 0, 1, 2, 4].map(Value::Int);
        assert!(check("Packets * 66 = Bytes", &r));
        assert!(check("(Proto = TCP) -> (42 * Packets <= Bytes)", &r));
        assert!(check("AVG(x[*]) * 3 = 7", &r));
        assert!(!check("AVG(x[*]) = 2", &r));
        assert!(check(
            "MOD(Bytes, 4) = 0 AND MAX(x[*]) = 4 AND SUM(x[*]) = 7",
            &r
        ));
        assert!(check("forall k in {0, 1, 2}: x[k] >= 1", &r));
        assert!(!check("exists k in {0, 1}: x[k] >= 3", &r));
    }

    #[test]
    fn resolution_errors_name_the_culprit() {
        let s = schema();
        let e = |t: &str| resolve(&parse_formula(t).unwrap(), &s).unwrap_err().0;
        assert!(e("Byte > 1").contains("unknown field `Byte` (did you mean `Bytes`?)"));
        assert!(e("x[3] = 0").contains("position 3 is outside window family `x`"));
        assert!(e("y[0] = 0").contains("unknown window family `y`"));
        assert!(e("x[k] = 0").contains("variable `k` is not bound"));
        assert!(e("MOD(Bytes, 0) = 0").contains("positive integer divisor"));
        assert!(e("Proto = 'SCTP'").contains("compares a number with text"));
        assert!(
            e("Proto = udp")
                .contains("neither a field nor a value of `Proto` (did you mean `UDP`?)")
        );
        assert!(e("Proto = GRE").contains("(its values: TCP, UDP)"));
        assert!(e("Bytes / 0 = 1").contains("divides by zero"));
    }

    /// Peak-to-mean in plain Rust, standing in for a component (the `functions` crate
    /// tests the real ones).
    #[derive(Debug)]
    struct PeakToMean;

    impl crate::user::UserFunction for PeakToMean {
        fn name(&self) -> &str {
            "peak_to_mean"
        }
        fn call(&self, _: crate::user::Over, values: &[f64]) -> Result<f64, String> {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            if values.iter().any(|v| *v < 0.0) {
                return Err("function `peak_to_mean` failed: negative sample".into());
            }
            Ok(if mean == 0.0 {
                0.0
            } else {
                values.iter().cloned().fold(0.0, f64::max) / mean
            })
        }
        fn component_bytes(&self) -> Vec<u8> {
            Vec::new()
        }
        fn arity(&self) -> Option<usize> {
            Some(2)
        }
    }

    #[test]
    fn user_functions_are_called_when_bound_and_refused_when_not() {
        let mut s = schema();
        let f = parse_formula("peak_to_mean(x[*]) <= 2").unwrap();
        let e = resolve(&f, &s).unwrap_err().0;
        assert!(
            e.contains("unknown function `peak_to_mean`") && e.contains("no user function"),
            "{e}"
        );
        s.bind_function(std::sync::Arc::new(PeakToMean));
        let prop = resolve(&f, &s).unwrap();
        assert!(prop.calls_user());
        // x = 1, 2, 4: mean 7/3, peak 4, ratio 12/7 ≤ 2.
        let r = [10, 660, 0, 1, 2, 4].map(Value::Int);
        assert!(eval(&prop, &r[..]).unwrap());
        let r = [10, 660, 0, 0, 0, 9].map(Value::Int);
        assert!(!eval(&prop, &r[..]).unwrap());
        // Over terms, too; a failure is an error carrying the function's message.
        let prop = resolve(
            &parse_formula("peak_to_mean(Packets, x[0] - 5) > 0").unwrap(),
            &s,
        )
        .unwrap();
        let err = eval(&prop, &r[..]).unwrap_err();
        assert!(err.to_string().contains("negative sample"), "{err}");
        // A call on fields takes as many values as the function declares.
        let e = resolve(&parse_formula("peak_to_mean(Packets) > 1").unwrap(), &s).unwrap_err();
        assert!(
            e.0.contains("function `peak_to_mean` takes 2 values, not 1"),
            "{e}"
        );
        // An unknown family is refused, naming it.
        let e = resolve(&parse_formula("peak_to_mean(y[*]) > 1").unwrap(), &s).unwrap_err();
        assert!(e.0.contains("unknown window family `y`"), "{e}");
    }

    #[test]
    fn missing_values_are_reported() {
        let s = schema();
        let prop = resolve(&parse_formula("Bytes > 0").unwrap(), &s).unwrap();
        let record: Vec<Option<Value>> = vec![Some(Value::Int(1)), None];
        assert_eq!(eval(&prop, &record), Err(EvalError::Missing(FieldId(1))));
    }
}
