//! `netnomos train`: a small model that writes records, for `netnomos serve`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use miner::prepare::{self, PrepareOptions};
use miner::spec::DatasetSpec;
use rulepacks::Schema;
use rulepacks::record::RecordFormat;
use serde_json::json;
use trainer::train::{TrainOptions, train};
use trainer::vocab::{bpe_tokenizer, field_tokenizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenizerKind {
    /// Field names and categorical values are whole tokens; numbers are digits.
    Field,
    /// Byte-pair encoding trained on the record texts.
    Bpe,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset spec (reference JSON format): how to read and prepare the records.
    #[arg(long, value_name = "FILE")]
    pub dataset_spec: PathBuf,
    /// Input data (default: the spec's `source.path`).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The rule pack whose fields the model writes (default: the fields the dataset
    /// spec yields, profiled from the input the way `mine` does).
    #[arg(long, value_name = "FILE")]
    pub pack: Option<PathBuf>,
    /// The model directory to write (must not exist yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = TokenizerKind::Field)]
    pub tokenizer: TokenizerKind,
    /// Vocabulary size of a BPE tokenizer.
    #[arg(long, default_value_t = 512)]
    pub bpe_size: usize,
    #[arg(long, default_value_t = 600)]
    pub steps: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Width of the model.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 3e-3)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every Nth record is held out and only scored (0: none).
    #[arg(long, default_value_t = 20)]
    pub hold_out_every: usize,
    /// Fail on the first unusable record instead of skipping and reporting it.
    #[arg(long)]
    pub strict: bool,
}

/// The record texts of `input`, in the field order of `schema`, and the records that
/// could not be written.
fn record_texts(
    spec_path: &Path,
    input: Option<&Path>,
    pack: Option<&rulepacks::RulePack>,
    strict: bool,
) -> anyhow::Result<(Schema, Vec<String>, Vec<String>)> {
    let (spec, _) = DatasetSpec::load(spec_path)?;
    let options = PrepareOptions {
        input: input.map(Path::to_owned),
        strict,
        spec_path: spec_path.to_owned(),
        ..PrepareOptions::default()
    };
    let (schema, dataset) = match pack {
        Some(pack) => {
            let schema = pack
                .schema()
                .map_err(|m| anyhow::anyhow!("pack {}: {m}", pack.id()))?;
            let input = match input {
                Some(i) => i.to_owned(),
                None => match &spec.source.path {
                    Some(p) => spec_path.parent().unwrap_or(Path::new(".")).join(p),
                    None => anyhow::bail!(
                        "{}: the dataset spec names no source.path; give --input",
                        spec_path.display()
                    ),
                },
            };
            let dataset = miner::check::load(pack, &schema, &input, Some(spec_path), strict)
                .map_err(anyhow::Error::msg)?;
            (schema, dataset)
        }
        None => {
            let dataset = prepare::prepare(&spec, &options)?;
            let schema =
                Schema::new(miner::profile::schema_fields(&dataset)).map_err(anyhow::Error::msg)?;
            (schema, dataset)
        }
    };
    for (reason, group) in &dataset.report.skipped {
        tracing::warn!("{} records skipped: {reason}", group.count);
    }
    let format = RecordFormat::new(&schema).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let mut texts = Vec::with_capacity(dataset.rows());
    let mut unwritable = Vec::new();
    for row in 0..dataset.rows() {
        let values: Vec<Option<rulepacks::Value>> = schema
            .fields()
            .iter()
            .map(|f| dataset.field_index(&f.name).map(|i| dataset.value(i, row)))
            .collect();
        match format.write(&values) {
            Ok(t) => texts.push(t),
            Err(e) => unwritable.push(format!("{}: {}", dataset.origins[row], e.message)),
        }
    }
    Ok((schema, texts, unwritable))
}

pub fn run(args: Args, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        anyhow::bail!(
            "{} already exists; choose a new model directory",
            args.out.display()
        );
    }
    let pack = args.pack.as_deref().map(super::load_pack).transpose()?;
    let (schema, texts, unwritable) = record_texts(
        &args.dataset_spec,
        args.input.as_deref(),
        pack.as_ref(),
        args.strict,
    )?;
    if !unwritable.is_empty() {
        let shown: Vec<&str> = unwritable.iter().take(3).map(String::as_str).collect();
        if args.strict {
            anyhow::bail!(
                "a record cannot be written in the pack's fields: {}",
                shown[0]
            );
        }
        tracing::warn!(
            "{} records cannot be written in the pack's fields and are left out (e.g. {})",
            unwritable.len(),
            shown.join("; ")
        );
    }
    if texts.is_empty() {
        anyhow::bail!("no records to train on");
    }
    let (train_set, held_out): (Vec<String>, Vec<String>) = if args.hold_out_every > 1 {
        let (h, t): (Vec<_>, Vec<_>) = texts
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % args.hold_out_every == args.hold_out_every - 1);
        (
            t.into_iter().map(|(_, s)| s).collect(),
            h.into_iter().map(|(_, s)| s).collect(),
        )
    } else {
        (texts, Vec::new())
    };
    let format = RecordFormat::new(&schema).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let tokenizer = match args.tokenizer {
        TokenizerKind::Field => field_tokenizer(&format)?,
        TokenizerKind::Bpe => bpe_tokenizer(&train_set, args.bpe_size)?,
    };
    let options = TrainOptions {
        hidden: args.hidden,
        layers: args.layers,
        heads: args.heads,
        steps: args.steps,
        batch: args.batch,
        learning_rate: args.learning_rate,
        seed: args.seed,
    };
    tracing::info!(
        "training on {} records ({} held out), {} steps",
        train_set.len(),
        held_out.len(),
        args.steps
    );
    let bar = ProgressBar::new(args.steps as u64).with_style(
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
            .context("progress template")?
            .progress_chars("=> "),
    );
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let trained = train(&train_set, &held_out, tokenizer, &options, &|step, loss| {
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.3}"));
    })?;
    bar.finish_and_clear();
    let fields: Vec<&str> = format.names();
    let about = json!({
        "format": "netnomos record text: `Field=value` pairs separated by one space, in this field order",
        "fields": fields,
        "pack": pack.as_ref().map(|p| p.id()),
        "pack_hash": pack.as_ref().map(|p| p.hash.clone()),
        "dataset_spec": args.dataset_spec.display().to_string(),
        "input": args.input.as_ref().map(|p| p.display().to_string()),
        "tokenizer": format!("{:?}", args.tokenizer).to_lowercase(),
        "hold_out_every": args.hold_out_every,
        "seed": args.seed,
    });
    trained.save(&args.out, about)?;
    let r = &trained.report;
    if !quiet {
        eprintln!(
            "trained {} parameters on {} records in {:.1} s: loss {:.3}, held-out loss {}",
            r.parameters,
            r.records,
            r.seconds,
            r.final_loss,
            r.held_out_loss
                .map_or("-".to_owned(), |l| format!("{l:.3}"))
        );
    }
    crate::outln!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
