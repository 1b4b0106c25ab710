//! Constants in formulas and cells of records.
//!
//! Integers stay integers: arithmetic on them is exact (`i128` with overflow checks), and a
//! division that does not come out even yields an exact fraction, so that `AVG` over integer
//! fields compares exactly with its bounds.  Reals are `f64`, as read from the data.

use std::cmp::Ordering;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A constant of a formula, or one cell of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
}

impl Value {
    /// The number this value stands for, if it is numeric (booleans count as 0 and 1).
    pub fn as_num(&self) -> Option<Num> {
        match self {
            Value::Bool(b) => Some(Num::Int(i128::from(*b))),
            Value::Int(i) => Some(Num::Int(i128::from(*i))),
            Value::Real(r) => Some(Num::Real(*r)),
            Value::Str(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_numeric(&self) -> bool {
        !matches!(self, Value::Str(_))
    }

    /// A short name of the kind of value, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Str(_) => "string",
        }
    }

    /// Equality as formulas see it: numbers compare by value across integer and real.
    pub fn same(&self, other: &Value) -> bool {
        match (self.as_num(), other.as_num()) {
            (Some(a), Some(b)) => a.cmp_num(&b) == Some(Ordering::Equal),
            _ => self == other,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{}", format_real(*r)),
            Value::Str(s) => write!(f, "'{s}'"),
        }
    }
}

/// Formats a real so that it reads back as the same `f64` and always shows it is real.
pub fn format_real(r: f64) -> String {
    if r.is_finite() && r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

/// An intermediate number during evaluation.
///
/// `Frac` is always normalised: positive denominator greater than one, coprime to the
/// numerator.  Mixing with a `Real` gives a `Real`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i128),
    Frac(i128, i128),
    Real(f64),
}

/// Why an arithmetic operation has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArithError {
    #[error("integer overflow")]
    Overflow,
    #[error("division by zero")]
    DivisionByZero,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Num {
    fn frac(num: i128, den: i128) -> Result<Num, ArithError> {
        if den == 0 {
            return Err(ArithError::DivisionByZero);
        }
        let g = gcd(num, den);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = n.checked_neg().ok_or(ArithError::Overflow)?;
            d = d.checked_neg().ok_or(ArithError::Overflow)?;
        }
        Ok(if d == 1 { Num::Int(n) } else { Num::Frac(n, d) })
    }

    /// Numerator and denominator of an exact number.
    fn exact(self) -> Option<(i128, i128)> {
        match self {
            Num::Int(i) => Some((i, 1)),
            Num::Frac(n, d) => Some((n, d)),
            Num::Real(_) => None,
        }
    }

    pub fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Frac(n, d) => n as f64 / d as f64,
            Num::Real(r) => r,
        }
    }

    pub fn checked_add(self, other: Num) -> Result<Num, ArithError> {
        match (self.exact(), other.exact()) {
            (Some((a, b)), Some((c, d))) => {
                let num = mul(a, d)?
                    .checked_add(mul(c, b)?)
                    .ok_or(ArithError::Overflow)?;
                Num::frac(num, mul(b, d)?)
            }
            _ => Ok(Num::Real(self.to_f64() + other.to_f64())),
        }
    }

    pub fn checked_sub(self, other: Num) -> Result<Num, ArithError> {
        self.checked_add(other.checked_neg()?)
    }

    pub fn checked_neg(self) -> Result<Num, ArithError> {
        Ok(match self {
            Num::Int(i) => Num::Int(i.checked_neg().ok_or(ArithError::Overflow)?),
            Num::Frac(n, d) => Num::Frac(n.checked_neg().ok_or(ArithError::Overflow)?, d),
            Num::Real(r) => Num::Real(-r),
        })
    }

    pub fn checked_mul(self, other: Num) -> Result<Num, ArithError> {
        match (self.exact(), other.exact()) {
            (Some((a, b)), Some((c, d))) => Num::frac(mul(a, c)?, mul(b, d)?),
            _ => Ok(Num::Real(self.to_f64() * other.to_f64())),
        }
    }

    pub fn checked_div(self, other: Num) -> Result<Num, ArithError> {
        match (self.exact(), other.exact()) {
            (Some((a, b)), Some((c, d))) => Num::frac(mul(a, d)?, mul(b, c)?),
            _ => {
                let d = other.to_f64();
                if d == 0.0 {
                    return Err(ArithError::DivisionByZero);
                }
                Ok(Num::Real(self.to_f64() / d))
            }
        }
    }

    /// The remainder with the sign of the divisor, as Python's `%` and z3's `mod` for a
    /// positive divisor.
    pub fn modulo(self, other: Num) -> Result<Num, ArithError> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => {
                if b == 0 {
                    return Err(ArithError::DivisionByZero);
                }
                Ok(Num::Int(
                    a.rem_euclid(b) + if b < 0 && a.rem_euclid(b) != 0 { b } else { 0 },
                ))
            }
            _ => {
                let (a, b) = (self.to_f64(), other.to_f64());
                if b == 0.0 {
                    return Err(ArithError::DivisionByZero);
                }
                Ok(Num::Real(a - b * (a / b).floor()))
            }
        }
    }

    /// Compares two numbers; `None` only when a real is NaN.
    pub fn cmp_num(&self, other: &Num) -> Option<Ordering> {
        match (self.exact(), other.exact()) {
            (Some((a, b)), Some((c, d))) => match (a.checked_mul(d), c.checked_mul(b)) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => self.to_f64().partial_cmp(&other.to_f64()),
            },
            _ => self.to_f64().partial_cmp(&other.to_f64()),
        }
    }

    /// The value this number has as a record cell; fractions become reals.
    pub fn to_value(self) -> Value {
        match self {
            Num::Int(i) => match i64::try_from(i) {
                Ok(v) => Value::Int(v),
                Err(_) => Value::Real(i as f64),
            },
            other => Value::Real(other.to_f64()),
        }
    }
}

fn mul(a: i128, b: i128) -> Result<i128, ArithError> {
    a.checked_mul(b).ok_or(ArithError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_is_exact() {
        let third = Num::Int(1).checked_div(Num::Int(3)).unwrap();
        assert_eq!(third, Num::Frac(1, 3));
        let one = third.checked_mul(Num::Int(3)).unwrap();
        assert_eq!(one, Num::Int(1));
        assert_eq!(Num::Int(7).checked_div(Num::Int(7)).unwrap(), Num::Int(1));
    }

    #[test]
    fn fractions_compare_exactly() {
        let a = Num::Int(2).checked_div(Num::Int(3)).unwrap();
        let b = Num::Int(666_666_667)
            .checked_div(Num::Int(1_000_000_000))
            .unwrap();
        assert_eq!(a.cmp_num(&b), Some(Ordering::Less));
    }

    #[test]
    fn modulo_follows_the_divisor_sign() {
        assert_eq!(Num::Int(-7).modulo(Num::Int(4)).unwrap(), Num::Int(1));
        assert_eq!(Num::Int(7).modulo(Num::Int(-4)).unwrap(), Num::Int(-1));
        assert_eq!(Num::Int(8).modulo(Num::Int(4)).unwrap(), Num::Int(0));
        assert_eq!(
            Num::Int(1).modulo(Num::Int(0)),
            Err(ArithError::DivisionByZero)
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let big = Num::Int(i128::MAX / 2 + 1);
        assert_eq!(big.checked_add(big), Err(ArithError::Overflow));
    }

    #[test]
    fn ints_and_reals_are_the_same_number() {
        assert!(Value::Int(3).same(&Value::Real(3.0)));
        assert!(!Value::Int(3).same(&Value::Str("3".into())));
    }
}
