//! The text form of a record, as generators read and write it.
//!
//! A record is `name=value` pairs in the pack's field order, separated by one space:
//!
//! ```text
//! Duration=0.004 Proto=UDP SrcIpAddr=private_p2p SrcPt=60000 DstIpAddr=dns DstPt=53 …
//! ```
//!
//! Derived fields that have a definition are not written: they follow from the others.
//! Categorical values are written as their labels (`Proto=UDP`, not `1`), booleans as
//! `true`/`false`, integers as decimal digits with no leading zeros, and reals with exactly
//! the number of decimals the field's domain has (`Duration=0.004`), so that every value
//! has one spelling.

use std::fmt;

use crate::schema::{Domain, Field, Schema, ValueType};
use crate::value::Value;

/// How one field is written.
#[derive(Clone, Debug, PartialEq)]
pub enum Spelling {
    /// One of these texts, each standing for a value.
    Choice(Vec<(String, Value)>),
    /// Decimal digits, optionally signed.
    Integer,
    /// Decimal digits with exactly this many after the point, optionally signed.
    Decimal(u32),
    /// Any text without spaces.
    Text,
}

/// A field as records write it.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Index of the field in the schema.
    pub field: usize,
    pub name: String,
    pub spelling: Spelling,
}

/// The record format of a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFormat {
    slots: Vec<Slot>,
}

/// A record text that does not fit the format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, FormatError> {
    Err(FormatError {
        message: message.into(),
    })
}

fn spelling(field: &Field) -> Result<Spelling, FormatError> {
    Ok(match (&field.domain, field.value_type) {
        (Domain::Categorical { values }, _) => {
            let mut choices = Vec::with_capacity(values.len());
            for c in values {
                let text = c.label_or_value();
                if text.is_empty() || text.contains(char::is_whitespace) {
                    return err(format!(
                        "field `{}`: value `{text}` cannot be written in a record (empty or with a space)",
                        field.name
                    ));
                }
                if choices.iter().any(|(t, _): &(String, Value)| *t == text) {
                    return err(format!(
                        "field `{}`: two values are written `{text}`",
                        field.name
                    ));
                }
                choices.push((text, c.value.clone()));
            }
            Spelling::Choice(choices)
        }
        (Domain::Boolean, _) => Spelling::Choice(vec![
            ("false".into(), Value::Bool(false)),
            ("true".into(), Value::Bool(true)),
        ]),
        (Domain::Integer { .. }, _) => Spelling::Integer,
        (Domain::Real { decimals, .. }, _) => Spelling::Decimal(decimals.unwrap_or(6)),
        (Domain::String, ValueType::String) | (Domain::String, _) => Spelling::Text,
    })
}

impl RecordFormat {
    /// The format of records of `schema`: every field without a definition, in order.
    pub fn new(schema: &Schema) -> Result<RecordFormat, FormatError> {
        let mut slots = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if f.definition.is_some() {
                continue;
            }
            if f.name.is_empty() || f.name.contains(char::is_whitespace) || f.name.contains('=') {
                return err(format!(
                    "field name `{}` cannot be written in a record",
                    f.name
                ));
            }
            slots.push(Slot {
                field: i,
                name: f.name.clone(),
                spelling: spelling(f)?,
            });
        }
        if slots.is_empty() {
            return err("the schema has no field to write");
        }
        Ok(RecordFormat { slots })
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The written fields' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name.as_str()).collect()
    }

    /// The slot of a field name.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// How `value` is written in `slot`; `None` if it cannot be.
    pub fn value_text(&self, slot: usize, value: &Value) -> Option<String> {
        match &self.slots[slot].spelling {
            Spelling::Choice(choices) => choices
                .iter()
                .find(|(_, v)| v.same(value))
                .map(|(t, _)| t.clone()),
            Spelling::Integer => match value {
                Value::Int(i) => Some(i.to_string()),
                _ => None,
            },
            Spelling::Decimal(d) => {
                let x = value.as_num()?.to_f64();
                x.is_finite().then(|| format!("{x:.*}", *d as usize))
            }
            Spelling::Text => match value {
                Value::Str(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
                    Some(s.clone())
                }
                _ => None,
            },
        }
    }

    /// Reads a value's text in `slot`.
    pub fn parse_value(&self, slot: usize, text: &str) -> Result<Value, FormatError> {
        let name = &self.slots[slot].name;
        match &self.slots[slot].spelling {
            Spelling::Choice(choices) => match choices.iter().find(|(t, _)| t == text) {
                Some((_, v)) => Ok(v.clone()),
                None => err(format!("`{name}`: `{text}` is not one of its values")),
            },
            Spelling::Integer => {
                if !integer_shape(text) {
                    return err(format!(
                        "`{name}`: `{text}` is not an integer without leading zeros"
                    ));
                }
                text.parse()
                    .map(Value::Int)
                    .or_else(|_| err(format!("`{name}`: `{text}` is too large")))
            }
            Spelling::Decimal(d) => {
                if !decimal_shape(text, *d) {
                    return err(format!(
                        "`{name}`: `{text}` is not a number with {d} decimals"
                    ));
                }
                text.parse()
                    .map(Value::Real)
                    .or_else(|_| err(format!("`{name}`: `{text}` is not a number")))
            }
            Spelling::Text => Ok(Value::Str(text.to_owned())),
        }
    }

    /// Writes a record; `values` are indexed by schema field, missing ones are skipped.
    pub fn write(&self, values: &[Option<Value>]) -> Result<String, FormatError> {
        let mut out = String::new();
        for (k, slot) in self.slots.iter().enumerate() {
            let Some(value) = values.get(slot.field).and_then(Option::as_ref) else {
                return err(format!("no value for `{}`", slot.name));
            };
            let Some(text) = self.value_text(k, value) else {
                return err(format!(
                    "`{}`: {value} cannot be written as a value of this field",
                    slot.name
                ));
            };
            if k > 0 {
                out.push(' ');
            }
            out.push_str(&slot.name);
            out.push('=');
            out.push_str(&text);
        }
        Ok(out)
    }

    /// Reads a whole record into values indexed by schema field (derived fields `None`).
    pub fn read(&self, text: &str, fields: usize) -> Result<Vec<Option<Value>>, FormatError> {
        let mut values = vec![None; fields];
        let mut parts = text.trim_end().split(' ');
        for (k, slot) in self.slots.iter().enumerate() {
            let Some(part) = parts.next() else {
                return err(format!("the record ends before `{}`", slot.name));
            };
            let Some((name, value)) = part.split_once('=') else {
                return err(format!("`{part}` is not `name=value`"));
            };
            if name != slot.name {
                return err(format!(
                    "expected `{}=` at field {}, found `{name}=`",
                    slot.name,
                    k + 1
                ));
            }
            values[slot.field] = Some(self.parse_value(k, value)?);
        }
        if let Some(extra) = parts.next() {
            return err(format!("unexpected text after the last field: `{extra}`"));
        }
        Ok(values)
    }
}

