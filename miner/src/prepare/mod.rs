//! Dataset preparation: from an input file and a dataset spec to typed records.
//!
//! The steps, in the reference implementation's order:
//!
//! 1. read records (CSV rows, or packets with tshark field names);
//! 2. rename columns from their `source_name`;
//! 3. apply the row-wise `preprocessing` steps as each record streams in (filters drop
//!    records, maps and casts rewrite cells); `sort` steps run after reading, in order;
//! 4. keep the selected fields (`include_fields`, `exclude_fields`);
//! 5. type every field (declared, or inferred as pandas would) — a record with a missing
//!    or mistyped value in a kept field is skipped and reported, never silently dropped,
//!    and no column is ever dropped for holding missing values;
//! 6. cut context windows (`context_window`) into one record per window;
//! 7. compute derived variables.
//!
//! Domains and profiles are computed later from the prepared columns.

mod derived;
pub use derived::LoadedFunction;
pub(crate) mod steps;
mod window;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rulepacks::Term;
use rulepacks::schema::{Role, ValueType};

use crate::input::csv::{CsvOptions, CsvReader};
use crate::input::{Cell, InputError, Origin, RawTable, SourceKind, pcap};
use crate::spec::{BoundsSpec, DatasetSpec, FieldConstantSpec, FieldSpec, SourceType};
use crate::table::{ColumnData, Interner};

pub use window::WindowReport;

/// A field of the prepared records, with what the grammar needs to know of it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldInfo {
    pub name: String,
    pub value_type: ValueType,
    pub roles: Vec<Role>,
    /// Constants the spec attaches to the field (assignment, scalar, limit, addition).
    pub constants: Vec<FieldConstantSpec>,
    pub enum_labels: BTreeMap<String, String>,
    /// The values the spec declares for the field.
    pub declared_domain: Option<Vec<rulepacks::Value>>,
    pub bounds: Option<BoundsSpec>,
    pub family: Option<String>,
    pub index: Option<u32>,
    /// For a derived field, its value in terms of other fields, when expressible.
    pub definition: Option<Term>,
    pub description: Option<String>,
}

impl FieldInfo {
    fn from_spec(name: &str, value_type: ValueType, spec: Option<&FieldSpec>) -> FieldInfo {
        FieldInfo {
            name: name.to_owned(),
            value_type,
            roles: spec.map(|s| s.roles.clone()).unwrap_or_default(),
            constants: spec.map(|s| s.constants.clone()).unwrap_or_default(),
            enum_labels: spec.map(|s| s.enum_labels.clone()).unwrap_or_default(),
            declared_domain: spec.and_then(|s| s.domain.clone()),
            bounds: spec.and_then(|s| s.bounds.clone()),
            family: spec.and_then(|s| s.context_family.clone()),
            index: spec.and_then(|s| s.context_index),
            definition: None,
            description: spec.and_then(|s| s.description.clone()),
        }
    }

    pub fn is_derived(&self) -> bool {
        self.roles.contains(&Role::Derived)
    }
}

/// Records skipped for one reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SkipGroup {
    pub count: u64,
    /// The first few, with the full message.
    pub examples: Vec<(Origin, String)>,
}

impl SkipGroup {
    /// ` (e.g. ORIGIN: MESSAGE)` for the first example, or nothing.
    pub fn first_example(&self) -> String {
        self.examples
            .first()
            .map(|(o, d)| format!(" (e.g. {o}: {d})"))
            .unwrap_or_default()
    }
}

/// What preparation read, kept and skipped.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub input: PathBuf,
    /// Records the reader produced (rows or packets), good or bad.
    pub records_read: u64,
    pub bytes: u64,
    /// Skipped records by reason.
    pub skipped: BTreeMap<String, SkipGroup>,
    /// Records removed by each filter step (its description and count).
    pub filtered: Vec<(String, u64)>,
    /// Records left after preprocessing and typing (before windows).
    pub records_kept: u64,
    pub warnings: Vec<String>,
    pub windows: Option<WindowReport>,
}

