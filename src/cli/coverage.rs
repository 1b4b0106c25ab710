//! `netnomos coverage`: how many benchmark rules does a pack entail?

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rulepacks::RulePack;
use rulepacks::reference::read_rules;
use rulepacks::resolve::resolve;
use solver::{Theory, Verdict};

use super::entails::{detail, load_theory};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pack.
    #[arg(long, value_name = "FILE")]
    pub pack: PathBuf,
    /// Benchmark rules in the reference `rules.json` format.
    #[arg(long, value_name = "FILE")]
    pub golden: PathBuf,
    /// Give up on one rule after this many milliseconds (it then counts as not entailed).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u32,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One benchmark rule's verdict.
enum Outcome {
    Judged(Verdict),
    NotExpressible(String),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pack = super::load_pack(&args.pack)?;
    let golden = read_rules(&args.golden)?;
    let started = Instant::now();
    let (schema, mut theory) = load_theory(&pack, args.timeout_ms)?;
    let mut domains_only = Theory::new(&schema, args.timeout_ms);
    let (mut covered, mut by_domains) = (0, 0);
    for rule in &golden {
        let outcome = match resolve(&rule.formula, &schema) {
            Err(e) => Outcome::NotExpressible(e.0),
            Ok(prop) => {
                if domains_only.entails(&prop).is_entailed() {
                    by_domains += 1;
                }
                Outcome::Judged(theory.entails(&prop))
            }
        };
        let (word, why) = match &outcome {
            Outcome::Judged(v) if v.is_entailed() => {
                covered += 1;
                ("entailed", None)
            }
            Outcome::Judged(v) => (
                "not entailed",
                Some(format!(
                    "{}{}",
                    v.word(),
                    detail(v).map(|d| format!(": {d}")).unwrap_or_default()
                )),
            ),
            Outcome::NotExpressible(e) => ("not expressible", Some(e.clone())),
        };
        if args.json {
            crate::outln!(
                "{}",
                serde_json::json!({"rule_id": rule.rule_id, "display": rule.display, "verdict": word, "reason": why})
            );
        } else {
            crate::outln!(
                "{}\t{word}\t{}{}",
                rule.rule_id,
                rule.display,
                why.map(|w| format!("\t({w})")).unwrap_or_default()
            );
        }
    }
    summary(&pack, golden.len(), covered, by_domains, started);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::json!({"coverage": {"entailed": covered, "rules": golden.len(), "entailed_by_domains_alone": by_domains}})
        );
    } else {
        crate::outln!("coverage: {covered}/{}", golden.len());
    }
    Ok(if covered == golden.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(pack: &RulePack, total: usize, covered: usize, by_domains: usize, started: Instant) {
    tracing::info!(
        "{}: {} rules; {covered}/{total} benchmark rules entailed; the field domains alone entail {by_domains}/{total}; {:.2}s",
        pack.id(),
        pack.rules.len(),
        started.elapsed().as_secs_f64()
    );
}
