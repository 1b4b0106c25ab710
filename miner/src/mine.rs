//! The mining run: spec and grammar in, rule pack out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rulepacks::Formula;
use rulepacks::pack::{
    FORMAT_VERSION, InputFile, Predicate as PackPredicate, Producer, Provenance, Rule, RulePack,
    SearchOutcome, SpecSource, Support, now_rfc3339, sha256_file,
};
use rulepacks::render::{formula_text, rule_text};
use rulepacks::schema::Schema;
use serde_json::json;

use crate::bitset::Bitset;
use crate::evidence::{self, Evidence};
use crate::predicates::{self, Predicate};
use crate::prepare::{self, Dataset, LoadReport, PrepareOptions};
use crate::profile;
use crate::search::{self, Level, Limits, Stop};
use crate::spec::{DatasetSpec, GrammarSpec, SpecError};
use crate::tautology::{Domains, Standing};

/// What to mine and how.
#[derive(Clone, Debug, Default)]
pub struct MineOptions {
    pub dataset_spec: PathBuf,
    pub grammar: PathBuf,
    /// The input file; the spec's `source.path` when absent.
    pub input: Option<PathBuf>,
    /// Overrides the grammar's `max_clause_size`.
    pub max_clause_size: Option<u32>,
    /// Overrides the grammar's `max_rules`.
    pub max_rules: Option<u64>,
    /// Rules may miss at most this fraction of records (approximate rules); exact if absent.
    pub approximate: Option<f64>,
    /// Stop the rule search after this long and keep what was found.
    pub time_budget: Option<Duration>,
    /// Stop at the first unusable record instead of skipping it.
    pub strict: bool,
    /// Search every predicate, instead of one per class of predicates that hold on exactly
    /// the same records (see [`collapse`]).
    pub keep_equivalent: bool,
    /// The pack's name (default: the dataset spec's name) and version.
    pub name: Option<String>,
    pub version: Option<String>,
}

/// Reports progress of the long phases.
pub trait Progress: Sync {
    fn start(&self, phase: &str, total: Option<u64>);
    fn advance(&self, n: u64);
    fn finish(&self);
}

/// No progress display.
#[derive(Debug)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Everything a run found worth telling.
#[derive(Clone, Debug, Default)]
pub struct MineReport {
    pub load: LoadReport,
    pub records: u64,
    pub fields: usize,
    pub predicates_generated: usize,
    pub predicates_equivalent: usize,
    pub predicates_valid: usize,
    pub predicates_unsatisfiable: usize,
    pub predicates_searched: usize,
    pub distinct_rows: usize,
    /// Rules kept per size.
    pub rules_by_size: BTreeMap<usize, u64>,
    pub tautologies: u64,
    /// Predicates searched through the representative of their class.
    pub predicates_equivalent_on_data: usize,
    /// Rules over class members that replace tautological rules over representatives.
    pub variants: u64,
    /// Rules the pack stands for once every class member is put in for its
    /// representative.
    pub expanded_rules: u128,
    pub solver_checks: u64,
    pub search_nodes: u64,
    pub capped: bool,
    pub stopped: Option<Stop>,
    pub complete_up_to: u32,
    pub max_clause_size: u32,
    pub phases: Vec<(String, Duration)>,
    pub warnings: Vec<String>,
}

impl MineReport {
    /// Equivalence rules in the pack (one per predicate searched through another).
    pub fn equivalences(&self) -> usize {
        self.predicates_equivalent_on_data
    }
}

/// A failed run.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Prepare(#[from] prepare::PrepareError),
    #[error("{path}: {message}")]
    Grammar { path: PathBuf, message: String },
    #[error("{0}")]
    Options(String),
}

/// A finished run.
#[derive(Debug)]
pub struct Mined {
    pub pack: RulePack,
    pub report: MineReport,
}

