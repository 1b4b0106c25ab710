//! The field schema of a pack: what a record is.

use std::collections::HashMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::formula::Term;
use crate::value::Value;

/// The type of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Integer,
    Real,
    Categorical,
    Boolean,
    String,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Integer => "integer",
            ValueType::Real => "real",
            ValueType::Categorical => "categorical",
            ValueType::Boolean => "boolean",
            ValueType::String => "string",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, ValueType::Integer | ValueType::Real)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a field means, as the reference dataset specs name it.  Roles decide which fields
/// the grammar compares with each other.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Src,
    Dst,
    Proto,
    Time,
    Sequence,
    Measurement,
    Identifier,
    Window,
    Count,
    Size,
    Flag,
    Derived,
}

/// One allowed value of a categorical field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub value: Value,
    /// How records write the value (`TCP` for code `0`); the value itself when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Category {
    /// The text a record uses for this value.
    pub fn label_or_value(&self) -> String {
        match (&self.label, &self.value) {
            (Some(label), _) => label.clone(),
            (None, Value::Str(s)) => s.clone(),
            (None, v) => v.to_string(),
        }
    }
}

/// The values a field may take.  Entailment and enforcement use these as axioms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Domain {
    /// One of a finite list of values.
    Categorical {
        values: Vec<Category>,
    },
    /// An integer in `[min, max]`; when `multiple_of` is set, a multiple of it.
    Integer {
        min: i64,
        max: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        multiple_of: Option<i64>,
    },
    /// A real in `[min, max]`, written with at most `decimals` digits after the point.
    Real {
        min: f64,
        max: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decimals: Option<u32>,
    },
    Boolean,
    /// Any text.
    String,
}

impl Domain {
    /// The categorical value whose label (or value text) is `label`.
    pub fn category_by_label(&self, label: &str) -> Option<&Category> {
        match self {
            Domain::Categorical { values } => values.iter().find(|c| c.label_or_value() == label),
            _ => None,
        }
    }

    /// The categorical value equal to `value`.
    pub fn category(&self, value: &Value) -> Option<&Category> {
        match self {
            Domain::Categorical { values } => values.iter().find(|c| c.value.same(value)),
            _ => None,
        }
    }

    /// Whether `value` lies in the domain.
    pub fn contains(&self, value: &Value) -> bool {
        match self {
            Domain::Categorical { .. } => self.category(value).is_some(),
            Domain::Integer {
                min,
                max,
                multiple_of,
            } => match value {
                Value::Int(v) => {
                    v >= min && v <= max && multiple_of.is_none_or(|m| m == 0 || v % m == 0)
                }
                _ => false,
            },
            Domain::Real { min, max, .. } => match value.as_num() {
                Some(n) if value.is_numeric() && !matches!(value, Value::Bool(_)) => {
                    let x = n.to_f64();
                    x >= *min && x <= *max
                }
                _ => false,
            },
            Domain::Boolean => matches!(value, Value::Bool(_)),
            Domain::String => matches!(value, Value::Str(_)),
        }
    }
}

/// One field of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub value_type: ValueType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    pub domain: Domain,
    /// The window family this field belongs to (`tcp.seq` for `tcp.seq_ctx1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The field's position in its family's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// For a derived field, its value in terms of other fields.  Entailment and enforcement
    /// treat it as an axiom; a derived field without one (a standard deviation, say) is
    /// constrained by its domain only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Term>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Field {
    /// A field with no roles, family or definition.
    pub fn plain(name: &str, value_type: ValueType, domain: Domain) -> Field {
        Field {
            name: name.into(),
            value_type,
            roles: vec![],
            domain,
            family: None,
            index: None,
            definition: None,
            description: None,
        }
    }
}

/// A field index in a [`Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u32);

impl FieldId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Fields with lookup by name and by window family.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    fields: Vec<Field>,
    by_name: HashMap<String, FieldId>,
    families: HashMap<String, Vec<FieldId>>,
    /// User functions formulas may call, by name.
    functions: HashMap<String, std::sync::Arc<dyn crate::user::UserFunction>>,
}

impl Schema {
    /// Builds the lookup tables; fails on a name used twice or a family with a gap.
    pub fn new(fields: Vec<Field>) -> Result<Schema, String> {
        let mut by_name = HashMap::new();
        let mut members: HashMap<String, Vec<(u32, FieldId)>> = HashMap::new();
        for (i, field) in fields.iter().enumerate() {
            let id = FieldId(i as u32);
            if by_name.insert(field.name.clone(), id).is_some() {
                return Err(format!("field `{}` is defined twice", field.name));
            }
            if let (Some(family), Some(index)) = (&field.family, field.index) {
                members.entry(family.clone()).or_default().push((index, id));
            }
        }
        let mut families = HashMap::new();
        for (family, mut list) in members {
            list.sort_unstable();
            for (expected, (index, id)) in list.iter().enumerate() {
                if *index as usize != expected {
                    let name = &fields[id.index()].name;
                    return Err(format!(
                        "window family `{family}` has no member at position {expected} \
                         (next is `{name}` at {index})"
                    ));
                }
            }
            families.insert(family, list.into_iter().map(|(_, id)| id).collect());
        }
        Ok(Schema {
            fields,
            by_name,
            families,
            functions: HashMap::new(),
        })
    }

    /// Lets formulas call `function` by its name (replacing a function of that name).
    pub fn bind_function(&mut self, function: std::sync::Arc<dyn crate::user::UserFunction>) {
        self.functions.insert(function.name().to_owned(), function);
    }

    /// A bound user function.
    pub fn function(&self, name: &str) -> Option<&std::sync::Arc<dyn crate::user::UserFunction>> {
        self.functions.get(name)
    }

    /// The names of the bound user functions, sorted.
    pub fn function_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.functions.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn into_fields(self) -> Vec<Field> {
        self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn id(&self, name: &str) -> Option<FieldId> {
        self.by_name.get(name).copied()
    }

    pub fn field(&self, id: FieldId) -> &Field {
        &self.fields[id.index()]
    }

    pub fn by_name(&self, name: &str) -> Option<&Field> {
        self.id(name).map(|id| self.field(id))
    }

    /// The members of a window family in window order.
    pub fn family(&self, name: &str) -> Option<&[FieldId]> {
        self.families.get(name).map(Vec::as_slice)
    }

    pub fn family_names(&self) -> impl Iterator<Item = &str> {
        self.families.keys().map(String::as_str)
    }
}
