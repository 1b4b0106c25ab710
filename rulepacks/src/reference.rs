//! Interchange with the reference implementation's run directories.
//!
//! The reference writes a run as a directory: `rules.json` (a list of rules, each a formula
//! AST with a `display` string, a support fraction and a free-form `source`), `fields.json`,
//! `manifest.json` and `interpreted_rules.clj`.  [`export`] writes a pack in that layout; the
//! reference tooling reads it as one of its own runs.  Everything a pack holds beyond the
//! reference format travels in `manifest.json` (`netnomos_pack`) and in each rule's `source`,
//! so that [`import`] of an export gives back an equal pack, hash included.  [`import`] of a
//! plain reference `rules.json` takes the field schema from a pack, or infers unbounded
//! integer fields from the formulas.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::formula::{Formula, Func, Term};
use crate::pack::{FORMAT_VERSION, PackError, Producer, Provenance, Rule, RulePack, Support};
use crate::render::rule_text;
use crate::schema::{Domain, Field, Schema, ValueType};

/// One rule of a reference `rules.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRule {
    pub rule_id: String,
    pub formula: Formula,
    #[serde(default)]
    pub display: String,
    #[serde(default)]
    pub support: f64,
    #[serde(default)]
    pub source: serde_json::Value,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

fn json_error(path: &Path, e: &serde_path_to_error::Error<serde_json::Error>) -> PackError {
    let inner = e.inner();
    let at = if e.path().to_string() == "." {
        format!("line {} column {}", inner.line(), inner.column())
    } else {
        e.path().to_string()
    };
    PackError::Json {
        path: path.to_owned(),
        at,
        message: inner.to_string(),
    }
}

/// Reads a reference `rules.json`.
pub fn read_rules(path: &Path) -> Result<Vec<ReferenceRule>, PackError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    let rules: Vec<ReferenceRule> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let at = if e.path().to_string() == "." {
            format!("line {} column {}", inner.line(), inner.column())
        } else {
            e.path().to_string()
        };
        PackError::NotRules {
            path: path.to_owned(),
            at,
            message: inner.to_string(),
        }
    })?;
    if rules.is_empty() {
        return Err(PackError::Invalid {
            path: path.to_owned(),
            message: "no rules in the file".into(),
        });
    }
    Ok(rules)
}

/// Replaces aggregates over window families by calls listing the members, the only form
/// the reference knows.
fn expand_aggregates(formula: &Formula, schema: &Schema) -> Formula {
    fn term(t: &Term, schema: &Schema) -> Term {
        match t {
            Term::Aggregate { function, family } => {
                let members = schema.family(family).unwrap_or_default();
                let args = members
                    .iter()
                    .map(|id| Term::symbol(&schema.field(*id).name))
                    .collect();
                Term::call(*function, args)
            }
            Term::Binary { op, left, right } => {
                Term::binary(*op, term(left, schema), term(right, schema))
            }
            Term::Call { name, args } => {
                Term::call(*name, args.iter().map(|a| term(a, schema)).collect())
            }
            other => other.clone(),
        }
    }
    let f = |x: &Formula| expand_aggregates(x, schema);
    match formula {
        Formula::Compare { op, left, right } => {
            Formula::compare(*op, term(left, schema), term(right, schema))
        }
        Formula::Not { value } => Formula::negate(f(value)),
        Formula::And { values } => Formula::And {
            values: values.iter().map(f).collect(),
        },
        Formula::Or { values } => Formula::Or {
            values: values.iter().map(f).collect(),
        },
        Formula::Implies { left, right } => Formula::implies(f(left), f(right)),
        Formula::Forall {
            variable,
            domain,
            body,
        } => Formula::Forall {
            variable: variable.clone(),
            domain: domain.clone(),
            body: Box::new(f(body)),
        },
        Formula::Exists {
            variable,
            domain,
            body,
        } => Formula::Exists {
            variable: variable.clone(),
            domain: domain.clone(),
            body: Box::new(f(body)),
        },
        Formula::Bool { .. } => formula.clone(),
    }
}