impl LoadReport {
    pub fn skip(&mut self, class: String, origin: Origin, detail: String) {
        let group = self.skipped.entry(class).or_default();
        group.count += 1;
        if group.examples.len() < 5 {
            group.examples.push((origin, detail));
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().map(|g| g.count).sum()
    }
}

/// Prepared records: one column per field, all of equal length, no missing values.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    pub columns: Vec<ColumnData>,
    pub origins: Vec<Origin>,
    pub strings: Interner,
    pub report: LoadReport,
    /// User functions the derived fields call, with their component bytes.
    pub functions: Vec<LoadedFunction>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.origins.len()
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// One cell as a formula value.
    pub fn value(&self, field: usize, row: usize) -> rulepacks::Value {
        let boolean = self.fields[field].value_type == ValueType::Boolean;
        self.columns[field].value(row, &self.strings, boolean)
    }

    /// Window families: name to member field indices in window order.
    pub fn families(&self) -> BTreeMap<String, Vec<usize>> {
        let mut families: BTreeMap<String, Vec<(u32, usize)>> = BTreeMap::new();
        for (i, f) in self.fields.iter().enumerate() {
            if let (Some(fam), Some(idx)) = (&f.family, f.index) {
                families.entry(fam.clone()).or_default().push((idx, i));
            }
        }
        families
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable();
                (k, v.into_iter().map(|(_, i)| i).collect())
            })
            .collect()
    }
}

/// Anything that stops preparation.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{spec}: {message}")]
    Spec { spec: PathBuf, message: String },
    #[error("{input}: {message}")]
    Data { input: PathBuf, message: String },
}

/// How to prepare.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// The input file; the spec's `source.path` when absent.
    pub input: Option<PathBuf>,
    /// Stop at the first unusable record instead of skipping it.
    pub strict: bool,
    /// The spec's path, for messages and to resolve a relative `source.path`.
    pub spec_path: PathBuf,
    /// User functions to use for `function` derived variables, by variable name, instead
    /// of loading their component files (a pack's embedded components, for `check`).
    pub embedded: HashMap<String, Arc<dyn rulepacks::UserFunction>>,
}

/// A compact typed cell while records stream in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Int(i64),
    Real(f64),
    Text(u32),
}

/// One kept column being built.
struct Builder {
    name: String,
    declared: Option<ValueType>,
    /// The spec declares a domain of numbers (codes): text cannot be a value.
    numeric_domain: bool,
    slot: usize,
    cells: Vec<Slot>,
}

