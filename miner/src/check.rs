//! Checking records against a pack: which rules fail, how often, and where.
//!
//! Records come either through a dataset spec (the pack's own, by default: the same
//! reading, cleaning and windowing as when the pack was mined), or as JSON lines already in
//! the pack's schema, one object per record with a value per field (categorical values by
//! label or by value), or as record texts (`.txt`, one `Name=value …` line per record, as
//! `netnomos serve` writes them) — which is what generators emit.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;

use rayon::prelude::*;
use rulepacks::resolve::{Prop, resolve};
use rulepacks::schema::{Domain, Field, Schema, ValueType};
use rulepacks::{RulePack, Value};

use crate::columnar::Evaluator;
use crate::input::Origin;
use crate::prepare::{self, Dataset, FieldInfo, LoadReport, PrepareOptions};
use crate::spec::DatasetSpec;
use crate::table::{ColumnData, Interner};

/// Stands for a text value of a field whose values are numeric codes: in no domain.
const OUTSIDE: i64 = i64::MIN;

/// Violations of one rule (or of one field's domain).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleViolations {
    pub id: String,
    pub text: String,
    pub violations: u64,
    /// Where the first violations are (lines or frames of the input).
    pub examples: Vec<String>,
}

/// Records that could not be checked, for one reason.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Unreadable {
    pub reason: String,
    pub records: u64,
    /// The first ones, with what was wrong.
    pub examples: Vec<String>,
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckReport {
    pub pack: String,
    /// What one checked record is: `records`, or `windows of N records`.
    pub unit: String,
    pub records: u64,
    pub rules: usize,
    /// Records that violate at least one rule or domain.
    pub records_violating: u64,
    pub violations: u64,
    /// Rules and domains with at least one violation, most violated first.
    pub failed: Vec<RuleViolations>,
    /// Records that could not be checked (malformed, missing fields), by reason.
    pub unreadable: Vec<Unreadable>,
}

/// Reads `input` for checking against `pack`: JSON lines, or through `spec` (the pack's
/// own dataset spec when `None`).  Errors name the input once.
pub fn load(
    pack: &RulePack,
    schema: &Schema,
    input: &Path,
    spec: Option<&Path>,
    strict: bool,
) -> Result<Dataset, String> {
    let name = input.display().to_string();
    load_named(pack, schema, input, spec, strict).map_err(|m| {
        if m.starts_with(&name) {
            m
        } else {
            format!("{name}: {m}")
        }
    })
}

fn load_named(
    pack: &RulePack,
    schema: &Schema,
    input: &Path,
    spec: Option<&Path>,
    strict: bool,
) -> Result<Dataset, String> {
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Fields with a definition need not be in record texts or JSON lines: they are
    // computed from the record (user functions included), in schema order.
    let mut derived = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if let Some(def) = &f.definition {
            let expr = rulepacks::resolve::resolve_term(def, schema)
                .map_err(|e| format!("pack {}: field `{}`: {e}", pack.id(), f.name))?;
            derived.push((i, expr));
        }
    }
    let fill = |mut values: Vec<Option<Value>>| -> Result<Vec<Value>, (String, String)> {
        for (i, expr) in &derived {
            let name = &schema.fields()[*i].name;
            let computed = rulepacks::eval::eval_num(expr, values.as_slice())
                .map_err(|e| (format!("`{name}` not computable"), format!("`{name}`: {e}")))?
                .map(rulepacks::Num::to_value);
            // A record may carry a derived value; it must be the one its definition gives.
            if let (Some(given), Some(c)) = (&values[*i], &computed) {
                let (g, c) = (
                    given.as_num().map_or(f64::NAN, |n| n.to_f64()),
                    c.as_num().map_or(f64::NAN, |n| n.to_f64()),
                );
                let close = (g - c).abs() <= 1e-9 * g.abs().max(c.abs()).max(1.0);
                if !close {
                    return Err((
                        format!("`{name}` differs from its definition"),
                        format!("`{name}` is given as {g}, but its definition gives {c}"),
                    ));
                }
            }
            values[*i] = computed;
        }
        Ok(values
            .into_iter()
            .map(|v| v.unwrap_or(Value::Int(OUTSIDE)))
            .collect())
    };
    if spec.is_none() && (ext == "txt" || ext == "records") {
        let format = rulepacks::record::RecordFormat::new(schema).map_err(|e| e.message)?;
        let read = |line: &str| {
            let values = format
                .read(line, schema.len())
                .map_err(|e| ("malformed record".to_owned(), e.message))?;
            fill(values)
        };
        return read_lines(schema, input, strict, &read);
    }
    if spec.is_none() && (ext == "jsonl" || ext == "ndjson") {
        let read = |line: &str| fill(record(schema, line)?);
        return read_lines(schema, input, strict, &read);
    }
    let (spec, spec_path) = match spec {
        Some(p) => (
            DatasetSpec::load(p).map_err(|e| e.to_string())?.0,
            p.to_owned(),
        ),
        None => {
            let source = pack.provenance.dataset_spec.as_ref().ok_or_else(|| {
                format!(
                    "pack {} records no dataset spec; give --dataset-spec, or JSON lines input",
                    pack.id()
                )
            })?;
            let spec: DatasetSpec = serde_json::from_value(source.content.clone())
                .map_err(|e| format!("pack {}: its dataset spec does not load: {e}", pack.id()))?;
            (spec, std::path::PathBuf::from(&source.path))
        }
    };
    // Derived fields that call user functions use the pack's embedded components, never
    // files the spec names: the pack is self-contained.
    let embedded = schema
        .fields()
        .iter()
        .filter_map(|f| match &f.definition {
            Some(rulepacks::Term::User { function, .. }) => schema
                .function(function)
                .map(|b| (f.name.clone(), b.clone())),
            _ => None,
        })
        .collect();
    let options = PrepareOptions {
        input: Some(input.to_owned()),
        strict,
        spec_path,
        embedded,
    };
    let dataset = prepare::prepare(&spec, &options).map_err(|e| e.to_string())?;
    align(dataset, schema)
}