/// A field as the reference's `fields.json` describes it.
fn reference_field(field: &Field) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("name".into(), field.name.clone().into());
    out.insert("value_type".into(), field.value_type.name().into());
    out.insert(
        "roles".into(),
        serde_json::to_value(&field.roles).unwrap_or_default(),
    );
    match &field.domain {
        Domain::Categorical { values } => {
            let domain: Vec<_> = values
                .iter()
                .map(|c| serde_json::to_value(&c.value).unwrap_or_default())
                .collect();
            out.insert("domain".into(), domain.into());
            let labels: BTreeMap<String, String> = values
                .iter()
                .filter_map(|c| {
                    Some((
                        serde_json::to_value(&c.value)
                            .ok()?
                            .to_string()
                            .trim_matches('"')
                            .to_owned(),
                        c.label.clone()?,
                    ))
                })
                .collect();
            if !labels.is_empty() {
                out.insert(
                    "enum_labels".into(),
                    serde_json::to_value(labels).unwrap_or_default(),
                );
            }
        }
        Domain::Integer { min, max, .. } => {
            out.insert(
                "bounds".into(),
                serde_json::json!({ "lower": min, "upper": max }),
            );
        }
        Domain::Real { min, max, .. } => {
            out.insert(
                "bounds".into(),
                serde_json::json!({ "lower": min, "upper": max }),
            );
        }
        Domain::Boolean | Domain::String => {}
    }
    if let (Some(family), Some(index)) = (&field.family, field.index) {
        out.insert("context_family".into(), family.clone().into());
        out.insert("context_index".into(), index.into());
    }
    out.into()
}