/// Prepares the records of `spec` from its input.
pub fn prepare(spec: &DatasetSpec, options: &PrepareOptions) -> Result<Dataset, PrepareError> {
    let spec_err = |message: String| PrepareError::Spec {
        spec: options.spec_path.clone(),
        message,
    };
    let input = input_path(spec, options).map_err(spec_err)?;
    let kind = source_kind(spec, &input).map_err(spec_err)?;
    let mut source = open(kind, &input, spec, options).map_err(|e| match e {
        OpenError::Input(e) => PrepareError::Input(e),
        OpenError::Options(m) => spec_err(format!("source.csv_read_options: {m}")),
    })?;
    let mut report = LoadReport {
        input: input.clone(),
        ..LoadReport::default()
    };
    let columns = renamed_columns(spec, source.columns()).map_err(spec_err)?;
    let plan = steps::compile(&columns, &spec.preprocessing).map_err(spec_err)?;
    let mut builders = kept_columns(spec, &plan).map_err(spec_err)?;
    let mut strings = Interner::default();
    let mut origins: Vec<Origin> = Vec::new();
    let mut filtered: BTreeMap<usize, u64> = BTreeMap::new();
    let mut row = Vec::new();
    let mut working = Vec::with_capacity(plan.names.len());
    while let Some(origin) = source.next(&mut row)? {
        working.clear();
        working.append(&mut row);
        working.resize(plan.names.len(), Cell::Missing);
        match steps::apply(&plan, &mut working) {
            steps::Outcome::Keep => {}
            steps::Outcome::Filtered(step) => {
                *filtered.entry(step).or_default() += 1;
                continue;
            }
            steps::Outcome::Bad(why) => {
                if options.strict {
                    return Err(data_error(&input, origin, &why));
                }
                report.skip(
                    why.split(':').next().unwrap_or(&why).to_owned(),
                    origin,
                    why,
                );
                continue;
            }
        }
        match store(&mut builders, &working, &mut strings) {
            Ok(()) => origins.push(origin),
            Err((class, detail)) => {
                if options.strict {
                    return Err(data_error(&input, origin, &detail));
                }
                report.skip(class, origin, detail);
            }
        }
    }
    let source_report = source.finish();
    report.records_read = source_report.records;
    report.bytes = source_report.bytes;
    report.warnings.extend(source_report.warnings);
    for s in source_report.skipped {
        report.skip("malformed record".into(), s.origin, s.reason);
    }
    report.filtered = filtered
        .into_iter()
        .map(|(step, n)| {
            (
                plan.filter_labels.get(&step).cloned().unwrap_or_default(),
                n,
            )
        })
        .collect();
    if origins.is_empty() {
        return Err(PrepareError::Data {
            input,
            message: empty_message(&report),
        });
    }
    let (mut fields, mut columns) = finish_columns(spec, builders, &mut strings);
    sort_rows(&plan, spec, &fields, &mut columns, &mut origins, &strings);
    enforce_declared(
        &mut fields,
        &mut columns,
        &mut origins,
        &mut report,
        &strings,
        options.strict,
    )?;
    report.records_kept = origins.len() as u64;
    let mut dataset = Dataset {
        name: spec.name.clone(),
        fields,
        columns,
        origins,
        strings,
        report,
        functions: Vec::new(),
    };
    drop_key_columns_unless_windowed(spec, &mut dataset);
    if let Some(w) = &spec.context_window {
        window::apply(&mut dataset, w, &selected_names(spec, &plan)).map_err(spec_err)?;
        if let Some(r) = dataset.report.windows.as_ref().filter(|r| r.windows == 0) {
            let message = format!(
                "no windows: all {} partitions have fewer than {} records (context_window.size)",
                r.partitions, r.size
            );
            return Err(PrepareError::Data {
                input: dataset.report.input.clone(),
                message,
            });
        }
    }
    assign_families(spec, &mut dataset).map_err(spec_err)?;
    let spec_dir = options.spec_path.parent().unwrap_or(Path::new("."));
    derived::apply(&mut dataset, &spec.derived_variables, spec_dir, options).map_err(spec_err)?;
    if dataset.rows() == 0 {
        let message = format!(
            "no records left after derived variables: {}",
            empty_message(&dataset.report)
        );
        return Err(PrepareError::Data {
            input: dataset.report.input.clone(),
            message,
        });
    }
    Ok(dataset)
}

fn data_error(input: &Path, origin: Origin, why: &str) -> PrepareError {
    PrepareError::Data {
        input: input.to_owned(),
        message: format!("{origin}: {why}"),
    }
}

fn empty_message(report: &LoadReport) -> String {
    if report.records_read == 0 {
        let mut message = String::from("no records in the input");
        for w in &report.warnings {
            message.push_str(&format!("; warning: {w}"));
        }
        return message;
    }
    let mut parts = vec![format!("all {} records were removed", report.records_read)];
    for (label, n) in &report.filtered {
        parts.push(format!("{n} by {label}"));
    }
    for (reason, g) in &report.skipped {
        parts.push(format!(
            "{} skipped: {reason}{}",
            g.count,
            g.first_example()
        ));
    }
    for w in &report.warnings {
        parts.push(format!("warning: {w}"));
    }
    parts.join("; ")
}