/// Mines a rule pack.  `cancel` stops the search (as Ctrl-C does); what was found is kept
/// and the pack is marked partial.
pub fn mine(
    options: &MineOptions,
    cancel: &AtomicBool,
    progress: &dyn Progress,
) -> Result<Mined, MineError> {
    let mut report = MineReport::default();
    let mut clock = Instant::now();
    let mut lap = |report: &mut MineReport, name: &str| {
        report.phases.push((name.to_owned(), clock.elapsed()));
        clock = Instant::now();
    };
    let (spec, spec_json) = DatasetSpec::load(&options.dataset_spec)?;
    let (grammar, grammar_json) = GrammarSpec::load(&options.grammar)?;
    let max_size = options.max_clause_size.unwrap_or(grammar.max_clause_size);
    let max_rules = options.max_rules.unwrap_or(grammar.max_rules);
    check_options(options, max_size, max_rules)?;
    let prepare_options = PrepareOptions {
        input: options.input.clone(),
        strict: options.strict,
        spec_path: options.dataset_spec.clone(),
        ..PrepareOptions::default()
    };
    progress.start("reading records", None);
    let mut dataset = prepare::prepare(&spec, &prepare_options)?;
    progress.finish();
    let grammar_err = |message: String| MineError::Grammar {
        path: options.grammar.clone(),
        message,
    };
    let functions =
        load_grammar_functions(&grammar, &options.grammar, &mut dataset).map_err(grammar_err)?;
    lap(&mut report, "read and prepare");
    let fields = profile::schema_fields(&dataset);
    let mut schema =
        Schema::new(fields).map_err(|m| MineError::Options(format!("dataset spec: {m}")))?;
    for f in &dataset.functions {
        schema.bind_function(f.function.clone());
    }
    let (preds, warnings) =
        predicates::generate(&dataset, &schema, &grammar, &functions).map_err(grammar_err)?;
    report.warnings.extend(warnings);
    if preds.is_empty() {
        return Err(grammar_err(
            "the grammar made no predicate on this data".into(),
        ));
    }
    report.predicates_generated = preds.len();
    let props: Vec<_> = preds.iter().map(|p| p.prop.clone()).collect();
    lap(&mut report, "generate predicates");
    progress.start("building evidence", Some(dataset.rows() as u64));
    let ev = evidence::build(&dataset, &props, &|n| progress.advance(n));
    progress.finish();
    report.records = ev.records;
    report.fields = schema.len();
    report.distinct_rows = ev.distinct();
    lap(&mut report, "evidence");
    let examples: Vec<Vec<rulepacks::Value>> = ev
        .first
        .iter()
        .take(64)
        .map(|&row| (0..schema.len()).map(|f| dataset.value(f, row)).collect())
        .collect();
    let mut domains = Domains::new(&schema, &props, &examples);
    let screened = screen(&mut domains, &mut report);
    tracing::debug!(
        "{} predicates: {} equivalent on the domains, {} valid, {} unsatisfiable",
        report.predicates_generated,
        report.predicates_equivalent,
        report.predicates_valid,
        report.predicates_unsatisfiable
    );
    let (candidates, classes) = collapse(&ev, &screened, options.keep_equivalent);
    report.predicates_equivalent_on_data = screened.count() - candidates.count();
    lap(&mut report, "screen predicates");
    let budget = options
        .approximate
        .map(|f| (f * ev.records as f64).floor() as u64);
    let limits = Limits {
        deadline: options.time_budget.map(|b| Instant::now() + b),
        cancel: Some(cancel),
        max_sets: None,
    };
    report.max_clause_size = max_size;
    progress.start("searching rules", Some(u64::from(max_size)));
    let plan = SearchPlan {
        ev: &ev,
        candidates: &candidates,
        classes: &classes,
        max_size,
        max_rules,
        budget,
        limits: &limits,
    };
    let sets = search_levels(&plan, &mut domains, &mut report, progress);
    report.expanded_rules = expanded_count(&sets, &classes);
    progress.finish();
    report.solver_checks = domains.solver_checks;
    lap(&mut report, "search");
    let sources = Sources {
        spec_json: &spec_json,
        grammar_json: &grammar_json,
        max_size,
        max_rules,
    };
    let found = Found {
        sets: &sets,
        classes: &classes,
    };
    let pack = assemble(
        options, &spec, &dataset, &schema, &preds, &ev, &found, &report, &sources,
    )?;
    if let Some(f) = options.approximate {
        // Rules that each fail on a few records may together fail on all of them.
        let (schema, props) = pack.validate().map_err(MineError::Options)?;
        let ids: Vec<String> = pack.rules.iter().map(|r| r.id.clone()).collect();
        if let Some(why) = solver::contradiction(&schema, &props, &ids, 30_000) {
            return Err(MineError::Options(format!(
                "with --approximate {f} {why}; no record could satisfy the pack, so it is not written (choose a smaller fraction)"
            )));
        }
    }
    lap(&mut report, "assemble pack");
    report.load = dataset.report;
    Ok(Mined { pack, report })
}

