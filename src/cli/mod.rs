//! The command line: one subcommand per job.
//!
//! Data goes to stdout (paths of written files, tables, JSON); logs, progress bars and
//! summaries go to stderr.  Exit status: 0 when the command did its job and found nothing
//! wrong, 1 when it worked but found something (violations, a query not entailed,
//! incomplete coverage), 2 on an error.

mod check;
mod coverage;
mod entails;
mod interchange;
mod mine;
mod progress;
mod serve;
mod train;

use std::process::ExitCode;

use std::fmt::Write as _;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netnomos",
    version,
    about = "Mine first-order rules from network data into rule packs, check and exchange them, and serve generation that obeys them"
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr; no summary, no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Learn a rule pack from data: every rule up to a size bound that holds on every record.
    Mine(mine::Args),
    /// Check records (a dataset, or another generator's output) against a pack's rules.
    Check(check::Args),
    /// Ask whether a pack's rules entail a formula (with z3; field domains are axioms).
    Entails(entails::Args),
    /// Measure how many benchmark rules a pack entails.
    Coverage(coverage::Args),
    /// Write a pack as a reference (Python NetNomos) run directory.
    Export(interchange::ExportArgs),
    /// Read a reference run directory or rules.json as a pack.
    Import(interchange::ImportArgs),
    /// Train a small model that writes records of a dataset, for `serve`.
    Train(train::Args),
    /// Serve rule-enforced generation over an OpenAI-compatible HTTP API.
    Serve(serve::Args),
    /// Print the JSON Schema of the pack format.
    Schema,
}

pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETNOMOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},z3=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Mine(args) => mine::run(args, quiet),
        Command::Check(args) => check::run(args),
        Command::Entails(args) => entails::run(args),
        Command::Coverage(args) => coverage::run(args),
        Command::Export(args) => interchange::export(args),
        Command::Import(args) => interchange::import(args),
        Command::Train(args) => train::run(args, quiet),
        Command::Serve(args) => serve::run(args),
        Command::Schema => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&rulepacks::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes to stdout; a closed pipe (`netnomos … | head`) ends the program quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(2);
        }
    }};
}

/// Like [`outln!`], without the newline.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = write!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(2);
        }
    }};
}

/// The readable rendering written next to a pack: one rule per line.
pub fn rules_text(pack: &rulepacks::RulePack) -> String {
    let mut out = format!(
        "# {} ({})\n# {} rules\n",
        pack.id(),
        pack.hash,
        pack.rules.len()
    );
    if let Some(s) = &pack.provenance.search
        && !s.complete
    {
        let _ = writeln!(
            out,
            "# partial: stopped by {}; complete up to {} predicates per rule",
            s.stopped_by.as_deref().unwrap_or("?"),
            s.complete_up_to_size
        );
    }
    for rule in &pack.rules {
        let violations = rule.support.violations();
        if violations > 0 {
            let _ = writeln!(
                out,
                "{}\t{}\t[fails on {violations} of {} records]",
                rule.id, rule.text, rule.support.records
            );
        } else {
            let _ = writeln!(out, "{}\t{}", rule.id, rule.text);
        }
    }
    out
}

/// Loads a pack, or explains why not.
pub fn load_pack(path: &std::path::Path) -> anyhow::Result<rulepacks::RulePack> {
    Ok(rulepacks::RulePack::load(path)?)
}