/// Puts the dataset's columns in the schema's field order.
fn align(mut dataset: Dataset, schema: &Schema) -> Result<Dataset, String> {
    let mut columns = Vec::with_capacity(schema.len());
    let mut fields = Vec::with_capacity(schema.len());
    let mut missing = Vec::new();
    for f in schema.fields() {
        match dataset.field_index(&f.name) {
            Some(i) => {
                columns.push(std::mem::replace(
                    &mut dataset.columns[i],
                    ColumnData::Int(vec![]),
                ));
                fields.push(dataset.fields[i].clone());
            }
            None => missing.push(f.name.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the records lack fields the pack needs: `{}` (they have: {})",
            missing.join("`, `"),
            dataset
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    dataset.columns = columns;
    dataset.fields = fields;
    Ok(dataset)
}

/// Reads one line's record, or says why not (a reason class and the detail).
type LineReader<'a> = dyn Fn(&str) -> Result<Vec<Value>, (String, String)> + 'a;

/// Reads one record per line (a JSON object keyed by field name, or a record's text).
fn read_lines(
    schema: &Schema,
    path: &Path,
    strict: bool,
    read: &LineReader<'_>,
) -> Result<Dataset, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut strings = Interner::default();
    let mut cols: Vec<Vec<Value>> = vec![Vec::new(); schema.len()];
    let mut origins = Vec::new();
    let mut report = LoadReport {
        input: path.to_owned(),
        ..LoadReport::default()
    };
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let origin = Origin::Line(i as u64 + 1);
        let Ok(line) = String::from_utf8(line) else {
            report.records_read += 1;
            report.skip(
                "not UTF-8".into(),
                origin,
                "the line is not valid UTF-8".into(),
            );
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        report.records_read += 1;
        match read(&line) {
            Ok(values) => {
                for (c, v) in cols.iter_mut().zip(values) {
                    c.push(v);
                }
                origins.push(origin);
            }
            Err((class, detail)) => {
                if strict {
                    return Err(format!("{}: {origin}: {detail}", path.display()));
                }
                report.skip(class, origin, detail);
            }
        }
    }
    if origins.is_empty() {
        let mut message = String::from("no records to check");
        for (reason, g) in &report.skipped {
            message.push_str(&format!(
                "; {} unreadable: {reason}{}",
                g.count,
                g.first_example()
            ));
        }
        return Err(message);
    }
    let columns = schema
        .fields()
        .iter()
        .zip(cols)
        .map(|(f, vals)| column(f, &vals, &mut strings))
        .collect();
    let fields = schema.fields().iter().map(field_info).collect();
    report.records_kept = origins.len() as u64;
    Ok(Dataset {
        name: path.display().to_string(),
        fields,
        columns,
        origins,
        strings,
        report,
        functions: Vec::new(),
    })
}

fn field_info(f: &Field) -> FieldInfo {
    FieldInfo {
        name: f.name.clone(),
        value_type: f.value_type,
        roles: f.roles.clone(),
        constants: vec![],
        enum_labels: Default::default(),
        declared_domain: None,
        bounds: None,
        family: f.family.clone(),
        index: f.index,
        definition: f.definition.clone(),
        description: None,
    }
}

/// One record's values in schema order (a field with a definition may be absent), or why
/// it cannot be checked.
fn record(schema: &Schema, line: &str) -> Result<Vec<Option<Value>>, (String, String)> {
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| ("not a JSON object".to_owned(), e.to_string()))?;
    let mut out = Vec::with_capacity(schema.len());
    for f in schema.fields() {
        let Some(raw) = obj.get(&f.name) else {
            if f.definition.is_some() {
                out.push(None);
                continue;
            }
            return Err((
                format!("missing `{}`", f.name),
                format!("no value for `{}`", f.name),
            ));
        };
        out.push(Some(json_value(f, raw).ok_or_else(|| {
            (
                format!("bad `{}`", f.name),
                format!(
                    "`{}`: {raw} is not a {} value of this pack",
                    f.name, f.value_type
                ),
            )
        })?));
    }
    Ok(out)
}

fn json_value(f: &Field, raw: &serde_json::Value) -> Option<Value> {
    let v: Value = serde_json::from_value(raw.clone()).ok()?;
    match (&f.domain, &v) {
        (Domain::Categorical { values }, Value::Str(s)) => match f.domain.category_by_label(s) {
            Some(c) => Some(c.value.clone()),
            // A text that is no value of a field coded by numbers: a value outside the
            // domain, which the domain check reports.
            None if values.iter().all(|c| c.value.is_numeric()) => Some(Value::Int(OUTSIDE)),
            None => Some(v),
        },
        (_, Value::Int(i)) if f.value_type == ValueType::Real => Some(Value::Real(*i as f64)),
        (_, Value::Real(r)) if f.value_type == ValueType::Integer && r.fract() == 0.0 => {
            Some(Value::Int(*r as i64))
        }
        (_, Value::Str(s)) if f.value_type.is_numeric() => {
            s.trim().parse::<i64>().ok().map(Value::Int).or_else(|| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Value::Real)
            })
        }
        _ => Some(v),
    }
}

