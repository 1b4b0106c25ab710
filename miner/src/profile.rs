//! Profiles of the data: field domains for the pack's schema, and the constants that
//! grammar templates draw from the data (quantiles, most frequent values).
//!
//! Quantiles match pandas' `Series.quantile` (numpy's linear method, including its
//! two-sided interpolation formula), and integer fields round them half to even as the
//! reference does with `int(round(x))`, so that a reference grammar yields the same
//! predicates here as there.

use std::collections::HashMap;

use rulepacks::Value;
use rulepacks::schema::{Category, Domain, Field, ValueType};

use crate::prepare::{Dataset, FieldInfo};
use crate::table::ColumnData;

/// The schema of the prepared records: types, roles, families and domains.
pub fn schema_fields(dataset: &Dataset) -> Vec<Field> {
    dataset
        .fields
        .iter()
        .zip(&dataset.columns)
        .map(|(info, column)| Field {
            name: info.name.clone(),
            value_type: info.value_type,
            roles: info.roles.clone(),
            domain: domain(info, column, dataset),
            family: info.family.clone(),
            index: info.index,
            definition: info.definition.clone(),
            description: info.description.clone(),
        })
        .collect()
}

fn domain(info: &FieldInfo, column: &ColumnData, dataset: &Dataset) -> Domain {
    let labelled = |values: Vec<Value>| Domain::Categorical {
        values: values
            .into_iter()
            .map(|value| {
                let key = match &value {
                    Value::Str(s) => s.clone(),
                    other => other.to_string(),
                };
                Category {
                    label: info.enum_labels.get(&key).cloned(),
                    value,
                }
            })
            .collect(),
    };
    if let Some(declared) = &info.declared_domain {
        return labelled(declared.clone());
    }
    match (info.value_type, column) {
        (ValueType::Boolean, _) => Domain::Boolean,
        (ValueType::String, _) => Domain::String,
        (ValueType::Categorical, _) => labelled(distinct_values(column, dataset)),
        (_, ColumnData::Int(v)) => {
            let (lo, hi) = bounds_int(info, v);
            let g = v.iter().fold(0i64, |g, x| gcd(g, *x));
            Domain::Integer {
                min: lo,
                max: hi,
                multiple_of: (g > 1).then_some(g),
            }
        }
        (_, ColumnData::Real(v)) => {
            let lo = info
                .bounds
                .as_ref()
                .and_then(|b| b.lower)
                .unwrap_or_else(|| v.iter().copied().fold(f64::INFINITY, f64::min));
            let hi = info
                .bounds
                .as_ref()
                .and_then(|b| b.upper)
                .unwrap_or_else(|| v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            Domain::Real {
                min: lo,
                max: hi,
                decimals: Some(v.iter().map(|x| decimals(*x)).max().unwrap_or(0)),
            }
        }
        (_, ColumnData::Text(_)) => labelled(distinct_values(column, dataset)),
    }
}

fn bounds_int(info: &FieldInfo, v: &[i64]) -> (i64, i64) {
    let b = info.bounds.clone().unwrap_or_default();
    let lo = b
        .lower
        .map_or_else(|| v.iter().copied().min().unwrap_or(0), |l| l.ceil() as i64);
    let hi = b.upper.map_or_else(
        || v.iter().copied().max().unwrap_or(0),
        |u| u.floor() as i64,
    );
    (lo, hi)
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i64::try_from(a).unwrap_or(1)
}

/// The fewest decimals (up to 9) that print `x` back exactly.
fn decimals(x: f64) -> u32 {
    (0..=9)
        .find(|d| format!("{x:.*}", *d as usize).parse::<f64>().ok() == Some(x))
        .unwrap_or(9)
}

/// Distinct values of a column, sorted (numbers by value, text lexicographically).
pub fn distinct_values(column: &ColumnData, dataset: &Dataset) -> Vec<Value> {
    match column {
        ColumnData::Int(v) => {
            let mut d = v.clone();
            d.sort_unstable();
            d.dedup();
            d.into_iter().map(Value::Int).collect()
        }
        ColumnData::Real(v) => {
            let mut d = v.clone();
            d.sort_by(f64::total_cmp);
            d.dedup();
            d.into_iter().map(Value::Real).collect()
        }
        ColumnData::Text(v) => {
            let mut d: Vec<&str> = v.iter().map(|id| dataset.strings.resolve(*id)).collect();
            d.sort_unstable();
            d.dedup();
            d.into_iter().map(Value::from).collect()
        }
    }
}

/// numpy's linear interpolation, written as numpy writes it.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The `q` quantile of sorted values, as pandas computes it.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    // pandas passes q * 100 to numpy, which divides by 100 again.
    let q = (q * 100.0) / 100.0;
    let virtual_index = q * (n - 1) as f64;
    let below = virtual_index.floor();
    let i = below as usize;
    let j = (i + 1).min(n - 1);
    lerp(sorted[i], sorted[j], virtual_index - below)
}