/// `-?(0|[1-9][0-9]*)`.
pub fn integer_shape(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0"
}

/// An integer shape, then `.` and exactly `d` digits (no point when `d` is 0).
pub fn decimal_shape(text: &str, d: u32) -> bool {
    if d == 0 {
        return integer_shape(text);
    }
    match text.split_once('.') {
        Some((int, frac)) => {
            (integer_shape(int) || int == "-0")
                && frac.len() == d as usize
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

impl fmt::Display for Spelling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spelling::Choice(c) => write!(f, "one of {} values", c.len()),
            Spelling::Integer => f.write_str("an integer"),
            Spelling::Decimal(d) => write!(f, "a number with {d} decimals"),
            Spelling::Text => f.write_str("text"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Category;

    fn schema() -> Schema {
        let f = Field::plain;
        let proto = Domain::Categorical {
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
        };
        let mut total = f(
            "Total",
            ValueType::Integer,
            Domain::Integer {
                min: 0,
                max: 10,
                multiple_of: None,
            },
        );
        total.definition = Some(crate::Term::symbol("Packets"));
        Schema::new(vec![
            f(
                "Duration",
                ValueType::Real,
                Domain::Real {
                    min: 0.0,
                    max: 9.0,
                    decimals: Some(3),
                },
            ),
            f("Proto", ValueType::Categorical, proto),
            f(
                "Packets",
                ValueType::Integer,
                Domain::Integer {
                    min: 1,
                    max: 100,
                    multiple_of: None,
                },
            ),
            total,
        ])
        .unwrap()
    }

    #[test]
    fn records_round_trip() {
        let s = schema();
        let format = RecordFormat::new(&s).unwrap();
        assert_eq!(format.slots().len(), 3, "the derived field is not written");
        let values = vec![
            Some(Value::Real(0.004)),
            Some(Value::Int(1)),
            Some(Value::Int(12)),
            None,
        ];
        let text = format.write(&values).unwrap();
        assert_eq!(text, "Duration=0.004 Proto=UDP Packets=12");
        assert_eq!(format.read(&text, 4).unwrap(), values);
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        let format = RecordFormat::new(&schema()).unwrap();
        let e = |t: &str| format.read(t, 4).unwrap_err().message;
        assert!(
            e("Duration=0.004 Proto=SCTP Packets=1").contains("`SCTP` is not one of its values")
        );
        assert!(e("Duration=0.04 Proto=UDP Packets=1").contains("3 decimals"));
        assert!(e("Duration=0.004 Proto=UDP Packets=01").contains("leading zeros"));
        assert!(e("Duration=0.004 Packets=1").contains("expected `Proto=`"));
        assert!(e("Duration=0.004 Proto=UDP").contains("ends before `Packets`"));
        assert!(e("Duration=0.004 Proto=UDP Packets=1 x=2").contains("after the last field"));
    }
}