fn input_path(spec: &DatasetSpec, options: &PrepareOptions) -> Result<PathBuf, String> {
    match (&options.input, &spec.source.path) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(p)) => {
            let base = options.spec_path.parent().unwrap_or(Path::new("."));
            Ok(base.join(p))
        }
        (None, None) => Err("no input: give --input, or `source.path` in the spec".into()),
    }
}

fn source_kind(spec: &DatasetSpec, input: &Path) -> Result<SourceKind, String> {
    let by_name = SourceKind::from_path(input);
    let mismatch = |declared: &str, found: &str| {
        format!(
            "source.type is `{declared}`, but `{}` looks like {found}; use a dataset spec for this kind of input",
            input.display()
        )
    };
    match (spec.source.kind, by_name) {
        (SourceType::Csv, Some(SourceKind::Capture)) => Err(mismatch("csv", "a packet capture")),
        (SourceType::Pcap, Some(SourceKind::Csv)) => Err(mismatch("pcap", "a CSV file")),
        (SourceType::Csv, _) => Ok(SourceKind::Csv),
        (SourceType::Pcap, _) => Ok(SourceKind::Capture),
        (SourceType::Auto, Some(kind)) => Ok(kind),
        (SourceType::Auto, None) => Err(format!(
            "source.type is `auto` but `{}` does not end in .csv, .pcap, .pcapng or .cap",
            input.display()
        )),
    }
}

enum OpenError {
    Input(InputError),
    Options(String),
}

/// Records from either kind of input.
enum Source {
    Csv(Box<CsvReader>),
    Capture { table: RawTable, next: usize },
}

impl Source {
    fn columns(&self) -> Vec<String> {
        match self {
            Source::Csv(r) => r.columns().to_vec(),
            Source::Capture { table, .. } => table.columns.clone(),
        }
    }

    fn next(&mut self, row: &mut Vec<Cell>) -> Result<Option<Origin>, InputError> {
        match self {
            Source::Csv(r) => r.next_row(row),
            Source::Capture { table, next } => {
                let Some(cells) = table.rows.get_mut(*next) else {
                    return Ok(None);
                };
                row.clear();
                row.append(cells);
                *next += 1;
                Ok(Some(table.origins[*next - 1]))
            }
        }
    }

    fn finish(self) -> crate::input::ReadReport {
        match self {
            Source::Csv(r) => r.report,
            Source::Capture { table, .. } => table.report,
        }
    }
}

fn open(
    kind: SourceKind,
    input: &Path,
    spec: &DatasetSpec,
    options: &PrepareOptions,
) -> Result<Source, OpenError> {
    match kind {
        SourceKind::Csv => {
            let mut csv = CsvOptions::from_pandas(&spec.source.csv_read_options)
                .map_err(OpenError::Options)?;
            csv.strict = options.strict;
            let ext = input
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if ext.eq_ignore_ascii_case("tsv") && !spec.source.csv_read_options.contains_key("sep")
            {
                csv.delimiter = Some(b'\t');
            }
            Ok(Source::Csv(Box::new(
                CsvReader::open(input, csv).map_err(OpenError::Input)?,
            )))
        }
        SourceKind::Capture => {
            let table = pcap::read_capture_with(input, options.strict).map_err(OpenError::Input)?;
            Ok(Source::Capture { table, next: 0 })
        }
    }
}