fn check_options(options: &MineOptions, max_size: u32, max_rules: u64) -> Result<(), MineError> {
    if max_size == 0 {
        return Err(MineError::Options(
            "max_clause_size is 0; rules need at least one predicate".into(),
        ));
    }
    if max_rules == 0 {
        return Err(MineError::Options(
            "max_rules is 0; the pack would hold no rules".into(),
        ));
    }
    if let Some(f) = options.approximate
        && !(0.0..1.0).contains(&f)
    {
        return Err(MineError::Options(format!(
            "--approximate {f} is not a fraction in [0, 1)"
        )));
    }
    Ok(())
}

/// Drops predicates equivalent to an earlier one, valid or unsatisfiable on the domains.
fn screen(domains: &mut Domains, report: &mut MineReport) -> Bitset {
    let n = report.predicates_generated;
    let mut candidates = Bitset::new(n);
    let mut seen = HashSet::new();
    for i in 0..n {
        if let Some(key) = domains.key(i)
            && !seen.insert(key)
        {
            report.predicates_equivalent += 1;
            continue;
        }
        match domains.standing(i) {
            Standing::Valid => report.predicates_valid += 1,
            Standing::Unsatisfiable => report.predicates_unsatisfiable += 1,
            Standing::Contingent => candidates.set(i),
        }
    }
    report.predicates_searched = candidates.count();
    candidates
}

/// Predicates that hold on exactly the same records, by representative (the first of
/// them); the representative is not among its members.
pub type Classes = BTreeMap<u32, Vec<u32>>;

/// Keeps one predicate per class of predicates with the same evidence.
///
/// If `p` and `q` hold on exactly the same records, every strongest rule with `p` has a
/// twin with `q` (no strongest rule has both), so the search needs only one of them.  The
/// pack keeps the rules over representatives plus the equivalences `p <-> q`, which
/// together entail every twin; [`MineReport::expanded_rules`] counts the twins.
fn collapse(ev: &Evidence, screened: &Bitset, keep_all: bool) -> (Bitset, Classes) {
    let mut classes = Classes::new();
    if keep_all {
        return (screened.clone(), classes);
    }
    let mut first: HashMap<&Bitset, u32> = HashMap::new();
    let mut reps = Bitset::new(screened.len());
    let everywhere = Bitset::full(ev.distinct());
    for i in screened.ones() {
        // A predicate true on every record is a rule by itself: keep each one.
        if ev.hits[i] == everywhere {
            reps.set(i);
            continue;
        }
        match first.get(&ev.hits[i]) {
            Some(&rep) => classes.entry(rep).or_default().push(i as u32),
            None => {
                first.insert(&ev.hits[i], i as u32);
                reps.set(i);
            }
        }
    }
    (reps, classes)
}

/// What the search works on.
struct SearchPlan<'a> {
    ev: &'a Evidence,
    candidates: &'a Bitset,
    classes: &'a Classes,
    max_size: u32,
    max_rules: u64,
    budget: Option<u64>,
    limits: &'a Limits<'a>,
}