/// Quantile constants of numeric values: integers round half to even.
pub fn quantile_constants(
    values: &mut [f64],
    quantiles: &[f64],
    integer: bool,
) -> Vec<(Value, String)> {
    values.sort_by(f64::total_cmp);
    let mut out: Vec<(Value, String)> = Vec::new();
    for &q in quantiles {
        let raw = quantile(values, q);
        let value = if integer {
            Value::Int(raw.round_ties_even() as i64)
        } else {
            Value::Real(raw)
        };
        if !out.iter().any(|(v, _)| *v == value) {
            out.push((value, quantile_label(q)));
        }
    }
    out
}

/// `p25`, `p90`, `p99_9`: how the reference labels quantile constants.
pub fn quantile_label(q: f64) -> String {
    let percent = q * 100.0;
    if (percent - percent.round()).abs() < 1e-9 {
        format!("p{}", percent.round() as i64)
    } else {
        format!(
            "p{}",
            format!("{percent:.3}")
                .trim_end_matches('0')
                .replace('.', "_")
        )
    }
}

/// The `k` most frequent values, most frequent first (ties: first seen first).
pub fn top_values(columns: &[&ColumnData], dataset: &Dataset, k: usize) -> Vec<(Value, String)> {
    let mut counts: HashMap<u64, (usize, usize, Value)> = HashMap::new();
    let mut seen = 0usize;
    for column in columns {
        for row in 0..column.len() {
            let (key, value) = match column {
                ColumnData::Int(v) => (v[row] as u64, Value::Int(v[row])),
                ColumnData::Real(v) => (v[row].to_bits(), Value::Real(v[row])),
                ColumnData::Text(v) => (
                    u64::from(v[row]),
                    Value::from(dataset.strings.resolve(v[row])),
                ),
            };
            let entry = counts.entry(key).or_insert((0, seen, value));
            entry.0 += 1;
            seen += 1;
        }
    }
    let mut ranked: Vec<(usize, usize, Value)> = counts.into_values().collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(i, (_, _, v))| (v, format!("top{}", i + 1)))
        .collect()
}

/// A column's values as reals (for quantiles).
pub fn as_reals(column: &ColumnData) -> Option<Vec<f64>> {
    match column {
        ColumnData::Int(v) => Some(v.iter().map(|x| *x as f64).collect()),
        ColumnData::Real(v) => Some(v.clone()),
        ColumnData::Text(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_pandas() {
        // pandas.Series([1, 2, 3, 4, 10]).quantile([0.25, 0.5, 0.75, 0.9])
        let mut v = vec![10.0, 1.0, 3.0, 2.0, 4.0];
        v.sort_by(f64::total_cmp);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.75), 4.0);
        assert!((quantile(&v, 0.9) - 7.6).abs() < 1e-12);
        // Integer fields round half to even: [1, 2] at 0.5 is 1.5 -> 2; [2, 3] -> 2.5 -> 2.
        let c = quantile_constants(&mut [1.0, 2.0], &[0.5], true);
        assert_eq!(c[0].0, Value::Int(2));
        let c = quantile_constants(&mut [2.0, 3.0], &[0.5], true);
        assert_eq!(c[0].0, Value::Int(2));
    }

    #[test]
    fn labels_match_the_reference() {
        assert_eq!(quantile_label(0.25), "p25");
        assert_eq!(quantile_label(0.999), "p99_9");
    }

    #[test]
    fn decimals_are_the_shortest_exact_form() {
        assert_eq!(decimals(0.0), 0);
        assert_eq!(decimals(0.123), 3);
        assert_eq!(decimals(2.5), 1);
    }
}