/// The reader's columns with fields' `source_name`s renamed; a `source_name` that is no
/// column of the input is an error.
fn renamed_columns(spec: &DatasetSpec, columns: Vec<String>) -> Result<Vec<String>, String> {
    let mut renames: HashMap<&str, &str> = HashMap::new();
    for (i, f) in spec.fields.iter().enumerate() {
        let Some(source) = f.source_name.as_deref() else {
            continue;
        };
        if !columns.iter().any(|c| c == source) {
            return Err(format!(
                "fields[{i}] `{}`: source_name `{source}` is not a column of the input (columns: {})",
                f.name,
                columns.join(", ")
            ));
        }
        renames.insert(source, f.name.as_str());
    }
    Ok(columns
        .into_iter()
        .map(|c| renames.get(c.as_str()).map_or(c, |n| (*n).to_owned()))
        .collect())
}

/// The names of the fields the spec selects, in order.
fn selected_names(spec: &DatasetSpec, plan: &steps::Plan) -> Vec<String> {
    let base: Vec<String> = if spec.include_fields.is_empty() {
        plan.live_names().into_iter().map(str::to_owned).collect()
    } else {
        spec.include_fields.clone()
    };
    base.into_iter()
        .filter(|n| !spec.exclude_fields.contains(n))
        .collect()
}

/// The columns to keep: the selected fields, plus the window and sort keys.
fn kept_columns(spec: &DatasetSpec, plan: &steps::Plan) -> Result<Vec<Builder>, String> {
    let live = plan.live_names();
    let missing: Vec<&str> = spec
        .include_fields
        .iter()
        .map(String::as_str)
        .filter(|n| !live.contains(n))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "include_fields names columns that do not exist after preprocessing: `{}` (columns: {})",
            missing.join("`, `"),
            live.join(", ")
        ));
    }
    if let Some(bad) = spec
        .exclude_fields
        .iter()
        .find(|n| !live.contains(&n.as_str()))
    {
        return Err(format!(
            "exclude_fields names unknown column `{bad}` (columns: {})",
            live.join(", ")
        ));
    }
    let mut names = selected_names(spec, plan);
    if names.is_empty() {
        return Err("no fields are selected".into());
    }
    let mut keys: Vec<String> = Vec::new();
    if let Some(w) = &spec.context_window {
        keys.extend(w.partition_by.iter().chain(&w.order_by).cloned());
    }
    for sort in &plan.sorts {
        keys.extend(sort.iter().filter_map(|s| plan.names[*s].clone()));
    }
    for key in keys {
        if !live.contains(&key.as_str()) {
            return Err(format!(
                "context_window names unknown column `{key}` (columns: {})",
                live.join(", ")
            ));
        }
        if !names.contains(&key) {
            names.push(key);
        }
    }
    for f in &spec.fields {
        if f.value_type.is_none() && f.domain.is_none() {
            continue;
        }
        if !live.contains(&f.name.as_str())
            && !derived_name(spec, &f.name)
            && !windowed_name(spec, &f.name)
        {
            tracing::debug!("field `{}` of the spec is not in the data; ignored", f.name);
        }
    }
    let declared: HashMap<&str, ValueType> = spec
        .fields
        .iter()
        .filter_map(|f| Some((f.name.as_str(), f.value_type?)))
        .collect();
    let numeric_domains: std::collections::HashSet<&str> = spec
        .fields
        .iter()
        .filter(|f| {
            f.domain
                .as_ref()
                .is_some_and(|d| d.iter().all(rulepacks::Value::is_numeric))
        })
        .map(|f| f.name.as_str())
        .collect();
    Ok(names
        .into_iter()
        .map(|name| Builder {
            declared: declared.get(name.as_str()).copied(),
            numeric_domain: numeric_domains.contains(name.as_str()),
            slot: plan.slot(&name).expect("checked above"),
            name,
            cells: Vec::new(),
        })
        .collect())
}

fn derived_name(spec: &DatasetSpec, name: &str) -> bool {
    spec.derived_variables.iter().any(|d| d.name == name)
}

fn windowed_name(spec: &DatasetSpec, name: &str) -> bool {
    spec.context_window.is_some() && (name.contains("_ctx") || name.contains("Ctx"))
}