/// Runs the search in passes of growing size bounds (1, 2, 4, … up to the maximum for
/// exact rules; one size at a time for approximate ones).  Each finished pass leaves every
/// rule up to its bound found, so a stopped search is complete up to the last finished
/// bound, and the `max_rules` cap keeps the shortest rules.
fn search_levels(
    plan: &SearchPlan<'_>,
    domains: &mut Domains,
    report: &mut MineReport,
    progress: &dyn Progress,
) -> Vec<Vec<u32>> {
    let max = plan.max_size as usize;
    let cap = usize::try_from(plan.max_rules).unwrap_or(usize::MAX);
    let mut kept: Vec<Vec<u32>> = Vec::new();
    // Sets of size up to `done` are all known; `seen` of them were found (tautologies too).
    let (mut done, mut bound, mut seen) = (0usize, 1usize, 0usize);
    loop {
        // A pass finds the sets up to `done` again; past that, allow what the cap can take.
        let room = cap
            .saturating_sub(kept.len())
            .saturating_mul(2)
            .saturating_add(10_000);
        let limits = Limits {
            max_sets: Some(seen.saturating_add(room)),
            ..plan.limits.clone()
        };
        let level: Level = match plan.budget {
            Some(b) => search::approximate_level(plan.ev, plan.candidates, bound, b, &limits),
            None => search::exact_up_to(plan.ev, plan.candidates, bound, &limits),
        };
        report.search_nodes += level.nodes;
        tracing::debug!(
            "search pass up to size {bound}: {} minimal sets, {} nodes{}",
            level.sets.len(),
            level.nodes,
            level
                .stopped
                .map(|s| format!(", stopped by {}", s.describe()))
                .unwrap_or_default()
        );
        if level.stopped == Some(Stop::TooMany) && bound > done + 1 {
            // Too many rules to take this many sizes at once: one size at a time.
            bound = done + 1;
            continue;
        }
        let found = level.sets.len();
        let interrupted = filter(
            level.sets.into_iter().filter(|s| s.len() > done),
            plan,
            domains,
            report,
            &mut kept,
        );
        progress.advance((bound - done) as u64);
        let stopped = level.stopped.or(interrupted);
        if stopped == Some(Stop::TooMany) || kept.len() >= cap {
            // The cap keeps the shortest rules; the pack is partial if any were left out.
            let complete_pass = stopped.is_none() && kept.len() <= cap;
            report.capped = kept.len() > cap || !complete_pass || (bound < max && level.cut);
            if complete_pass {
                report.complete_up_to = bound as u32;
            } else {
                let last = kept.get(cap.saturating_sub(1)).map_or(done, Vec::len);
                report.complete_up_to = (last.saturating_sub(1)).max(done) as u32;
            }
            kept.truncate(cap);
            break;
        }
        if let Some(stop) = stopped {
            report.stopped = Some(stop);
            break;
        }
        (done, seen) = (bound, found);
        report.complete_up_to = bound as u32;
        if bound >= max || (plan.budget.is_none() && !level.cut) {
            report.complete_up_to = plan.max_size;
            break;
        }
        bound = if plan.budget.is_some() {
            bound + 1
        } else {
            (bound * 2).min(max)
        };
    }
    for s in &kept {
        *report.rules_by_size.entry(s.len()).or_default() += 1;
    }
    kept
}

/// Keeps the sets that are not tautologies (or their twins that are not); stops early,
/// saying why, when the deadline passes or the search is cancelled.
fn filter(
    sets: impl Iterator<Item = Vec<u32>>,
    plan: &SearchPlan<'_>,
    domains: &mut Domains,
    report: &mut MineReport,
    kept: &mut Vec<Vec<u32>>,
) -> Option<Stop> {
    for (i, set) in sets.enumerate() {
        if i % 256 == 255
            && let Some(stop) = plan.limits.expired()
        {
            return Some(stop);
        }
        if !domains.tautology(&set) {
            kept.push(set);
            continue;
        }
        // Valid whatever the data over the representatives, but a twin over other
        // members of their classes may say something.
        report.tautologies += 1;
        for twin in twins(&set, plan.classes) {
            if !domains.tautology(&twin) {
                report.variants += 1;
                kept.push(twin);
            }
        }
    }
    None
}