/// Writes `pack` as a reference run directory `dir` (created; must not hold a `rules.json`).
pub fn export(pack: &RulePack, dir: &Path) -> Result<Vec<PathBuf>, PackError> {
    let schema = pack.schema().map_err(|message| PackError::Invalid {
        path: dir.to_owned(),
        message,
    })?;
    let names = [
        "rules.json",
        "manifest.json",
        "fields.json",
        "interpreted_rules.clj",
    ];
    if let Some(existing) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        return Err(PackError::Invalid {
            path: existing,
            message: "already exists: export into a new or empty directory".into(),
        });
    }
    let rules: Vec<ReferenceRule> = pack
        .rules
        .iter()
        .map(|rule| {
            let formula = expand_aggregates(&rule.formula, &schema);
            let mut source = serde_json::json!({
                "learner": "netnomos",
                "pack": pack.id(),
                "predicate_ids": rule.predicates,
                "records": rule.support.records,
                "satisfied": rule.support.satisfied,
                "text": rule.text,
            });
            if formula != rule.formula {
                source["netnomos_formula"] =
                    serde_json::to_value(&rule.formula).unwrap_or_default();
            }
            ReferenceRule {
                rule_id: rule.id.clone(),
                display: formula.to_string(),
                formula,
                support: if rule.support.records == 0 {
                    0.0
                } else {
                    rule.support.satisfied as f64 / rule.support.records as f64
                },
                source,
            }
        })
        .collect();
    let mut header = serde_json::to_value(pack).unwrap_or_default();
    if let Some(map) = header.as_object_mut() {
        map.remove("rules");
    }
    let manifest = serde_json::json!({
        "dataset": pack.name,
        "learner": "hitting-set",
        "rule_count": pack.rules.len(),
        "predicate_count": pack.predicates.len(),
        "netnomos_pack": header,
    });
    let fields: serde_json::Map<String, serde_json::Value> = pack
        .fields
        .iter()
        .map(|f| (f.name.clone(), reference_field(f)))
        .collect();
    let text: Vec<&str> = pack.rules.iter().map(|r| r.text.as_str()).collect();
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let files = [
        (
            "rules.json",
            serde_json::to_string_pretty(&rules).unwrap_or_default(),
        ),
        ("manifest.json", pretty(&manifest)),
        ("fields.json", pretty(&fields.into())),
        ("interpreted_rules.clj", text.join("\n")),
    ];
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        crate::pack::write_atomic(&path, content.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Where a pack being imported takes its field schema from.
#[derive(Debug, Clone, Copy)]
pub enum FieldSource<'a> {
    /// The `manifest.json` next to `rules.json` (an export of ours), else inferred.
    Automatic,
    /// The fields of this pack.
    Pack(&'a RulePack),
}

/// Reads a reference run directory (or a `rules.json`) as a pack.
///
/// An export of ours comes back equal to the pack it was made from.  Anything else becomes
/// a new pack named `name@version` (defaults: the directory's name, `1.0.0`).
pub fn import(
    path: &Path,
    fields: FieldSource<'_>,
    name: Option<&str>,
    version: Option<&str>,
) -> Result<RulePack, PackError> {
    let (dir, rules_path) = if path.is_dir() {
        (path.to_owned(), path.join("rules.json"))
    } else {
        (
            path.parent().map(Path::to_owned).unwrap_or_default(),
            path.to_owned(),
        )
    };
    let rules = read_rules(&rules_path)?;
    let manifest_path = dir.join("manifest.json");
    let header = match fields {
        FieldSource::Automatic if manifest_path.exists() => {
            let text = fs::read_to_string(&manifest_path).map_err(io(&manifest_path))?;
            let manifest: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| PackError::Json {
                    path: manifest_path.clone(),
                    at: format!("line {} column {}", e.line(), e.column()),
                    message: e.to_string(),
                })?;
            manifest.get("netnomos_pack").cloned()
        }
        _ => None,
    };
    let invalid = |message: String| PackError::Invalid {
        path: rules_path.clone(),
        message,
    };
    let mut pack = match header {
        Some(mut header) => {
            let found = header
                .get("format_version")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            if found > u64::from(FORMAT_VERSION) {
                return Err(PackError::NewerFormat {
                    path: manifest_path,
                    found,
                });
            }
            header["rules"] = serde_json::Value::Array(vec![]);
            serde_path_to_error::deserialize::<_, RulePack>(header)
                .map_err(|e| json_error(&manifest_path, &e))?
        }
        None => {
            let fields_source = fields;
            let fields = match fields {
                FieldSource::Pack(p) => p.fields.clone(),
                FieldSource::Automatic => infer_fields(&rules),
            };
            let stem = dir
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("imported");
            let clean: String = stem
                .chars()
                .map(|c| {
                    if crate::pack::valid_name(&c.to_string()) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            RulePack {
                format_version: FORMAT_VERSION,
                name: clean,
                version: "1.0.0".into(),
                hash: String::new(),
                created: crate::pack::now_rfc3339(),
                producer: Producer {
                    name: "netnomos".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
                description: None,
                provenance: Provenance {
                    imported_from: Some(rules_path.display().to_string()),
                    // Records in this schema are read the way the fields' pack reads them.
                    dataset_spec: match fields_source {
                        FieldSource::Pack(p) => p.provenance.dataset_spec.clone(),
                        FieldSource::Automatic => None,
                    },
                    ..Provenance::default()
                },
                fields,
                predicates: vec![],
                rules: vec![],
                components: vec![],
            }
        }
    };
    let schema = pack.schema().map_err(invalid)?;
    for r in rules {
        pack.rules.push(rule_from_reference(r, &schema));
    }
    let exported = !pack.hash.is_empty();
    let faithful = exported && pack.content_hash() == pack.hash;
    if exported && !faithful && version.is_none() {
        return Err(PackError::Invalid {
            path: rules_path,
            message: format!(
                "the rules differ from those of pack {} it was exported with (edited?); \
                 give --version (and --name) to import them as a new pack",
                pack.id()
            ),
        });
    }
    if !faithful || name.is_some() || version.is_some() {
        if let Some(n) = name {
            pack.name = n.to_owned();
        }
        if let Some(v) = version {
            pack.version = v.to_owned();
        }
        pack.provenance.imported_from = Some(rules_path.display().to_string());
        pack.created = crate::pack::now_rfc3339();
        pack.seal();
    }
    pack.validate().map_err(|message| PackError::Invalid {
        path: rules_path.clone(),
        message,
    })?;
    Ok(pack)
}

fn rule_from_reference(r: ReferenceRule, schema: &Schema) -> Rule {
    let source = &r.source;
    let formula = source
        .get("netnomos_formula")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(r.formula);
    let count = |key: &str| source.get(key).and_then(serde_json::Value::as_u64);
    let support = match (count("records"), count("satisfied")) {
        (Some(records), Some(satisfied)) => Support { records, satisfied },
        _ => Support {
            records: 0,
            satisfied: 0,
        },
    };
    let text = match source.get("text").and_then(serde_json::Value::as_str) {
        Some(t) => t.to_owned(),
        None => rule_text(&formula, schema),
    };
    let predicates = source
        .get("predicate_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Rule {
        id: r.rule_id,
        formula,
        text,
        support,
        predicates,
    }
}

/// Fields for a plain `rules.json`: every name a formula mentions, as an unbounded integer.
fn infer_fields(rules: &[ReferenceRule]) -> Vec<Field> {
    let mut names = std::collections::BTreeSet::new();
    for rule in rules {
        rule.formula.visit_terms(&mut |t| {
            t.visit_symbols(&mut |n| {
                names.insert(n.to_owned());
            });
        });
    }
    names
        .into_iter()
        .map(|name| Field {
            name,
            value_type: ValueType::Integer,
            roles: vec![],
            domain: Domain::Integer {
                min: i64::MIN,
                max: i64::MAX,
                multiple_of: None,
            },
            family: None,
            index: None,
            definition: None,
            description: Some("inferred from an imported rules.json".into()),
        })
        .collect()
}

/// Whether `func` is one the reference evaluates.
pub fn reference_knows(func: Func) -> bool {
    matches!(
        func,
        Func::Min | Func::Max | Func::Sum | Func::Avg | Func::Mod
    )
}
