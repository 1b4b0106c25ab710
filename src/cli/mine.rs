//! `netnomos mine`: learn a rule pack.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use miner::mine::{MineOptions, MineReport, Mined, mine, next_version};
use rulepacks::pack::write_atomic;

use super::progress::Bars;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset spec (reference JSON format): how to read, clean and window the records.
    #[arg(long, value_name = "FILE")]
    pub dataset_spec: PathBuf,
    /// Grammar (reference JSON format): which predicates rules are built from.
    #[arg(long, value_name = "FILE")]
    pub grammar: PathBuf,
    /// Input data: CSV, pcap or pcapng (default: the spec's `source.path`).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Directory to write the pack into (as NAME@VERSION.json, plus a .rules.txt rendering).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Pack name (default: the dataset spec's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Pack version (default: one minor version above the newest in --out, or 1.0.0).
    #[arg(long)]
    pub version: Option<String>,
    /// Largest rule (number of predicates); overrides the grammar's `max_clause_size`.
    #[arg(long)]
    pub max_clause_size: Option<u32>,
    /// Keep at most this many rules, the shortest first; overrides the grammar's `max_rules`.
    #[arg(long)]
    pub max_rules: Option<u64>,
    /// Approximate rules: each may fail on at most this fraction of records (e.g. 0.001).
    #[arg(long, value_name = "FRACTION")]
    pub approximate: Option<f64>,
    /// Stop the rule search after this long (e.g. `30s`, `5m`) and write what was found.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub time_budget: Option<Duration>,
    /// Fail on the first unusable record instead of skipping and reporting it.
    #[arg(long)]
    pub strict: bool,
    /// Search every predicate rather than one per class of predicates that hold on exactly
    /// the same records (the pack then lists every twin rule instead of equivalences).
    #[arg(long)]
    pub keep_equivalent: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: Args, quiet: bool) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up worker threads")?;
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => spec_name(&args.dataset_spec)?,
    };
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| next_version(&args.out, &name));
    let target = args.out.join(format!("{name}@{version}.json"));
    let text_path = args.out.join(format!("{name}@{version}.rules.txt"));
    for path in [&target, &text_path] {
        if path.exists() {
            anyhow::bail!(
                "{} already exists; packs are immutable, so choose a new --version",
                path.display()
            );
        }
    }
    let cancel = interrupt_flag()?;
    let options = MineOptions {
        dataset_spec: args.dataset_spec,
        grammar: args.grammar,
        input: args.input,
        max_clause_size: args.max_clause_size,
        max_rules: args.max_rules,
        approximate: args.approximate,
        time_budget: args.time_budget,
        strict: args.strict,
        keep_equivalent: args.keep_equivalent,
        name: Some(name),
        version: Some(version),
    };
    let bars = Bars::new(quiet);
    let Mined { mut pack, report } = mine(&options, &cancel, &bars)?;
    pack.write_new(&target)?;
    write_atomic(&text_path, super::rules_text(&pack).as_bytes())?;
    if quiet {
        warnings(&report);
    } else {
        eprint!("{}", summary(&report, &pack, &target));
    }
    crate::outln!("{}", target.display());
    Ok(ExitCode::SUCCESS)
}

/// The dataset spec's `name`, read early to name the pack file.
fn spec_name(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let name = value
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    if !rulepacks::pack::valid_name(name) {
        anyhow::bail!(
            "{}: dataset name `{name}` cannot name a pack; give --name (letters, digits, `-`, `_`, `.`)",
            path.display()
        );
    }
    Ok(name.to_owned())
}

/// A flag set by the first Ctrl-C; the second one exits at once.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicUsize::new(0));
    let f = flag.clone();
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("\ninterrupted: stopping the search and writing the rules found so far (Ctrl-C again to abort)");
            f.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(flag)
}

/// Under `--quiet`, what still needs saying: skipped records, damage read past, a
/// partial search.
fn warnings(r: &MineReport) {
    for (reason, g) in &r.load.skipped {
        let first = g
            .examples
            .first()
            .map(|(o, _)| format!(", first at {o}"))
            .unwrap_or_default();
        tracing::warn!("{} records skipped: {reason}{first}", g.count);
    }
    for w in r.load.warnings.iter().chain(&r.warnings) {
        tracing::warn!("{w}");
    }
    if let Some(stop) = r.stopped {
        tracing::warn!(
            "the pack is partial: stopped by {}; complete up to size {}",
            stop.describe(),
            r.complete_up_to
        );
    } else if r.capped {
        tracing::warn!(
            "the pack is partial: capped at max_rules; complete up to size {}",
            r.complete_up_to
        );
    }
}

fn summary(r: &MineReport, pack: &rulepacks::RulePack, path: &Path) -> String {
    let mut s = String::new();
    let load = &r.load;
    let _ = writeln!(
        s,
        "records read      {} ({} bytes) from {}",
        load.records_read,
        load.bytes,
        load.input.display()
    );
    for (label, n) in &load.filtered {
        let _ = writeln!(s, "  filtered out    {n} by {label}");
    }
    for (reason, g) in &load.skipped {
        let examples: Vec<String> = g
            .examples
            .iter()
            .take(3)
            .map(|(o, _)| o.to_string())
            .collect();
        let _ = writeln!(
            s,
            "  skipped         {} ({reason}; e.g. {})",
            g.count,
            examples.join(", ")
        );
    }
    for w in load.warnings.iter().chain(&r.warnings) {
        let _ = writeln!(s, "  warning         {w}");
    }
    if let Some(w) = &load.windows {
        let _ = writeln!(
            s,
            "windows           {} of {} records each from {} partitions ({} too short)",
            w.windows, w.size, w.partitions, w.short_partitions
        );
    }
    let _ = writeln!(
        s,
        "records mined     {} with {} fields",
        r.records, r.fields
    );
    let _ = writeln!(
        s,
        "predicates        {} generated; {} searched ({} equivalent, {} valid and {} unsatisfiable on the domains)",
        r.predicates_generated,
        r.predicates_searched,
        r.predicates_equivalent,
        r.predicates_valid,
        r.predicates_unsatisfiable
    );
    let _ = writeln!(s, "distinct rows     {}", r.distinct_rows);
    let sizes: Vec<String> = r
        .rules_by_size
        .iter()
        .map(|(k, v)| format!("{v} of size {k}"))
        .collect();
    let _ = writeln!(
        s,
        "rules             {} ({}) and {} equivalences; {} tautologies dropped ({} checked by z3); {} search nodes",
        pack.rules.len() - r.equivalences(),
        sizes.join(", "),
        r.equivalences(),
        r.tautologies,
        r.solver_checks,
        r.search_nodes
    );
    if r.predicates_equivalent_on_data > 0 {
        let _ = writeln!(
            s,
            "                  {} predicates hold on the same records as another; with them the rules stand for {} rules",
            r.predicates_equivalent_on_data, r.expanded_rules
        );
    }
    if let Some(stop) = r.stopped {
        let _ = writeln!(
            s,
            "search            PARTIAL: stopped by {}; complete up to size {}",
            stop.describe(),
            r.complete_up_to
        );
    } else if r.capped {
        let _ = writeln!(
            s,
            "search            PARTIAL: capped at max_rules; complete up to size {}",
            r.complete_up_to
        );
    } else {
        let _ = writeln!(
            s,
            "search            complete up to size {}",
            r.max_clause_size
        );
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    let _ = writeln!(s, "time              {}", phases.join(", "));
    let _ = writeln!(s, "pack              {} ({})", path.display(), pack.hash);
    s
}