/// The sets made from `set` by putting class members in for representatives (all but
/// `set` itself), at most [`MAX_TWINS`] of them.
fn twins(set: &[u32], classes: &Classes) -> Vec<Vec<u32>> {
    let options: Vec<Vec<u32>> = set
        .iter()
        .map(|r| {
            std::iter::once(*r)
                .chain(classes.get(r).into_iter().flatten().copied())
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut pick = vec![0usize; set.len()];
    'outer: loop {
        let mut i = 0;
        loop {
            if i == pick.len() {
                break 'outer;
            }
            pick[i] += 1;
            if pick[i] < options[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
        let mut twin: Vec<u32> = pick.iter().zip(&options).map(|(&k, o)| o[k]).collect();
        twin.sort_unstable();
        out.push(twin);
        if out.len() >= MAX_TWINS {
            break;
        }
    }
    out
}

/// How many twins of one tautological set are examined.
const MAX_TWINS: usize = 100_000;

/// Rules the pack stands for when class members replace representatives.
fn expanded_count(sets: &[Vec<u32>], classes: &Classes) -> u128 {
    let size = |p: &u32| 1 + classes.get(p).map_or(0, Vec::len) as u128;
    sets.iter()
        .map(|s| s.iter().map(size).product::<u128>())
        .sum()
}

/// The search's result: rules over representatives, and the classes they stand for.
struct Found<'a> {
    sets: &'a [Vec<u32>],
    classes: &'a Classes,
}

struct Sources<'a> {
    spec_json: &'a serde_json::Value,
    grammar_json: &'a serde_json::Value,
    max_size: u32,
    max_rules: u64,
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    options: &MineOptions,
    spec: &DatasetSpec,
    dataset: &Dataset,
    schema: &Schema,
    preds: &[Predicate],
    ev: &Evidence,
    found: &Found<'_>,
    report: &MineReport,
    sources: &Sources<'_>,
) -> Result<RulePack, MineError> {
    let width = preds.len().to_string().len().max(5);
    let pid = |i: usize| format!("p{i:0width$}");
    let predicates: Vec<PackPredicate> = preds
        .iter()
        .enumerate()
        .map(|(i, p)| PackPredicate {
            id: pid(i),
            formula: p.formula.clone(),
            text: p.text.clone(),
            template: p.template.clone(),
            support: ev.support[i],
        })
        .collect();
    let equivalences: usize = found.classes.values().map(Vec::len).sum();
    let total = found.sets.len() + equivalences;
    let rwidth = total.to_string().len().max(5);
    let rid = |k: usize| format!("r{:0rwidth$}", k + 1);
    let mut rules: Vec<Rule> = found
        .sets
        .iter()
        .enumerate()
        .map(|(k, set)| {
            let formula = Formula::any(
                set.iter()
                    .map(|&e| preds[e as usize].formula.clone())
                    .collect(),
            );
            Rule {
                id: rid(k),
                text: rule_text(&formula, schema),
                formula,
                support: Support {
                    records: ev.records,
                    satisfied: ev.satisfied(set),
                },
                predicates: set.iter().map(|&e| pid(e as usize)).collect(),
            }
        })
        .collect();
    for (rep, members) in found.classes {
        for &m in members {
            let (a, b) = (&preds[*rep as usize].formula, &preds[m as usize].formula);
            let formula = Formula::all(vec![
                Formula::implies(a.clone(), b.clone()),
                Formula::implies(b.clone(), a.clone()),
            ]);
            rules.push(Rule {
                id: rid(rules.len()),
                text: format!(
                    "{} <-> {}",
                    formula_text(a, schema),
                    formula_text(b, schema)
                ),
                formula,
                support: Support {
                    records: ev.records,
                    satisfied: ev.records,
                },
                predicates: vec![pid(*rep as usize), pid(m as usize)],
            });
        }
    }
    let input = &dataset.report.input;
    let (sha, bytes) =
        sha256_file(input).map_err(|e| MineError::Options(format!("{}: {e}", input.display())))?;
    let spec_source = |path: &Path, content: &serde_json::Value| -> Result<SpecSource, MineError> {
        let (sha256, _) = sha256_file(path)
            .map_err(|e| MineError::Options(format!("{}: {e}", path.display())))?;
        Ok(SpecSource {
            path: path.display().to_string(),
            sha256,
            content: content.clone(),
        })
    };
    let stopped_by = match (report.stopped, report.capped) {
        (Some(s), _) => Some(s.token().to_owned()),
        (None, true) => Some("max_rules".to_owned()),
        (None, false) => None,
    };
    let provenance = Provenance {
        inputs: vec![InputFile {
            path: input.display().to_string(),
            sha256: sha,
            bytes,
            records: dataset.report.records_read,
        }],
        dataset_spec: Some(spec_source(&options.dataset_spec, sources.spec_json)?),
        grammar: Some(spec_source(&options.grammar, sources.grammar_json)?),
        parameters: parameters(options, sources),
        search: Some(SearchOutcome {
            complete: stopped_by.is_none(),
            stopped_by,
            complete_up_to_size: report.complete_up_to,
            max_clause_size: sources.max_size,
        }),
        statistics: statistics(dataset, report, ev),
        imported_from: None,
    };
    let name = options.name.clone().unwrap_or_else(|| spec.name.clone());
    let pack = RulePack {
        format_version: FORMAT_VERSION,
        name,
        version: options.version.clone().unwrap_or_else(|| "1.0.0".into()),
        hash: String::new(),
        created: now_rfc3339(),
        producer: Producer {
            name: "netnomos".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        description: (!spec.description.is_empty()).then(|| spec.description.clone()),
        provenance,
        fields: schema.fields().to_vec(),
        predicates,
        rules,
        components: dataset
            .functions
            .iter()
            .map(|f| f.component.clone())
            .collect(),
    };
    Ok(pack)
}

/// Loads the components of the grammar's `function` terms (paths relative to the grammar
/// file) into `dataset.functions`, so that the pack embeds them; returns each component
/// as written with its function's name.
fn load_grammar_functions(
    grammar: &GrammarSpec,
    grammar_path: &Path,
    dataset: &mut Dataset,
) -> Result<BTreeMap<String, String>, String> {
    let dir = grammar_path.parent().unwrap_or(Path::new("."));
    let mut names = BTreeMap::new();
    for t in &grammar.predicate_templates {
        for term in [&t.lhs_term, &t.rhs_term].into_iter().flatten() {
            let Some(component) = &term.component else {
                continue;
            };
            if names.contains_key(component) {
                continue;
            }
            let file = dir.join(component);
            let loaded = prepare::LoadedFunction::load(&file)
                .map_err(|e| format!("template `{}`: component {}: {e}", t.name, file.display()))?;
            let name = loaded.function.name().to_owned();
            match dataset.functions.iter().find(|f| f.component.name == name) {
                Some(f) if f.component.sha256 != loaded.component.sha256 => {
                    return Err(format!(
                        "template `{}`: component {} is function `{name}`, but the dataset \
                         spec loads another component of that name",
                        t.name,
                        file.display()
                    ));
                }
                Some(_) => {}
                None => dataset.functions.push(loaded),
            }
            names.insert(component.clone(), name);
        }
    }
    Ok(names)
}

fn parameters(options: &MineOptions, sources: &Sources<'_>) -> BTreeMap<String, serde_json::Value> {
    let mut p = BTreeMap::new();
    p.insert("max_clause_size".into(), json!(sources.max_size));
    p.insert("max_rules".into(), json!(sources.max_rules));
    p.insert("approximate".into(), json!(options.approximate));
    p.insert(
        "time_budget_seconds".into(),
        json!(options.time_budget.map(|d| d.as_secs_f64())),
    );
    p.insert("strict".into(), json!(options.strict));
    p.insert("keep_equivalent".into(), json!(options.keep_equivalent));
    p.insert(
        "algorithm".into(),
        json!(if options.approximate.is_some() {
            "partial-hitting-set-dfs"
        } else {
            "mmcs"
        }),
    );
    p
}

fn statistics(
    dataset: &Dataset,
    report: &MineReport,
    ev: &Evidence,
) -> BTreeMap<String, serde_json::Value> {
    let load = &dataset.report;
    let skipped: BTreeMap<&str, u64> = load
        .skipped
        .iter()
        .map(|(k, g)| (k.as_str(), g.count))
        .collect();
    let filtered: BTreeMap<&str, u64> = load
        .filtered
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    let mut s = BTreeMap::new();
    s.insert("records_read".into(), json!(load.records_read));
    s.insert("records_skipped".into(), json!(skipped));
    s.insert("records_filtered".into(), json!(filtered));
    s.insert("records_kept".into(), json!(load.records_kept));
    let warnings: Vec<&String> = load.warnings.iter().chain(&report.warnings).collect();
    if !warnings.is_empty() {
        s.insert("warnings".into(), json!(warnings));
    }
    if let Some(w) = &load.windows {
        s.insert(
            "windows".into(),
            json!({"size": w.size, "stride": w.stride, "partitions": w.partitions,
            "short_partitions": w.short_partitions, "windows": w.windows}),
        );
    }
    s.insert("rows".into(), json!(ev.records));
    s.insert("distinct_evidence_rows".into(), json!(ev.distinct()));
    s.insert(
        "predicates_generated".into(),
        json!(report.predicates_generated),
    );
    s.insert(
        "predicates_equivalent".into(),
        json!(report.predicates_equivalent),
    );
    s.insert(
        "predicates_valid_on_domains".into(),
        json!(report.predicates_valid),
    );
    s.insert(
        "predicates_unsatisfiable_on_domains".into(),
        json!(report.predicates_unsatisfiable),
    );
    s.insert(
        "predicates_searched".into(),
        json!(report.predicates_searched),
    );
    let by_size: BTreeMap<String, u64> = report
        .rules_by_size
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    s.insert("rules_by_size".into(), json!(by_size));
    s.insert("tautologies_dropped".into(), json!(report.tautologies));
    s.insert(
        "predicates_equivalent_on_data".into(),
        json!(report.predicates_equivalent_on_data),
    );
    s.insert(
        "rules_when_classes_expanded".into(),
        json!(report.expanded_rules.to_string()),
    );
    s
}

/// The default version for a new pack named `name` in `dir`: one minor version above the
/// newest there, or 1.0.0.
pub fn next_version(dir: &Path, name: &str) -> String {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let rest = file
                .strip_prefix(&format!("{name}@"))?
                .strip_suffix(".json")?;
            semver::Version::parse(rest).ok()
        })
        .max();
    match newest {
        Some(v) => semver::Version::new(v.major, v.minor + 1, 0).to_string(),
        None => "1.0.0".into(),
    }
}