/// Appends one record's kept cells, converted to their declared types.
fn store(
    builders: &mut [Builder],
    row: &[Cell],
    strings: &mut Interner,
) -> Result<(), (String, String)> {
    let mut slots = Vec::with_capacity(builders.len());
    for b in builders.iter() {
        let cell = &row[b.slot];
        if b.numeric_domain && matches!(cell, Cell::Text(_)) {
            return Err((
                format!("not in the declared domain of `{}`", b.name),
                format!("`{}`: {cell} is not one of its declared values", b.name),
            ));
        }
        let slot = typed_slot(cell, b.declared, strings).map_err(|why| match why {
            None => (
                format!("missing `{}`", b.name),
                format!("no value for `{}`", b.name),
            ),
            Some(why) => (
                format!(
                    "`{}` is not {}",
                    b.name,
                    b.declared.map_or("valid", ValueType::name)
                ),
                format!("`{}`: {why}", b.name),
            ),
        })?;
        slots.push(slot);
    }
    for (b, s) in builders.iter_mut().zip(slots) {
        b.cells.push(s);
    }
    Ok(())
}

/// Converts a cell to its declared type; `Err(None)` for a missing value.
fn typed_slot(
    cell: &Cell,
    declared: Option<ValueType>,
    strings: &mut Interner,
) -> Result<Slot, Option<String>> {
    let not = |what: &str| Some(format!("{cell} is not {what}"));
    match (declared, cell) {
        (_, Cell::Missing) => Err(None),
        (Some(ValueType::Integer), Cell::Int(i)) => Ok(Slot::Int(*i)),
        (Some(ValueType::Integer), Cell::Real(r)) if r.fract() == 0.0 && r.abs() < 9.2e18 => {
            Ok(Slot::Int(*r as i64))
        }
        (Some(ValueType::Integer), Cell::Text(t)) => match Cell::parse(t) {
            Cell::Int(i) => Ok(Slot::Int(i)),
            _ => Err(not("an integer")),
        },
        (Some(ValueType::Integer), _) => Err(not("an integer")),
        (Some(ValueType::Real), Cell::Text(t)) => match Cell::parse(t).as_f64() {
            Some(r) => Ok(Slot::Real(r)),
            None => Err(not("a number")),
        },
        (Some(ValueType::Real), c) => Ok(Slot::Real(c.as_f64().unwrap_or(f64::NAN))),
        (Some(ValueType::Boolean), c) => steps::parse_bool(c)
            .map(|b| Slot::Int(i64::from(b)))
            .map_err(Some),
        (Some(ValueType::String), c) => Ok(Slot::Text(strings.intern(&c.text()))),
        (_, Cell::Int(i)) => Ok(Slot::Int(*i)),
        (_, Cell::Real(r)) => Ok(Slot::Real(*r)),
        (_, Cell::Text(t)) => Ok(Slot::Text(strings.intern(t))),
    }
}

/// Turns the builders into typed columns, inferring undeclared types as pandas would.
fn finish_columns(
    spec: &DatasetSpec,
    builders: Vec<Builder>,
    strings: &mut Interner,
) -> (Vec<FieldInfo>, Vec<ColumnData>) {
    let specs: HashMap<&str, &FieldSpec> =
        spec.fields.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut fields = Vec::with_capacity(builders.len());
    let mut columns = Vec::with_capacity(builders.len());
    for b in builders {
        let all_int = b.cells.iter().all(|s| matches!(s, Slot::Int(_)));
        let any_text = b.cells.iter().any(|s| matches!(s, Slot::Text(_)));
        let value_type = b
            .declared
            .unwrap_or_else(|| infer_type(&b.cells, all_int, any_text));
        let column = match value_type {
            ValueType::Integer | ValueType::Boolean => ColumnData::Int(ints(&b.cells)),
            ValueType::Real => ColumnData::Real(reals(&b.cells)),
            _ if !any_text && all_int => ColumnData::Int(ints(&b.cells)),
            _ if !any_text => ColumnData::Real(reals(&b.cells)),
            _ => ColumnData::Text(texts(&b.cells, strings)),
        };
        fields.push(FieldInfo::from_spec(
            &b.name,
            value_type,
            specs.get(b.name.as_str()).copied(),
        ));
        columns.push(column);
    }
    (fields, columns)
}