fn column(f: &Field, values: &[Value], strings: &mut Interner) -> ColumnData {
    let textual = values.iter().any(|v| matches!(v, Value::Str(_)));
    if textual {
        return ColumnData::Text(
            values
                .iter()
                .map(|v| {
                    strings.intern(&match v {
                        Value::Str(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .collect(),
        );
    }
    if f.value_type == ValueType::Real || values.iter().any(|v| matches!(v, Value::Real(_))) {
        return ColumnData::Real(
            values
                .iter()
                .map(|v| v.as_num().map_or(f64::NAN, |n| n.to_f64()))
                .collect(),
        );
    }
    ColumnData::Int(
        values
            .iter()
            .map(|v| match v {
                Value::Int(i) => *i,
                Value::Bool(b) => i64::from(*b),
                _ => 0,
            })
            .collect(),
    )
}

/// Per rule: (violations, first example rows); and the rows failing anything.
type BlockStats = (Vec<(u64, Vec<usize>)>, Vec<usize>);

/// Checks every record of `dataset` (aligned to `schema`) against the pack's rules and
/// field domains.
pub fn check(
    pack: &RulePack,
    schema: &Schema,
    dataset: &Dataset,
    examples: usize,
) -> Result<CheckReport, String> {
    let mut props: Vec<(String, String, Prop)> = Vec::new();
    for rule in &pack.rules {
        let prop =
            resolve(&rule.formula, schema).map_err(|e| format!("rule `{}`: {e}", rule.id))?;
        props.push((rule.id.clone(), rule.text.clone(), prop));
    }
    let eval = Evaluator::new(dataset);
    let n = dataset.rows();
    let block = 4096;
    // Each entry: (violations, first examples) per rule, plus the rows failing any rule.
    let per_block: Vec<BlockStats> = (0..n)
        .step_by(block)
        .collect::<Vec<_>>()
        .par_iter()
        .map(|&start| {
            let len = block.min(n - start);
            let mut any = vec![false; len];
            let mut stats = Vec::with_capacity(props.len() + schema.len());
            for (_, _, prop) in &props {
                let words = eval.prop(prop, start, len);
                stats.push(failures(&words, len, start, examples, &mut any));
            }
            for (i, f) in schema.fields().iter().enumerate() {
                stats.push(domain_failures(
                    dataset, i, f, start, len, examples, &mut any,
                ));
            }
            (
                stats,
                any.iter()
                    .enumerate()
                    .filter(|(_, b)| **b)
                    .map(|(r, _)| start + r)
                    .collect(),
            )
        })
        .collect();
    let mut totals: Vec<(u64, Vec<usize>)> = vec![(0, vec![]); props.len() + schema.len()];
    let mut violating = 0;
    for (stats, rows) in per_block {
        violating += rows.len() as u64;
        for (t, (c, ex)) in totals.iter_mut().zip(stats) {
            t.0 += c;
            t.1.extend(ex.into_iter().take(examples.saturating_sub(t.1.len())));
        }
    }
    let labels = props
        .iter()
        .map(|(id, text, _)| (id.clone(), text.clone()))
        .chain(
            schema
                .fields()
                .iter()
                .map(|f| (format!("domain:{}", f.name), domain_text(f))),
        );
    let mut failed: Vec<RuleViolations> = labels
        .zip(totals)
        .filter(|(_, (c, _))| *c > 0)
        .map(|((id, text), (c, ex))| RuleViolations {
            id,
            text,
            violations: c,
            examples: ex.iter().map(|&r| dataset.origins[r].to_string()).collect(),
        })
        .collect();
    failed.sort_by(|a, b| b.violations.cmp(&a.violations).then(a.id.cmp(&b.id)));
    let unreadable = dataset
        .report
        .skipped
        .iter()
        .map(|(k, g)| Unreadable {
            reason: k.clone(),
            records: g.count,
            examples: g
                .examples
                .iter()
                .map(|(o, d)| format!("{o}: {d}"))
                .collect(),
        })
        .collect();
    let unit = match &dataset.report.windows {
        Some(w) => format!("windows of {} records", w.size),
        None => "records".to_owned(),
    };
    Ok(CheckReport {
        pack: pack.id(),
        unit,
        records: n as u64,
        rules: pack.rules.len(),
        records_violating: violating,
        violations: failed.iter().map(|f| f.violations).sum(),
        failed,
        unreadable,
    })
}

fn failures(
    words: &[u64],
    len: usize,
    start: usize,
    examples: usize,
    any: &mut [bool],
) -> (u64, Vec<usize>) {
    let mut count = 0;
    let mut ex = Vec::new();
    for r in 0..len {
        if words[r / 64] >> (r % 64) & 1 == 0 {
            count += 1;
            any[r] = true;
            if ex.len() < examples {
                ex.push(start + r);
            }
        }
    }
    (count, ex)
}

fn domain_failures(
    dataset: &Dataset,
    i: usize,
    f: &Field,
    start: usize,
    len: usize,
    examples: usize,
    any: &mut [bool],
) -> (u64, Vec<usize>) {
    let boolean = f.value_type == ValueType::Boolean;
    let mut count = 0;
    let mut ex = Vec::new();
    let mut cache: HashMap<u32, bool> = HashMap::new();
    for r in 0..len {
        let ok = match (&dataset.columns[i], &f.domain) {
            (ColumnData::Text(v), _) => *cache.entry(v[start + r]).or_insert_with(|| {
                f.domain.contains(&Value::Str(
                    dataset.strings.resolve(v[start + r]).to_owned(),
                ))
            }),
            (col, Domain::Real { .. }) => {
                let v = col.value(start + r, &dataset.strings, false);
                f.domain
                    .contains(&Value::Real(v.as_num().map_or(f64::NAN, |n| n.to_f64())))
            }
            (col, _) => f
                .domain
                .contains(&col.value(start + r, &dataset.strings, boolean)),
        };
        if !ok {
            count += 1;
            any[r] = true;
            if ex.len() < examples {
                ex.push(start + r);
            }
        }
    }
    (count, ex)
}

fn domain_text(f: &Field) -> String {
    match &f.domain {
        Domain::Categorical { values } => {
            let shown: Vec<String> = values.iter().take(8).map(|c| c.label_or_value()).collect();
            let more = if values.len() > 8 {
                format!(", … ({} values)", values.len())
            } else {
                String::new()
            };
            format!("{} in {{{}{more}}}", f.name, shown.join(", "))
        }
        Domain::Integer {
            min,
            max,
            multiple_of,
        } => match multiple_of {
            Some(m) => format!("{} in [{min}, {max}], a multiple of {m}", f.name),
            None => format!("{} in [{min}, {max}]", f.name),
        },
        Domain::Real { min, max, .. } => format!("{} in [{min}, {max}]", f.name),
        Domain::Boolean => format!("{} is a boolean", f.name),
        Domain::String => format!("{} is text", f.name),
    }
}
