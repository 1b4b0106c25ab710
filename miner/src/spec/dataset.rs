//! The dataset spec: how to load, clean, window and annotate records.

use std::collections::BTreeMap;
use std::path::Path;

use rulepacks::Value;
use rulepacks::schema::{Role, ValueType};
use serde::Deserialize;

use super::{SpecError, load_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceType {
    Auto,
    Csv,
    Pcap,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[serde(rename = "type")]
    pub kind: SourceType,
    #[serde(default)]
    pub path: Option<String>,
    /// pandas `read_csv` keywords (see [`crate::input::csv::CsvOptions::from_pandas`]).
    #[serde(default)]
    pub csv_read_options: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsSpec {
    #[serde(default)]
    pub lower: Option<f64>,
    #[serde(default)]
    pub upper: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstantKind {
    Assignment,
    Scalar,
    Limit,
    Addition,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConstantSpec {
    pub kind: ConstantKind,
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(default)]
    pub source_name: Option<String>,
    #[serde(default)]
    pub value_type: Option<ValueType>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub bounds: Option<BoundsSpec>,
    /// The values a categorical field may take, whether or not the data has them all.
    #[serde(default)]
    pub domain: Option<Vec<Value>>,
    #[serde(default)]
    pub constants: Vec<FieldConstantSpec>,
    /// Labels of categorical values, keyed by the value's text.
    #[serde(default)]
    pub enum_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub context_family: Option<String>,
    #[serde(default)]
    pub context_index: Option<u32>,
    /// *Extension*: a sentence for the pack's schema.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextWindowSpec {
    pub size: u32,
    #[serde(default = "one")]
    pub stride: u32,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub order_by: Vec<String>,
    #[serde(default = "default_template")]
    pub column_template: String,
}

fn one() -> u32 {
    1
}

fn default_template() -> String {
    "{name}_ctx{index}".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingRuleMode {
    Equals,
    In,
    Range,
    Prefix,
    Regex,
    Default,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRuleSpec {
    pub mode: MappingRuleMode,
    pub output: Value,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub values: Vec<Value>,
    #[serde(default)]
    pub lower: Option<f64>,
    #[serde(default)]
    pub upper: Option<f64>,
    #[serde(default = "yes")]
    pub inclusive_lower: bool,
    #[serde(default = "yes")]
    pub inclusive_upper: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreprocessKind {
    Rename,
    Drop,
    Cast,
    ParseHex,
    Fillna,
    MapValues,
    MapRules,
    FilterEquals,
    FilterIn,
    FilterPresent,
    Sort,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessStepSpec {
    pub kind: PreprocessKind,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub target_column: Option<String>,
    #[serde(default)]
    pub mapping: BTreeMap<String, Value>,
    #[serde(default)]
    pub rules: Vec<MappingRuleSpec>,
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub dtype: Option<String>,
    #[serde(default)]
    pub by: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DerivedOperation {
    Copy,
    Sum,
    Min,
    Max,
    Avg,
    Std,
    Diff,
    Ratio,
    CountNonzero,
    Exists,
    Forall,
    /// *Extension*: a user function (a WebAssembly component) over `inputs` or a `family`.
    Function,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedVariableSpec {
    pub name: String,
    pub operation: DerivedOperation,
    #[serde(default)]
    pub inputs: Vec<String>,
    pub value_type: ValueType,
    #[serde(default = "derived_roles")]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub literal: Option<serde_json::Value>,
    #[serde(default)]
    pub numerator: Option<String>,
    #[serde(default)]
    pub denominator: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// *Extension*: for `function`, the component file (a `.wasm` component, or a `.wat`
    /// core module implementing `wit/aggregate.wit`), relative to the spec file.
    #[serde(default)]
    pub component: Option<String>,
    /// *Extension*: for `function`, the window family whose members are the inputs (instead
    /// of `inputs`).
    #[serde(default)]
    pub family: Option<String>,
}

fn derived_roles() -> Vec<Role> {
    vec![Role::Derived]
}

/// *Extension*: a window family of plain columns (`IngressBytes0` … `IngressBytes49`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// The family's name.
    pub family: String,
    /// Matches member columns; its first capture group is the position in the window.
    pub regex: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The largest context window, in records.
pub const MAX_WINDOW: u32 = 10_000;

/// A dataset spec.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub source: SourceSpec,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    #[serde(default)]
    pub include_fields: Vec<String>,
    #[serde(default, alias = "excluded_fields")]
    pub exclude_fields: Vec<String>,
    #[serde(default)]
    pub entity_keys: Vec<String>,
    #[serde(default)]
    pub grouping_keys: Vec<String>,
    #[serde(default)]
    pub ordering_keys: Vec<String>,
    #[serde(default)]
    pub preprocessing: Vec<PreprocessStepSpec>,
    #[serde(default)]
    pub context_window: Option<ContextWindowSpec>,
    #[serde(default)]
    pub derived_variables: Vec<DerivedVariableSpec>,
    /// *Extension*: window families of plain columns.
    #[serde(default)]
    pub field_families: Vec<FamilySpec>,
}

impl DatasetSpec {
    /// Reads and checks a dataset spec; returns it with its JSON as read.
    pub fn load(path: &Path) -> Result<(DatasetSpec, serde_json::Value), SpecError> {
        let raw_text = std::fs::read_to_string(path).map_err(|source| SpecError::Io {
            path: path.to_owned(),
            source,
        })?;
        if raw_text.contains("\"excluded_fields\"") && raw_text.contains("\"exclude_fields\"") {
            return Err(SpecError::Invalid {
                path: path.to_owned(),
                message: "use only one of `exclude_fields` or the legacy `excluded_fields`".into(),
            });
        }
        let (spec, value): (DatasetSpec, _) = load_json(path)?;
        spec.check().map_err(|message| SpecError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok((spec, value))
    }

    /// Checks what the types alone cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            if !names.insert(f.name.as_str()) {
                return Err(format!("fields[{i}]: field `{}` is defined twice", f.name));
            }
            if let Some(b) = &f.bounds
                && let (Some(lo), Some(hi)) = (b.lower, b.upper)
                && lo > hi
            {
                return Err(format!(
                    "fields[{i}] `{}`: bounds lower {lo} > upper {hi}",
                    f.name
                ));
            }
            if f.domain.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "fields[{i}] `{}`: `domain` is empty; no record could have a value",
                    f.name
                ));
            }
            if f.context_family.is_some() != f.context_index.is_some() {
                return Err(format!(
                    "fields[{i}] `{}`: give both `context_family` and `context_index`, or neither",
                    f.name
                ));
            }
        }
        for (i, step) in self.preprocessing.iter().enumerate() {
            check_step(step).map_err(|m| format!("preprocessing[{i}] ({:?}): {m}", step.kind))?;
        }
        if let Some(w) = &self.context_window {
            if w.size == 0 || w.stride == 0 {
                return Err("context_window: `size` and `stride` must be at least 1".into());
            }
            if w.size > MAX_WINDOW {
                return Err(format!(
                    "context_window: `size` {} is too large (at most {MAX_WINDOW} records per window)",
                    w.size
                ));
            }
            if !w.column_template.contains("{name}") || !w.column_template.contains("{index}") {
                return Err(
                    "context_window: `column_template` needs `{name}` and `{index}`".into(),
                );
            }
        }
        for (i, d) in self.derived_variables.iter().enumerate() {
            if d.operation == DerivedOperation::Function {
                if d.component.is_none() {
                    return Err(format!(
                        "derived_variables[{i}] `{}`: a function needs `component` (its file)",
                        d.name
                    ));
                }
                if d.family.is_some() != d.inputs.is_empty() {
                    return Err(format!(
                        "derived_variables[{i}] `{}`: a function takes `family` or `inputs`, exactly one",
                        d.name
                    ));
                }
                continue;
            }
            if d.component.is_some() || d.family.is_some() {
                return Err(format!(
                    "derived_variables[{i}] `{}`: `component` and `family` are for `function` only",
                    d.name
                ));
            }
            let needs = match d.operation {
                DerivedOperation::Copy => 1,
                DerivedOperation::Diff => 2,
                DerivedOperation::Ratio => {
                    usize::from(d.numerator.is_none() || d.denominator.is_none()) * 2
                }
                _ => 1,
            };
            if d.inputs.len() < needs {
                return Err(format!(
                    "derived_variables[{i}] `{}`: {:?} needs {needs} input(s), found {}",
                    d.name,
                    d.operation,
                    d.inputs.len()
                ));
            }
        }
        let mut families = std::collections::HashSet::new();
        for (i, fam) in self.field_families.iter().enumerate() {
            if !families.insert(fam.family.as_str()) {
                return Err(format!(
                    "field_families[{i}]: family `{}` is defined twice",
                    fam.family
                ));
            }
            let re = regex::Regex::new(&fam.regex)
                .map_err(|e| format!("field_families[{i}]: bad regex `{}`: {e}", fam.regex))?;
            if re.captures_len() < 2 {
                return Err(format!(
                    "field_families[{i}]: regex `{}` needs a capture group for the position",
                    fam.regex
                ));
            }
        }
        Ok(())
    }
}

fn check_step(step: &PreprocessStepSpec) -> Result<(), String> {
    use PreprocessKind::*;
    let needs_columns = !matches!(step.kind, Rename | Sort);
    if needs_columns && step.columns.is_empty() {
        return Err("`columns` is empty".into());
    }
    match step.kind {
        Rename if step.mapping.is_empty() => Err("`mapping` is empty".into()),
        Rename if step.mapping.values().any(|v| v.as_str().is_none()) => {
            Err("`mapping` must map old names to new names (strings)".into())
        }
        Cast => match step.dtype.as_deref() {
            Some(d) if cast_target(d).is_some() => Ok(()),
            Some(d) => Err(format!(
                "`dtype` `{d}` is not one of int64, float64, str, bool, category"
            )),
            None => Err("`dtype` is missing".into()),
        },
        Fillna | FilterEquals if step.value.is_none() => Err("`value` is missing".into()),
        FilterIn if !step.value.as_ref().is_some_and(serde_json::Value::is_array) => {
            Err("`value` must be a list".into())
        }
        MapValues if step.mapping.is_empty() => Err("`mapping` is empty".into()),
        MapRules if step.rules.is_empty() => Err("`rules` is empty".into()),
        MapValues | MapRules if step.target_column.is_some() && step.columns.len() != 1 => {
            Err("`target_column` needs exactly one source column".into())
        }
        Sort if step.by.is_empty() && step.columns.is_empty() => {
            Err("give `by` (or `columns`)".into())
        }
        _ => Ok(()),
    }?;
    for (i, rule) in step.rules.iter().enumerate() {
        let ok = match rule.mode {
            MappingRuleMode::Equals | MappingRuleMode::Prefix | MappingRuleMode::Regex => {
                rule.value.is_some()
            }
            MappingRuleMode::In => !rule.values.is_empty(),
            MappingRuleMode::Range => rule.lower.is_some() || rule.upper.is_some(),
            MappingRuleMode::Default => true,
        };
        if !ok {
            return Err(format!(
                "rules[{i}]: a `{:?}` rule needs its value(s) or bounds",
                rule.mode
            ));
        }
        if rule.mode == MappingRuleMode::Regex
            && let Some(Value::Str(re)) = &rule.value
        {
            regex::Regex::new(re).map_err(|e| format!("rules[{i}]: bad regex `{re}`: {e}"))?;
        }
    }
    Ok(())
}

/// What a pandas `dtype` casts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CastTarget {
    Int,
    Real,
    Text,
    Bool,
    Keep,
}

pub fn cast_target(dtype: &str) -> Option<CastTarget> {
    Some(match dtype.to_ascii_lowercase().as_str() {
        "int" | "int64" | "int32" | "int16" | "int8" | "uint8" | "uint16" | "uint32" | "uint64" => {
            CastTarget::Int
        }
        "float" | "float64" | "float32" | "double" => CastTarget::Real,
        "str" | "string" | "object" => CastTarget::Text,
        "bool" | "boolean" => CastTarget::Bool,
        "category" => CastTarget::Keep,
        _ => return None,
    })
}
