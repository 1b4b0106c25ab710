//! Typed, column-oriented records.
//!
//! Text values (categorical labels, addresses, strings) are interned once per dataset, so
//! a text column is a vector of `u32` ids and equal strings have equal ids across columns:
//! `ip.src_ctx0 = ip.dst_ctx1` compares two ids.

use std::collections::HashMap;

use rulepacks::Value;

/// Interned strings.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    strings: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub fn resolve(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }
}

/// The values of one column.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Int(Vec<i64>),
    Real(Vec<f64>),
    /// Interned text.
    Text(Vec<u32>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len(),
            ColumnData::Real(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> ColumnData {
        match self {
            ColumnData::Int(v) => ColumnData::Int(indices.iter().map(|&i| v[i]).collect()),
            ColumnData::Real(v) => ColumnData::Real(indices.iter().map(|&i| v[i]).collect()),
            ColumnData::Text(v) => ColumnData::Text(indices.iter().map(|&i| v[i]).collect()),
        }
    }

    /// Compares two rows of the column (reals by total order).
    pub fn cmp_rows(&self, a: usize, b: usize, strings: &Interner) -> std::cmp::Ordering {
        match self {
            ColumnData::Int(v) => v[a].cmp(&v[b]),
            ColumnData::Real(v) => v[a].total_cmp(&v[b]),
            ColumnData::Text(v) => strings.resolve(v[a]).cmp(strings.resolve(v[b])),
        }
    }

    /// One cell as a formula value; `boolean` columns hold 0 and 1.
    pub fn value(&self, row: usize, strings: &Interner, boolean: bool) -> Value {
        match self {
            ColumnData::Int(v) if boolean => Value::Bool(v[row] != 0),
            ColumnData::Int(v) => Value::Int(v[row]),
            ColumnData::Real(v) => Value::Real(v[row]),
            ColumnData::Text(v) => Value::Str(strings.resolve(v[row]).to_owned()),
        }
    }
}