fn infer_type(cells: &[Slot], all_int: bool, any_text: bool) -> ValueType {
    if all_int {
        return ValueType::Integer;
    }
    if !any_text {
        return ValueType::Real;
    }
    let mut distinct = std::collections::HashSet::new();
    for c in cells {
        distinct.insert(match c {
            Slot::Int(i) => (0, *i as u64),
            Slot::Real(r) => (1, r.to_bits()),
            Slot::Text(t) => (2, u64::from(*t)),
        });
        if distinct.len() > 32 {
            return ValueType::String;
        }
    }
    ValueType::Categorical
}

fn ints(cells: &[Slot]) -> Vec<i64> {
    cells
        .iter()
        .map(|s| match s {
            Slot::Int(i) => *i,
            Slot::Real(r) => *r as i64,
            Slot::Text(_) => 0,
        })
        .collect()
}

fn reals(cells: &[Slot]) -> Vec<f64> {
    cells
        .iter()
        .map(|s| match s {
            Slot::Int(i) => *i as f64,
            Slot::Real(r) => *r,
            Slot::Text(_) => f64::NAN,
        })
        .collect()
}

fn texts(cells: &[Slot], strings: &mut Interner) -> Vec<u32> {
    cells
        .iter()
        .map(|s| match s {
            Slot::Int(i) => strings.intern(&i.to_string()),
            Slot::Real(r) => strings.intern(&rulepacks::value::format_real(*r)),
            Slot::Text(t) => *t,
        })
        .collect()
}

