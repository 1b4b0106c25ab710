//! `netnomos entails`: does a pack entail a formula?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use rulepacks::resolve::resolve;
use rulepacks::{RulePack, Schema, Value};
use solver::{Theory, Verdict};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pack.
    #[arg(long, value_name = "FILE")]
    pub pack: PathBuf,
    /// Formulas in the reference query syntax, e.g. `Proto = UDP -> Flags = noflags`.
    #[arg(value_name = "FORMULA", required_unless_present = "file")]
    pub formulas: Vec<String>,
    /// Read formulas from a file, one per line (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Give up on one query after this many milliseconds (the verdict is then `unknown`).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u32,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A solver loaded with a pack's domains and rules.
pub fn load_theory(pack: &RulePack, timeout_ms: u32) -> anyhow::Result<(Schema, Theory)> {
    let (schema, props) = pack
        .validate()
        .map_err(|m| anyhow::anyhow!("pack {}: {m}", pack.id()))?;
    let ids: Vec<String> = pack.rules.iter().map(|r| r.id.clone()).collect();
    if let Some(why) = solver::contradiction(&schema, &props, &ids, timeout_ms) {
        anyhow::bail!(
            "pack {}: {why}; every formula would follow from it, so no question is answered",
            pack.id()
        );
    }
    let mut theory = Theory::new(&schema, timeout_ms);
    for p in &props {
        theory.assert(p);
    }
    Ok((schema, theory))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pack = super::load_pack(&args.pack)?;
    let started = Instant::now();
    let (schema, mut theory) = load_theory(&pack, args.timeout_ms)?;
    tracing::debug!(
        "loaded {} rules in {:.3}s",
        theory.rule_count(),
        started.elapsed().as_secs_f64()
    );
    // Every query is read and checked before any is answered.
    let mut queries: Vec<(String, String)> = args
        .formulas
        .iter()
        .enumerate()
        .map(|(i, q)| (format!("argument {}", i + 1), q.clone()))
        .collect();
    if let Some(path) = &args.file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let query = strip_comment(line).trim();
            if !query.is_empty() {
                queries.push((format!("{}:{}", path.display(), n + 1), query.to_owned()));
            }
        }
    }
    let mut props = Vec::with_capacity(queries.len());
    for (at, q) in &queries {
        let formula = rulepacks::parse_formula(q).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        let prop = resolve(&formula, &schema).map_err(|e| anyhow::anyhow!("{at}: `{q}`: {e}"))?;
        props.push(prop);
    }
    let mut all = true;
    for ((_, q), prop) in queries.iter().zip(&props) {
        let t = Instant::now();
        let verdict = theory.entails(prop);
        let micros = t.elapsed().as_micros();
        all &= verdict.is_entailed();
        if args.json {
            crate::outln!(
                "{}",
                serde_json::json!({"query": q, "verdict": verdict.word(), "detail": detail(&verdict), "micros": micros})
            );
        } else {
            crate::outln!(
                "{}\t{q}{}",
                verdict.word(),
                detail(&verdict)
                    .map(|d| format!("\t{d}"))
                    .unwrap_or_default()
            );
        }
    }
    tracing::info!(
        "{} queries in {:.3}s (loading {} rules included)",
        queries.len(),
        started.elapsed().as_secs_f64(),
        theory.rule_count()
    );
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A line without its `#` comment (a `#` inside quotes is text).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The counterexample or reason behind a verdict.
pub fn detail(v: &Verdict) -> Option<String> {
    match v {
        Verdict::Contingent { counterexample } => {
            Some(format!("counterexample: {}", record_text(counterexample)))
        }
        Verdict::Unknown { reason } => Some(format!("z3: {reason}")),
        _ => None,
    }
}

fn record_text(values: &[(String, Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| match v {
            Value::Str(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
