//! `netnomos check`: which rules do these records break?

use std::path::PathBuf;
use std::process::ExitCode;

use miner::check::{CheckReport, check, load};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pack.
    #[arg(long, value_name = "FILE")]
    pub pack: PathBuf,
    /// Records: data in the pack's input format, JSON lines in the pack's schema (.jsonl),
    /// or record texts, one per line (.txt).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// How to read the input (default: the dataset spec recorded in the pack; JSON lines
    /// need none).
    #[arg(long, value_name = "FILE")]
    pub dataset_spec: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Example records to name per violated rule.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// List at most this many violated rules in the table, most violated first (0: all).
    #[arg(long, default_value_t = 50)]
    pub top: usize,
    /// Fail on the first unusable record instead of skipping and reporting it.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pack = super::load_pack(&args.pack)?;
    let schema = pack
        .schema()
        .map_err(|m| anyhow::anyhow!("pack {}: {m}", pack.id()))?;
    let dataset = load(
        &pack,
        &schema,
        &args.input,
        args.dataset_spec.as_deref(),
        args.strict,
    )
    .map_err(anyhow::Error::msg)?;
    let report = check(&pack, &schema, &dataset, args.examples).map_err(anyhow::Error::msg)?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::out!("{}", table(&report, args.top));
    }
    Ok(if report.violations == 0 && report.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn table(r: &CheckReport, top: usize) -> String {
    let mut out = String::new();
    if !r.failed.is_empty() {
        out.push_str("rule\tviolations\texamples\ttext\n");
    }
    let shown = if top == 0 {
        r.failed.len()
    } else {
        top.min(r.failed.len())
    };
    for f in &r.failed[..shown] {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            f.id,
            f.violations,
            f.examples.join(", "),
            f.text
        ));
    }
    if shown < r.failed.len() {
        out.push_str(&format!(
            "…\t{} more rules violated (see --top, or --json)\n",
            r.failed.len() - shown
        ));
    }
    for u in &r.unreadable {
        out.push_str(&format!(
            "unreadable\t{}\t{}\t{}\n",
            u.records,
            u.examples.join("; "),
            u.reason
        ));
    }
    out.push_str(&format!(
        "{}: {} {}, {} rules: {} violations in {} of them ({} rules or domains violated)\n",
        r.pack,
        r.records,
        r.unit,
        r.rules,
        r.violations,
        r.records_violating,
        r.failed.len()
    ));
    out
}