/// Applies the spec's `sort` steps in order (stable).
fn sort_rows(
    plan: &steps::Plan,
    spec: &DatasetSpec,
    fields: &[FieldInfo],
    columns: &mut [ColumnData],
    origins: &mut Vec<Origin>,
    strings: &Interner,
) {
    let _ = spec;
    for keys in &plan.sorts {
        let key_cols: Vec<usize> = keys
            .iter()
            .filter_map(|slot| plan.names[*slot].as_deref())
            .filter_map(|name| fields.iter().position(|f| f.name == name))
            .collect();
        let mut order: Vec<usize> = (0..origins.len()).collect();
        order.sort_by(|&a, &b| {
            key_cols
                .iter()
                .map(|&c| columns[c].cmp_rows(a, b, strings))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for c in columns.iter_mut() {
            *c = c.gather(&order);
        }
        *origins = order.iter().map(|&i| origins[i]).collect();
    }
}

/// Skips records whose values lie outside a declared domain or bounds.
fn enforce_declared(
    fields: &mut [FieldInfo],
    columns: &mut [ColumnData],
    origins: &mut Vec<Origin>,
    report: &mut LoadReport,
    strings: &Interner,
    strict: bool,
) -> Result<(), PrepareError> {
    let mut keep = vec![true; origins.len()];
    for (f, col) in fields.iter().zip(columns.iter()) {
        let boolean = f.value_type == ValueType::Boolean;
        for (row, k) in keep.iter_mut().enumerate() {
            if !*k {
                continue;
            }
            let value = col.value(row, strings, boolean);
            let why = if let Some(domain) = &f.declared_domain {
                (!domain.iter().any(|d| d.same(&value)))
                    .then(|| format!("not in the declared domain of `{}`", f.name))
            } else if let Some(b) = &f.bounds {
                let x = value.as_num().map(|n| n.to_f64()).unwrap_or(f64::NAN);
                let out = b.lower.is_some_and(|l| x < l) || b.upper.is_some_and(|u| x > u);
                out.then(|| format!("outside the declared bounds of `{}`", f.name))
            } else {
                None
            };
            if let Some(class) = why {
                let detail = format!("{class}: {value}");
                if strict {
                    return Err(data_error(&report.input, origins[row], &detail));
                }
                report.skip(class, origins[row], detail);
                *k = false;
            }
        }
    }
    if keep.iter().all(|k| *k) {
        return Ok(());
    }
    let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    for c in columns.iter_mut() {
        *c = c.gather(&rows);
    }
    *origins = rows.iter().map(|&i| origins[i]).collect();
    if origins.is_empty() {
        return Err(PrepareError::Data {
            input: report.input.clone(),
            message: empty_message(report),
        });
    }
    Ok(())
}

/// Removes sort-only key columns that are not selected fields (window keys go later).
fn drop_key_columns_unless_windowed(spec: &DatasetSpec, dataset: &mut Dataset) {
    let selected: Vec<&str> = if spec.include_fields.is_empty() {
        return;
    } else {
        spec.include_fields.iter().map(String::as_str).collect()
    };
    let window_keys: Vec<&str> = spec
        .context_window
        .iter()
        .flat_map(|w| w.partition_by.iter().chain(&w.order_by))
        .map(String::as_str)
        .collect();
    let mut i = 0;
    while i < dataset.fields.len() {
        let name = dataset.fields[i].name.as_str();
        if !selected.contains(&name) && !window_keys.contains(&name) {
            dataset.fields.remove(i);
            dataset.columns.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Gives window families to fields: from the spec, the extension regexes, and the
/// `_ctxN` / `CtxN` name patterns the reference recognises.
fn assign_families(spec: &DatasetSpec, dataset: &mut Dataset) -> Result<(), String> {
    let patterns = [
        regex::Regex::new(r"^(.+)_ctx(\d+)$").expect("valid"),
        regex::Regex::new(r"^(.+)Ctx(\d+)$").expect("valid"),
    ];
    let extra: Vec<(String, regex::Regex)> = spec
        .field_families
        .iter()
        .map(|f| {
            Ok((
                f.family.clone(),
                regex::Regex::new(&f.regex).map_err(|e| e.to_string())?,
            ))
        })
        .collect::<Result<_, String>>()?;
    for f in &mut dataset.fields {
        if f.family.is_some() {
            continue;
        }
        let found = extra
            .iter()
            .find_map(|(family, re)| {
                Some((
                    family.clone(),
                    re.captures(&f.name)?.get(1)?.as_str().parse().ok()?,
                ))
            })
            .or_else(|| {
                patterns.iter().find_map(|re| {
                    let c = re.captures(&f.name)?;
                    Some((c[1].to_owned(), c[2].parse().ok()?))
                })
            });
        if let Some((family, index)) = found {
            f.family = Some(family);
            f.index = Some(index);
            if !f.roles.contains(&Role::Window) {
                f.roles.push(Role::Window);
            }
        }
    }
    drop_broken_families(dataset);
    Ok(())
}

/// A family whose positions have gaps or repeats is no family: its members become plain
/// fields again, with a warning.
fn drop_broken_families(dataset: &mut Dataset) {
    let mut members: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for f in &dataset.fields {
        if let (Some(fam), Some(i)) = (&f.family, f.index) {
            members.entry(fam.clone()).or_default().push(i);
        }
    }
    for (family, mut positions) in members {
        positions.sort_unstable();
        let whole = positions.iter().enumerate().all(|(i, p)| *p as usize == i);
        if whole {
            continue;
        }
        dataset.report.warnings.push(format!(
            "window family `{family}` has positions {positions:?}, not 0, 1, 2, …; its fields are treated as unrelated"
        ));
        for f in &mut dataset.fields {
            if f.family.as_deref() == Some(family.as_str()) {
                f.family = None;
                f.index = None;
            }
        }
    }
}
